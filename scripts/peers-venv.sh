#!/usr/bin/env bash
# Installs the peer sandboxes that benchmarks/peers.py compares the kernel with (epicbox and
# llm-sandbox) into a virtualenv of their own, .venv-peers, so their pins never touch the
# project's .venv. Idempotent: a stamp holding the pin list makes a second run install nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-peers
STAMP="$VENV/.installed"

# Every pin, and why (both peers share one interpreter, so their pins must agree):
PINS=(
  "epicbox==1.1.0"              # newest on PyPI (1.1.1 exists only as a source tag)
  "urllib3==1.26.20"            # epicbox 1.1.0 passes Retry(method_whitelist=...), removed in urllib3 2.0
  "requests==2.34.2"            # epicbox wants requests~=2.14 (<3); newest, still accepts urllib3 1.26
  "python-dateutil==2.9.0.post0" # epicbox wants python-dateutil~=2.4 (<3): newest 2.x
  "structlog==26.1.0"           # epicbox logs through structlog (>=15.3); newest
  "llm-sandbox==0.3.46"         # newest on PyPI; its docker backend is the one measured
  "docker==7.2.0"               # llm-sandbox[docker] wants docker>=7.1.0, epicbox docker>=2; same as .venv
  "pydantic==2.14.4"            # llm-sandbox wants pydantic>=2.11.5; newest
)
WANT="$(printf '%s\n' "${PINS[@]}")"

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  echo "peers venv up to date ($VENV)"
  exit 0
fi

# The real interpreter behind $PYTHON (python3 by default), never a version-manager shim.
PY="$("${PYTHON:-python3}" -c 'import os, sys; print(os.path.realpath(sys.executable))')"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
  printf '*\n' >"$VENV/.gitignore"  # keep the venv out of git status
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"
"$VENV/bin/pip" check
printf '%s\n' "$WANT" >"$STAMP"
echo "peers venv ready ($VENV): $("$VENV/bin/python" --version)"
