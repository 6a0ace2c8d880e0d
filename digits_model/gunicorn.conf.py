"""gunicorn settings shared by `make run`, the tests' servers and the container.

Read from the environment (README "Configuration"). Also prepares prometheus_client's
multiprocess mode: every worker writes its metrics to files in PROMETHEUS_MULTIPROC_DIR,
which must exist, be empty when the server starts, and have dead workers marked.

Tuning (docs/performance.md): threaded workers keep HTTP connections alive, so a
client posting many images does not pay a TCP handshake each time, and a request waiting
on the database (a PostgreSQL commit, SQLite's write lock) leaves the CPU to another
thread of the same worker instead of idling it. Each worker loads its models before it
takes a request.
"""

import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# --- Prometheus multiprocess mode -------------------------------------------------------------
# Set here, in the master, before any worker imports prometheus_client (and before the settings
# below read it). An operator may point it somewhere (the container uses /tmp/digits-metrics);
# otherwise a private temporary folder is made and removed on exit.
# (This file is read again on SIGHUP: the marker keeps "ours" true for the re-read.)
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip():
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="digits-metrics-")
    os.environ["DIGITS_METRICS_DIR_IS_TEMPORARY"] = "1"
METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
_OWN_METRICS_DIR = os.environ.get("DIGITS_METRICS_DIR_IS_TEMPORARY") == "1"

# --- Every setting checked once, before a worker is forked ----------------------------------------
# A bad value refuses the start with the one line that names it (exit 2), instead of every worker
# failing to boot with a traceback.
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_model.settings")
try:
    from django.conf import settings as django_settings

    django_settings.INSTALLED_APPS  # noqa: B018 - loads and checks the settings
    from digits_model.settings import env_choice, env_int, env_str

    bind = env_str("DIGITS_BIND") or f"127.0.0.1:{env_int('PORT', 8000, low=1, high=65535)}"
    workers = env_int("DIGITS_WORKERS", os.cpu_count() or 2, low=1)
    worker_class = env_choice("DIGITS_WORKER_CLASS", "gthread", ("gthread", "sync"))
    # Threads per worker: a request waiting on the database (or a slow client that gunicorn
    # is still reading from) leaves the CPU to another. gunicorn bounds neither how long a
    # request's headers nor its body may take to arrive: a buffering front (the container's
    # nginx, docs/operations.md "Slow clients") does; without one, N slow clients hold
    # N of the workers x threads.
    threads = env_int("DIGITS_THREADS", 8, low=1)
    timeout = env_int("DIGITS_WORKER_TIMEOUT", 30, low=1)
    keepalive = env_int("DIGITS_KEEPALIVE", 5, low=0, high=300)
    max_requests = env_int("DIGITS_MAX_REQUESTS", 0, low=0)
except ImproperlyConfigured as exc:
    sys.stderr.write(f"gunicorn: error: {exc}\n")
    raise SystemExit(2) from None
graceful_timeout = 20
max_requests_jitter = max_requests // 10
accesslog = None  # the app logs one structured line a request itself
errorlog = "-"
loglevel = django_settings.DIGITS_LOG_LEVEL.lower()
# Request-line and header limits: small, like the service's inputs.
limit_request_line = 4094
limit_request_fields = 100
# No gunicornc control socket: its default path ($HOME/.gunicorn) is shared by every server of
# a user (tests start several) and is not writable in the container; signals do the job.
control_socket_disable = True
# Worker heartbeat files in memory when there is a /dev/shm (containers: no disk stalls).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

if django_settings.DIGITS_LOG_JSON:
    # gunicorn's own lines (start, worker boot/exit, timeouts) as JSON too, like the app's.
    # A complete configuration: gunicorn merges a partial one over its defaults, which would
    # duplicate lines through the root logger and turn its access log on.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {
                "level": loglevel.upper(),
                "handlers": ["error_console"],
                "propagate": False,
                "qualname": "gunicorn.error",
            },
            "gunicorn.access": {
                "level": "CRITICAL",  # the app writes its own access line
                "handlers": [],
                "propagate": False,
                "qualname": "gunicorn.access",
            },
        },
        "handlers": {
            name: {"class": "logging.StreamHandler", "formatter": "json", "stream": stream}
            for name, stream in [
                ("console", "ext://sys.stdout"),
                ("error_console", "ext://sys.stderr"),
            ]
        },
        "formatters": {"json": {"()": "predicciones.logfmt.JsonFormatter"}},
    }


def on_starting(server):
    """Start from zero: files left by a previous run would be added to this run's counts."""
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in METRICS_DIR.glob("*.db"):
        stale.unlink()


def post_worker_init(worker):
    # Load the live and candidate models before taking requests, so no client waits for it.
    from predicciones.serving import warm_up

    warm_up()
    # Everything loaded so far (Django, numpy, scikit-learn, the models) lives as long as the
    # worker: move it out of the garbage collector's generations so collections during
    # requests only walk what requests allocate.
    gc.freeze()


def child_exit(server, worker):
    """A worker died or was replaced: its live gauges must stop being reported."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
