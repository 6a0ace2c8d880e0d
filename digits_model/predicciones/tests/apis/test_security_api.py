"""Security switches in process: API keys, the rate limit, and the response headers."""

import io
import uuid

import pytest
from django.core.cache import cache
from django.test import override_settings

from predicciones.security import api_key_valid

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def predict(client, image: bytes, **extra):
    upload = io.BytesIO(image)
    upload.name = "digit.png"
    return client.post("/predict/", {"image": upload}, **extra)


def assert_error(response, code: int) -> dict:
    assert response.status_code == code
    body = response.json()
    assert set(body) == {"status_code", "query_id", "error", "code"}
    assert body["status_code"] == code
    return body


def test_api_keys_are_off_by_default(client, png_seven):
    assert predict(client, png_seven).status_code == 200


@override_settings(DIGITS_API_KEYS=["key-one", "key-two"])
def test_api_key_required_when_configured(client, png_seven):
    body = assert_error(predict(client, png_seven), 401)
    assert "X-API-Key" in body["error"]
    assert_error(predict(client, png_seven, HTTP_X_API_KEY="key-three"), 401)
    assert_error(predict(client, png_seven, HTTP_X_API_KEY=""), 401)
    assert predict(client, png_seven, HTTP_X_API_KEY="key-one").status_code == 200
    assert predict(client, png_seven, HTTP_X_API_KEY="key-two").status_code == 200


@override_settings(DIGITS_API_KEYS=["key-one"])
def test_api_key_guards_feedback_but_not_reads(client, png_seven):
    query_id = predict(client, png_seven, HTTP_X_API_KEY="key-one").json()["query_id"]
    feedback = {"query_id": query_id, "label": 7}
    assert_error(client.post("/feedback/", feedback, content_type="application/json"), 401)
    allowed = client.post(
        "/feedback/", feedback, content_type="application/json", HTTP_X_API_KEY="key-one"
    )
    assert allowed.status_code == 200
    assert client.get("/models/").status_code == 200
    assert client.get("/health/").status_code == 200


def test_api_key_check_needs_an_exact_match():
    assert api_key_valid("abc", ["abc"])
    assert not api_key_valid("ab", ["abc"])
    assert not api_key_valid("abcd", ["abc"])
    assert not api_key_valid("", [""])
    assert not api_key_valid("x", [])


@override_settings(DIGITS_PREDICT_RATE="3/min")
def test_rate_limit_answers_429_with_retry_after(client, png_seven):
    codes = [predict(client, png_seven).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    refused = predict(client, png_seven)
    body = assert_error(refused, 429)
    assert "slow down" in body["error"]
    assert 1 <= int(refused["Retry-After"]) <= 61


@override_settings(DIGITS_PREDICT_RATE="2/min", DIGITS_API_KEYS=["key-one", "key-two"])
def test_rate_limit_counts_per_api_key(client, png_seven):
    one = [predict(client, png_seven, HTTP_X_API_KEY="key-one").status_code for _ in range(3)]
    two = [predict(client, png_seven, HTTP_X_API_KEY="key-two").status_code for _ in range(2)]
    assert one == [200, 200, 429]
    assert two == [200, 200]


@override_settings(DIGITS_PREDICT_RATE="1/min")
def test_rate_limit_leaves_other_endpoints_alone(client, png_seven):
    assert predict(client, png_seven).status_code == 200
    assert predict(client, png_seven).status_code == 429
    assert client.get("/models/").status_code == 200
    assert client.get("/health/").status_code == 200


def test_page_has_a_strict_content_security_policy(client):
    page = client.get("/")
    assert page.status_code == 200
    policy = page["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    html = page.content.decode()
    assert "<script>" not in html and "<style>" not in html and "style=" not in html
    assert client.get("/static/predicciones/index.js").status_code == 200
    assert client.get("/static/predicciones/index.css").status_code == 200


def test_secure_headers_on_api_answers(client, png_seven):
    response = predict(client, png_seven)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert response["Content-Security-Policy"]


@override_settings(DIGITS_CSP="")
def test_csp_can_be_turned_off(client):
    assert "Content-Security-Policy" not in client.get("/")


def test_debug_is_off_by_default():
    from django.conf import settings

    assert settings.DEBUG is False


# --- Every 401 carries a WWW-Authenticate challenge (RFC 9110 section 11.6.1) ----------------
@override_settings(DIGITS_API_KEYS=["key-one"])
def test_api_key_401_names_the_scheme_and_header(client, png_seven):
    for extra in ({}, {"HTTP_X_API_KEY": "wrong"}):
        response = predict(client, png_seven, **extra)
        assert_error(response, 401)
        assert response["WWW-Authenticate"] == 'ApiKey realm="predicciones", header="X-API-Key"'
    feedback = client.post(
        "/feedback/", {"query_id": str(uuid.uuid4()), "label": 1}, content_type="application/json"
    )
    assert_error(feedback, 401)
    assert feedback["WWW-Authenticate"].startswith("ApiKey ")


@override_settings(DIGITS_ADMIN_TOKEN="s3cret")
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic s3cret", "Bearer "])
def test_admin_401_is_a_bearer_challenge(client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.post("/admin/models/clf.pickle/rollback/", **extra)
    body = assert_error(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="admin"'
    assert "Authorization: Bearer" in body["error"]


@override_settings(DIGITS_ADMIN_TOKEN="")
def test_admin_api_off_is_403_without_a_challenge(client):
    response = client.post("/admin/models/clf.pickle/rollback/", HTTP_AUTHORIZATION="Bearer x")
    assert_error(response, 403)
    assert "WWW-Authenticate" not in response


@override_settings(DIGITS_METRICS_TOKEN="m3trics")
def test_metrics_401_is_a_bearer_challenge(client):
    for extra in ({}, {"HTTP_AUTHORIZATION": "Bearer nope"}):
        response = client.get("/metrics", **extra)
        assert_error(response, 401)
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer m3trics").status_code == 200


# --- Failed authentications are counted per client address ----------------------------------
@override_settings(DIGITS_AUTH_FAILURE_RATE="3/min", DIGITS_API_KEYS=["key-one-0123456789"])
def test_an_address_that_keeps_failing_gets_429_even_with_the_right_key(client, png_seven):
    wrong = {"HTTP_X_API_KEY": "guess-0123456789abc", "REMOTE_ADDR": "192.0.2.7"}
    codes = [predict(client, png_seven, **wrong).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    right = {"HTTP_X_API_KEY": "key-one-0123456789", "REMOTE_ADDR": "192.0.2.7"}
    refused = predict(client, png_seven, **right)
    assert_error(refused, 429)
    assert 1 <= int(refused["Retry-After"]) <= 61
    # Another address, and the successes of this one, are not affected.
    other = {"HTTP_X_API_KEY": "key-one-0123456789", "REMOTE_ADDR": "192.0.2.8"}
    assert predict(client, png_seven, **other).status_code == 200


@override_settings(DIGITS_AUTH_FAILURE_RATE="3/min", DIGITS_API_KEYS=["key-one-0123456789"])
def test_successes_are_not_counted_as_failures(client, png_seven):
    right = {"HTTP_X_API_KEY": "key-one-0123456789"}
    assert [predict(client, png_seven, **right).status_code for _ in range(6)] == [200] * 6


@override_settings(
    DIGITS_AUTH_FAILURE_RATE="2/min",
    DIGITS_ADMIN_TOKEN="admin-token-0123456789",
    DIGITS_METRICS_TOKEN="metrics-token-0123456789",
)
def test_admin_and_metrics_tokens_share_the_failure_count(client):
    bad = {"HTTP_AUTHORIZATION": "Bearer nope", "REMOTE_ADDR": "192.0.2.9"}
    assert client.post("/admin/models/clf.pickle/rollback/", **bad).status_code == 401
    assert client.get("/metrics", **bad).status_code == 401
    for path, send in [("/metrics", client.get), ("/admin/models/x/rollback/", client.post)]:
        refused = send(path, **bad)
        assert_error(refused, 429)
        assert refused["Retry-After"]
    good = {"HTTP_AUTHORIZATION": "Bearer metrics-token-0123456789", "REMOTE_ADDR": "192.0.2.9"}
    assert client.get("/metrics", **good).status_code == 429
    good["REMOTE_ADDR"] = "192.0.2.10"
    assert client.get("/metrics", **good).status_code == 200


def test_failed_authentications_are_limited_by_default():
    from django.conf import settings

    assert settings.DIGITS_AUTH_FAILURE_RATE == "20/min"
