"""Slow clients (slowloris) against the service as the container starts it
(``docker/entrypoint.sh serve``), with one gunicorn worker of two threads so that two slow
connections would be enough to hold them all. Through the buffering front (nginx) a
legitimate client is answered while 16 slow connections are held; without it, two hold the
server. ``make bench`` measures the same with 64 connections (legitimate p99)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from predicciones.tests.conftest import draw_digit_image, require
from predicciones.tests.ops.test_entrypoint import ENTRYPOINT, entrypoint_env
from predicciones.tests.processes import free_port
from predicciones.tests.slow_clients import SlowClients

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def serve(tmp_path, front: str):
    port = free_port()
    # nginx's workers drop root's privileges (to nobody) when a test runs as root: the socket's
    # folder must be reachable, unlike pytest's private temporary folders.
    front_dir = Path(tempfile.mkdtemp(prefix="digits-front-"))
    front_dir.chmod(0o755)
    env = entrypoint_env(
        tmp_path,
        DIGITS_BIND=f"127.0.0.1:{port}",
        DIGITS_WORKERS="1",
        DIGITS_THREADS="2",
        DIGITS_FRONT=front,
        DIGITS_FRONT_DIR=str(front_dir),
    )
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        try:
            if requests.get(base + "/health/", timeout=2).status_code == 200:
                return process, port, base, log
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError((tmp_path / "serve.log").read_text()[-3000:])


def stop(process, log) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.close()


def test_slow_clients_do_not_starve_a_client_through_the_front(tmp_path):
    require(shutil.which("nginx") is not None, "nginx is not installed (Debian's nginx-light)")
    process, port, base, log = serve(tmp_path, "nginx")
    image = {"image": ("seven.png", draw_digit_image("7"))}
    try:
        with SlowClients(port, 16, interval=0.5):
            time.sleep(2)  # every slow client connected and sending
            for _ in range(5):
                answer = requests.post(base + "/predict/", files=image, timeout=10)
                assert answer.status_code == 200, answer.text
            assert requests.get(base + "/health/", timeout=10).status_code == 200
        # The front speaks the API's error shape for what it refuses itself.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.putrequest("POST", "/predict/")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", "999999999")
        connection.endheaders()  # the body never comes: refused from its announced size
        too_big = connection.getresponse()
        assert too_big.status == 413
        assert json.loads(too_big.read())["error"] == (
            "The upload is too large: the limit is 10 MiB."
        )
        connection.close()
    finally:
        stop(process, log)


def test_without_the_front_two_slow_clients_hold_the_server(tmp_path):
    process, port, base, log = serve(tmp_path, "none")
    try:
        with SlowClients(port, 4, interval=0.5):
            time.sleep(2)
            with pytest.raises(requests.exceptions.Timeout):
                requests.get(base + "/health/live/", timeout=3)
        assert requests.get(base + "/health/live/", timeout=10).status_code == 200
    finally:
        stop(process, log)
