"""The daemon: `kernel serve`, its HTTP API and tokens, and the thin client's bridge."""
