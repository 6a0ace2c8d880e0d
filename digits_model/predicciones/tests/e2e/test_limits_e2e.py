"""Upload limits and the rate limit against real gunicorn with two workers.

The size limit must hold before the body is read (a client announcing 50 MB gets its 413
without sending a byte of it), chunked bodies are refused, and the rate limit is shared by
the workers (its counters live in the file cache, not in each process).
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.rendering import draw_digit_image
from harness.servers import ServerProcess
from predicciones.tests.e2e.workers import access_lines, wait_until_every_worker_answers

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LIMIT = 100_000
RATE = 4


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("limits-e2e")
    server = ServerProcess(
        workers=2,
        var_dir=var_dir,
        env={
            "DIGITS_MAX_UPLOAD_BYTES": str(LIMIT),
            "DIGITS_PREDICT_RATE": f"{RATE}/min",
            "DIGITS_CACHE": "file",
            "DIGITS_LOG_LEVEL": "INFO",
            "DIGITS_LOG_JSON": "1",
        },
    )
    with server:
        wait_until_every_worker_answers(server)
        yield server


def raw_exchange(srv, head: bytes, body: bytes = b"", timeout: float = 10) -> bytes:
    """Send ``head`` (+ ``body``) on a fresh socket and read the answer until it closes."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
    return b"".join(chunks)


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def parse(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def test_announced_oversized_body_is_refused_before_it_is_sent(srv):
    head = (
        b"POST /predict/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\n"
        b"Content-Length: 50000000\r\nConnection: close\r\n\r\n"
    )
    started = time.monotonic()
    code, body = parse(raw_exchange(srv, head))  # not one byte of the 50 MB is sent
    assert code == 413
    assert body["status_code"] == 413 and "limit" in body["error"]
    assert time.monotonic() - started < 5


def test_chunked_upload_is_refused_with_411(srv):
    head = (
        b"POST /predict/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunk = b"x" * 4096
    body = b"%x\r\n%s\r\n" % (len(chunk), chunk)  # the start of an endless stream
    code, answer = parse(raw_exchange(srv, head, body))
    assert code == 411
    assert "Content-Length" in answer["error"]


@pytest.mark.parametrize("size", [LIMIT + 10_000, 3 * LIMIT])
def test_uploads_over_the_limit_are_413(srv, size):
    response = requests.post(
        srv.url("/predict/"),
        files={"image": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * size)},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["status_code"] == 413


def test_server_still_answers_after_the_refusals(srv):
    assert requests.get(srv.url("/health/"), timeout=10).status_code == 200


def test_rate_limit_is_shared_by_the_workers(srv):
    shutil.rmtree(srv.var_dir / "cache", ignore_errors=True)  # forget earlier counts
    image = draw_digit_image("7")

    def post(_):
        return requests.post(
            srv.url("/predict/"),
            files={"image": ("d.png", image)},
            headers={"Connection": "close"},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(post, range(16)))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429}
    assert len({x["pid"] for x in access_lines(srv) if x["path"] == "/predict/"}) >= 2, (
        "the load did not reach both workers"
    )
    # One count per worker would let up to 2 x RATE through; without the lock around DRF's
    # read-then-write, concurrent requests would slip past the limit.
    assert codes.count(200) == RATE, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["status_code"] == 429
