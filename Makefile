# Two commands matter: `make demo` (the whole system on a real Docker engine) and
# `make test` (the full suite, Docker integration tests included). Each sets up what is
# missing (Python environment, Docker engine, sandbox image, the browser the dashboard's
# tests drive) and is fast the second time.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup engine image browser demo test unit lint bench bench-peers clean

# The telemetry benchmark's world: 100 agents for this many ticks (1000, its default, takes hours here).
TELEMETRY_TICKS ?= 120

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[dev]'
	@touch $(STAMP)

engine:
	@bash scripts/setup-docker.sh

image: $(STAMP) engine
	@$(BIN)/kernel image build

# Debian's chromium, driven by Playwright through its executable_path (never `playwright install`).
browser:
	@bash scripts/setup-browser.sh

setup: image

demo: setup
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

test: setup browser lint
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest -m "not docker and not browser"

lint: $(STAMP)
	$(BIN)/ruff check kernel judiciary tests benchmarks examples/agents
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/invoke_latency.py
	$(BIN)/python benchmarks/proxy_roundtrip.py
	$(BIN)/python benchmarks/audit_ingest.py
	$(BIN)/python benchmarks/judge_overhead.py
	$(BIN)/python benchmarks/fingerprint_throughput.py
	$(BIN)/python benchmarks/blackmarket.py
	$(BIN)/python benchmarks/concurrency.py
	$(BIN)/python benchmarks/world.py
	$(BIN)/python benchmarks/telemetry.py --ticks $(TELEMETRY_TICKS)

# The kernel's peers (epicbox, llm-sandbox) in a venv of their own, timed on the local image.
PEER_REPS ?= 15
bench-peers: setup
	@PYTHON=$(PYTHON) bash scripts/peers-venv.sh
	$(BIN)/python benchmarks/peers.py --reps $(PEER_REPS)

clean:
	rm -rf $(VENV) .kernel
