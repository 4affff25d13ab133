#!/usr/bin/env bash
# Bring up the browser the dashboard's tests drive, idempotently.
#
# - If `chromium` is on PATH, touch nothing.
# - Else, on Debian as root: install Debian's chromium with apt-get (never a browser
#   downloaded any other way: Playwright drives this one through its executable_path).
# - Else stop with one sentence saying what to install.
set -euo pipefail

say() { printf 'setup-browser: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi

[ "$(id -u)" = 0 ] || die "chromium is missing and this is not root: install your distribution's chromium (Debian: apt-get install chromium), then run again."
grep -q '^ID=debian' /etc/os-release 2>/dev/null \
  || die "chromium is missing and this is not Debian: install a chromium that puts \`chromium\` on PATH, then run again."

say "installing chromium from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt-get install -y -qq --no-install-recommends chromium >"$log" 2>&1 \
  || { cat "$log" >&2; die "apt-get could not install chromium: check the package sources, then run again."; }
command -v chromium >/dev/null 2>&1 || die "apt-get installed chromium but \`chromium\` is not on PATH."
say "installed $(chromium --version 2>/dev/null || echo chromium)"
