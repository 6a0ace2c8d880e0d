"""One structured access-log line a request: the fields, the JSON format, nothing secret."""

import io
import json
import logging

import pytest

from predicciones.logfmt import JsonFormatter, PlainFormatter

pytestmark = pytest.mark.django_db


def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "predicciones.access"]


def predict(client, image: bytes, headers: dict | None = None, **fields):
    upload = io.BytesIO(image)
    upload.name = "digit.png"
    return client.post("/predict/", {"image": upload, **fields}, **(headers or {}))


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


def test_the_line_carries_the_client_address(client, png_seven, caplog):
    caplog.set_level(logging.INFO, logger="predicciones.access")
    predict(client, png_seven, {"REMOTE_ADDR": "203.0.113.9"})
    (record,) = access_records(caplog)
    assert record.fields["client"] == "203.0.113.9"
    assert "client=203.0.113.9" in PlainFormatter().format(record)


def test_behind_a_trusted_proxy_the_client_is_the_entry_the_proxy_appended(
    client, png_seven, caplog, settings
):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    caplog.set_level(logging.INFO, logger="predicciones.access")
    # The client wrote the first entry itself; the proxy appended the second.
    headers = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.1, 2001:DB8:0::7"}
    predict(client, png_seven, headers)
    (record,) = access_records(caplog)
    assert record.fields["client"] == "2001:db8::7"


def test_an_address_that_is_not_one_is_logged_as_unknown(client, png_seven, caplog, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    caplog.set_level(logging.INFO, logger="predicciones.access")
    predict(client, png_seven, {"HTTP_X_FORWARDED_FOR": "evil\r\nINFO forged line"})
    (record,) = access_records(caplog)
    assert record.fields["client"] == "unknown"


@pytest.mark.parametrize(
    "path", ["/a%0Db", "/a%0D%0A2025-01-01 INFO forged", "/%1B[2Jx", "/a%E2%80%A8b", "/a%C2%85b"]
)
def test_plain_lines_never_carry_a_raw_line_break_or_control_character(client, caplog, path):
    caplog.set_level(logging.INFO, logger="predicciones.access")
    client.get(path)
    (record,) = access_records(caplog)
    line = PlainFormatter().format(record)
    for char in "\r\n\x1b\x85\u2028":
        assert char not in line, repr(line)
    assert len(line.splitlines()) == 1


def test_plain_lines_escape_carriage_returns_in_messages_and_fields():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a\rb\x1bc", (), None)
    record.fields = {"path": "/a\rb", "method": "G\x07ET"}
    line = PlainFormatter().format(record)
    assert "a\\rb\\u001bc" in line
    assert 'path="/a\\rb"' in line and 'method="G\\u0007ET"' in line
