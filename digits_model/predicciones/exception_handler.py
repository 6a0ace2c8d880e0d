"""One place that turns every failure into the API's error shape.

``{"status_code": 4xx, "query_id": "...", "error": "a sentence a person understands"}``:
DRF's own errors (parse errors, wrong method, unsupported media type, validation), the
service's errors, image errors from ``ml``, and Django's 400/403/404/500 handlers.
"""

import logging

from django.db import DatabaseError
from django.http import JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status

from .exceptions import PrediccionesError
from .ml import exceptions as image_errors

logger = logging.getLogger(__name__)

IMAGE_ERROR_STATUS = {
    image_errors.UnsupportedImageError: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    image_errors.UnreadableImageError: status.HTTP_400_BAD_REQUEST,
    image_errors.ImageTooLargeError: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    image_errors.NoDigitError: status.HTTP_422_UNPROCESSABLE_ENTITY,
}

GENERIC_MESSAGES = {
    status.HTTP_400_BAD_REQUEST: "Bad request.",
    status.HTTP_401_UNAUTHORIZED: "Authentication required.",
    status.HTTP_403_FORBIDDEN: "Forbidden.",
    status.HTTP_404_NOT_FOUND: "Not found: see the README or /api/docs/ for the endpoints.",
    status.HTTP_405_METHOD_NOT_ALLOWED: "Method not allowed on this endpoint.",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "Unsupported media type.",
    status.HTTP_429_TOO_MANY_REQUESTS: "Too many requests; slow down.",
    status.HTTP_500_INTERNAL_SERVER_ERROR: "Internal error; it has been logged.",
    status.HTTP_503_SERVICE_UNAVAILABLE: "Service unavailable; try again shortly.",
}

#: The answer to any request that needed the database while it was down.
DATABASE_DOWN = "The database is unavailable; try again shortly."
#: Every 503 says when to try again (``Retry-After``): about a health check's interval.
RETRY_AFTER_SECONDS = 5


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def query_id_of(request) -> str:
    return str(getattr(request, "query_id", "") or "")


def error_body(status_code: int, message: str, query_id: str) -> dict:
    return {"status_code": status_code, "query_id": query_id, "error": message}


def upload_too_large_message() -> str:
    """The one 413 wording for a body or image file above DIGITS_MAX_UPLOAD_BYTES, in MiB."""
    from django.conf import settings

    limit = settings.DIGITS_MAX_UPLOAD_BYTES / (1024 * 1024)
    return f"The upload is too large: the limit is {limit:.3g} MiB."


def error_response(request, status_code: int, message: str | None = None) -> JsonResponse:
    if message is None and status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        message = upload_too_large_message()
    message = message or GENERIC_MESSAGES.get(status_code, "Request failed.")
    response = JsonResponse(
        error_body(status_code, message, query_id_of(request)), status=status_code
    )
    if status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def api_exception_handler(exc, context):
    """DRF ``EXCEPTION_HANDLER``: every handled error in the contract's shape."""
    request = context.get("request")
    headers = {}
    if isinstance(exc, PrediccionesError):
        code, message = exc.status_code, exc.message
        if getattr(exc, "retry_after", None):
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, image_errors.ImageError):
        code, message = IMAGE_ERROR_STATUS.get(type(exc), status.HTTP_400_BAD_REQUEST), exc.message
    elif isinstance(exc, drf_exceptions.MethodNotAllowed):
        code = exc.status_code
        message = f"Method {request.method} is not allowed here."
    elif isinstance(exc, drf_exceptions.UnsupportedMediaType):
        code = exc.status_code
        view = context.get("view")
        accepted = ", ".join(p.media_type for p in view.get_parsers()) if view else ""
        message = f"Unsupported content type: this endpoint accepts {accepted}."
    elif isinstance(exc, drf_exceptions.ValidationError):
        code, message = exc.status_code, _validation_message(exc.detail)
    elif isinstance(exc, drf_exceptions.ParseError):
        code, message = exc.status_code, "Malformed request body: it could not be parsed."
    elif isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        code, message = exc.status_code, str(exc.detail)
        auth_header = getattr(exc, "auth_header", None)  # set by DRF from authenticate_header
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
    elif isinstance(exc, drf_exceptions.Throttled):
        code, message = exc.status_code, GENERIC_MESSAGES[status.HTTP_429_TOO_MANY_REQUESTS]
        if exc.wait:
            headers["Retry-After"] = str(int(exc.wait) + 1)
    elif isinstance(exc, DatabaseError):
        logger.warning("database unavailable: %s", first_line(exc))
        code, message = status.HTTP_503_SERVICE_UNAVAILABLE, DATABASE_DOWN
    elif isinstance(exc, drf_exceptions.APIException):
        code = exc.status_code
        message = GENERIC_MESSAGES.get(code) or str(exc.detail)
    else:
        from django.core.exceptions import PermissionDenied
        from django.http import Http404

        if isinstance(exc, Http404):
            code, message = status.HTTP_404_NOT_FOUND, GENERIC_MESSAGES[404]
        elif isinstance(exc, PermissionDenied):
            code, message = status.HTTP_403_FORBIDDEN, GENERIC_MESSAGES[403]
        else:
            return None  # unexpected: Django logs it and handler500 answers
    response = error_response(request, code, message)
    for name, value in headers.items():
        response[name] = value
    return response


def _validation_message(detail) -> str:
    """Flatten DRF's ``{"field": ["msg", ...]}`` into one readable sentence."""
    if isinstance(detail, dict):
        parts = []
        for field, messages in detail.items():
            text = " ".join(
                str(m) for m in (messages if isinstance(messages, list) else [messages])
            )
            parts.append(text if field == "non_field_errors" else f"{field}: {text}")
        return " ".join(parts)
    if isinstance(detail, list):
        return " ".join(str(m) for m in detail)
    return str(detail)


def bad_request(request, exception=None):
    return error_response(request, status.HTTP_400_BAD_REQUEST)


def permission_denied(request, exception=None):
    return error_response(request, status.HTTP_403_FORBIDDEN)


def page_not_found(request, exception=None):
    return error_response(request, status.HTTP_404_NOT_FOUND)


def server_error(request):
    return error_response(request, status.HTTP_500_INTERNAL_SERVER_ERROR)
