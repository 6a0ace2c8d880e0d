"""The service on loopback, in processes of its own: the one launcher of the test suite,
``make bench`` and ``make eval``.

``ServerProcess`` serves it as ``make run`` does (gunicorn with ``gunicorn.conf.py``, after
``migrate``); ``EntrypointServer`` as the container does (``docker/entrypoint.sh serve``: the
key file, ``migrate``, the shipped model registered, the nginx front when asked). Each has its
own var folder (SQLite database, artifact store, secret key), or a PostgreSQL database when
given ``database_url``; ``manage()`` runs management commands against the same
configuration, as an operator would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import requests

from .paths import BIN_DIR, PROJECT_DIR, REPO_DIR
from .processes import ProcessGroup, free_port

ENTRYPOINT = REPO_DIR / "docker" / "entrypoint.sh"
#: Variables of the caller that are not passed on to a server started ``inherit=False``.
SERVICE_PREFIXES = ("DJANGO_", "DIGITS_", "PROMETHEUS_")


def caller_environ(*, inherit: bool = True) -> dict[str, str]:
    """The caller's environment for a server: all of it, or (``inherit=False``) without its
    service settings (``DIGITS_*``, ``DJANGO_*``, ``PROMETHEUS_*``, ``DATABASE_URL``,
    ``SECRET_KEY``), so that the server runs on the service's defaults whatever the shell
    holds. ``DJANGO_SETTINGS_MODULE`` is never passed on (pytest's are the test settings)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DJANGO_SETTINGS")
        and (inherit or not (k.startswith(SERVICE_PREFIXES) or k in ("DATABASE_URL", "SECRET_KEY")))
    }


def project_env(
    var_dir: str | Path, *, inherit: bool = True, log_level: str | None = "WARNING", **extra: str
) -> dict[str, str]:
    """The environment of a process of the project (a server, ``manage.py``, a benchmark's
    phase) whose state is ``var_dir``: SQLite there (the caller's ``DATABASE_URL`` is not
    passed on), the production settings module, a throwaway ``SECRET_KEY``, log level
    ``log_level`` (None: the service's default, INFO), then ``extra``."""
    env = caller_environ(inherit=inherit)
    env.pop("DATABASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="digits_model.settings",
        SECRET_KEY="local-only-not-secret",
        DIGITS_VAR_DIR=str(var_dir),
    )
    if log_level:
        env["DIGITS_LOG_LEVEL"] = log_level
    env.update(extra)
    return env


class ServerProcess:
    """The service as ``make run`` serves it: gunicorn on a free loopback port.

    ``workers`` gunicorn workers (None: gunicorn.conf.py's default, the CPU count) and log
    level ``log_level`` (None: the service's default, INFO); with ``inherit=False`` the
    caller's own service settings are not passed on (:func:`caller_environ`);
    ``project_dir``: the Django project served (another revision's, for a benchmark).
    """

    def __init__(
        self,
        *,
        workers: int | None = 2,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        var_dir: str | Path | None = None,
        log_level: str | None = "WARNING",
        inherit: bool = True,
        name: str = "server",
        project_dir: Path = PROJECT_DIR,
    ):
        self.project_dir = Path(project_dir)
        self.var_dir = Path(var_dir or tempfile.mkdtemp(prefix="digits-e2e-"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **self.environment(workers=workers, log_level=log_level, inherit=inherit),
            **(env or {}),
        }
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.log_path = self.var_dir / "server.log"
        self.group = ProcessGroup(
            self.argv(), log_path=self.log_path, name=name, cwd=self.project_dir, env=self.env
        )

    def environment(self, *, workers: int | None, log_level: str | None, inherit: bool) -> dict:
        env = project_env(self.var_dir, inherit=inherit, log_level=log_level, PORT=str(self.port))
        if workers:
            env["DIGITS_WORKERS"] = str(workers)
        return env

    def argv(self) -> list[str]:
        return [str(BIN_DIR / "gunicorn"), "-c", "gunicorn.conf.py"]

    @property
    def process(self) -> subprocess.Popen | None:
        return self.group.process

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 60, ready: Callable[[], bool] | None = None) -> ServerProcess:
        """Migrate, start, and return once ``ready()`` (default: ``/health/`` answers 200)."""
        self.manage("migrate", "--noinput", "-v", "0")
        self.group.start(ready=ready or self._ready, timeout=timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        self.group.wait_ready(ready=self._ready, timeout=timeout)

    def _ready(self) -> bool:
        try:
            return requests.get(self.url("/health/"), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        self.group.stop(timeout=20)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.var_dir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- helpers -------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path

    def manage(self, *args: str, check: bool = True, timeout: float = 600, env: dict | None = None):
        """Run ``manage.py`` with this server's configuration (plus ``env``); returns the
        CompletedProcess."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.project_dir,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def log_tail(self, lines: int = 60) -> str:
        return self.group.log_tail(lines)


class EntrypointServer(ServerProcess):
    """The service as the container starts it: ``docker/entrypoint.sh serve`` on a free
    loopback port, behind the nginx front with ``front="nginx"`` (``DIGITS_FRONT``).

    The entrypoint migrates and registers the shipped model itself; it runs on the service's
    defaults (:func:`entrypoint_env`) plus ``env``.
    """

    def __init__(self, *, front: str = "none", workers: int | None = None, **kwargs):
        self.front = front
        # nginx's workers drop root's privileges (to nobody) when this runs as root: the
        # socket's folder must be reachable, unlike pytest's private temporary folders.
        self.front_dir = Path(tempfile.mkdtemp(prefix="digits-front-"))
        self.front_dir.chmod(0o755)
        super().__init__(workers=workers, **kwargs)

    def argv(self) -> list[str]:
        return ["sh", str(ENTRYPOINT), "serve"]

    def environment(self, *, workers: int | None, log_level: str | None, inherit: bool) -> dict:
        env = entrypoint_env(
            self.var_dir,
            DIGITS_BIND=f"127.0.0.1:{self.port}",
            DIGITS_FRONT=self.front,
            DIGITS_FRONT_DIR=str(self.front_dir),
        )
        if workers:
            env["DIGITS_WORKERS"] = str(workers)
        if log_level:
            env["DIGITS_LOG_LEVEL"] = log_level
        return env

    def start(self, timeout: float = 180, ready: Callable[[], bool] | None = None):
        self.group.start(ready=ready or self._ready, timeout=timeout, poll=0.3)
        return self

    def cleanup(self) -> None:
        super().cleanup()
        shutil.rmtree(self.front_dir, ignore_errors=True)


def entrypoint_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """What ``docker/entrypoint.sh`` is run with here: the caller's environment without its
    service settings, the virtualenv's programs first on PATH, state in ``var_dir``, and the
    variables docker compose passes empty when they are unset (they must mean the default)."""
    env = caller_environ(inherit=False)
    env.update(
        PATH=f"{BIN_DIR}:{env.get('PATH', '')}",
        DIGITS_VAR_DIR=str(var_dir),
        PROMETHEUS_MULTIPROC_DIR=str(Path(var_dir) / "metrics"),
        DIGITS_LOG_LEVEL="WARNING",
        DATABASE_URL="",
        DIGITS_CACHE="",
        DIGITS_S3_BUCKET="",
        AWS_ENDPOINT_URL="",
    )
    env.update(extra)
    return env
