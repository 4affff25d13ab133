#!/usr/bin/env bash
# The main job: two principals, an artifact submitted as code, invoked, paid for.
# State lives in ./.kernel (or $KERNEL_HOME); running it again reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
k() { echo "\$ kernel $*" >&2; kernel "$@"; }

kernel balance alice >/dev/null 2>&1 || k principal create alice --grant 100
kernel balance bob >/dev/null 2>&1 || k principal create bob --grant 20
k submit examples/wordcount --as alice
id=$(kernel submit examples/wordcount --as alice --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["artifact"]["id"])')
echo
echo "# bob invokes alice's wordcount (price 3 scrip): a fresh, locked-down container runs it"
k invoke "${id:0:12}" --as bob --input '{"text": "the quick brown fox jumps over the lazy dog the end"}'
echo
k balance alice
k balance bob
k ledger check
echo
k runs --limit 3
