"""A training command killed by a cron job's timeout takes its worker processes with it.

``train_model --register --quick --jobs 2`` is started for real; once its joblib workers are
drawing digits, the command is killed (SIGKILL, which no handler can see, and SIGTERM) and
every process it had started must be gone shortly after: no orphan keeps computing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from harness.paths import PROJECT_DIR

pytestmark = pytest.mark.slow


def training_env(tmp_path) -> dict:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DIGITS_"))},
        "SECRET_KEY": "test-only",
        "DIGITS_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "digits_model.settings",
        "DIGITS_LOG_LEVEL": "WARNING",
    }


def busy_workers(parent: psutil.Process, at_least: int, timeout: float) -> list[psutil.Process]:
    """The parent's descendants once ``at_least`` of them are using CPU (drawing digits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert parent.is_running(), "the command ended before its workers were seen"
        children = parent.children(recursive=True)
        busy = [c for c in children if _cpu_seconds(c) > 0.5]
        if len(busy) >= at_least:
            return children
        time.sleep(0.5)
    raise AssertionError("no busy worker processes appeared")


def _cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_train_model_leaves_no_worker_running(tmp_path, sig):
    env = training_env(tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=PROJECT_DIR, env=env, check=True
    )
    command = subprocess.Popen(
        [sys.executable, "manage.py", "train_model", "--register", "--quick", "--jobs", "2"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    descendants: list[psutil.Process] = []
    try:
        descendants = busy_workers(psutil.Process(command.pid), at_least=2, timeout=300)
        command.send_signal(sig)
        command.wait(timeout=30)
        _gone, alive = psutil.wait_procs(descendants, timeout=20)
        assert not alive, [(p.pid, p.cmdline()[:4]) for p in alive]
    finally:
        if command.poll() is None:
            command.kill()
        for process in descendants:  # never leave one behind, even when the test fails
            if process.is_running():
                process.kill()
