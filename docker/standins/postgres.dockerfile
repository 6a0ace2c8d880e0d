# Stand-in for the postgres:16 image (Docker Hub is unreachable here): Debian's PostgreSQL
# with the same POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB variables and data folder.
# Used only by docker/check-full-profile.sh.
FROM python:3.11-slim
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql && rm -rf /var/lib/apt/lists/*
COPY postgres-start.sh /pg-start.sh
RUN chmod 755 /pg-start.sh && ln -s /usr/lib/postgresql/*/bin/pg_isready /usr/local/bin/pg_isready || true
CMD ["/pg-start.sh"]
