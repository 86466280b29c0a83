#!/bin/sh
# Healthy when kvserver answers PING with PONG (and not -LOADING or an error).
# KVSERVER_PORT / KVSERVER_HOST override where it is asked.
set -e
reply=$(kvcli -h "${KVSERVER_HOST:-127.0.0.1}" -p "${KVSERVER_PORT:-6379}" ping)
[ "$reply" = "PONG" ]
