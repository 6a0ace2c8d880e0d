"""One structured access-log line a request: the fields, the JSON format, nothing secret."""

import io
import json
import logging

import pytest

from predicciones.logfmt import JsonFormatter, PlainFormatter

pytestmark = pytest.mark.django_db


def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "predicciones.access"]


def predict(client, image: bytes, **fields):
    upload = io.BytesIO(image)
    upload.name = "digit.png"
    return client.post("/predict/", {"image": upload, **fields})


def test_one_line_per_prediction_with_model_version_prediction_and_latency(
    client, png_seven, caplog
):
    caplog.set_level(logging.INFO, logger="predicciones.access")
    body = predict(client, png_seven, model="clf.pickle").json()
    (record,) = access_records(caplog)
    fields = record.fields
    assert fields["query_id"] == body["query_id"]
    assert fields["method"] == "POST"
    assert fields["path"] == "/predict/"
    assert fields["endpoint"] == "predict"
    assert fields["status"] == 200
    assert fields["model"] == "clf.pickle"
    assert fields["model_version"] == 1
    assert fields["prediction"] == body["prediction"]
    assert fields["confidence"] == body["confidence"]
    assert fields["latency_ms"] > 0
    assert fields["model_ms"] > 0


def test_errors_are_logged_too_without_model_fields(client, caplog):
    caplog.set_level(logging.INFO, logger="predicciones.access")
    response = client.post("/predict/", {"model": "clf.pickle"})
    (record,) = access_records(caplog)
    assert record.fields["status"] == 400
    assert record.fields["query_id"] == response.json()["query_id"]
    assert "prediction" not in record.fields and "model" not in record.fields


def test_the_line_holds_no_image_bytes_no_query_string_and_no_keys(client, png_seven, caplog):
    caplog.set_level(logging.INFO, logger="predicciones.access")
    upload = io.BytesIO(png_seven)
    upload.name = "secret-name.png"
    client.post(
        "/predict/?token=s3cr3t",
        {"image": upload},
        HTTP_X_API_KEY="k3y-value",
        HTTP_AUTHORIZATION="Bearer t0ken",
    )
    (record,) = access_records(caplog)
    line = JsonFormatter().format(record) + PlainFormatter().format(record)
    for secret in ["s3cr3t", "k3y-value", "t0ken", "secret-name", "PNG", "IHDR"]:
        assert secret not in line


def test_json_lines_are_single_json_objects(client, png_seven, caplog):
    caplog.set_level(logging.INFO, logger="predicciones.access")
    predict(client, png_seven)
    (record,) = access_records(caplog)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    document = json.loads(line)
    assert document["logger"] == "predicciones.access"
    assert document["level"] == "INFO"
    assert document["status"] == 200
    assert document["time"].endswith("Z")
    assert isinstance(document["pid"], int)


def test_plain_lines_quote_values_with_spaces():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello\nworld", (), None)
    record.fields = {"path": "/a b", "status": 200, "empty": ""}
    line = PlainFormatter().format(record)
    assert "\n" not in line
    assert 'path="/a b"' in line and "status=200" in line and 'empty=""' in line
