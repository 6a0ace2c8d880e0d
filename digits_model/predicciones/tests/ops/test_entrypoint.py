"""docker/entrypoint.sh outside Docker: what the container does on start, run for real.

(make docker-check runs the same script inside the image; this test runs everywhere.)
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time

import pytest
import requests

from predicciones.tests.processes import free_port
from predicciones.tests.servers import BIN_DIR, REPO_DIR

ENTRYPOINT = REPO_DIR / "docker" / "entrypoint.sh"


def entrypoint_env(var_dir, **extra) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DIGITS_", "PROMETHEUS_")) and k != "SECRET_KEY"
    }
    env.update(
        PATH=f"{BIN_DIR}:{env.get('PATH', '')}",
        DIGITS_VAR_DIR=str(var_dir),
        PROMETHEUS_MULTIPROC_DIR=str(var_dir / "metrics"),
        DIGITS_LOG_LEVEL="WARNING",
        # Empty, as docker compose passes unset variables: must mean "use the default".
        DATABASE_URL="",
        DIGITS_CACHE="",
        DIGITS_S3_BUCKET="",
        AWS_ENDPOINT_URL="",
    )
    env.update(extra)
    return env


def run(var_dir, *args, **extra):
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        capture_output=True,
        text=True,
        env=entrypoint_env(var_dir, **extra),
        timeout=120,
    )


def test_makes_a_private_secret_key_once_and_keeps_it(tmp_path):
    first = run(tmp_path, "manage", "check")
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "secret_key"
    key = key_file.read_text()
    assert len(key.strip()) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert run(tmp_path, "manage", "check").returncode == 0
    assert key_file.read_text() == key


def test_a_given_secret_key_means_no_key_file(tmp_path):
    result = run(tmp_path, "manage", "check", SECRET_KEY="given-by-the-operator")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_other_commands_are_run_as_given(tmp_path):
    result = run(tmp_path, "python", "-c", "import os; print(os.environ.get('DATABASE_URL'))")
    assert result.stdout.strip() == "None"  # the empty variable was unset


@pytest.mark.e2e
def test_serve_migrates_registers_the_model_and_answers(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "serve"],
        env=entrypoint_env(tmp_path, DIGITS_BIND=f"127.0.0.1:{port}", DIGITS_WORKERS="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/health/", timeout=15)
                if health.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        assert health is not None and health.status_code == 200, process.poll()
        assert health.json()["models"]["clf.pickle"]["live_version"] == 1
        assert (tmp_path / "db.sqlite3").exists()
        assert (tmp_path / "secret_key").exists()
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert 'digits_http_requests_total{endpoint="health"' in metrics.text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0  # gunicorn, exec'd as the entrypoint, stops cleanly
