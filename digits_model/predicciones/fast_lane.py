"""``POST /predict/`` on the ASGI server without Django's request cycle: the fast lane.

``digits_model.asgi`` sends ``POST /predict`` and ``/predict/`` here and every other request
to Django. The lane does what the middleware and the DRF view do for that one endpoint, with
the same code where it matters (``predict_endpoint`` for the work, ``length_refusal`` and
``observe`` from the middleware, ``exception_answer`` for every error) and the same headers
(a test compares both stacks' answers): the body is read on the event loop, so a slow client
holds a coroutine, not a thread; the work (API key, rate limit, decode, predict, the log
row's commit) runs in this worker's thread pool, so no database call is ever made on the
loop (Django's async-unsafe guard stays on). The log row goes to this worker's group
commit and its commit is awaited on the loop, so the thread moves on to the next request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core import signals
from django.http.request import split_domain_port, validate_host
from rest_framework import status

from . import predict_endpoint
from .exception_handler import GENERIC_MESSAGES, STATUS_CODES, error_body, exception_answer
from .middleware import length_refusal, observe
from .prediction_log.group_commit import log_writer
from .security import client_address

logger = logging.getLogger(__name__)

#: The paths the lane answers (POST only); the API accepts both spellings.
PATHS = frozenset({"/predict/", "/predict"})
ENDPOINT = "predict"
ACCEPTED = ", ".join(predict_endpoint.MEDIA_TYPES)


class LaneRequest:
    """What the security checks read of a request: Django's ``META`` names, and the
    attributes they cache on it."""

    __slots__ = ("META", "client_address", "configured_key", "method", "query_id")

    def __init__(self, meta: dict[str, str], query_id: uuid.UUID):
        self.META = meta
        self.method = "POST"
        self.query_id = query_id


def meta_of(scope: dict) -> dict[str, str]:
    """The ASGI scope as Django's ``META`` (as ``ASGIRequest`` builds it)."""
    client = scope.get("client") or ("", 0)
    server = scope.get("server") or ("", 80)
    meta = {
        "REQUEST_METHOD": scope["method"],
        "PATH_INFO": scope["path"],
        "REMOTE_ADDR": client[0] or "",
        "SERVER_NAME": str(server[0] or ""),
        "SERVER_PORT": str(server[1] or 80),
        "wsgi.url_scheme": scope.get("scheme", "http"),
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = "HTTP_" + name
        value = raw_value.decode("latin-1")
        meta[name] = f"{meta[name]},{value}" if name in meta else value
    return meta


class FastLane:
    """The ASGI application of ``POST /predict/``; one a worker process."""

    def __init__(self, threads: int | None = None):
        self.executor = ThreadPoolExecutor(
            max_workers=threads or settings.DIGITS_PREDICT_THREADS, thread_name_prefix="predict"
        )
        # Headers as the middleware stack adds them, worked out once.
        secure = [
            _header(
                "x-content-type-options", "nosniff" if settings.SECURE_CONTENT_TYPE_NOSNIFF else ""
            ),
            _header("referrer-policy", _joined(settings.SECURE_REFERRER_POLICY)),
            _header("cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY),
        ]
        self.secure_headers = [h for h in secure if h]
        self.hsts = None
        if settings.SECURE_HSTS_SECONDS:
            value = f"max-age={settings.SECURE_HSTS_SECONDS}"
            if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
                value += "; includeSubDomains"
            if settings.SECURE_HSTS_PRELOAD:
                value += "; preload"
            self.hsts = (b"strict-transport-security", value.encode())
        page = [
            _header("content-security-policy", settings.DIGITS_CSP),
            _header("permissions-policy", settings.DIGITS_PERMISSIONS_POLICY),
        ]
        self.page_headers = [h for h in page if h]
        self.view_headers = [
            (b"allow", b"POST, OPTIONS"),
            _header("x-frame-options", settings.X_FRAME_OPTIONS),
        ]
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        self.allowed_hosts = allowed

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    async def __call__(self, scope, receive, send) -> None:
        started = time.perf_counter()
        request = LaneRequest(meta_of(scope), uuid.uuid4())
        request.client_address = client_address(request)
        fields: dict = {}
        headers = list(self.secure_headers)
        if self.hsts and self._is_secure(request.META):
            headers.append(self.hsts)
        if not self._host_allowed(request.META):
            # Django's CommonMiddleware: DisallowedHost, answered 400 by the error handler.
            logger.error("Invalid HTTP_HOST header: %r", request.META.get("HTTP_HOST", "")[:200])
            code, body = self._error(request, status.HTTP_400_BAD_REQUEST)
            headers += self.page_headers
        elif refusal := length_refusal(request.META):
            code, body = self._error(request, *refusal)
        else:
            data = await _read_body(receive)
            if data is None:
                return  # the client left before its body arrived: nobody to answer
            loop = asyncio.get_running_loop()
            code, body, extra, fields, commit = await loop.run_in_executor(
                self.executor, self._work, request, data
            )
            if commit is not None:
                # The row's commit, awaited on the loop: the thread is free for the next.
                try:
                    await asyncio.wrap_future(commit)
                except Exception as exc:
                    code, body, extra = self._error_answer(request, exc)
                    fields = {}
            headers += self.page_headers + self.view_headers + extra
        await self._send(send, code, body, headers, request.query_id)
        observe(
            query_id=request.query_id,
            client=request.client_address,
            method="POST",
            path=scope["path"],
            endpoint=ENDPOINT,
            status_code=code,
            seconds=time.perf_counter() - started,
            fields=fields,
        )

    def _work(self, request: LaneRequest, data: bytes):
        """(status, body bytes, extra headers, log fields, the row's pending commit or
        None), in a pool thread; a request's database work between Django's request signals
        (connections checked and closed as Django's own handler does)."""
        signals.request_started.send(sender=FastLane)
        try:
            writer = log_writer()
            rows: list = []
            predict_endpoint.authorize(request)
            answer = predict_endpoint.predict(
                body=data,
                content_type=request.META.get("CONTENT_TYPE", ""),
                query_id=request.query_id,
                log=rows.append if writer else None,
            )
            body = json.dumps(answer.body, ensure_ascii=False, separators=(",", ":"))
            commit = writer.submit(rows[0]) if writer else None
            return status.HTTP_200_OK, body.encode(), [], answer.log_fields, commit
        except Exception as exc:
            return (*self._error_answer(request, exc), {}, None)
        finally:
            signals.request_finished.send(sender=FastLane)

    def _error_answer(self, request: LaneRequest, exc: Exception):
        """(status, body bytes, extra headers) for ``exc``, as the DRF view answers it."""
        known = exception_answer(
            exc, query_id=str(request.query_id), method="POST", accepted=ACCEPTED
        )
        if known is None:
            logger.error("Internal Server Error: /predict/", exc_info=exc)
            code, body = self._error(request, status.HTTP_500_INTERNAL_SERVER_ERROR)
            return code, body, []
        code, error, extra = known
        encoded = [(k.lower().encode(), v.encode("latin-1")) for k, v in extra.items()]
        return code, json.dumps(error).encode(), encoded

    @staticmethod
    def _error(request, code: int, message: str | None = None, error_code=None):
        message = message or GENERIC_MESSAGES.get(code, "Request failed.")
        body = error_body(code, message, str(request.query_id), error_code or STATUS_CODES[code])
        return code, json.dumps(body).encode()

    def _host_allowed(self, meta: dict[str, str]) -> bool:
        host = meta.get("HTTP_HOST") or meta["SERVER_NAME"]
        domain, _ = split_domain_port(host)
        return bool(domain) and validate_host(domain, self.allowed_hosts)

    @staticmethod
    def _is_secure(meta: dict[str, str]) -> bool:
        proxy = settings.SECURE_PROXY_SSL_HEADER
        if proxy:
            header, value = proxy
            return meta.get(header, "").split(",")[0].strip() == value
        return meta["wsgi.url_scheme"] == "https"

    @staticmethod
    async def _send(send, code: int, body: bytes, headers: list, query_id: uuid.UUID) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-query-id", str(query_id).encode()),
            *headers,
        ]
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive) -> bytes | None:
    """The whole body (its size was checked from Content-Length, which the server holds the
    client to); None when the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _joined(value) -> str:
    return ",".join(value) if isinstance(value, list | tuple) else (value or "")


def _header(name: str, value: str | None) -> tuple[bytes, bytes] | None:
    return (name.encode(), value.encode("latin-1")) if value else None
