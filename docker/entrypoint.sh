#!/bin/sh
# The container's entry point.
#   serve (default)  make a SECRET_KEY file in the data volume if no SECRET_KEY is given,
#                    migrate, register the shipped model, start the buffering front (nginx on
#                    DIGITS_BIND, gunicorn behind it on a unix socket) unless DIGITS_FRONT=none,
#                    then exec gunicorn
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

# The buffering front (docs/operations.md, "Slow clients"): nginx takes DIGITS_BIND and holds
# each request until it has fully arrived; gunicorn listens on a unix socket behind it.
start_front() {
    run_dir="${DIGITS_FRONT_DIR:-/tmp/digits-front}"
    mkdir -p "$run_dir"
    socket="$run_dir/gunicorn.sock"
    rm -f "$socket"
    # nginx refuses a body above what the app accepts (the upload plus the form's overhead),
    # in the app's words, so a refused upload is never buffered first.
    limits=$(python -c 'import os
limit = int(os.environ.get("DIGITS_MAX_UPLOAD_BYTES") or 10485760)
print(limit + 65536, f"The upload is too large: the limit is {limit / 1048576:.3g} MiB.")')
    max_body=${limits%% *}
    too_large=${limits#* }
    sed -e "s|@RUN_DIR@|$run_dir|g" \
        -e "s|@LISTEN@|${DIGITS_BIND:-0.0.0.0:8000}|" \
        -e "s|@UPSTREAM@|unix:$socket|" \
        -e "s|@MAX_BODY@|$max_body|" \
        -e "s|The upload is too large.|$too_large|" \
        "$HERE/nginx.conf" >"$run_dir/nginx.conf"
    nginx -e stderr -c "$run_dir/nginx.conf" &
    log "front: nginx on ${DIGITS_BIND:-0.0.0.0:8000}, gunicorn on unix:$socket"
    export DIGITS_BIND="unix:$socket"
    # gunicorn now sees nginx's address; the client's comes in X-Forwarded-For.
    export DIGITS_TRUSTED_PROXIES="${DIGITS_TRUSTED_PROXIES:-1}"
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
        case "${DIGITS_FRONT:-none}" in
            nginx) start_front ;;
            none) ;;
            *) log "DIGITS_FRONT=${DIGITS_FRONT} is not valid: expected nginx or none"; exit 2 ;;
        esac
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
