"""Per-request context: a query id, the upload size limit, and JSON for every error page."""

import uuid

from django.conf import settings
from rest_framework import status

from .errors import error_response


class RequestContextMiddleware:
    """Give each request a ``query_id``, refuse oversized bodies before reading them, and
    turn any non-JSON error page (Django's 404, 405, 400...) into the API's error shape."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.query_id = uuid.uuid4()
        response = self._check_length(request) or self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            response = error_response(request, response.status_code)
        response["X-Query-Id"] = str(request.query_id)
        return response

    @staticmethod
    def _check_length(request):
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return error_response(request, status.HTTP_400_BAD_REQUEST, "Invalid Content-Length.")
        if length < 0:
            return error_response(request, status.HTTP_400_BAD_REQUEST, "Invalid Content-Length.")
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            limit_mb = settings.DIGITS_MAX_UPLOAD_BYTES / (1024 * 1024)
            return error_response(
                request,
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                f"Upload too large: the limit is {limit_mb:g} MiB.",
            )
        return None
