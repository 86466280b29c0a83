#!/bin/sh
# Healthy when kvserver answers PING with PONG (not -LOADING, -NOAUTH, -DENIED
# or an error), asked the way a client asks: on the container's own network
# address (not loopback, which protected mode and bind treat differently),
# with the password the entrypoint set. KVSERVER_HOST / KVSERVER_PORT
# override where it asks.
set -e
if [ -n "${KVSERVER_PASSWORD_FILE:-}" ]; then
    KVSERVER_PASSWORD=$(cat "$KVSERVER_PASSWORD_FILE")
fi
host=${KVSERVER_HOST:-}
if [ -z "$host" ]; then
    # The container's IPv4 address on its network (what `hostname -i`
    # resolves); loopback only if it has none.
    for addr in $(hostname -i 2>/dev/null); do
        case "$addr" in *.*) host=$addr; break ;; esac
    done
    host=${host:-127.0.0.1}
fi
reply=$(KVCLI_AUTH="${KVSERVER_PASSWORD:-}" kvcli --no-auth-warning -h "$host" \
        -p "${KVSERVER_PORT:-6379}" ping)
[ "$reply" = "PONG" ]
