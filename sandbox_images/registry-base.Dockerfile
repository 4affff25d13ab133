# Base from a registry, used only where the engine can pull one. No host name here:
# the engine's configured default registry is used.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pytest \
 && rm -rf /var/lib/apt/lists/*
