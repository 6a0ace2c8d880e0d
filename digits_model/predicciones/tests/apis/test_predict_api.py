"""POST /predict/ in process: the seed's contract on success and on every kind of failure."""

import io
import re
import uuid

import numpy as np
import pytest
from PIL import Image
from rest_framework import status

from harness.rendering import draw_digit_image
from predicciones.models import Prediction

pytestmark = pytest.mark.django_db


def post(client, image: bytes | None = None, name: str = "digit.png", **fields):
    data = dict(fields)
    if image is not None:
        data["image"] = io.BytesIO(image)
        data["image"].name = name
    return client.post("/predict/", data)


def assert_error(response, code: int) -> dict:
    assert response.status_code == code
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status_code", "query_id", "error", "code"}
    assert body["status_code"] == code
    uuid.UUID(body["query_id"])
    assert isinstance(body["error"], str) and len(body["error"]) > 10
    assert "Traceback" not in body["error"]
    return body


def test_seed_request_answers_the_contract(client, png_seven):
    response = post(client, png_seven, model="clf.pickle")
    assert response.status_code == status.HTTP_200_OK
    body = response.json()
    assert body["status_code"] == 200
    assert uuid.UUID(body["query_id"]).version == 4
    assert isinstance(body["prediction"], int) and 0 <= body["prediction"] <= 9
    assert re.fullmatch(r"\d+\.\d{4,} seg", body["execution_time"])
    assert float(body["execution_time"].split()[0]) > 0
    assert body["model"] == "clf.pickle"
    assert body["model_version"] == 1
    assert 0.0 <= body["confidence"] <= 1.0
    alternatives = body["alternatives"]
    assert [set(a) for a in alternatives] == [{"digit", "probability"}] * 2
    digits = [body["prediction"]] + [a["digit"] for a in alternatives]
    assert len(set(digits)) == 3 and all(0 <= d <= 9 for d in digits)
    probabilities = [body["confidence"]] + [a["probability"] for a in alternatives]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) <= 1.0 + 1e-3
    grid = body["input_8x8"]
    assert len(grid) == 8 and all(len(row) == 8 for row in grid)
    assert all(0 <= v <= 16 for row in grid for v in row)


def test_model_field_is_optional(client, png_seven):
    response = post(client, png_seven)
    assert response.status_code == 200
    assert response.json()["model"] == "clf.pickle"


def test_every_answer_is_logged_with_its_features(client, png_seven):
    body = post(client, png_seven).json()
    row = Prediction.objects.get(query_id=body["query_id"])
    assert row.prediction == body["prediction"]
    assert row.model_version.version == body["model_version"]
    assert np.frombuffer(bytes(row.features), np.uint8).reshape(8, 8).tolist() == body["input_8x8"]
    assert len(row.image_sha256) == 64
    assert row.latency_ms > 0


def test_pinned_version_answers(client, png_seven):
    response = post(client, png_seven, model="clf.pickle:1")
    assert response.status_code == 200
    assert response.json()["model_version"] == 1


@pytest.mark.parametrize(
    "model",
    [
        "nope.pickle",
        "../model/clf.pickle",
        "/etc/passwd",
        "clf.pickle:99",
        "clf.pickle:x",
        "a" * 5000,
    ],
)
def test_unknown_model_is_404_and_never_a_path(client, png_seven, model):
    body = assert_error(post(client, png_seven, model=model), 404)
    assert "passwd" not in body["error"]


def test_missing_image_is_400(client):
    body = assert_error(client.post("/predict/", {"model": "clf.pickle"}), 400)
    assert "image" in body["error"]


def test_image_sent_as_text_is_400(client):
    assert_error(client.post("/predict/", {"image": "not a file"}), 400)


def test_non_image_file_is_415(client):
    assert_error(post(client, b"hello, this is text", name="notes.jpg"), 415)


def test_pickle_named_jpg_is_415_and_not_loaded(client):
    import pickle

    assert_error(post(client, pickle.dumps({"x": 1}), name="evil.jpg"), 415)


def test_truncated_jpeg_is_400(client):
    jpeg = draw_digit_image("7", fmt="JPEG")
    assert_error(post(client, jpeg[: len(jpeg) // 3], name="cut.jpg"), 400)


def test_empty_file_is_400(client):
    assert_error(post(client, b"", name="empty.png"), 400)


def test_blank_image_is_422(client):
    buffer = io.BytesIO()
    Image.new("L", (100, 100), 255).save(buffer, format="PNG")
    assert_error(post(client, buffer.getvalue()), 422)


def test_wrong_method_is_405(client):
    assert_error(client.get("/predict/"), 405)
    assert_error(client.put("/predict/"), 405)


def test_json_body_is_415(client):
    response = client.post("/predict/", data={"image": "x"}, content_type="application/json")
    assert_error(response, 415)


def test_unknown_route_is_json_404(client):
    assert_error(client.get("/no/such/page"), 404)


def test_no_trailing_slash_works_too(client, png_seven):
    data = {"image": io.BytesIO(png_seven)}
    data["image"].name = "x.png"
    assert client.post("/predict", data).status_code == 200


def test_oversized_body_is_413_before_reading(client, settings):
    response = client.post(
        "/predict/",
        data=b"x" * 10,
        content_type="multipart/form-data; boundary=abc",
        CONTENT_LENGTH=str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
    )
    assert_error(response, 413)


def test_service_answers_after_errors(client, png_seven):
    post(client, b"\x89PNG\r\n\x1a\n garbage", name="x.png")
    post(client, b"")
    assert post(client, png_seven).status_code == 200
