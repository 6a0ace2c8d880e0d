"""Every error the API answers carries a stable ``code``, and every code is documented: in the
OpenAPI schema's enum and in README's status table.

Each case below makes the service answer one error for real (the Django test client through
the whole middleware and DRF stack, the real database and artifact folder); what cannot come
from this process (nginx's own answers) is read from ``docker/nginx.conf``.
"""

from __future__ import annotations

import io
import json
import re
import uuid

import pytest
from django.db import OperationalError, connection
from PIL import Image

from harness.hostile import png_bomb
from harness.paths import REPO_DIR
from harness.rendering import draw_digit_image
from predicciones import storage
from predicciones.exception_handler import CODES, ERRORS, STATUS_CODES
from predicciones.models import ModelVersion
from predicciones.services.registry import shipped_model_bootstrap
from predicciones.serving import reset_router
from predicciones.tests.conftest import decode_slot_held

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_store")]

TOKEN = "admin-token-0123456789"
README = (REPO_DIR / "README.md").read_text()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def predict(client, data: bytes, name: str = "digit.png", **form):
    upload = io.BytesIO(data)
    upload.name = name
    return client.post("/predict/", {"image": upload, **form})


def admin(client, action: str, **data):
    return client.post(
        f"/admin/models/clf.pickle/{action}/",
        data,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _deep_feedback(client):
    body = '{"query_id": "%s", "label": %s}' % (uuid.uuid4(), nested(20))  # noqa: UP031
    return client.post("/feedback/", body, content_type="application/json")


def _rate_limited(client, settings):
    settings.DIGITS_PREDICT_RATE = "1/min"
    predict(client, draw_digit_image("7"))
    return predict(client, draw_digit_image("7"))


def _conflict(client, settings):
    settings.DIGITS_ADMIN_TOKEN = TOKEN
    return admin(client, "promote")  # no candidate to promote


def _changed(client, settings):
    settings.DIGITS_ADMIN_TOKEN = TOKEN
    return admin(client, "rollback", expect_live=7)


def _no_model(client, settings):
    version = ModelVersion.objects.get()
    storage.get_store().delete(version.artifact_key)  # the live artifact is gone
    reset_router()
    return predict(client, draw_digit_image("7"))


def _database_refusing(client, settings):
    reset_router()  # no routing snapshot to fall back on

    def refuse(execute, sql, params, many, context):
        raise OperationalError("could not connect to server: Connection refused")

    with connection.execute_wrapper(refuse):
        return predict(client, draw_digit_image("7"))


def _not_logged(client, settings):
    assert predict(client, draw_digit_image("7")).status_code == 200  # routed and loaded

    def refuse_inserts(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("INSERT"):
            raise OperationalError("database or disk is full")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse_inserts):
        return predict(client, draw_digit_image("7"))


def _decode_busy(client, settings):
    with decode_slot_held(settings):
        return predict(client, png(Image.new("L", (1500, 1500), 255)))


#: (code, status, how to get it). Every code the API answers is here.
CASES = [
    ("invalid_request", 400, lambda c, s: c.post("/predict/", {})),
    (
        "malformed_body",
        400,
        lambda c, s: c.post("/feedback/", "{oops", content_type="application/json"),
    ),
    ("malformed_body", 400, lambda c, s: _deep_feedback(c)),
    (
        "image_unreadable",
        400,
        lambda c, s: predict(c, draw_digit_image("7", fmt="JPEG")[:900], "cut.jpg"),
    ),
    (
        "invalid_content_length",
        400,
        lambda c, s: c.generic("POST", "/predict/", b"", CONTENT_LENGTH="abc"),
    ),
    (
        "authentication_failed",
        401,
        lambda c, s: (
            setattr(s, "DIGITS_API_KEYS", ["a-key-of-sixteen-chars"]),
            predict(c, draw_digit_image("7")),
        )[1],
    ),
    ("admin_disabled", 403, lambda c, s: c.post("/admin/models/clf.pickle/promote/")),
    ("not_found", 404, lambda c, s: c.get("/nowhere/")),
    ("model_not_found", 404, lambda c, s: predict(c, draw_digit_image("7"), model="nope.pickle")),
    (
        "query_not_found",
        404,
        lambda c, s: c.post(
            "/feedback/",
            {"query_id": str(uuid.uuid4()), "label": 1},
            content_type="application/json",
        ),
    ),
    ("method_not_allowed", 405, lambda c, s: c.get("/predict/")),
    ("registry_conflict", 409, _conflict),
    ("deployment_changed", 409, _changed),
    (
        "length_required",
        411,
        lambda c, s: c.generic("POST", "/predict/", b"x", HTTP_TRANSFER_ENCODING="chunked"),
    ),
    (
        "upload_too_large",
        413,
        lambda c, s: c.generic("POST", "/predict/", b"", CONTENT_LENGTH="999999999"),
    ),
    ("image_too_large", 413, lambda c, s: predict(c, png_bomb(), "bomb.png")),
    ("unsupported_media_type", 415, lambda c, s: predict(c, b"just some text", "notes.jpg")),
    (
        "unsupported_content_type",
        415,
        lambda c, s: c.post("/predict/", {"image": "x"}, content_type="application/json"),
    ),
    ("image_blank", 422, lambda c, s: predict(c, png(Image.new("L", (200, 200), 255)))),
    ("rate_limited", 429, _rate_limited),
    ("no_model_loaded", 503, _no_model),
    ("database_unavailable", 503, _database_refusing),
    ("prediction_not_logged", 503, _not_logged),
    ("decode_busy", 503, _decode_busy),
]


@pytest.mark.parametrize(
    ("code", "status", "make"), CASES, ids=[f"{code}-{i}" for i, (code, _, _) in enumerate(CASES)]
)
def test_each_error_answers_its_documented_code(client, settings, code, status, make):
    shipped_model_bootstrap()
    response = make(client, settings)
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) == {"status_code", "query_id", "error", "code"}
    assert body["code"] == code, body
    assert body["status_code"] == status
    assert code in CODES and f"`{code}`" in README


def test_every_code_is_in_the_schema_enum_and_readme(client):
    spec = client.get("/api/schema/", {"format": "json"}).json()
    schemas = spec["components"]["schemas"]
    code = schemas["Error"]["properties"]["code"]
    ref = code.get("$ref") or code["allOf"][0]["$ref"]
    enum = schemas[ref.rsplit("/", 1)[1]]["enum"]
    assert sorted(enum) == CODES
    assert (
        sorted(
            {code for _, code in ERRORS.values()}
            | set(STATUS_CODES.values())
            | {"invalid_content_length"}
        )
        == CODES
    )
    missing = [code for code in CODES if f"`{code}`" not in README]
    assert not missing, f"README's status table lacks {missing}"


def test_every_code_the_api_answers_is_walked_above():
    walked = {code for code, _, _ in CASES}
    from_status_only = {"bad_request", "forbidden", "internal_error", "service_unavailable"}
    assert set(CODES) - walked <= from_status_only


def test_the_fronts_own_errors_carry_codes():
    conf = (REPO_DIR / "docker" / "nginx.conf").read_text()
    bodies = [json.loads(body) for body in re.findall(r"return \d+ '(\{.*?\})';", conf)]
    assert {body["status_code"]: body["code"] for body in bodies} == {
        413: STATUS_CODES[413],
        503: STATUS_CODES[503],
    }
