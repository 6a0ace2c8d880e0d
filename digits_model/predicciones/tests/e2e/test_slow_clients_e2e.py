"""Slow clients (slowloris) against the service as the container starts it
(``docker/entrypoint.sh serve``), with one gunicorn worker of two threads so that two slow
connections would be enough to hold them all. Through the buffering front (nginx) a
legitimate client is answered while 16 slow connections are held; without it, two hold the
server. ``make bench`` measures the same with 64 connections (legitimate p99)."""

from __future__ import annotations

import http.client
import json
import shutil
import time

import pytest
import requests

from harness.rendering import draw_digit_image
from harness.servers import EntrypointServer
from harness.slow_clients import SlowClients
from predicciones.tests.conftest import require

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def serve(tmp_path, front: str) -> EntrypointServer:
    """The container's server with one worker of two threads, through ``front``."""
    server = EntrypointServer(
        var_dir=tmp_path, front=front, env={"DIGITS_WORKERS": "1", "DIGITS_THREADS": "2"}
    )
    return server.start(timeout=120)


def test_slow_clients_do_not_starve_a_client_through_the_front(tmp_path):
    require(shutil.which("nginx") is not None, "nginx is not installed (Debian's nginx-light)")
    server = serve(tmp_path, "nginx")
    port, base = server.port, server.base_url
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
        body = json.loads(too_big.read())
        assert body["error"] == "The upload is too large: the limit is 10 MiB."
        assert body["code"] == "upload_too_large"
        connection.close()
    finally:
        server.cleanup()


def test_without_the_front_two_slow_clients_hold_the_server(tmp_path):
    server = serve(tmp_path, "none")
    port, base = server.port, server.base_url
    try:
        with SlowClients(port, 4, interval=0.5):
            time.sleep(2)
            with pytest.raises(requests.exceptions.Timeout):
                requests.get(base + "/health/live/", timeout=3)
        assert requests.get(base + "/health/live/", timeout=10).status_code == 200
    finally:
        server.cleanup()
