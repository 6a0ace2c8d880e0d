# Stand-in for the MinIO image: moto's S3 server on port 9000 (any credentials accepted).
# Used only by docker/check-full-profile.sh.
FROM python:3.11-slim
RUN pip install --no-cache-dir "moto[server]==5.2.5"
CMD ["moto_server", "-H", "0.0.0.0", "-p", "9000"]
