#!/usr/bin/env bash
# Install Debian's redis-server and redis-tools (redis-cli, redis-benchmark) if they
# are missing. The interop/differential tests and the benchmarks use them; without
# them those tests skip with a reason. Needs root (or sudo) for apt-get.
set -euo pipefail
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null \
   && command -v redis-benchmark >/dev/null; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "note: redis-server/redis-tools missing and not root: the Redis interop tests will skip" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
# Debian's package may start a system redis on 6379; we never use it, and it would
# take the port `make run` wants. Stop it by its pid file if it is running.
if [ -f /run/redis/redis-server.pid ]; then
  $SUDO kill "$(cat /run/redis/redis-server.pid)" 2>/dev/null || true
fi
