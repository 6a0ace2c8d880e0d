"""``POST /predict/``, written once for every server path.

The DRF view (``apis.PredictApi``: the test client, the WSGI fallback, the OpenAPI schema)
and the ASGI fast lane (``fast_lane``) both call :func:`predict` with the raw body: the form
is parsed once from the bytes (``multipart``), validated with the view's messages, and
answered with the fields the view's ``OutputSerializer`` documents. :func:`authorize` runs
the API key check and the rate limit DRF runs before the view, for the path without DRF.
Errors are raised as the exceptions ``exception_handler`` maps to status and code.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from django.conf import settings
from rest_framework.exceptions import (
    AuthenticationFailed,
    Throttled,
    UnsupportedMediaType,
    ValidationError,
)

from .exception_handler import upload_too_large_message
from .exceptions import FormLimitError, UploadTooLargeError
from .multipart import Form, boundary_of, parse_form
from .prediction_log.writing import LogRow
from .security import ApiKeyAuthentication, PredictRateThrottle
from .services.predictions import PredictionResult, prediction_create

#: Who may call the endpoint, and how often: the view's ``authentication_classes`` and
#: ``throttle_classes``, and what :func:`authorize` runs.
AUTHENTICATION = ApiKeyAuthentication
THROTTLE = PredictRateThrottle
#: The bodies the endpoint takes, as its 415 lists them (the view's parsers).
MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
MEDIA_TYPES = (MULTIPART, URLENCODED)
#: The ``image`` field's messages (the view's ``InputSerializer`` declares the same).
IMAGE_MESSAGES = {
    "required": "Send the image as a multipart/form-data file field named 'image'.",
    "invalid": "The 'image' field must be a file upload, not text.",
    "empty": "The uploaded image file is empty.",
    "no_name": "The uploaded image has no filename.",
}
#: The ``model`` field's, as DRF's ``CharField`` words them.
MODEL_NOT_TEXT = "Not a valid string."
MODEL_NULL_CHARACTER = "Null characters are not allowed."


@dataclass(frozen=True, slots=True)
class PredictAnswer:
    """The 200's body, and the fields the request's access line and metrics add."""

    body: dict
    log_fields: dict


def authorize(request) -> None:
    """The API key check and the rate limit, as DRF runs them before the view.

    ``request`` has Django's ``META`` (``REMOTE_ADDR``, ``HTTP_X_API_KEY``...).

    Raises
    ------
    AuthenticationFailed
        A key is required and missing or wrong (``auth_header`` is its challenge).
    Throttled
        Over ``DIGITS_PREDICT_RATE``, or this address failed to authenticate too often.
    """
    authentication = AUTHENTICATION()
    try:
        authentication.authenticate(request)
    except AuthenticationFailed as exc:
        exc.auth_header = authentication.authenticate_header(request)
        raise
    throttle = THROTTLE()
    if not throttle.allow_request(request, None):
        raise Throttled(throttle.wait())


def predict(
    *,
    body: bytes,
    content_type: str,
    query_id: uuid.UUID,
    log: Callable[[LogRow], None] | None = None,
) -> PredictAnswer:
    """Read the form in ``body``, predict, log, and return the answer.

    ``log`` takes the log row instead of committing it here (the fast lane commits it
    through the group commit and waits on the loop); whoever passes it answers only once the
    row is committed.

    Raises
    ------
    UnsupportedMediaType, MalformedBodyError, FormLimitError, ValidationError
        The body is not a form this endpoint takes, or its fields are wrong.
    UploadTooLargeError
        The image file is above ``DIGITS_MAX_UPLOAD_BYTES``.
    Exception
        What ``prediction_create`` raises (unknown model, image errors, no model, log failure).
    """
    image, model_ref = validated(read_form(body, content_type))
    result = prediction_create(image=image, model_ref=model_ref, query_id=query_id, log=log)
    return PredictAnswer(
        body=answer_body(result),
        log_fields={
            "model": result.version.model_name,
            "model_version": result.version.version,
            "prediction": result.prediction,
            "confidence": round(result.confidence, 4),
            "model_seconds": result.seconds,
        },
    )


def read_form(body: bytes, content_type: str) -> Form:
    """The form in ``body``; an empty body is an empty form, whatever its type (as DRF)."""
    if not body:
        return Form()
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == MULTIPART:
        return parse_form(
            body,
            boundary_of(content_type),
            max_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
            max_files=settings.DATA_UPLOAD_MAX_NUMBER_FILES,
        )
    if media_type == URLENCODED:
        form = Form()
        try:
            pairs = parse_qsl(
                body.decode("utf-8", "replace"),
                keep_blank_values=True,
                max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
            )
        except ValueError:
            raise FormLimitError() from None
        for name, value in pairs:
            form.fields.setdefault(name, []).append(value)
        return form
    raise UnsupportedMediaType(media_type)


def validated(form: Form) -> tuple[bytes, str | None]:
    """The image's bytes and the model reference (None: the default), as the view's
    ``InputSerializer`` reads a form: a name's last value counts, files after fields."""
    errors: dict[str, list[str]] = {}
    image = b""
    if form.files.get("image"):
        image = form.files["image"][-1].data
        if not image:
            errors["image"] = [IMAGE_MESSAGES["empty"]]
    elif "image" in form.fields:
        errors["image"] = [IMAGE_MESSAGES["invalid"]]
    else:
        errors["image"] = [IMAGE_MESSAGES["required"]]
    model_ref = None
    if form.files.get("model"):
        errors["model"] = [MODEL_NOT_TEXT]
    elif form.fields.get("model"):
        model_ref = form.fields["model"][-1].strip()
        if "\x00" in model_ref:
            errors["model"] = [MODEL_NULL_CHARACTER]
    if errors:
        raise ValidationError(errors)
    if len(image) > settings.DIGITS_MAX_UPLOAD_BYTES:
        raise UploadTooLargeError(upload_too_large_message())
    return image, model_ref or None


def format_seconds(seconds: float) -> str:
    """Seconds as ``execution_time`` answers them: a string ending in " seg" (``"0.0013 seg"``),
    with enough decimals never to show 0."""
    decimals = 4
    if 0 < seconds < 1e-3:
        decimals = max(4, 1 - math.floor(math.log10(seconds)))
    return f"{seconds:.{decimals}f} seg"


def answer_body(result: PredictionResult) -> dict:
    """The 200's body: what ``PredictApi.OutputSerializer`` renders (a test compares them),
    built directly."""
    return {
        "status_code": 200,
        "query_id": str(result.query_id),
        "prediction": int(result.prediction),
        "execution_time": format_seconds(result.seconds),
        "model": result.version.model_name,
        "model_version": int(result.version.version),
        "confidence": round(float(result.confidence), 4),
        "alternatives": [
            {"digit": int(digit), "probability": round(float(probability), 4)}
            for digit, probability in result.alternatives
        ],
        "input_8x8": [list(row) for row in result.grid],
    }
