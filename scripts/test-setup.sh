#!/usr/bin/env bash
# Install the servers the test suite runs for real (Debian packages), only those the machine lacks.
#   prometheus, prometheus-alertmanager  -> tests/alerts/test_e2e_prometheus.py
#   chromium, chromium-driver            -> browser tests
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
for bin in "${!WANT[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1; then
    echo "test-setup: $bin still missing after installing ${WANT[$bin]}" >&2
    status=1
  fi
done
exit $status
