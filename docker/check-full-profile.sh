#!/usr/bin/env bash
# check-full-profile.sh -- bring up `docker compose --env-file compose.full.env up` (profile
# "full": web on PostgreSQL + S3, bucket init, scheduled jobs) with local stand-ins for the
# postgres and minio images (Docker Hub is unreachable here), check that it serves and that
# every piece did its job, then tear it all down.
#
# Usage: docker/check-full-profile.sh [PORT]     (run from the repository root; default 8081)
# Needs ../shared/tools/docker/ (dockerd helpers, the stand-in python:3.11-slim) and
# docker-compose. The last line is "full profile: ok" or "full profile: FAILED (...)".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${DOCKER_TOOLS_DIR:-$ROOT/../shared/tools/docker}
PORT=${1:-8081}
PROJECT=digitsfull$$
WORK=$(mktemp -d /tmp/check-full.XXXXXX)
# shellcheck source=/dev/null
. "$TOOLS/lib.sh"

RESULT="full profile: FAILED (interrupted)"
fail() { RESULT="full profile: FAILED ($1)"; exit 1; }

cd "$ROOT"
# Publish web on PORT instead of 80 (an override can only add ports, so rewrite the mapping).
sed "s/\"80:8000\"/\"$PORT:8000\"/" docker-compose.yml >"$WORK/compose.yml"
COMPOSE=(env DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0 docker-compose -p "$PROJECT"
         --project-directory "$ROOT" -f "$WORK/compose.yml" -f docker/standins/override.yml
         --env-file compose.full.env)

teardown() {
  local rc=$?
  set +e
  if [ $rc -ne 0 ]; then
    "${COMPOSE[@]}" logs --no-color --tail 40 >"$WORK/logs.txt" 2>&1
    log "logs in $WORK/logs.txt"
  fi
  timeout 180 "${COMPOSE[@]}" down -v --rmi local --remove-orphans >>"$WORK/compose.log" 2>&1
  docker_daemon_down
  echo "$RESULT"
  exit $rc
}

exec 9>/tmp/docker-tools.lock
flock -w 900 9 || { echo "full profile: FAILED (docker tools lock busy)"; exit 3; }
command -v docker-compose >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null 2>&1
docker_daemon_up || { echo "full profile: FAILED (no dockerd)"; exit 3; }
trap teardown EXIT
"$TOOLS/make-base.sh" 2>"$WORK/make-base.log" || fail "base image; $WORK/make-base.log"

log "building (log $WORK/compose.log)"
timeout 1200 "${COMPOSE[@]}" build >"$WORK/compose.log" 2>&1 || fail "build; $WORK/compose.log"
timeout 300 "${COMPOSE[@]}" up -d >>"$WORK/compose.log" 2>&1 || fail "up; $WORK/compose.log"

code=""
for _ in $(seq 90); do
  code=$(curl -s -o "$WORK/health.json" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/health/")
  [ "$code" = 200 ] && break
  sleep 2
done
[ "$code" = 200 ] || fail "GET /health/ answered ${code:-nothing}"
log "health: $(cat "$WORK/health.json")"
grep -q '"artifact_store":"ok"' "$WORK/health.json" || fail "health does not check the bucket"

# A prediction through the published port, made with the image's own Python and Pillow.
"${COMPOSE[@]}" exec -T web python -c "
import io, sys
from PIL import Image, ImageDraw
img = Image.new('L', (200, 200), 240)
draw = ImageDraw.Draw(img)
draw.line([(55, 35), (145, 35)], fill=20, width=14)
draw.line([(145, 35), (90, 170)], fill=20, width=14)
buffer = io.BytesIO(); img.save(buffer, format='PNG'); sys.stdout.buffer.write(buffer.getvalue())
" >"$WORK/seven.png"
answer=$(curl -s -F "image=@$WORK/seven.png" -F model=clf.pickle "http://127.0.0.1:$PORT/predict/")
log "predict: ${answer:0:160}"
echo "$answer" | grep -q '"status_code":200' || fail "POST /predict/ did not answer 200"

# Every piece did its job: the database is PostgreSQL, the model is in the bucket, the
# bucket init exited 0, the scheduler ran a job.
facts=$("${COMPOSE[@]}" exec -T web python -c "
import os, django
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'digits_model.settings')
django.setup()
import boto3
from django.db import connection
from predicciones.models import Prediction
keys = [o['Key'] for o in boto3.client('s3').list_objects_v2(Bucket=os.environ['DIGITS_S3_BUCKET']).get('Contents', [])]
print(connection.vendor, Prediction.objects.count(), any(k.endswith('model.pickle') for k in keys))
")
log "database, logged predictions, model in bucket: $facts"
[ "$(echo "$facts" | tr -d '\r')" = "postgresql 1 True" ] || fail "unexpected state: $facts"
init_state=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$("${COMPOSE[@]}" ps -q minio-init)")
[ "$init_state" = "exited 0" ] || fail "minio-init: $init_state"
for _ in $(seq 30); do
  "${COMPOSE[@]}" logs --no-color jobs 2>&1 | grep -q '"event": "job finished", "job": "models --json", "exit_code": 0' && break
  sleep 2
done
"${COMPOSE[@]}" logs --no-color jobs 2>&1 | grep -q '"exit_code": 0' || fail "the jobs service ran no job"
# Hardening: the web container's filesystem is read-only and it holds no capability; MinIO
# refuses to start with empty credentials instead of falling back to its defaults.
web_id=$("${COMPOSE[@]}" ps -q web)
[ "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}}' "$web_id")" = "true [ALL]" ] \
  || fail "web is not read-only without capabilities: $(docker inspect -f '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}}' "$web_id")"
"${COMPOSE[@]}" exec -T web sh -c 'touch /app/x 2>/dev/null' && fail "web could write outside /data and /tmp"
empty=$("${COMPOSE[@]}" run --rm --no-deps -e MINIO_ROOT_PASSWORD= minio 2>&1)
echo "$empty" | grep -q "refusing to start: empty or unset: MINIO_ROOT_PASSWORD" \
  || fail "minio started with an empty password: ${empty:0:200}"
RESULT="full profile: ok"
