#!/usr/bin/env bash
# Bring up a Docker engine for the kernel, idempotently.
#
# - If a Docker daemon already answers, touch nothing.
# - Else, on Debian as root: install Debian's docker.io and runsc (gVisor), register
#   runsc as a runtime with --network=none --host-uds=open, and start dockerd in the
#   background with --bridge=none (sandboxes never need a network).
# - Else stop with one sentence saying what to install.
set -euo pipefail

STATE_DIR=${KERNEL_DOCKERD_STATE:-/var/lib/kernel-dockerd}
LOG=$STATE_DIR/dockerd.log
PIDFILE=$STATE_DIR/dockerd.pid

say() { printf 'setup-docker: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

daemon_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && daemon_answers; then
  exit 0
fi

[ "$(id -u)" = 0 ] || die "no Docker daemon answers and this is not root: start Docker (or run as root so this script can install Debian's docker.io)."
grep -q '^ID=debian' /etc/os-release 2>/dev/null \
  || die "no Docker daemon answers and this is not Debian: install and start a Docker engine (docker.io or docker-ce), then run again."

need=()
[ -x /usr/sbin/dockerd ] || [ -x /usr/bin/dockerd ] || need+=(docker.io)
command -v runsc >/dev/null 2>&1 || need+=(runsc)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get could not install ${need[*]}: check the package sources, then run again."
fi
DOCKERD=$(command -v dockerd || echo /usr/sbin/dockerd)
RUNSC=$(command -v runsc)

mkdir -p /etc/docker "$STATE_DIR"
# Register gVisor. Written only when absent or different, so a second run changes nothing.
want=$(cat <<JSON
{
  "runtimes": {
    "runsc": {"path": "$RUNSC", "runtimeArgs": ["--network=none", "--host-uds=open"]}
  }
}
JSON
)
if [ ! -f /etc/docker/daemon.json ] || [ "$(cat /etc/docker/daemon.json)" != "$want" ]; then
  if [ -f /etc/docker/daemon.json ] && ! grep -q '"runsc"' /etc/docker/daemon.json; then
    cp /etc/docker/daemon.json "/etc/docker/daemon.json.before-kernel"
  fi
  printf '%s\n' "$want" > /etc/docker/daemon.json
fi

# A dockerd we started earlier may still be coming up.
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  say "dockerd (pid $(cat "$PIDFILE")) is starting; waiting for it"
else
  say "starting dockerd (log: $LOG)"
  # setsid: the daemon must outlive this script and the make that ran it.
  setsid "$DOCKERD" --bridge=none --iptables=false --ip-masq=false \
    >"$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
fi

for _ in $(seq 1 60); do
  if daemon_answers; then
    say "Docker $(docker version --format '{{.Server.Version}}') is up"
    exit 0
  fi
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
  sleep 1
done
tail -n 5 "$LOG" >&2 || true
die "dockerd did not come up: read $LOG, fix what it says, then run again."
