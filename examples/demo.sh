#!/usr/bin/env bash
# The main job: principals, artifacts submitted as code, invoked in sandboxes, paid for;
# one artifact calling another through the kernel, with the audit log and the graph;
# escrows settled by test suites (an honest and a cheating delivery); a covert transfer
# found by the black-market auditor; then an economy: agents with configs on a world clock
# (a firm whose worker buys its config, a swarm, artifacts built on others', the Mint's
# tasks, a policy that asks a language model). Everything goes through a daemon (`kernel serve`) it
# starts and stops: the `kernel` command talks to it over the home's Unix socket, and an
# agent uses its HTTP API with a token.
# State lives in ./.kernel (or $KERNEL_HOME); running it again reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
k() { echo "\$ kernel $*" >&2; kernel "$@"; }
home="${KERNEL_HOME:-.kernel}"
daemon=""
stop_daemon() { if [ -n "$daemon" ]; then kill -TERM "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi; }
trap stop_daemon EXIT
if [ ! -S "$home/daemon.sock" ]; then
  echo "\$ KERNEL_REASON_MODEL=echo kernel serve --listen 127.0.0.1:0 &" >&2
  KERNEL_REASON_MODEL="${KERNEL_REASON_MODEL:-echo}" kernel serve --listen 127.0.0.1:0 --json > "${TMPDIR:-/tmp}/kernel-demo-serve.json" &
  daemon=$!
  for _ in $(seq 600); do [ -s "${TMPDIR:-/tmp}/kernel-demo-serve.json" ] && break; kill -0 "$daemon" || exit 1; sleep 0.1; done
  url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "${TMPDIR:-/tmp}/kernel-demo-serve.json")
  echo "# the daemon serves $home on $url (API docs $url/docs); its warm pool holds fresh containers"
else
  url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$home/daemon.json")
fi
id_of() { kernel submit "$1" --as "$2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["artifact"]["id"])'; }

kernel balance alice >/dev/null 2>&1 || k principal create alice --grant 500
kernel balance bob >/dev/null 2>&1 || k principal create bob --grant 20
kernel balance carol >/dev/null 2>&1 || k principal create carol --grant 50
kernel balance mallory >/dev/null 2>&1 || k principal create mallory
k submit examples/wordcount --as alice
wc=$(id_of examples/wordcount alice)
echo
echo "# bob invokes alice's wordcount (price 3 scrip): a fresh, locked-down container runs it"
k invoke "${wc:0:12}" --as bob --input '{"text": "the quick brown fox jumps over the lazy dog the end"}'
echo
echo "# an agent elsewhere: carol's API token, the Python client, the same invocation over HTTP"
token=$(kernel token create --as carol --label demo --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
echo "\$ kernel token create --as carol --label demo  ->  kt_..." >&2
python3 - "$url" "$token" "$wc" <<'PY'
import sys
from kernel.client import Client

url, token, wc = sys.argv[1:]
with Client(url, token) as carol:
    run = carol.invoke(wc, value={"text": "to be or not to be"})
    print(f"client.invoke -> {run['status']} {run['output']} (cost {run['cost']}, state {run['state']});"
          f" carol's balance {carol.balance('carol')}")
PY
echo
echo "# bob's wordstats invokes wordcount once per paragraph, through the kernel proxy"
pkg=$(mktemp -d)
trap 'rm -rf "$pkg"; stop_daemon' EXIT
cp examples/wordstats/* "$pkg/"
echo "$wc" > "$pkg/WORDCOUNT_ID"
sed -i "s/^price = 2$/price = 2\ndepends = [\"$wc\"]/" "$pkg/pyproject.toml"
k submit "$pkg" --as bob
ws=$(id_of "$pkg" bob)
run=$(kernel invoke "$ws" --as carol --json --input '{"text": "one two three\n\nfour five\n\nsix"}' \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["id"]); print(json.dumps(r["output"]), file=sys.stderr)')
echo
k audit events --run "$run"
echo
k graph
echo
echo "# escrow: alice locks 40 scrip against her private test suite for a sort function"
suite=$(id_of examples/sorter-tests alice)
escrow_id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
honest=$(kernel escrow open --as alice --amount 40 --tests "${suite:0:12}" --deadline 1d --json | escrow_id)
echo "\$ kernel escrow open --as alice --amount 40 --tests ${suite:0:12} --deadline 1d  ->  escrow $honest"
k escrow deliver "$honest" --as bob --artifact "$(id_of examples/sorter bob)"
k escrow judge "$honest"
echo
echo "# mallory delivers a wrong sort that rewrites pytest, poisons sorted() and returns an always-equal list;"
echo "# it runs in a container of its own, so every trick stays in its own process"
cheat=$(kernel escrow open --as alice --amount 40 --tests "${suite:0:12}" --json | escrow_id)
echo "\$ kernel escrow open --as alice --amount 40 --tests ${suite:0:12}  ->  escrow $cheat"
k escrow deliver "$cheat" --as mallory --artifact "$(id_of examples/sorter-cheat mallory)"
k escrow judge "$cheat" || echo "(judge exits 1: the verdict is a fail and alice is refunded)"
echo
echo "# the black market: bob hands his sorter to mallory outside the ledger, through a hidden"
echo "# public data artifact; mallory resells it to alice through an escrow"
output_of() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["output"], end="")'; }
sorter=$(id_of examples/sorter bob)
drop=$(id_of examples/drop bob)
dropped=$(kernel invoke "$drop" --as bob --json --input "{\"artifact\": \"$sorter\", \"name\": \".cache\"}" | output_of)
echo "\$ kernel invoke ${drop:0:12} --as bob --input '{\"artifact\": \"${sorter:0:12}...\", \"name\": \".cache\"}'  ->  ${dropped:0:12}"
fetch=$(id_of examples/fetch mallory)
copy=$(mktemp -d)
trap 'rm -rf "$pkg" "$copy"; stop_daemon' EXIT
kernel invoke "$fetch" --as mallory --json --input "{\"artifact\": \"$dropped\", \"path\": \"sorter.py\"}" \
  | output_of > "$copy/sorter.py"
echo "\$ kernel invoke ${fetch:0:12} --as mallory --input '{\"artifact\": \"${dropped:0:12}...\", \"path\": \"sorter.py\"}'"
printf '[project]\nname = "quicksorter"\nversion = "1.0.0"\n\n[tool.kernel]\nkind = "code"\nentrypoint = "sorter:sort"\n' \
  > "$copy/pyproject.toml"
resold=$(kernel escrow open --as alice --amount 40 --tests "${suite:0:12}" --json | escrow_id)
echo "\$ kernel escrow open --as alice --amount 40 --tests ${suite:0:12}  ->  escrow $resold"
k escrow deliver "$resold" --as mallory --artifact "$(id_of "$copy" mallory)"
k escrow judge "$resold"
echo
echo "# the auditor: fingerprints of everything the kernel saw, flows between principals, alerts"
k audit scan
echo
k audit flows
echo
k audit alerts
unpaid=$(kernel audit alerts --kind unpaid_flow --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
echo
k audit alerts --explain "$unpaid"
echo
for p in alice bob carol mallory; do k balance "$p"; done
k ledger check
echo
echo "# the economy: the shipped policies as configs (one policy package, a role per config), the"
echo "# Mint's 31 tasks with hidden suites; a manager owns its workers' configs (pool firm), builders"
echo "# share pool guild; every step is a run in a fresh sandbox, as the agent, paid and audited"
if [ "$(kernel agents --json)" = "[]" ]; then k world example --agents 10 --seed 2; fi
k world run --ticks 10
k agents
k world steps --limit 10
echo
echo "# who built on whom, who bought their config, who won escrows"
k world story
k pool show firm
k ledger check
echo
echo "# telemetry: a snapshot per tick (velocity, Gini, efficiency, depth, control, specialization, alerts)"
k telemetry --window 10
k telemetry firms
kernel telemetry export --format csv | head -3
echo "# the dashboard: the daemon serves it at its address; this prints it with an operator token"
kernel dashboard | sed 's/#token=.*/#token=kt_.../'
