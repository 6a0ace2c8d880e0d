"""OpenAPI pieces shared by the views' ``extend_schema`` annotations (drf-spectacular).

The one error shape, what each error status means, and serializers that describe the
responses of views that answer with plain dicts. They only document: no view validates its
output with them.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from .exception_handler import CODES
from .models import Stage


class AutoSchema(openapi.AutoSchema):
    """Names nested serializers after their view: ``PredictApi.InputSerializer`` becomes the
    component ``PredictInput`` (every view has its own ``InputSerializer``)."""

    def get_serializer_name(self, serializer, direction):
        name = super().get_serializer_name(serializer, direction)
        qualname = type(serializer).__qualname__
        if "." in qualname and "<locals>" not in qualname:
            outer = qualname.rsplit(".", 1)[0].replace(".", "")
            name = outer.removesuffix("Api") + name
        return name


class ErrorSerializer(serializers.Serializer):
    """Every failure, from every endpoint: a 4xx (or 503), a sentence for a person, and a
    stable code for a program."""

    status_code = serializers.IntegerField(help_text="The HTTP status, repeated in the body.")
    query_id = serializers.UUIDField(
        help_text="Id of this request (also in the X-Query-Id header); quote it in bug reports."
    )
    error = serializers.CharField(help_text="What went wrong, in a sentence a person understands.")
    code = serializers.ChoiceField(
        choices=CODES,
        help_text="What went wrong, as a stable code to act on (the sentence may change).",
    )


ERROR_DESCRIPTIONS = {
    400: "Bad form: a missing or empty field, a text instead of a file, an undecodable image.",
    401: "Missing or wrong key (the API key when DIGITS_API_KEYS is set, or on /feedback/ "
    "with DIGITS_FEEDBACK_REQUIRE_KEY; the admin token).",
    403: "The admin API is disabled (DIGITS_ADMIN_TOKEN is not set).",
    404: "Unknown model or version, unknown query_id, or no such endpoint.",
    405: "Wrong HTTP method for this endpoint (e.g. GET on /predict/).",
    409: "The registry action is not possible in the current state.",
    411: "A chunked upload without Content-Length (the size must be known before reading).",
    413: "The upload (or the image's pixel count) is over the configured limit.",
    415: "Not a supported image type, or the request is not multipart/form-data.",
    422: "The image decodes but no digit (ink) was found in it.",
    429: "Over a rate limit (/predict/: DIGITS_PREDICT_RATE when set; /feedback/: "
    "DIGITS_FEEDBACK_RATE), or too many failed authentications from this address; see "
    "Retry-After.",
    503: "Not ready: no model loaded yet, the prediction could not be recorded, or (with "
    "Retry-After) this worker is busy decoding other large images.",
}

ERROR_EXAMPLES = {
    400: (
        "image: Send the image as a multipart/form-data file field named 'image'.",
        "invalid_request",
    ),
    404: ("Unknown model 'nope.pickle'. Registered models: clf.pickle.", "model_not_found"),
    405: ("Method GET is not allowed here.", "method_not_allowed"),
    413: ("The upload is too large: the limit is 10 MiB.", "upload_too_large"),
    415: (
        "Unsupported file type: send a JPEG, PNG, BMP, GIF, TIFF or WebP image.",
        "unsupported_media_type",
    ),
    422: ("No digit found in the image: it looks blank or uniform.", "image_blank"),
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """``{code: OpenApiResponse(ErrorSerializer)}`` for ``extend_schema(responses=...)``."""
    responses = {}
    for code in codes:
        examples = []
        if code in ERROR_EXAMPLES:
            examples.append(
                OpenApiExample(
                    f"{code}",
                    value={
                        "status_code": code,
                        "query_id": "70cd7b2a-dd66-4fce-b13a-cede33c80422",
                        "error": ERROR_EXAMPLES[code][0],
                        "code": ERROR_EXAMPLES[code][1],
                    },
                    response_only=True,
                    status_codes=[str(code)],
                )
            )
        responses[code] = OpenApiResponse(
            ErrorSerializer, description=ERROR_DESCRIPTIONS[code], examples=examples
        )
    return responses


#: The status codes /predict/ can answer with the error shape.
PREDICT_ERRORS = (400, 401, 404, 405, 411, 413, 415, 422, 429, 503)

#: What every admin action can answer besides 200.
ADMIN_ERRORS = error_responses(400, 401, 403, 404, 409)

PREDICT_EXAMPLE = OpenApiExample(
    "A 2 read by clf.pickle",
    value={
        "status_code": 200,
        "query_id": "70cd7b2a-dd66-4fce-b13a-cede33c80422",
        "prediction": 2,
        "execution_time": "0.0014 seg",
        "model": "clf.pickle",
        "model_version": 1,
        "confidence": 0.97,
        "alternatives": [{"digit": 3, "probability": 0.02}, {"digit": 7, "probability": 0.01}],
        "input_8x8": [
            [0, 0, 0, 4, 15, 12, 0, 0],
            [0, 0, 3, 16, 15, 14, 0, 0],
            [0, 0, 8, 13, 8, 16, 0, 0],
            [0, 0, 1, 6, 15, 11, 0, 0],
            [0, 1, 8, 13, 15, 1, 0, 0],
            [0, 9, 16, 16, 5, 0, 0, 0],
            [0, 3, 13, 16, 16, 11, 5, 0],
            [0, 0, 0, 3, 11, 16, 9, 0],
        ],
    },
    response_only=True,
    status_codes=["200"],
)


class ModelVersionSerializer(serializers.Serializer):
    """One registered version, as ``GET /models/`` and ``manage.py models --json`` list it."""

    model = serializers.CharField()
    version = serializers.IntegerField()
    live = serializers.BooleanField(help_text="Answers routed traffic.")
    stage = serializers.ChoiceField(
        choices=Stage.choices,
        help_text="live; candidate; previous (one rollback away); archived (was live, "
        "replaced); registered (never live).",
    )
    candidate_percent = serializers.IntegerField(help_text="Canary share (0 for others).")
    traffic_percent = serializers.IntegerField(help_text="Share of routed requests it answers.")
    sha256 = serializers.CharField()
    holdout = inline_serializer(
        "HoldoutScore",
        fields={
            "accuracy": serializers.FloatField(),
            "n": serializers.IntegerField(allow_null=True),
        },
        allow_null=True,
        help_text="Accuracy on the fixed validation holdout: the same rows for every version, "
        "so these figures compare. Null when the version was not scored there.",
    )
    gate = inline_serializer(
        "GateScore",
        fields={
            "set": serializers.CharField(),
            "n": serializers.IntegerField(allow_null=True),
            "accuracy": serializers.FloatField(),
            "against_version": serializers.IntegerField(allow_null=True),
            "against_accuracy": serializers.FloatField(),
        },
        allow_null=True,
        help_text="For a retrained version: its accuracy and the then-live version's, on the "
        "same validation rows (holdout plus held-out feedback). Null otherwise.",
    )
    metrics = serializers.DictField(help_text="Validation metrics recorded at registration.")
    sklearn_version = serializers.CharField()
    training_data = serializers.DictField()
    parent_version = serializers.IntegerField(allow_null=True)
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()


MODEL_LIST_RESPONSE = inline_serializer(
    "ModelList",
    fields={
        "status_code": serializers.IntegerField(),
        "models": ModelVersionSerializer(many=True),
    },
)

HEALTH_RESPONSE = inline_serializer(
    "Health",
    fields={
        "status_code": serializers.IntegerField(),
        "status": serializers.ChoiceField(
            choices=["ok", "degraded", "unavailable"],
            help_text="ok; degraded (ready, but the artifact store is unreachable); "
            "unavailable (503: no model loaded, or the database takes no writes).",
        ),
        "reason": serializers.CharField(
            help_text='Why the status is not "ok", in one sentence (names no host, bucket or '
            'file); "" when ok.',
        ),
        "model_loaded": serializers.BooleanField(),
        "models": serializers.DictField(
            child=inline_serializer(
                "HealthModel",
                fields={
                    "live_version": serializers.IntegerField(),
                    "candidate_version": serializers.IntegerField(allow_null=True),
                    "candidate_percent": serializers.IntegerField(),
                },
            )
        ),
        "checks": serializers.DictField(
            child=serializers.CharField(),
            help_text='database: "ok" or "error: ..."; artifact_store: "ok" or "unreachable: ...".',
        ),
    },
)

LIVENESS_RESPONSE = inline_serializer(
    "Liveness",
    fields={"status_code": serializers.IntegerField(), "status": serializers.CharField()},
)

FEEDBACK_RESPONSE = inline_serializer(
    "FeedbackRecorded",
    fields={
        "status_code": serializers.IntegerField(),
        "query_id": serializers.UUIDField(),
        "label": serializers.IntegerField(min_value=0, max_value=9),
        "prediction": serializers.IntegerField(min_value=0, max_value=9),
        "correct": serializers.BooleanField(),
        "model": serializers.CharField(),
        "model_version": serializers.IntegerField(),
    },
)


#: The two ways a request identifies itself, as OpenAPI security schemes.
SECURITY_SCHEMES = {
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "Only when the server sets DIGITS_API_KEYS.",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "DIGITS_ADMIN_TOKEN; without it the admin API answers 403.",
    },
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "predicciones.security.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return SECURITY_SCHEMES[self.name]


class AdminTokenScheme(ApiKeyScheme):
    target_class = "predicciones.security.AdminTokenAuthentication"
    name = "adminToken"


#: Operations that take the optional API key, and those behind the admin token.
API_KEY_OPERATIONS = {"predict", "feedback"}
ADMIN_OPERATIONS = {"admin_canary", "admin_promote", "admin_rollback"}


def add_security(result, generator, request, public):
    """drf-spectacular postprocessing hook: declare the API key and the admin token.

    The API key is optional (``{}`` first): it is only checked when DIGITS_API_KEYS is set.
    """
    components = result.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            op_id = operation.get("operationId")
            if op_id in API_KEY_OPERATIONS:
                operation["security"] = [{}, {"apiKey": []}]
            elif op_id in ADMIN_OPERATIONS:
                operation["security"] = [{"adminToken": []}]
    return result
