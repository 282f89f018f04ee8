#!/usr/bin/env bash
# Install the servers the test suite runs for real (Debian packages), only those the machine lacks.
#   prometheus, prometheus-alertmanager  -> tests/alerts/test_e2e_prometheus.py
#   chromium, chromium-driver            -> browser tests
#   redis-server, postgresql (initdb)    -> tests/faults: private servers the tests kill and restart
#   docker-compose, systemd-analyze      -> tests/test_production.py checks deploy/compose.yaml and the systemd units
#   libpango (Pango for WeasyPrint)      -> tests/web/test_pdf.py renders real PDFs (the pdf extra)
# Idempotent: when every binary is already on PATH it only prints what it found and exits 0.
# Exits non-zero when an install fails. Services are never started by the packages (policy-rc.d denies it
# for the duration of the install): the tests start their own processes with temporary configs.
set -euo pipefail

# binary -> Debian package
declare -A WANT=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [chromium]=chromium
  [chromedriver]=chromium-driver
  [redis-server]=redis-server
  [docker-compose]=docker-compose
  [systemd-analyze]=systemd
)

missing=()
for bin in "${!WANT[@]}"; do
  if command -v "$bin" >/dev/null 2>&1; then
    echo "test-setup: $bin found at $(command -v "$bin")"
  else
    pkg=${WANT[$bin]}
    [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done

# PostgreSQL's server binaries are not on PATH: look for initdb where Debian puts them
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  echo "test-setup: initdb found at $(compgen -G "/usr/lib/postgresql/*/bin/initdb" | head -1)"
else
  missing+=(postgresql)
fi

# WeasyPrint loads Pango as a shared library (not a binary on PATH)
if ldconfig -p 2>/dev/null | grep -q "libpango-1.0.so.0" && ldconfig -p 2>/dev/null | grep -q "libpangoft2-1.0.so.0"; then
  echo "test-setup: Pango found"
else
  missing+=(libpango-1.0-0 libpangoft2-1.0-0)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "test-setup: nothing to install"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "test-setup: apt-get not available; install these yourself: ${missing[*]}" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "test-setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "test-setup: installing ${missing[*]}"
# why: on a container or CI runner the packages' maintainer scripts would start prometheus/alertmanager as
# system services on the default ports; forbid service starts while installing (standard Debian mechanism).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  echo "test-setup: first install attempt failed; refreshing package lists and retrying" >&2
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

status=0
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  echo "test-setup: initdb still missing after installing postgresql" >&2
  status=1
fi
for bin in "${!WANT[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1; then
    echo "test-setup: $bin still missing after installing ${WANT[$bin]}" >&2
    status=1
  fi
done
exit $status
