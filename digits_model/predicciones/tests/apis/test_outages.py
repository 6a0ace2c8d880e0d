"""Every endpoint when a dependency is down: 503 (JSON for the API, a page for the dashboard),
never 500; readiness fails for the database, not for the artifact store.

The database outage is the driver refusing every statement (``connection.execute_wrapper``,
Django's hook around each query): the views, services and error handling above it are real.
The store outage is a real S3 endpoint that stops answering (boto3 pointed at a closed port).
"""

import io

import pytest
from django.db import OperationalError, connection
from prometheus_client.parser import text_string_to_metric_families

from harness.processes import free_port
from predicciones import readiness, storage
from predicciones.services.registry import shipped_model_bootstrap

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_store_probe():
    readiness.store_state_forget()
    yield
    readiness.store_state_forget()


def predict(client, image: bytes):
    upload = io.BytesIO(image)
    upload.name = "digit.png"
    return client.post("/predict/", {"image": upload})


def gauge(client, name: str, **labels) -> float | None:
    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


@pytest.fixture
def database_down(client, png_seven, settings, tmp_path):
    """A served model, then a database that refuses every statement."""
    settings.DIGITS_ARTIFACTS_DIR = tmp_path / "artifacts"
    storage._store_for.cache_clear()
    shipped_model_bootstrap()
    assert predict(client, png_seven).status_code == 200  # the model is loaded

    def refuse(execute, sql, params, many, context):
        raise OperationalError("could not connect to server: Connection refused")

    with connection.execute_wrapper(refuse):
        yield
    storage._store_for.cache_clear()


def assert_json_503(response):
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status_code", "query_id", "error", "code"} and body["status_code"] == 503
    return body


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("post", "/feedback/", {"query_id": "3b0e7a9e-0000-4000-8000-000000000000", "label": 1}),
        ("get", "/models/", None),
        ("post", "/admin/models/clf.pickle/rollback/", {}),
    ],
)
def test_api_endpoints_answer_503_json(client, database_down, settings, method, path, data):
    settings.DIGITS_ADMIN_TOKEN = "s3cret"
    kwargs = {"HTTP_AUTHORIZATION": "Bearer s3cret"}
    if data is not None:
        kwargs.update(data=data, content_type="application/json")
    body = assert_json_503(getattr(client, method)(path, **kwargs))
    assert body["error"] == "The database is unavailable; try again shortly."


def test_predict_answers_503_rather_than_an_unlogged_200(client, database_down, png_seven):
    body = assert_json_503(predict(client, png_seven))
    assert body["error"] == "The prediction could not be recorded; try again shortly."


def test_a_worker_that_cannot_read_the_registry_blames_the_database_not_the_model(
    client, database_down, png_seven
):
    from predicciones.serving import reset_router

    reset_router()  # a worker started during the outage: no routing snapshot at all
    response = predict(client, png_seven)
    body = assert_json_503(response)
    assert body["error"] == "The database is unavailable; try again shortly."
    assert response["Retry-After"] == "5"


def test_every_503_says_when_to_retry(client, database_down, png_seven):
    assert predict(client, png_seven)["Retry-After"] == "5"
    assert client.get("/health/")["Retry-After"] == "5"
    assert client.get("/models/")["Retry-After"] == "5"
    assert client.get("/dashboard/")["Retry-After"]


def test_readiness_fails_with_the_database(client, database_down):
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "error: OperationalError"
    assert body["reason"].startswith("the database cannot log predictions")
    assert client.get("/health/live/").status_code == 200


def test_dashboard_answers_a_readable_503_page(client, database_down):
    response = client.get("/dashboard/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"]
    text = response.content.decode()
    assert "Temporarily unavailable" in text and "the database does not answer" in text


def test_page_and_metrics_still_answer(client, database_down):
    assert client.get("/").status_code == 200
    assert gauge(client, "digits_metrics_collector_up", collector="feedback") == 0.0


# --- The artifact store -------------------------------------------------------------------
@pytest.fixture
def store_goes_down(s3_store, client, png_seven, monkeypatch):
    """A model served from S3; then the S3 endpoint stops answering."""
    shipped_model_bootstrap()
    assert predict(client, png_seven).status_code == 200
    assert client.get("/health/").json()["checks"]["artifact_store"] == "ok"
    assert gauge(client, "digits_artifact_store_up") == 1.0

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    storage._store_for.cache_clear()
    readiness.store_state_forget()


def test_store_outage_keeps_readiness_and_predictions(client, png_seven, store_goes_down):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["model_loaded"] is True
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["artifact_store"].startswith("unreachable: ")
    assert predict(client, png_seven).status_code == 200
    assert gauge(client, "digits_artifact_store_up") == 0.0


def test_a_failed_commit_of_the_log_fails_readiness_until_one_works(client, png_seven):
    """The readiness probe's own write is rolled back, so it passes on a full disk; the write
    path's failure is what fails readiness (the e2e test fills a real tmpfs)."""
    from predicciones import readiness

    shipped_model_bootstrap()
    assert predict(client, png_seven).status_code == 200

    def disk_full(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "predicciones_prediction"'):
            raise OperationalError("database or disk is full")
        return execute(sql, params, many, context)

    readiness.forget()
    try:
        with connection.execute_wrapper(disk_full):
            assert_json_503(predict(client, png_seven))
            health = client.get("/health/")
            assert health.status_code == 503
            assert health.json()["checks"]["database"] == (
                "error: disk full (the prediction log could not commit)"
            )
        assert client.get("/health/").status_code == 503  # nothing has committed since
        assert predict(client, png_seven).status_code == 200
        assert client.get("/health/").status_code == 200
    finally:
        readiness.forget()
