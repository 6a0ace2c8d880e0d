"""docker/entrypoint.sh outside Docker: what the container does on start, run for real.

(make docker-check runs the same script inside the image; this test runs everywhere.)
"""

from __future__ import annotations

import stat
import subprocess

import pytest
import requests

from harness.servers import ENTRYPOINT, EntrypointServer, entrypoint_env


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
    server = EntrypointServer(var_dir=tmp_path, workers=1)
    try:
        server.start(timeout=90)
        health = requests.get(server.url("/health/"), timeout=15)
        assert health.status_code == 200
        assert health.json()["models"]["clf.pickle"]["live_version"] == 1
        assert (tmp_path / "db.sqlite3").exists()
        assert (tmp_path / "secret_key").exists()
        metrics = requests.get(server.url("/metrics"), timeout=5)
        assert 'digits_http_requests_total{endpoint="health"' in metrics.text
    finally:
        server.stop()
    process = server.process
    assert process.returncode == 0  # gunicorn, exec'd as the entrypoint, stops cleanly
