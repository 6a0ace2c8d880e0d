#!/bin/sh
# The container's entry point.
#   serve (default)  make a SECRET_KEY file in the data volume if no SECRET_KEY is given,
#                    migrate, register the shipped model, then exec gunicorn
#   jobs             run management commands on a schedule (docker/scheduler.py)
#   init-bucket      create the S3 bucket DIGITS_S3_BUCKET if missing (docker/init_bucket.py)
#   manage ARGS...   python manage.py ARGS... (e.g. `docker compose run web manage models`)
#   anything else    exec'd as given
set -eu

# docker compose passes an empty string for variables the operator did not set: treat an empty
# variable as unset, so every setting falls back to its default (and boto3 never sees an
# empty AWS_ENDPOINT_URL).
for name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=$/\1/p'); do
    unset "$name"
done

export DIGITS_VAR_DIR="${DIGITS_VAR_DIR:-/data}"
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/digits-metrics}"
RETRIES="${DIGITS_STARTUP_RETRIES:-30}"
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE/../digits_model"

log() { echo "entrypoint: $*" >&2; }

# A dependency (PostgreSQL, MinIO) may still be starting: try again for about a minute.
retry() {
    attempt=1
    until "$@"; do
        if [ "$attempt" -ge "$RETRIES" ]; then
            log "giving up after $attempt attempts: $*"
            return 1
        fi
        log "attempt $attempt failed: $*; retrying in 2s"
        attempt=$((attempt + 1))
        sleep 2
    done
}

ensure_secret_key() {
    [ -n "${SECRET_KEY:-}" ] && return 0
    key_file="${DIGITS_SECRET_KEY_FILE:-$DIGITS_VAR_DIR/secret_key}"
    [ -s "$key_file" ] && return 0
    mkdir -p "$(dirname "$key_file")"
    tmp="$key_file.$$"
    (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(50))' >"$tmp")
    # -n: if another container made one meanwhile, keep theirs.
    mv -n "$tmp" "$key_file"
    rm -f "$tmp"
    log "made a new SECRET_KEY in $key_file"
}

command="${1:-serve}"
[ $# -gt 0 ] && shift
case "$command" in
    serve)
        ensure_secret_key
        if [ "${DIGITS_MIGRATE_ON_START:-1}" = 1 ]; then
            retry python manage.py migrate --noinput -v 0
            if [ "${DIGITS_CACHE:-file}" = database ]; then
                retry python manage.py createcachetable
            fi
        fi
        retry python manage.py bootstrap_model
        exec gunicorn digits_model.wsgi -c gunicorn.conf.py
        ;;
    jobs)
        ensure_secret_key
        exec python "$HERE/scheduler.py" "$@"
        ;;
    init-bucket)
        exec python "$HERE/init_bucket.py" "$@"
        ;;
    manage)
        ensure_secret_key
        exec python manage.py "$@"
        ;;
    *)
        exec "$command" "$@"
        ;;
esac
