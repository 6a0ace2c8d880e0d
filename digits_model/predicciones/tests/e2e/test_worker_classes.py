"""Both worker classes answer ``POST /predict/`` alike: the asgi worker's fast lane (the
default) and the gthread worker's Django stack (the fallback), each a real gunicorn server,
asked the same requests (success and every kind of refusal the endpoint makes), compared
status by status, body by body and header by header."""

from __future__ import annotations

import http.client
import io
import json
import socket

import pytest
import requests
from PIL import Image

from harness.rendering import draw_digit_image
from harness.servers import ServerProcess

pytestmark = [pytest.mark.e2e]

KEY = "a-key-of-sixteen-chars-or-more"
OTHER_KEY = "another-key-of-sixteen-chars"
SEVEN = draw_digit_image("7")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


BLANK = _png(Image.new("L", (200, 200), 255))
#: The headers the service itself sets (gunicorn adds Date, Server, Connection...).
APP_HEADERS = (
    "content-type",
    "allow",
    "x-frame-options",
    "content-security-policy",
    "permissions-policy",
    "x-content-type-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "retry-after",
    "www-authenticate",
)


@pytest.fixture(scope="module")
def servers():
    env = {"DIGITS_API_KEYS": f"{KEY},{OTHER_KEY}", "DIGITS_PREDICT_RATE": "40/min"}
    started = {
        worker_class: ServerProcess(workers=1, env={**env, "DIGITS_WORKER_CLASS": worker_class})
        for worker_class in ("asgi", "gthread")
    }
    try:
        for server in started.values():
            server.start(ready=lambda s=server: _live(s))
        yield started
    finally:
        for server in started.values():
            server.cleanup()


def _live(server) -> bool:
    try:
        return requests.get(server.url("/health/live/"), timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _raw(server, head: bytes) -> tuple[int, dict, bytes]:
    """Send ``head`` as is; (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(head)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read() if response.status != 413 else response.read(4096)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def _post(server, headers=None, **kwargs) -> tuple[int, dict, bytes]:
    response = requests.post(
        server.url("/predict/"), headers={"X-API-Key": KEY, **(headers or {})}, timeout=30, **kwargs
    )
    return (
        response.status_code,
        {k.lower(): v for k, v in response.headers.items()},
        response.content,
    )


def _head(body: bytes, **headers: str) -> bytes:
    lines = ["POST /predict/ HTTP/1.1", "Host: 127.0.0.1", f"X-API-Key: {KEY}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


CASES = {
    "a prediction": lambda s: _post(
        s, files={"image": ("s.png", SEVEN)}, data={"model": "clf.pickle"}
    ),
    "no key": lambda s: _post(s, headers={"X-API-Key": ""}, files={"image": ("s.png", SEVEN)}),
    "a wrong key": lambda s: _post(
        s, headers={"X-API-Key": "x" * 20}, files={"image": ("s.png", SEVEN)}
    ),
    "no image": lambda s: _post(s, data={"model": "clf.pickle"}),
    "the image as text": lambda s: _post(s, data={"image": "seven.png"}),
    "an empty body": lambda s: _post(s),
    "JSON": lambda s: _post(s, json={"image": "aGVsbG8="}),
    "no boundary": lambda s: _post(
        s, data=b"--x\r\n\r\n--x--", headers={"Content-Type": "multipart/form-data"}
    ),
    "garbage": lambda s: _post(
        s, data=b"\x00garbage" * 50, headers={"Content-Type": "multipart/form-data; boundary=zz"}
    ),
    "a thousand fields": lambda s: _post(
        s, files={"image": ("s.png", SEVEN)}, data={f"f{i}": "x" for i in range(1000)}
    ),
    "an unknown model": lambda s: _post(
        s, files={"image": ("s.png", SEVEN)}, data={"model": "../x"}
    ),
    "not an image": lambda s: _post(s, files={"image": ("s.jpg", b"just some text")}),
    "a truncated image": lambda s: _post(
        s, files={"image": ("s.jpg", draw_digit_image("7", fmt="JPEG")[:900])}
    ),
    "a blank image": lambda s: _post(s, files={"image": ("s.png", BLANK)}),
    "an empty file": lambda s: _post(s, files={"image": ("s.png", b"")}),
    "GET": lambda s: (
        lambda r: (r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)
    )(requests.get(s.url("/predict/"), timeout=10)),
    "chunked": lambda s: _raw(s, _head(b"1\r\nx\r\n0\r\n\r\n", Transfer_Encoding="chunked")),
    "a Content-Length that is not a number": lambda s: _raw(s, _head(b"", Content_Length="abc")),
    "a Content-Length over the limit": lambda s: _raw(s, _head(b"", Content_Length="999999999")),
    "a host not allowed": lambda s: _raw(
        s, b"POST /predict/ HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 0\r\n\r\n"
    ),
}


#: Refused by gunicorn's HTTP parser before the application sees it (either worker): only
#: the status is the service's to compare.
REFUSED_BY_GUNICORN = {"a Content-Length that is not a number"}


def _comparable(answer: tuple[int, dict, bytes]) -> dict:
    status, headers, body = answer
    try:
        document = json.loads(body)
    except ValueError:
        document = {"not json": body[:100]}
    for varying in ("query_id", "execution_time"):
        document.pop(varying, None)
    return {
        "status": status,
        "body": document,
        "headers": {name: headers.get(name) for name in APP_HEADERS},
        "has query id": "x-query-id" in headers,
        "compact 200": body.startswith(b'{"status_code":200') if status == 200 else None,
    }


@pytest.mark.parametrize("case", list(CASES))
def test_both_worker_classes_answer_alike(servers, case):
    asgi, gthread = (_comparable(CASES[case](servers[w])) for w in ("asgi", "gthread"))
    if case in REFUSED_BY_GUNICORN:
        assert asgi["status"] == gthread["status"] == 400
        return
    assert asgi == gthread
    assert asgi["has query id"]


def test_the_rate_limit_holds_on_both(servers):
    """Per key, 40 a minute: the 41st request of the other key is refused on either server."""
    for server in servers.values():
        codes = [
            _post(server, headers={"X-API-Key": OTHER_KEY}, data={"model": "x"})[0]
            for _ in range(41)
        ]
        assert codes == [400] * 40 + [429]
        status, headers, body = _post(server, headers={"X-API-Key": OTHER_KEY})
        assert status == 429 and int(headers["retry-after"]) > 0
        assert json.loads(body)["code"] == "rate_limited"
