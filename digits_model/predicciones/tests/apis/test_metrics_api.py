"""GET /metrics in process: what a request, a prediction and feedback add, and the gauges."""

import io

import numpy as np
import pytest
from django.test import override_settings
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from predicciones.models import Prediction

pytestmark = pytest.mark.django_db


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def predict(client, image: bytes, **fields):
    data = {"image": io.BytesIO(image), **fields}
    data["image"].name = "digit.png"
    return client.post("/predict/", data)


def scrape(client) -> dict[str, list]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    families = text_string_to_metric_families(response.content.decode())
    return {family.name: family.samples for family in families}


def values(samples, **labels) -> list[float]:
    return [s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]


def test_a_prediction_is_counted_with_its_model_version_and_digit(client, png_seven):
    before_requests = sample(
        "digits_http_requests_total", endpoint="predict", method="POST", status="200"
    )
    body = predict(client, png_seven, model="clf.pickle").json()
    labels = {"model": "clf.pickle", "version": "1"}
    digit = str(body["prediction"])
    before = sample("digits_predictions_total", **labels, digit=digit)
    predict(client, png_seven, model="clf.pickle")
    assert sample("digits_predictions_total", **labels, digit=digit) == before + 1
    assert (
        sample("digits_http_requests_total", endpoint="predict", method="POST", status="200")
        == before_requests + 2
    )
    assert sample("digits_prediction_model_seconds_count", **labels) >= 2
    assert sample("digits_prediction_request_seconds_count", **labels) >= 2
    assert sample("digits_prediction_confidence_count", **labels) >= 2
    assert sample("digits_prediction_confidence_bucket", **labels, le="1.0") >= 2


def test_errors_are_counted_by_endpoint_and_status_without_a_prediction(client):
    before = sample("digits_http_requests_total", endpoint="predict", method="GET", status="405")
    before_404 = sample(
        "digits_http_requests_total", endpoint="unmatched", method="GET", status="404"
    )
    assert client.get("/predict/").status_code == 405
    assert client.get("/no/such/page").status_code == 404
    assert (
        sample("digits_http_requests_total", endpoint="predict", method="GET", status="405")
        == before + 1
    )
    assert (
        sample("digits_http_requests_total", endpoint="unmatched", method="GET", status="404")
        == before_404 + 1
    )


def invented_requests(client, start: int, n: int) -> None:
    """Methods and paths nobody serves, each one new."""
    for i in range(start, start + n):
        assert client.generic(f"X{i:05d}METHOD", "/predict/").status_code == 405
        assert client.get(f"/invented/{i}/path").status_code == 404
        assert client.generic(f"Q{i:05d}", f"/also/{i}").status_code in {404, 405}


def test_invented_methods_and_paths_do_not_grow_the_exposition(client):
    invented_requests(client, 0, 20)  # the "other" and "unmatched" series exist from here
    client.get("/metrics")  # and the scrape's own
    before = client.get("/metrics").content
    invented_requests(client, 20, 400)
    after = client.get("/metrics").content
    # Only counter values changed (a few more digits), no new series.
    assert len(after) - len(before) < 200, (len(before), len(after))
    families = scrape(client)
    methods = {s.labels["method"] for s in families["digits_http_requests"]}
    endpoints = {s.labels["endpoint"] for s in families["digits_http_requests"]}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "other"}
    assert "other" in methods and "unmatched" in endpoints
    assert not any("invented" in e or "X0" in e for e in endpoints)
    assert sample("digits_http_requests_total", endpoint="predict", method="other", status="405")


def test_the_scrape_is_prometheus_text_with_every_family(client, png_seven):
    predict(client, png_seven)
    families = scrape(client)
    for name in [
        "digits_http_requests",
        "digits_http_request_duration_seconds",
        "digits_predictions",
        "digits_prediction_model_seconds",
        "digits_prediction_request_seconds",
        "digits_prediction_confidence",
        "digits_model_live_version",
        "digits_model_candidate_percent",
        "digits_metrics_collector_up",
    ]:
        assert name in families, name
    assert values(families["digits_model_live_version"], model="clf.pickle") == [1.0]
    assert values(families["digits_metrics_collector_up"], collector="feedback") == [1.0]


def test_feedback_accuracy_is_computed_from_the_labels(client, png_seven):
    ids = [predict(client, png_seven).json() for _ in range(4)]
    for body, right in zip(ids, [True, True, True, False], strict=True):
        label = body["prediction"] if right else (body["prediction"] + 1) % 10
        response = client.post(
            "/feedback/",
            {"query_id": body["query_id"], "label": label},
            content_type="application/json",
        )
        assert response.status_code == 200
    families = scrape(client)
    key = {"model": "clf.pickle", "version": "1"}
    assert values(families["digits_feedback_labelled_predictions"], **key) == [4.0]
    assert values(families["digits_feedback_correct_predictions"], **key) == [3.0]
    assert values(families["digits_feedback_accuracy"], **key) == [0.75]


def test_no_labels_means_no_accuracy_series(client, png_seven):
    predict(client, png_seven)
    assert Prediction.objects.filter(label__isnull=False).count() == 0
    assert scrape(client)["digits_feedback_accuracy"] == []


def test_drift_gauges_export_the_latest_report(client):
    from sklearn.datasets import load_digits

    from predicciones.services.drift import drift_report_create
    from predicciones.services.registry import shipped_model_bootstrap
    from predicciones.tests.factories import predictions_log

    version = shipped_model_bootstrap()
    X = load_digits().data[:300]
    predictions_log(version, np.clip(X + 6, 0, 16))  # every pixel inked far more than trained
    report = drift_report_create(name="clf.pickle", last=300)
    assert report.severity == "critical"

    families = scrape(client)
    key = {"model": "clf.pickle", "version": "1"}
    assert values(families["digits_drift_score"], **key) == [pytest.approx(report.score)]
    assert values(families["digits_drift_severity_level"], **key) == [2.0]
    assert values(families["digits_drift_report_info"], severity="critical", status="drift") == [1]
    assert values(families["digits_drift_drifted_share"], **key) == [
        pytest.approx(report.drifted_share)
    ]
    assert values(families["digits_drift_live_samples"], **key) == [300.0]
    assert values(families["digits_drift_report_timestamp_seconds"], **key) == [
        pytest.approx(report.created_at.timestamp())
    ]
    assert len(values(families["digits_drift_feature_score"], **key)) == 64


def test_a_failing_collector_costs_its_series_not_the_scrape(client, monkeypatch):
    from predicciones import selectors

    def broken():
        raise RuntimeError("drift table missing")

    monkeypatch.setattr(selectors, "drift_report_latest_per_model", broken)
    families = scrape(client)
    assert values(families["digits_metrics_collector_up"], collector="drift") == [0.0]
    assert values(families["digits_metrics_collector_up"], collector="deployments") == [1.0]
    assert "digits_drift_score" not in families


@override_settings(DIGITS_METRICS_TOKEN="scrape-secret")
def test_metrics_token_when_set(client):
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert set(refused.json()) == {"status_code", "query_id", "error", "code"}
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


def test_metrics_refuses_writes(client):
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response.json()["status_code"] == 405
