#!/bin/sh
# Container entrypoint: run kvserver in the foreground (logs to stdout) with the
# given config file and any extra flags. exec so SIGTERM from `docker stop`
# reaches kvserver, which then finishes in-flight requests and checkpoints.
set -e
exec kvserver "$@"
