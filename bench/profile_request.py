"""Where one ``POST /predict/`` request's CPU goes: its parts, in process and under load.

In process, the service's own application (``--stack asgi``, the default worker's, or
``wsgi``; production settings, SQLite in a fresh var
folder, the shipped model, INFO access lines written to /dev/null) answers ``--requests``
posts of the bench's JPEG, called directly as gunicorn's worker would call it; every part
of the path is timed by a wrapper around the function that does it (exclusive time: a part
inside another counts once, in the inner one; CPU time of the thread, so other programs
on a busy machine do not inflate it), and what no wrapper covers is "the rest of
the framework" (middleware, request and response objects, DRF's dispatch). Under load
(``--load SECONDS``), the service as ``make run`` starts it takes ``wrk`` at c=32 and the
server's CPU per request is read from its processes: what it spends beyond the in-process
total is the HTTP server's (parsing, the worker's loop or threads, sockets).

On a busy machine the absolute microseconds move; the shares are the steadier reading.

    .venv/bin/python -m bench.profile_request [--requests 2000] [--image 640x480]
        [--stack asgi|wsgi] [--load 10]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import io
import os
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import harness.paths  # noqa: F401 - digits_model/ on sys.path
from bench.images import digit_image
from harness.servers import project_env

BOUNDARY = "----digits-profile-7d3f0a9c41b2"

#: The parts of a request, in the order the table lists them: (label, [(module, attribute)]).
#: An attribute may be dotted (a method). A function imported by name is wrapped where the
#: caller looks it up. Targets a revision does not have are skipped, so the same script
#: profiles an older revision (checked out elsewhere) for a before/after table.
PARTS = [
    (
        "multipart parsing",
        [
            ("django.http.multipartparser", "MultiPartParser.parse"),
            ("predicciones.predict_endpoint", "read_form"),
        ],
    ),
    ("URL routing", [("django.urls.resolvers", "URLResolver.resolve")]),
    (
        "API key, rate limit",
        [
            ("rest_framework.views", "APIView.perform_authentication"),
            ("rest_framework.views", "APIView.check_throttles"),
            ("predicciones.predict_endpoint", "authorize"),
        ],
    ),
    (
        "form validation",
        [
            ("rest_framework.serializers", "Serializer.is_valid"),
            ("predicciones.predict_endpoint", "validated"),
        ],
    ),
    ("model routing", [("predicciones.serving", "Router.resolve")]),
    ("decode", [("predicciones.ml.preprocessing", "decode_upload")]),
    ("preprocess", [("predicciones.services.predictions", "preprocess")]),
    (
        "predict",
        [
            ("predicciones.services.predictions", "predict_proba"),
            ("predicciones.services.predictions", "ranked"),
        ],
    ),
    ("image sha256", [("predicciones.services.predictions", "sha256_bytes")]),
    (
        "log row: INSERT and its commit",
        [
            ("predicciones.services.predictions", "log_row_write"),
            ("predicciones.prediction_log.group_commit", "log_rows_write"),
            ("predicciones.prediction_log.group_commit", "log_row_write"),
        ],
    ),
    (
        "log row: hand-over to the group commit",
        [
            ("predicciones.services.predictions", "log_row_commit"),
            ("predicciones.prediction_log.group_commit", "GroupCommitWriter.submit"),
        ],
    ),
    (
        "metrics",
        [("predicciones.metrics", "record_request"), ("predicciones.metrics", "record_prediction")],
    ),
    ("access line", [("predicciones.middleware", "access_logger.log")]),
    (
        "response: serializer and JSON",
        [
            ("predicciones.apis", "PredictApi.output_serializer.to_representation"),
            ("predicciones.predict_endpoint", "answer_body"),
            ("rest_framework.renderers", "JSONRenderer.render"),
        ],
    ),
]
REST = "the rest of the framework (middleware, request and response, dispatch)"


class Sections:
    """Exclusive time per label: wrappers keep a stack so a part's time excludes its
    children's."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._local = threading.local()  # each thread's stack of children's time
        self.enabled = False

    def _stack(self) -> list[float]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def wrap(self, module_name: str, dotted: str, label: str) -> None:
        try:
            owner = importlib.import_module(module_name)
        except ImportError:
            return
        *path, name = dotted.split(".")
        for part in [*path, name]:
            if not hasattr(owner, part):
                return
            if part != name:
                owner = getattr(owner, part)
        original = inspect.getattr_static(owner, name)
        is_static = isinstance(original, staticmethod)
        function = original.__func__ if is_static else getattr(owner, name)
        if inspect.isclass(owner) and not is_static:
            function = original
        sections = self

        @functools.wraps(function)
        def timed(*args, **kwargs):
            if not sections.enabled:
                return function(*args, **kwargs)
            stack = sections._stack()
            stack.append(0.0)
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.thread_time() - started
                children = stack.pop()
                sections.seconds[label] += elapsed - children
                if stack:
                    stack[-1] += elapsed

        setattr(owner, name, staticmethod(timed) if is_static else timed)


def multipart_body(image: bytes) -> bytes:
    """The seed's form, as ``bench/wrk_multipart.lua`` sends it."""
    return (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="image"; filename="digit.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + (
            f"\r\n--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="model"\r\n\r\nclf.pickle\r\n'
            f"--{BOUNDARY}--\r\n"
        ).encode()
    )


def setup_django(var_dir: Path) -> None:
    os.environ.update(project_env(var_dir, log_level="INFO"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    call_command("bootstrap_model", verbosity=0)
    import logging

    import digits_model.asgi
    import digits_model.wsgi  # noqa: F401

    # The access line is formatted and written, as in production, to nowhere.
    devnull = open(os.devnull, "w")  # noqa: SIM115 - open for the process's life
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)


def wsgi_caller(body: bytes):
    from digits_model.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/predict/",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.url_scheme": "http",
    }

    def call() -> None:
        statuses = []
        result = application(
            {**environ, "wsgi.input": io.BytesIO(body)}, lambda s, h: statuses.append(s)
        )
        b"".join(result)
        if not statuses[0].startswith("200"):
            raise SystemExit(f"profile_request: the service answered {statuses[0]}")

    return call


def asgi_caller(body: bytes):
    """The ASGI application as gunicorn's asgi worker calls it, on a loop of its own."""
    import asyncio

    from digits_model.asgi import application

    loop = asyncio.new_event_loop()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict/",
        "raw_path": b"/predict/",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }

    async def one() -> int:
        statuses = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await application(dict(scope), receive, send)
        return statuses[0]

    def call() -> None:
        status = loop.run_until_complete(one())
        if status != 200:
            raise SystemExit(f"profile_request: the service answered {status}")

    return call


def in_process(body: bytes, requests: int, stack: str) -> tuple[float, dict[str, float]]:
    """CPU microseconds a request (process time, untimed), and each part's CPU microseconds
    (thread time, which other programs on the machine do not inflate)."""
    sections = Sections()
    for label, targets in PARTS:
        for module_name, dotted in targets:
            sections.wrap(module_name, dotted, label)
    call = asgi_caller(body) if stack == "asgi" else wsgi_caller(body)
    for _ in range(min(200, requests)):
        call()  # warm: models loaded, statements prepared, caches filled
    cpu_started = time.process_time()
    for _ in range(requests):
        call()
    cpu_us = (time.process_time() - cpu_started) / requests * 1e6
    sections.enabled = True
    timed_started = time.process_time()  # the asgi stack works in a thread of its pool
    for _ in range(requests):
        call()
    timed_us = (time.process_time() - timed_started) / requests * 1e6
    parts = {label: sections.seconds[label] / requests * 1e6 for label, _ in PARTS}
    parts[REST] = timed_us - sum(parts.values())
    return cpu_us, parts


def under_load(image: bytes, seconds: float, var_root: Path) -> dict:
    """The service as ``make run`` starts it, under wrk at c=32: server CPU a request."""
    from bench.load import wrk
    from bench.servers import service_server

    var_root.mkdir(parents=True)
    image_path = var_root / "upload.jpg"
    image_path.write_bytes(image)
    server = service_server(var_root, image_path, "service", "service (make run defaults)")
    server.start()
    try:
        wrk(server.url, image_path, connections=32, seconds=2, result=var_root / "warm.json")
        cpu_before = server.cpu_seconds()
        out = wrk(
            server.url, image_path, connections=32, seconds=seconds, result=var_root / "c32.json"
        )
        cpu = server.cpu_seconds() - cpu_before
    finally:
        server.stop()
    return {
        "config": server.config,
        "requests": out["requests"],
        "rps": out["requests"] / (out["duration_us"] / 1e6),
        "cpu_us": cpu * 1e6 / max(1, out["requests"]),
    }


def table(cpu_us: float, parts: dict[str, float], load: dict | None) -> str:
    timed_total = sum(parts.values())
    rows = [(label, us, f"{us / timed_total:>6.0%}") for label, us in parts.items()]
    rows.append(("in process, timed run (CPU, with the timers)", timed_total, ""))
    rows.append(("in process, process CPU time (untimed run)", cpu_us, ""))
    if load:
        rows.append(
            (
                f"under wrk c=32: server CPU a request ({load['requests']} requests)",
                load["cpu_us"],
                "",
            )
        )
        rows.append(
            (
                "  of which the HTTP server's (beyond the in-process CPU)",
                load["cpu_us"] - cpu_us,
                "",
            )
        )
    lines = [f"  {'part':<72} {'us/req':>8} {'share':>6}"]
    lines += [f"  {label:<72} {us:>8.0f} {share}" for label, us, share in rows]
    if load:
        lines.append(f"  server: {load['config']}; {load['rps']:.0f} requests/s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests timed in process")
    parser.add_argument(
        "--image", default="200x200", help="the JPEG's WIDTHxHEIGHT (default: the HTTP runs')"
    )
    parser.add_argument(
        "--stack",
        choices=("asgi", "wsgi"),
        default="asgi",
        help="in process: the asgi application (the default worker's) or the wsgi one",
    )
    parser.add_argument(
        "--load", type=float, default=0, help="also run wrk c=32 for this many seconds"
    )
    args = parser.parse_args(argv)
    width, _, height = args.image.partition("x")
    image = digit_image(int(width), int(height), "JPEG")
    var_root = Path(tempfile.mkdtemp(prefix="digits-profile-"))
    setup_django(var_root / "in-process")
    cpu_us, parts = in_process(multipart_body(image), args.requests, args.stack)
    load = under_load(image, args.load, var_root / "load") if args.load else None
    print(
        f"POST /predict/ with a {args.image} JPEG ({len(image)} bytes), {args.requests} requests"
        f" in process ({args.stack}); load average {os.getloadavg()[0]:.2f}"
    )
    print(table(cpu_us, parts, load))


if __name__ == "__main__":
    main()
