"""The servers a bench round compares: the service as ``make run`` starts it (its log
prefilled, as after weeks of traffic) and the FastAPI peer, each in a var folder of its own."""

from __future__ import annotations

import ast
import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from harness.paths import BIN_DIR, PROJECT_DIR, REPO_DIR
from harness.processes import ProcessGroup, free_port
from harness.servers import ServerProcess, caller_environ


class PeerProcess:
    """A FastAPI peer (``app``) under uvicorn, started and stopped like a
    :class:`ServerProcess`."""

    def __init__(self, var_dir: Path, workers: int, app: str = "bench.fastapi_peer:app"):
        self.var_dir = var_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = caller_environ()
        argv = [str(BIN_DIR / "uvicorn"), app, "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--workers", str(workers)]
        argv += ["--no-access-log", "--log-level", "warning"]
        self.group = ProcessGroup(
            argv, log_path=var_dir / "peer.log", name="peer", cwd=REPO_DIR, env=self.env
        )

    def start(self, timeout: float = 60, ready=None) -> PeerProcess:
        self.group.start(ready=ready, timeout=timeout, poll=0.3)
        return self

    def stop(self) -> None:
        self.group.stop(timeout=30)

    def url(self, path: str) -> str:
        return self.base_url + path


@dataclass
class Server:
    """A server a bench round measures, and what the report says of it."""

    name: str
    label: str
    process: ServerProcess | PeerProcess
    image_path: Path
    config: str = ""
    logs_predictions: bool = False
    prefill: int = 0

    @property
    def url(self) -> str:
        return self.process.url("/predict/")

    @property
    def var_dir(self) -> Path:
        return self.process.var_dir

    @property
    def env(self) -> dict[str, str]:
        return self.process.env

    def start(self) -> None:
        """Start it; ready once a prediction of ``image_path`` answers 200 (that request is
        logged: ``load.bench_http`` counts it)."""
        self.process.start(timeout=60, ready=self._answers)

    def stop(self) -> None:
        self.process.stop()

    def _answers(self) -> bool:
        try:
            with open(self.image_path, "rb") as fh:
                return requests.post(self.url, files={"image": fh}, timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.group.process.pid)
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


def django_shell(
    env: dict[str, str], code: str, *, capture: bool = True, project_dir: Path = PROJECT_DIR
) -> str:
    """Run ``code`` in ``manage.py shell`` with ``env``; its stdout's last line (or "")."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=project_dir,
        env=env,
        capture_output=capture,
        text=True,
        check=True,
    )
    return (result.stdout or "").strip().rpartition("\n")[2]


def service_server(
    var_root: Path,
    image_path: Path,
    name: str,
    label: str,
    *,
    prefill: int = 0,
    revision: Path | None = None,
    **env,
) -> Server:
    """The service as ``make run`` starts it (migrate, bootstrap_model, gunicorn with
    gunicorn.conf.py: its worker count, INFO logs), whatever the caller's shell holds; with
    ``revision``, the service of that exported tree (:func:`export_revision`) instead."""
    var_dir = var_root / name
    var_dir.mkdir(parents=True)
    kind = ServerProcess if revision is None else RevisionServer
    project_dir = PROJECT_DIR if revision is None else revision / PROJECT_DIR.name
    process = kind(
        var_dir=var_dir,
        workers=None,
        log_level=None,
        inherit=False,
        env=env,
        name=name,
        project_dir=project_dir,
    )
    quiet = {**process.env, "DIGITS_LOG_LEVEL": "WARNING"}
    process.manage("migrate", "--noinput", "-v", "0", env=quiet)
    process.manage("bootstrap_model", "-v", "0", env=quiet)
    if prefill:
        script = PREFILL_SCRIPT if revision is None else prefill_script_of(revision)
        django_shell(quiet, script % prefill, capture=False, project_dir=project_dir)
    return Server(
        name=name,
        label=label,
        process=process,
        image_path=image_path,
        logs_predictions=True,
        config=service_config(process.env, project_dir),
        prefill=prefill,
    )


class RevisionServer(ServerProcess):
    """The service of another revision: its gunicorn.conf.py names the app, or (before the
    ASGI fast lane) the WSGI module is given on the command line as its Makefile did."""

    def argv(self) -> list[str]:
        conf = (self.project_dir / "gunicorn.conf.py").read_text()
        app = [] if "wsgi_app" in conf else ["digits_model.wsgi"]
        return [str(BIN_DIR / "gunicorn"), *app, "-c", "gunicorn.conf.py"]


def export_revision(rev: str, dest: Path) -> Path:
    """``git archive`` of ``rev`` unpacked in ``dest`` (its shipped model included)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=REPO_DIR, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def prefill_script_of(revision: Path) -> str:
    """The revision's own ``PREFILL_SCRIPT`` (its log's layout is its own), read from its
    ``bench/servers.py`` without importing it."""
    tree = ast.parse((revision / "bench" / "servers.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "PREFILL_SCRIPT" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError(f"{revision}: bench/servers.py has no PREFILL_SCRIPT")


def service_config(env: dict[str, str], project_dir: Path = PROJECT_DIR) -> str:
    """gunicorn's and the database's settings as the server will see them."""
    script = (
        "import json, runpy; g = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({k: g[k] for k in ('workers', 'worker_class', 'threads', 'keepalive')}))"
    )
    conf = json.loads(
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=project_dir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    synchronous = django_shell(
        env,
        "from django.conf import settings; print(settings.DIGITS_SQLITE_SYNCHRONOUS)",
        project_dir=project_dir,
    )
    threads = f" x {conf['threads']} threads" if conf["worker_class"] == "gthread" else ""
    return (
        f"gunicorn {conf['worker_class']}, {conf['workers']} workers{threads}, "
        f"keep-alive {conf['keepalive']} s; SQLite WAL, synchronous={synchronous}"
    )


#: Fills the prediction log with synthetic rows through the log's own loader (the service's
#: INSERT, values prepared by the model's fields).
PREFILL_SCRIPT = """
import os, uuid
from datetime import timedelta
import numpy as np
from django.utils import timezone
from predicciones.models import ModelVersion
from predicciones.prediction_log.writing import LogRow, log_rows_load

version = ModelVersion.objects.order_by("pk").first()
start = timezone.now() - timedelta(days=30)
total = %d
features = np.random.default_rng(0).integers(0, 17, (total, 64), dtype=np.uint8)
log_rows_load(
    LogRow.of(
        query_id=uuid.uuid4(),
        created_at=start + timedelta(seconds=i * 20),
        model_version_id=version.pk,
        features=features[i],
        prediction=i %% 10,
        confidence=0.9,
        latency_ms=3.0,
        image_sha256=os.urandom(32).hex(),
    )
    for i in range(total)
)
"""


#: The FastAPI peers: name -> (label, configuration, ASGI app), each on ``workers`` workers.
PEERS = {
    "peer": (
        "FastAPI peer, same work ({workers} workers, no log)",
        "uvicorn --workers {workers} (uvloop, httptools), async endpoint, no log",
        "bench.fastapi_peer:app",
    ),
    "naive": (
        "FastAPI naive peer ({workers} workers, no log)",
        "uvicorn --workers {workers}: crop, resize, 4x4 counts, SVC; no log",
        "bench.naive_peer:app",
    ),
}


def peer_server(name: str, var_root: Path, image_path: Path, workers: int) -> Server:
    """One of :data:`PEERS`, started on ``workers`` uvicorn workers."""
    label, config, app = PEERS[name]
    var_dir = var_root / name
    var_dir.mkdir(parents=True)
    return Server(
        name=name,
        label=label.format(workers=workers),
        config=config.format(workers=workers),
        process=PeerProcess(var_dir, workers, app=app),
        image_path=image_path,
    )


def logged_predictions(server: Server) -> int:
    """Rows in the service's prediction log, read through Django like any operator command."""
    code = "from predicciones.models import Prediction; print(Prediction.objects.count())"
    return int(django_shell(server.env, code, project_dir=server.process.project_dir))


def http_servers(var_root: Path, image_path: Path, args) -> list[Server]:
    """One round's servers, each in its own var folder, run one after the other: the service
    on every core and on one, with ``args.before`` the service of that git revision, the
    same-work peer and the naive peer."""
    var_root.mkdir(parents=True)
    cores = args.peer_workers
    servers = [
        service_server(
            var_root,
            image_path,
            "service",
            f"service (make run defaults, {cores} workers)",
            prefill=args.prefill,
            DIGITS_WORKERS=str(cores),
        )
    ]
    if cores > 1:
        servers.append(
            service_server(
                var_root,
                image_path,
                "service-1",
                "service, 1 worker",
                prefill=args.prefill,
                DIGITS_WORKERS="1",
            )
        )
    if not args.quick:
        servers.append(
            service_server(
                var_root,
                image_path,
                "service-full",
                "service, SQLite synchronous=FULL",
                prefill=args.prefill,
                DIGITS_SQLITE_SYNCHRONOUS="FULL",
                DIGITS_WORKERS=str(cores),
            )
        )
    if args.before:
        servers.append(
            service_server(
                var_root,
                image_path,
                "before",
                f"service at {args.before} ({cores} workers)",
                prefill=args.prefill,
                revision=export_revision(args.before, var_root / "before-tree"),
                DIGITS_WORKERS=str(cores),
            )
        )
    servers += [peer_server(name, var_root, image_path, cores) for name in PEERS]
    return servers
