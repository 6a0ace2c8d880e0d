"""JSON endpoints. Each validates its input, calls one service or selector, and answers."""

from __future__ import annotations

import math

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from . import readiness, schema, selectors
from .exception_handler import RETRY_AFTER_SECONDS, upload_too_large_message
from .exceptions import UploadTooLargeError
from .middleware import annotate_request
from .parsers import BoundedJSONParser
from .security import (
    AdminTokenAuthentication,
    ApiKeyAuthentication,
    FeedbackKeyAuthentication,
    FeedbackRateThrottle,
    PredictRateThrottle,
    label_source,
)
from .services import registry
from .services.predictions import feedback_record, prediction_create
from .serving import get_router


def format_seconds(seconds: float) -> str:
    """Seconds as ``execution_time`` answers them: a string ending in " seg" (``"0.0013 seg"``),
    with enough decimals never to show 0."""
    decimals = 4
    if 0 < seconds < 1e-3:
        decimals = max(4, 1 - math.floor(math.log10(seconds)))
    return f"{seconds:.{decimals}f} seg"


class SecondsField(serializers.CharField):
    """Seconds (a float) as a string ending in " seg", e.g. ``"0.0013 seg"``."""

    def to_representation(self, value) -> str:
        return format_seconds(value)


class ProbabilityField(serializers.FloatField):
    """A probability, rounded to four decimals."""

    def to_representation(self, value) -> float:
        return round(float(value), 4)


class GridField(serializers.ListField):
    """The 8x8 grid, already rows of Python ints: passed through rather than re-validated
    value by value (64 child fields would cost more than the rest of the answer)."""

    def to_representation(self, value) -> list[list[int]]:
        return [list(row) for row in value]


@extend_schema_field(OpenApiTypes.INT)
class OkStatusField(serializers.Field):
    """``status_code`` in the body of a successful answer: always 200."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value) -> int:
        return status.HTTP_200_OK


class AlternativeSerializer(serializers.Serializer):
    """One of the next most likely digits, from a ``(digit, probability)`` pair."""

    digit = serializers.IntegerField(min_value=0, max_value=9)
    probability = ProbabilityField(min_value=0, max_value=1)

    def to_representation(self, instance) -> dict:
        digit, probability = instance
        return super().to_representation({"digit": digit, "probability": probability})


class PredictApi(APIView):
    """``POST /predict/``: multipart ``image`` (+ optional ``model``) -> the digit."""

    parser_classes = [MultiPartParser, FormParser]
    authentication_classes = [ApiKeyAuthentication]
    throttle_classes = [PredictRateThrottle]

    class InputSerializer(serializers.Serializer):
        image = serializers.FileField(
            help_text="The picture of one digit: JPEG, PNG, BMP, GIF, TIFF or WebP.",
            error_messages={
                "required": "Send the image as a multipart/form-data file field named 'image'.",
                "invalid": "The 'image' field must be a file upload, not text.",
                "empty": "The uploaded image file is empty.",
                "no_name": "The uploaded image has no filename.",
            },
        )
        # No max_length: any name not in the registry, however long, is a 404.
        model = serializers.CharField(
            required=False,
            allow_blank=True,
            help_text="Registered model name (`clf.pickle`) or pinned version "
            "(`clf.pickle:3`); absent or blank: the default model. See GET /models/.",
        )

    class OutputSerializer(serializers.Serializer):
        """A ``PredictionResult`` as ``POST /predict/`` answers it (``status_code``,
        ``query_id``, ``prediction`` and ``execution_time`` keep the original contract's
        names and types)."""

        status_code = OkStatusField()
        query_id = serializers.UUIDField()
        prediction = serializers.IntegerField(min_value=0, max_value=9)
        execution_time = SecondsField(
            source="seconds", help_text='Model-side seconds, e.g. "0.0013 seg".'
        )
        model = serializers.CharField(source="version.model_name")
        model_version = serializers.IntegerField(source="version.version")
        confidence = ProbabilityField(min_value=0, max_value=1)
        alternatives = AlternativeSerializer(
            many=True,
            help_text="The next two most likely digits with their probabilities, most likely "
            "first.",
        )
        input_8x8 = GridField(
            source="grid",
            child=serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=16)),
            help_text="The 8x8 grid (values 0..16) the model saw.",
        )

    #: One instance renders every answer: creating a serializer deep-copies its fields,
    #: about ten times the cost of rendering a result with it (rendering keeps no state).
    output_serializer = OutputSerializer()

    @extend_schema(
        operation_id="predict",
        summary="Read the digit in an uploaded image",
        request={"multipart/form-data": InputSerializer},
        responses={
            200: OpenApiResponse(OutputSerializer, description="The digit and who answered."),
            **schema.error_responses(*schema.PREDICT_ERRORS),
        },
        examples=[schema.PREDICT_EXAMPLE],
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["image"]
        if upload.size > settings.DIGITS_MAX_UPLOAD_BYTES:
            raise UploadTooLargeError(upload_too_large_message())
        result = prediction_create(
            image=upload.read(),
            model_ref=serializer.validated_data.get("model") or None,
            query_id=request.query_id,
        )
        annotate_request(
            request,
            model=result.version.model_name,
            model_version=result.version.version,
            prediction=result.prediction,
            confidence=round(result.confidence, 4),
            model_seconds=result.seconds,
        )
        return Response(self.output_serializer.to_representation(result))


class FeedbackApi(APIView):
    """``POST /feedback/``: the true label for a logged prediction (a second one replaces it),
    recorded with its source (API key id, else client address)."""

    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]
    authentication_classes = [FeedbackKeyAuthentication]
    throttle_classes = [FeedbackRateThrottle]

    class InputSerializer(serializers.Serializer):
        query_id = serializers.UUIDField(help_text="The query_id a /predict/ answer gave.")
        label = serializers.IntegerField(min_value=0, max_value=9, help_text="The true digit.")

    @extend_schema(
        operation_id="feedback",
        summary="Record the true digit for a logged prediction",
        request=InputSerializer,
        responses={
            200: schema.FEEDBACK_RESPONSE,
            **schema.error_responses(400, 401, 404, 415, 429),
        },
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = feedback_record(**serializer.validated_data, source=label_source(request))
        return Response(
            {
                "status_code": status.HTTP_200_OK,
                "query_id": str(row.query_id),
                "label": row.label,
                "prediction": row.prediction,
                "correct": row.label == row.prediction,
                "model": row.model_version.model.name,
                "model_version": row.model_version.version,
            }
        )


class ModelListApi(APIView):
    """``GET /models/``: every version, which is live, and the traffic split."""

    @extend_schema(operation_id="models_list", responses={200: schema.MODEL_LIST_RESPONSE})
    def get(self, request):
        return Response(
            {"status_code": status.HTTP_200_OK, "models": selectors.model_version_list()}
        )


class HealthApi(APIView):
    """``GET /health/``: readiness. 200 when this process can answer ``/predict/`` now (a model
    loaded, the database taking writes), else 503. The artifact store's state is reported
    without failing readiness (``status`` "degraded")."""

    @extend_schema(
        operation_id="health",
        responses={200: schema.HEALTH_RESPONSE, 503: schema.HEALTH_RESPONSE},
    )
    def get(self, request):
        # The router keeps its last snapshot when the database is down.
        health = readiness.readiness_get(routes=get_router().routes())
        code = status.HTTP_200_OK if health.ready else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(
            {
                "status_code": code,
                "status": health.status,
                "reason": health.reason,
                "model_loaded": health.model_loaded,
                "models": health.models,
                "checks": health.checks,
            },
            status=code,
            headers=None if health.ready else {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


class LivenessApi(APIView):
    """``GET /health/live/``: the process answers (no dependencies checked)."""

    @extend_schema(operation_id="health_live", responses={200: schema.LIVENESS_RESPONSE})
    def get(self, request):
        return Response({"status_code": status.HTTP_200_OK, "status": "alive"})


def expect_live_field() -> serializers.IntegerField:
    """Every admin action takes it: act only while this version is live (a compare-and-swap:
    409, nothing done, when another operator changed the deployment first)."""
    return serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="Act only if this version is live (what GET /models/ showed); 409 otherwise.",
    )


class AdminApi(APIView):
    """Base for operator actions: ``Authorization: Bearer $DIGITS_ADMIN_TOKEN``."""

    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]
    authentication_classes = [AdminTokenAuthentication]

    def respond(self, name: str):
        get_router().invalidate()
        return Response(
            {"status_code": status.HTTP_200_OK, "models": selectors.model_version_list(name=name)}
        )


class ModelCanaryApi(AdminApi):
    """``POST /admin/models/<name>/canary/``: ``version`` gets ``percent`` (0..99) of traffic."""

    class InputSerializer(serializers.Serializer):
        version = serializers.IntegerField(min_value=1)
        percent = serializers.IntegerField(min_value=0, max_value=99)
        expect_live = expect_live_field()

    @extend_schema(
        operation_id="admin_canary",
        request=InputSerializer,
        responses={200: schema.MODEL_LIST_RESPONSE, **schema.ADMIN_ERRORS},
    )
    def post(self, request, name):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        registry.deployment_set_candidate(name=name, actor="admin-api", **serializer.validated_data)
        return self.respond(name)


class ModelPromoteApi(AdminApi):
    """``POST /admin/models/<name>/promote/``: the candidate (or ``version``) goes live."""

    class InputSerializer(serializers.Serializer):
        version = serializers.IntegerField(min_value=1, required=False)
        expect_live = expect_live_field()

    @extend_schema(
        operation_id="admin_promote",
        request=InputSerializer,
        responses={200: schema.MODEL_LIST_RESPONSE, **schema.ADMIN_ERRORS},
    )
    def post(self, request, name):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        registry.deployment_promote(
            name=name,
            version=serializer.validated_data.get("version"),
            expect_live=serializer.validated_data.get("expect_live"),
            actor="admin-api",
        )
        return self.respond(name)


class ModelRollbackApi(AdminApi):
    """``POST /admin/models/<name>/rollback/``: stop the candidate, or restore the previous live."""

    class InputSerializer(serializers.Serializer):
        expect_live = expect_live_field()

    @extend_schema(
        operation_id="admin_rollback",
        request=InputSerializer,
        responses={200: schema.MODEL_LIST_RESPONSE, **schema.ADMIN_ERRORS},
    )
    def post(self, request, name):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        registry.deployment_rollback(
            name=name, expect_live=serializer.validated_data.get("expect_live"), actor="admin-api"
        )
        return self.respond(name)
