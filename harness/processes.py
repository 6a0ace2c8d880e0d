"""Child processes that serve on loopback (gunicorn, moto_server, the bench's servers).

Each one runs in a session of its own, so stopping it stops everything it forked (gunicorn's
workers, uvicorn's) and nothing else; its output goes to a log file that errors quote.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProcessGroup:
    """``argv`` started in a new session, waited for until ``ready()``, stopped as a group."""

    def __init__(
        self,
        argv: list[str],
        *,
        log_path: Path,
        name: str = "process",
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ):
        self.argv = argv
        self.log_path = Path(log_path)
        self.name = name
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self, *, ready: Callable[[], bool], timeout: float, poll: float = 0.2) -> None:
        """Start the process and return once ``ready()`` is true; RuntimeError, with the end
        of the log, if it exits first or is not ready within ``timeout`` seconds."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(ready=ready, timeout=timeout, poll=poll)

    def wait_ready(self, *, ready: Callable[[], bool], timeout: float, poll: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(poll)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM to the whole group; SIGKILL if it has not exited within ``timeout``."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
