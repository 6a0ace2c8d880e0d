#!/bin/sh
# require-env.sh VAR... -- COMMAND [ARGS...]
# Start COMMAND only when every VAR is set and not empty; otherwise say which is missing on one
# line and exit 1. The compose file runs MinIO through it: MinIO falls back to its well-known
# default credentials when its root user and password are empty (the "full" profile started
# without its env file), and a store anyone can write to is code execution (docs/operations.md,
# "Threat model").
set -eu
missing=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    case "$1" in
        "" | [0-9]* | *[!A-Za-z0-9_]*) echo "require-env.sh: not a variable name: $1" >&2; exit 2 ;;
    esac
    eval "value=\${$1:-}"
    [ -n "$value" ] || missing="$missing $1"
    shift
done
[ $# -gt 0 ] && shift
if [ -n "$missing" ]; then
    echo "refusing to start: empty or unset:$missing (docker compose --env-file compose.full.env)" >&2
    exit 1
fi
exec "$@"
