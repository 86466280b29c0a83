#!/bin/sh
# Container entrypoint: run kvserver in the foreground (logs to stdout) with the
# given config file and any extra flags. exec so SIGTERM from `docker stop`
# reaches kvserver, which then finishes in-flight requests and checkpoints.
#
# KVSERVER_PASSWORD (or KVSERVER_PASSWORD_FILE, a file holding it, e.g. a
# Docker secret) sets requirepass. The password goes to kvserver as a config
# line on standard input ("kvserver FILE - --flags", as redis-server reads
# "-"), not as a flag, so it never shows in the process list.
set -e
if [ -n "${KVSERVER_PASSWORD_FILE:-}" ]; then
    KVSERVER_PASSWORD=$(cat "$KVSERVER_PASSWORD_FILE")
fi
if [ -z "${KVSERVER_PASSWORD:-}" ]; then
    exec kvserver "$@"
fi
case "$KVSERVER_PASSWORD" in
    *"
"*) echo "kvserver-entrypoint: KVSERVER_PASSWORD must be a single line" >&2; exit 2 ;;
esac
# Inside "..." the config parser gives meaning only to \ and ": escape those.
escaped=$(printf '%s' "$KVSERVER_PASSWORD" | sed 's/[\\"]/\\&/g')
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    conf=$1
    shift
    exec kvserver "$conf" - "$@" <<EOF_CONF
requirepass "$escaped"
EOF_CONF
fi
exec kvserver - "$@" <<EOF_CONF
requirepass "$escaped"
EOF_CONF
