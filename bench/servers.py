"""The servers a bench round compares: the service as ``make run`` starts it (its log
prefilled, as after weeks of traffic) and the FastAPI peer, each in a var folder of its own."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.paths import BIN_DIR, PROJECT_DIR, REPO_DIR
from predicciones.tests.processes import ProcessGroup, free_port


@dataclass
class Server:
    """A server process group started for the bench (and only it is stopped)."""

    name: str
    label: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    var_dir: Path
    port: int = field(default_factory=free_port)
    image_path: Path | None = None
    logs_predictions: bool = False
    config: str = ""
    prefill: int = 0
    group: ProcessGroup | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/predict/"

    @property
    def process(self):
        return self.group.process

    def start(self) -> None:
        self.group = ProcessGroup(
            self.argv,
            log_path=self.var_dir / f"{self.name}.log",
            name=self.label,
            cwd=self.cwd,
            env={**self.env, "PORT": str(self.port)},
        )
        self.group.start(ready=lambda: _answers(self.url, self.image_path), timeout=60, poll=0.3)

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop(timeout=30)

    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.tree():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def worker_rss_mib(self) -> list[float]:
        out = []
        for proc in self.tree()[1:]:
            with contextlib.suppress(psutil.NoSuchProcess):
                out.append(proc.memory_info().rss / 2**20)
        return out


def _answers(url: str, image_path: Path) -> bool:
    result = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-F", f"image=@{image_path}", url],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() == "200"


def django_shell(env: dict[str, str], code: str, *, capture: bool = True) -> str:
    """Run ``code`` in ``manage.py shell`` with ``env``; its stdout's last line (or "")."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=capture,
        text=True,
        check=True,
    )
    return (result.stdout or "").strip().rpartition("\n")[2]


def service_server(
    var_root: Path, image_path: Path, name: str, label: str, *, prefill: int = 0, **env
) -> Server:
    """The service as ``make run`` starts it: migrate, bootstrap_model, gunicorn -c conf."""
    var_dir = var_root / name
    var_dir.mkdir(parents=True)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGITS_", "DJANGO_"))}
    base_env.pop("DATABASE_URL", None)
    full_env = {
        **base_env,
        "DIGITS_VAR_DIR": str(var_dir),
        "SECRET_KEY": "bench-only-not-secret",
        **env,
    }
    quiet = {**full_env, "DIGITS_LOG_LEVEL": "WARNING"}
    for args in (["migrate", "--noinput", "-v", "0"], ["bootstrap_model", "-v", "0"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=quiet, check=True)
    if prefill:
        django_shell(quiet, PREFILL_SCRIPT % prefill, capture=False)
    return Server(
        name=name,
        label=label,
        argv=[str(BIN_DIR / "gunicorn"), "digits_model.wsgi", "-c", "gunicorn.conf.py"],
        env=full_env,
        cwd=PROJECT_DIR,
        var_dir=var_dir,
        image_path=image_path,
        logs_predictions=True,
        config=service_config(full_env),
        prefill=prefill,
    )


def service_config(env: dict[str, str]) -> str:
    """gunicorn's and the database's settings as the server will see them."""
    script = (
        "import json, runpy; g = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({k: g[k] for k in ('workers', 'worker_class', 'threads', 'keepalive')}))"
    )
    conf = json.loads(
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    synchronous = django_shell(
        env, "from django.conf import settings; print(settings.DIGITS_SQLITE_SYNCHRONOUS)"
    )
    return (
        f"gunicorn {conf['worker_class']}, {conf['workers']} workers x {conf['threads']} "
        f"threads, keep-alive {conf['keepalive']} s; SQLite WAL, synchronous={synchronous}"
    )


#: Fills the prediction log with synthetic rows, in one transaction, through the same INSERT
#: the service uses (values prepared by the model's fields).
PREFILL_SCRIPT = """
import os, uuid
from datetime import timedelta
import numpy as np
from django.db import connection, transaction
from django.utils import timezone
from predicciones.models import ModelVersion, Prediction
from predicciones.services.predictions import LOG_ROW_FIELDS

version = ModelVersion.objects.order_by("pk").first()
fields = [Prediction._meta.get_field(name) for name in LOG_ROW_FIELDS]
quote = connection.ops.quote_name
sql = "INSERT INTO %%s (%%s) VALUES (%%s)" %% (
    quote(Prediction._meta.db_table),
    ", ".join(quote(f.column) for f in fields),
    ", ".join(["%%s"] * len(fields)),
)
start = timezone.now() - timedelta(days=30)
with transaction.atomic(), connection.cursor() as cursor:
    total = %d
    for first in range(0, total, 5000):
        rows = []
        features = np.random.default_rng(first).integers(0, 17, (5000, 64), dtype=np.uint8)
        for i in range(first, min(total, first + 5000)):
            values = {
                "query_id": uuid.uuid4(),
                "created_at": start + timedelta(seconds=i * 20),
                "model_version_id": version.pk,
                "features": features[i - first].tobytes(),
                "prediction": i %% 10,
                "confidence": 0.9,
                "latency_ms": 3.0,
                "image_sha256": os.urandom(32).hex(),
            }
            rows.append([f.get_db_prep_save(values[f.attname], connection) for f in fields])
        cursor.executemany(sql, rows)
"""


def peer_server(var_root: Path, image_path: Path, workers: int) -> Server:
    var_dir = var_root / "peer"
    var_dir.mkdir(parents=True)
    port = free_port()
    argv = [
        str(BIN_DIR / "uvicorn"),
        "bench.fastapi_peer:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Server(
        name="peer",
        label=f"FastAPI peer (uvicorn, {workers} workers, no log)",
        config=f"uvicorn --workers {workers} (uvloop, httptools), async endpoint, no log",
        argv=argv,
        env=dict(os.environ),
        cwd=REPO_DIR,
        var_dir=var_dir,
        port=port,
        image_path=image_path,
    )


def logged_predictions(server: Server) -> int:
    """Rows in the service's prediction log, read through Django like any operator command."""
    code = "from predicciones.models import Prediction; print(Prediction.objects.count())"
    return int(django_shell(server.env, code))


def http_servers(var_root: Path, image_path: Path, args) -> list[Server]:
    """One round's servers, each in its own var folder, run one after the other."""
    var_root.mkdir(parents=True)
    servers = [
        service_server(
            var_root, image_path, "service", "service (make run defaults)", prefill=args.prefill
        )
    ]
    if not args.quick:
        servers.append(
            service_server(
                var_root,
                image_path,
                "service-full",
                "service, SQLite synchronous=FULL",
                prefill=args.prefill,
                DIGITS_SQLITE_SYNCHRONOUS="FULL",
            )
        )
    servers.append(peer_server(var_root, image_path, args.peer_workers))
    return servers
