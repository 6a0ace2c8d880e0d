"""Real server processes for end-to-end tests: gunicorn serving the project, on loopback.

Each ``ServerProcess`` has its own var folder (SQLite database, artifact store, secret key),
or a PostgreSQL database when given ``database_url``; ``manage()`` runs management
commands against the same configuration, as an operator would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from .processes import ProcessGroup, free_port

REPO_DIR = Path(__file__).resolve().parents[3]
PROJECT_DIR = REPO_DIR / "digits_model"
BIN_DIR = Path(sys.executable).parent


class ServerProcess:
    """gunicorn with ``workers`` sync workers on a free loopback port."""

    def __init__(
        self,
        *,
        workers: int = 2,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        var_dir: str | Path | None = None,
    ):
        self.var_dir = Path(var_dir or tempfile.mkdtemp(prefix="digits-e2e-"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_SETTINGS")},
            "DJANGO_SETTINGS_MODULE": "digits_model.settings",
            "SECRET_KEY": "e2e-test-key",
            "DIGITS_VAR_DIR": str(self.var_dir),
            "DIGITS_WORKERS": str(workers),
            "PORT": str(self.port),
            "DIGITS_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.env.pop("DATABASE_URL", None)
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.log_path = self.var_dir / "server.log"
        self.group = ProcessGroup(
            [str(BIN_DIR / "gunicorn"), "digits_model.wsgi", "-c", "gunicorn.conf.py"],
            log_path=self.log_path,
            name="server",
            cwd=PROJECT_DIR,
            env=self.env,
        )

    @property
    def process(self) -> subprocess.Popen | None:
        return self.group.process

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> ServerProcess:
        self.manage("migrate", "--noinput", "-v", "0")
        self.group.start(ready=self._ready, timeout=timeout)
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
            cwd=PROJECT_DIR,
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
