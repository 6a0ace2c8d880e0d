"""docker/init_bucket.py against a real S3-protocol server (moto_server) on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
import requests

from harness.paths import BIN_DIR, REPO_DIR
from harness.processes import free_port
from predicciones.tests.conftest import require

INIT_BUCKET = REPO_DIR / "docker" / "init_bucket.py"


@pytest.fixture
def s3_endpoint():
    moto = shutil.which("moto_server", path=f"{BIN_DIR}:{os.environ.get('PATH', '')}")
    require(moto is not None, "moto_server is not installed (moto[server])")
    port = free_port()
    process = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def init_bucket(endpoint: str, bucket: str):
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DIGITS_S3_BUCKET": bucket,
        "DIGITS_STARTUP_RETRIES": "3",
    }
    return subprocess.run(
        [sys.executable, str(INIT_BUCKET)], capture_output=True, text=True, env=env, timeout=60
    )


def test_creates_the_bucket_once_and_then_finds_it(s3_endpoint):
    first = init_bucket(s3_endpoint, "digits-artifacts")
    assert first.returncode == 0, first.stderr
    assert "bucket digits-artifacts created" in first.stderr
    second = init_bucket(s3_endpoint, "digits-artifacts")
    assert second.returncode == 0
    assert "bucket digits-artifacts exists" in second.stderr


def test_an_unreachable_store_fails_with_one_clear_line():
    result = init_bucket(f"http://127.0.0.1:{free_port()}", "digits")
    assert result.returncode == 2
    assert "could not create bucket digits" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr
