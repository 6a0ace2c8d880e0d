"""gunicorn settings shared by `make run` and the container; read from the environment.

Tuning (issue 8, docs/performance.md): threaded workers keep HTTP connections alive, so a
client posting many images does not pay a TCP handshake each time, and a request waiting
on the database (a PostgreSQL commit, SQLite's write lock) leaves the CPU to another
thread of the same worker instead of idling it.
"""

import gc
import os

bind = os.environ.get("DIGITS_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("DIGITS_WORKERS") or os.cpu_count() or 2)
worker_class = os.environ.get("DIGITS_WORKER_CLASS", "gthread")
threads = int(os.environ.get("DIGITS_THREADS", "2"))
timeout = int(os.environ.get("DIGITS_WORKER_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = int(os.environ.get("DIGITS_KEEPALIVE", "5"))
max_requests = int(os.environ.get("DIGITS_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = None  # the app logs one structured line a request itself
errorlog = "-"
loglevel = os.environ.get("DIGITS_LOG_LEVEL", "info").lower()
# Request-line and header limits: small, like the service's inputs.
limit_request_line = 4094
limit_request_fields = 100
# gunicorn 25+ opens a control socket at one fixed path per user ($HOME/.gunicorn): several
# instances on one host (tests, a bench beside `make run`) would share it. Nothing here uses
# gunicornc.
control_socket_disable = True


def post_worker_init(worker):
    # Load the live and candidate models before taking requests, so no client waits for it.
    from predicciones.serving import warm_up

    warm_up()
    # Everything loaded so far (Django, numpy, scikit-learn, the models) lives as long as the
    # worker: move it out of the garbage collector's generations so collections during
    # requests only walk what requests allocate.
    gc.freeze()
