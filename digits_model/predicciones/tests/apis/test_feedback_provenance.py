"""POST /feedback/ under attack: every label keeps its source, labels are rate-limited per
source, and a deployment can ask for a key before it takes any."""

import io

import pytest
from django.test import override_settings

from predicciones.models import Prediction
from predicciones.provenance import address_source, api_key_id, key_source, trusted_sources

pytestmark = pytest.mark.django_db

KEY = "ordinary-key-0123456789"
TRUSTED = "trusted-labeller-key-0123"


def predict(client, image: bytes, **extra) -> str:
    upload = io.BytesIO(image)
    upload.name = "digit.png"
    response = client.post("/predict/", {"image": upload}, **extra)
    assert response.status_code == 200, response.content
    return response.json()["query_id"]


def label(client, query_id: str, digit: int = 7, **extra):
    return client.post(
        "/feedback/",
        {"query_id": query_id, "label": digit},
        content_type="application/json",
        **extra,
    )


def source_of(query_id: str) -> str | None:
    return Prediction.objects.get(query_id=query_id).label_source


def test_an_anonymous_label_records_the_client_address(client, png_seven):
    query_id = predict(client, png_seven)
    assert label(client, query_id, REMOTE_ADDR="198.51.100.23").status_code == 200
    assert source_of(query_id) == "addr:198.51.100.23"


def test_an_ipv6_client_is_one_source_per_64_block(client, png_seven):
    query_id = predict(client, png_seven)
    assert label(client, query_id, REMOTE_ADDR="2001:db8:1:2:aaaa::1").status_code == 200
    assert source_of(query_id) == "addr:2001:db8:1:2::/64"
    assert address_source("2001:db8:1:2:ffff::9") == source_of(query_id)
    assert address_source("::ffff:192.0.2.1") == "addr:192.0.2.1"


@override_settings(DIGITS_API_KEYS=[KEY])
def test_a_label_given_with_a_key_records_its_id_never_the_key(client, png_seven):
    query_id = predict(client, png_seven, HTTP_X_API_KEY=KEY)
    assert label(client, query_id, HTTP_X_API_KEY=KEY).status_code == 200
    assert source_of(query_id) == key_source(KEY) == f"key:{api_key_id(KEY)}"
    assert KEY not in source_of(query_id)
    assert Prediction.objects.filter(label_source__contains=KEY[:8]).count() == 0


@override_settings(DIGITS_TRUSTED_API_KEYS=[TRUSTED])
def test_a_trusted_key_identifies_its_labeller_while_the_endpoints_stay_open(client, png_seven):
    query_id = predict(client, png_seven)  # no key needed
    assert label(client, query_id, HTTP_X_API_KEY=TRUSTED).status_code == 200
    assert source_of(query_id) == key_source(TRUSTED)
    assert trusted_sources() == {key_source(TRUSTED)}
    # A key that is not configured is ignored: the label is the address's.
    assert label(client, query_id, HTTP_X_API_KEY="not-a-configured-key-xx").status_code == 200
    assert source_of(query_id) == "addr:127.0.0.1"


def test_a_second_label_replaces_the_source_too(client, png_seven):
    query_id = predict(client, png_seven)
    label(client, query_id, 1, REMOTE_ADDR="192.0.2.1")
    label(client, query_id, 7, REMOTE_ADDR="192.0.2.2")
    row = Prediction.objects.get(query_id=query_id)
    assert (row.label, row.label_source) == (7, "addr:192.0.2.2")


@override_settings(DIGITS_FEEDBACK_RATE="3/min", DIGITS_TRUSTED_API_KEYS=[TRUSTED])
def test_feedback_is_rate_limited_per_source_and_trusted_keys_are_not(client, png_seven):
    query_id = predict(client, png_seven)
    first = [label(client, query_id, REMOTE_ADDR="192.0.2.1").status_code for _ in range(4)]
    assert first == [200, 200, 200, 429]
    refused = label(client, query_id, REMOTE_ADDR="192.0.2.1")
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert label(client, query_id, REMOTE_ADDR="192.0.2.2").status_code == 200
    trusted = [label(client, query_id, HTTP_X_API_KEY=TRUSTED).status_code for _ in range(10)]
    assert trusted == [200] * 10
    assert predict(client, png_seven, REMOTE_ADDR="192.0.2.1")  # /predict/ is not limited


def test_feedback_is_rate_limited_by_default(client, png_seven):
    from django.conf import settings

    assert settings.DIGITS_FEEDBACK_RATE == "30/min"
    query_id = predict(client, png_seven)
    codes = [label(client, query_id).status_code for _ in range(31)]
    assert codes == [200] * 30 + [429]


def test_feedback_can_require_a_key_while_predictions_stay_open(client, png_seven, settings):
    settings.DIGITS_FEEDBACK_REQUIRE_KEY = True
    settings.DIGITS_TRUSTED_API_KEYS = [TRUSTED]
    query_id = predict(client, png_seven)  # /predict/ needs no key
    refused = label(client, query_id)
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("ApiKey ")
    assert label(client, query_id, HTTP_X_API_KEY="wrong-key-0123456789").status_code == 401
    assert source_of(query_id) is None
    assert label(client, query_id, HTTP_X_API_KEY=TRUSTED).status_code == 200
    settings.DIGITS_API_KEYS = [KEY]
    assert label(client, query_id, HTTP_X_API_KEY=KEY).status_code == 200
    assert source_of(query_id) == key_source(KEY)


@override_settings(DIGITS_API_KEYS=[KEY], DIGITS_TRUSTED_API_KEYS=[TRUSTED])
def test_a_trusted_key_is_also_an_api_key(client, png_seven):
    query_id = predict(client, png_seven, HTTP_X_API_KEY=TRUSTED)
    assert label(client, query_id, HTTP_X_API_KEY=TRUSTED).status_code == 200
    assert source_of(query_id) == key_source(TRUSTED)
