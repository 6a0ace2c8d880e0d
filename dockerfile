# The digit prediction service: gunicorn on port 8000, state in the /data volume.
#   docker build --tag corona-model:v0 .
#   docker run -p 80:8000 -v digits-data:/data corona-model:v0
# Commands (docker/entrypoint.sh): serve (default), jobs, init-bucket, manage <args>.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# nginx (Debian's smallest build) is the buffering front: it holds slow clients so they never
# hold gunicorn's request threads (docs/operations.md, "Slow clients").
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, in their own layer: rebuilt only when requirements.txt changes. Every
# requirement ships as a wheel, so no compiler is installed, and none is left behind.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# An unprivileged user; it owns only /data (database, artifacts, secret key).
RUN groupadd --system --gid 10001 digits \
    && useradd --system --uid 10001 --gid digits --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin digits \
    && mkdir -p /data \
    && chown digits:digits /data

COPY docker/ /app/docker/
COPY digits_model/ /app/digits_model/
RUN chmod 0755 /app/docker/entrypoint.sh
# Where manage.py lives: `docker compose exec web python manage.py models` works as is.
WORKDIR /app/digits_model

ENV DIGITS_VAR_DIR=/data \
    DIGITS_BIND=0.0.0.0:8000 \
    DIGITS_FRONT=nginx \
    DIGITS_WORKERS=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/digits-metrics

USER digits
VOLUME ["/data"]
EXPOSE 8000

# Ready means 200 from /health/ (model loaded, database reachable); no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; port = os.environ.get('DIGITS_BIND', ':8000').rsplit(':', 1)[1]; sys.exit(u.urlopen(f'http://127.0.0.1:{port}/health/', timeout=4).status != 200)"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["serve"]
