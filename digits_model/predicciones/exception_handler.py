"""One place that turns every failure into the API's error shape::

    {"status_code": 4xx, "query_id": "...", "error": "a sentence a person understands",
     "code": "image_blank"}

``code`` is stable: a client tells errors apart by it, never by the sentence. :data:`ERRORS`
is the one table of what raises them (the service's errors, image errors from ``ml``, DRF's
and Django's), each with its status and code; :data:`STATUS_CODES` gives the code of an
answer made from a status alone (Django's error pages, the middleware's checks, nginx's own
answers in ``docker/nginx.conf``).
"""

import logging

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status

from . import exceptions as errors
from .ml import exceptions as image_errors
from .parsers import JSONTooDeepError

logger = logging.getLogger(__name__)

#: What raised an error -> (HTTP status, stable code). A class not listed answers as its
#: nearest listed base class (the operator commands' own errors never reach the API).
ERRORS: dict[type[BaseException], tuple[int, str]] = {
    # The request
    drf_exceptions.ValidationError: (400, "invalid_request"),
    drf_exceptions.ParseError: (400, "malformed_body"),
    JSONTooDeepError: (400, "malformed_body"),
    errors.MalformedBodyError: (400, "malformed_body"),
    drf_exceptions.NotAuthenticated: (401, "authentication_failed"),
    drf_exceptions.AuthenticationFailed: (401, "authentication_failed"),
    errors.AdminDisabledError: (403, "admin_disabled"),
    PermissionDenied: (403, "forbidden"),
    Http404: (404, "not_found"),
    drf_exceptions.MethodNotAllowed: (405, "method_not_allowed"),
    drf_exceptions.UnsupportedMediaType: (415, "unsupported_content_type"),
    drf_exceptions.Throttled: (429, "rate_limited"),
    # The upload
    errors.UploadTooLargeError: (413, "upload_too_large"),
    image_errors.ImageError: (400, "image_unreadable"),
    image_errors.UnreadableImageError: (400, "image_unreadable"),
    image_errors.ImageTooLargeError: (413, "image_too_large"),
    image_errors.UnsupportedImageError: (415, "unsupported_media_type"),
    image_errors.NoDigitError: (422, "image_blank"),
    # What the request names
    errors.UnknownModelError: (404, "model_not_found"),
    errors.UnknownQueryError: (404, "query_not_found"),
    errors.RegistryError: (409, "registry_conflict"),
    errors.DeploymentChangedError: (409, "deployment_changed"),
    # The service's state
    errors.PrediccionesError: (400, "bad_request"),
    errors.NoLiveModelError: (503, "no_model_loaded"),
    errors.DatabaseUnavailableError: (503, "database_unavailable"),
    DatabaseError: (503, "database_unavailable"),
    errors.PredictionLogError: (503, "prediction_not_logged"),
    errors.DecodeBusyError: (503, "decode_busy"),
}

#: An answer made from a status alone -> its code.
STATUS_CODES = {
    status.HTTP_400_BAD_REQUEST: "bad_request",
    status.HTTP_401_UNAUTHORIZED: "authentication_failed",
    status.HTTP_403_FORBIDDEN: "forbidden",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_411_LENGTH_REQUIRED: "length_required",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "upload_too_large",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_content_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "rate_limited",
    status.HTTP_500_INTERNAL_SERVER_ERROR: "internal_error",
    status.HTTP_503_SERVICE_UNAVAILABLE: "service_unavailable",
}
#: A Content-Length that is not a number of bytes (refused by the middleware).
INVALID_CONTENT_LENGTH = "invalid_content_length"

#: Every code an error body can carry, in the OpenAPI schema's enum.
CODES = sorted(
    {code for _, code in ERRORS.values()} | set(STATUS_CODES.values()) | {INVALID_CONTENT_LENGTH}
)

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


def error_status(exc: BaseException) -> tuple[int, str] | None:
    """(status, code) of an exception from :data:`ERRORS`, by its nearest listed class (any
    other DRF error: its own status, and that status's code); None for one the table does
    not know (a bug: Django logs it and answers 500)."""
    for cls in type(exc).__mro__:
        if cls in ERRORS:
            return ERRORS[cls]
    if isinstance(exc, drf_exceptions.APIException):
        return exc.status_code, STATUS_CODES.get(exc.status_code, "error")
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def query_id_of(request) -> str:
    return str(getattr(request, "query_id", "") or "")


def error_body(status_code: int, message: str, query_id: str, code: str) -> dict:
    return {"status_code": status_code, "query_id": query_id, "error": message, "code": code}


def upload_too_large_message() -> str:
    """The one 413 wording for a body or image file above DIGITS_MAX_UPLOAD_BYTES, in MiB."""
    from django.conf import settings

    limit = settings.DIGITS_MAX_UPLOAD_BYTES / (1024 * 1024)
    return f"The upload is too large: the limit is {limit:.3g} MiB."


def error_response(
    request, status_code: int, message: str | None = None, code: str | None = None
) -> JsonResponse:
    """The error shape for ``status_code``; ``code`` defaults to the status's
    (:data:`STATUS_CODES`)."""
    if message is None and status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        message = upload_too_large_message()
    message = message or GENERIC_MESSAGES.get(status_code, "Request failed.")
    code = code or STATUS_CODES.get(status_code, "error")
    response = JsonResponse(
        error_body(status_code, message, query_id_of(request), code), status=status_code
    )
    if status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def api_exception_handler(exc, context):
    """DRF ``EXCEPTION_HANDLER``: every handled error in the contract's shape."""
    request = context.get("request")
    view = context.get("view")
    answer = exception_answer(
        exc,
        query_id=query_id_of(request),
        method=getattr(request, "method", ""),
        accepted=", ".join(p.media_type for p in view.get_parsers()) if view else "",
    )
    if answer is None:
        return None  # unexpected: Django logs it and handler500 answers
    status_code, body, headers = answer
    response = JsonResponse(body, status=status_code)
    for name, value in headers.items():
        response[name] = value
    return response


def exception_answer(
    exc: BaseException, *, query_id: str, method: str = "", accepted: str = ""
) -> tuple[int, dict, dict[str, str]] | None:
    """(status, error body, headers) for an exception the table knows; None for a bug.

    ``method`` is the request's (a 405 names it), ``accepted`` the media types the endpoint
    takes (a 415 lists them). Every 503 carries ``Retry-After``.
    """
    known = error_status(exc)
    if known is None:
        return None
    status_code, code = known
    headers = _headers(exc)
    if status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    body = error_body(status_code, _message(exc, status_code, method, accepted), query_id, code)
    return status_code, body, headers


def _message(exc: BaseException, status_code: int, method: str, accepted: str) -> str:
    """The sentence for a person: the error's own, or one that says what to do."""
    if isinstance(exc, errors.PrediccionesError | image_errors.ImageError):
        return exc.message
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return f"Method {method} is not allowed here."
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return f"Unsupported content type: this endpoint accepts {accepted}."
    if isinstance(exc, drf_exceptions.ValidationError):
        return _validation_message(exc.detail)
    if isinstance(exc, drf_exceptions.ParseError):
        return "Malformed request body: it could not be parsed."
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return str(exc.detail)
    if isinstance(exc, DatabaseError):
        logger.warning("database unavailable: %s", first_line(exc))
        return DATABASE_DOWN
    if status_code in GENERIC_MESSAGES or not isinstance(exc, drf_exceptions.APIException):
        return GENERIC_MESSAGES.get(status_code, "Request failed.")
    return str(exc.detail)


def _headers(exc: BaseException) -> dict[str, str]:
    """``Retry-After`` of a throttle or a busy decoder, ``WWW-Authenticate`` of a 401."""
    headers = {}
    if getattr(exc, "retry_after", None):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, drf_exceptions.Throttled) and exc.wait:
        headers["Retry-After"] = str(int(exc.wait) + 1)
    auth_header = getattr(exc, "auth_header", None)  # set by DRF from authenticate_header
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    return headers


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
