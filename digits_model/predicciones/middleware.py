"""Per-request context: a query id, the upload size limit, JSON for every error page, one
structured log line and the metrics of each request, and the security headers."""

import logging
import time
import uuid

from django.conf import settings
from django.db import DatabaseError
from django.urls import Resolver404, resolve
from rest_framework import status

from . import metrics
from .exception_handler import (
    DATABASE_DOWN,
    INVALID_CONTENT_LENGTH,
    error_response,
    error_status,
    first_line,
    upload_too_large_message,
)
from .security import client_address

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("predicciones.access")

#: Longest path and method written to the access log (both are client text).
MAX_LOGGED_PATH = 200
MAX_LOGGED_METHOD = 20


def annotate_request(request, **fields) -> None:
    """Attach fields (model, model_version, prediction...) to the request's access-log line.

    Views call this with DRF's request or Django's; the middleware reads them back.
    """
    target = getattr(request, "_request", request)
    if not hasattr(target, "log_fields"):
        target.log_fields = {}
    target.log_fields.update(fields)


def _endpoint_of(request) -> str:
    """The route name (``predict``), also for requests refused before URL resolution."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
    return (match.url_name if match else None) or "unmatched"


class RequestContextMiddleware:
    """Give each request a ``query_id``, refuse oversized bodies before reading them, turn
    any non-JSON error page (Django's 404, 405, 400...) into the API's error shape, and log
    and count the request once it is answered."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request.query_id = uuid.uuid4()
        request.client_address = client_address(request)
        response = self._check_length(request) or self.get_response(request)
        if (
            response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
            and not getattr(response, "is_page", False)
        ):
            response = error_response(request, response.status_code)
        response["X-Query-Id"] = str(request.query_id)
        if not response.streaming and not response.has_header("Content-Length"):
            # Answers made here (413, 411) never pass CommonMiddleware, which sets it.
            response["Content-Length"] = str(len(response.content))
        self._observe(request, response, time.perf_counter() - started)
        return response

    def process_exception(self, request, exception):
        """A view outside DRF that needed the database while it was down: 503, not 500."""
        if isinstance(exception, DatabaseError):
            logger.warning("database unavailable: %s", first_line(exception))
            status_code, code = error_status(exception)
            return error_response(request, status_code, DATABASE_DOWN, code)
        return None

    @staticmethod
    def _check_length(request):
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            # Without a Content-Length the size cannot be checked before reading, and Django
            # would see an empty body: say so instead of "image missing".
            return error_response(
                request,
                status.HTTP_411_LENGTH_REQUIRED,
                "Chunked uploads are not accepted: send the request with a Content-Length.",
            )
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            return error_response(
                request,
                status.HTTP_400_BAD_REQUEST,
                "Invalid Content-Length.",
                INVALID_CONTENT_LENGTH,
            )
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return error_response(
                request, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, upload_too_large_message()
            )
        return None

    @staticmethod
    def _observe(request, response, seconds: float) -> None:
        """One access-log line and the request's metrics; never fails the request."""
        try:
            endpoint = _endpoint_of(request)
            fields = getattr(request, "log_fields", {})
            metrics.record_request(
                endpoint=endpoint,
                method=request.method,
                status_code=response.status_code,
                seconds=seconds,
            )
            if response.status_code == status.HTTP_200_OK and "prediction" in fields:
                metrics.record_prediction(
                    model=fields["model"],
                    version=fields["model_version"],
                    digit=fields["prediction"],
                    confidence=fields["confidence"],
                    model_seconds=fields["model_seconds"],
                    request_seconds=seconds,
                )
            line = {
                "query_id": str(request.query_id),
                "client": request.client_address,
                "method": request.method[:MAX_LOGGED_METHOD],
                "path": request.path[:MAX_LOGGED_PATH],
                "endpoint": endpoint,
                "status": response.status_code,
                "latency_ms": round(seconds * 1000, 2),
                **{k: v for k, v in fields.items() if k != "model_seconds"},
            }
            if "model_seconds" in fields:
                line["model_ms"] = round(fields["model_seconds"] * 1000, 2)
            level = logging.WARNING if response.status_code >= 500 else logging.INFO
            access_logger.log(
                level,
                "%s %s %s",
                line["method"],
                line["path"],
                response.status_code,
                extra={"fields": line},
            )
        except Exception:  # observability must never turn a good answer into an error
            access_logger.exception("could not log or count request %s", request.query_id)


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy on every response that lacks them.

    A view that needs another policy (say, a page with an inline chart script) sets its own
    ``Content-Security-Policy`` header and this one is left alone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.DIGITS_CSP and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.DIGITS_CSP
        if "Permissions-Policy" not in response:
            response["Permissions-Policy"] = settings.DIGITS_PERMISSIONS_POLICY
        return response
