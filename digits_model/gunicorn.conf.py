"""gunicorn settings shared by `make run` and the container; read from the environment."""

import os

bind = os.environ.get("DIGITS_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("DIGITS_WORKERS") or os.cpu_count() or 2)
worker_class = "sync"
timeout = int(os.environ.get("DIGITS_WORKER_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 2
max_requests = int(os.environ.get("DIGITS_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = None  # the app logs one structured line a request itself
errorlog = "-"
loglevel = os.environ.get("DIGITS_LOG_LEVEL", "info").lower()
# Request-line and header limits: small, like the service's inputs.
limit_request_line = 4094
limit_request_fields = 100
