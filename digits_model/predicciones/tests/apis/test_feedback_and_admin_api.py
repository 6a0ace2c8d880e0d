"""POST /feedback/, GET /models/ and the token-protected admin API."""

import io
import uuid

import pytest

from predicciones.models import Deployment, Prediction
from predicciones.services import registry

pytestmark = pytest.mark.django_db


@pytest.fixture
def answered(client, png_seven):
    data = {"image": io.BytesIO(png_seven)}
    data["image"].name = "seven.png"
    return client.post("/predict/", data).json()


def test_feedback_records_the_label(client, answered):
    response = client.post(
        "/feedback/",
        {"query_id": answered["query_id"], "label": 7},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["label"] == 7
    assert Prediction.objects.get(query_id=answered["query_id"]).label == 7


def test_second_feedback_replaces_the_first(client, answered):
    for label in (3, 7):
        client.post("/feedback/", {"query_id": answered["query_id"], "label": label})
    row = Prediction.objects.get(query_id=answered["query_id"])
    assert row.label == 7 and row.labelled_at is not None


def test_feedback_for_unknown_query_is_404(client):
    response = client.post("/feedback/", {"query_id": str(uuid.uuid4()), "label": 1})
    assert response.status_code == 404
    assert set(response.json()) == {"status_code", "query_id", "error", "code"}


@pytest.mark.parametrize("label", [-1, 10, "seven", ""])
def test_feedback_with_bad_label_is_400(client, answered, label):
    response = client.post("/feedback/", {"query_id": answered["query_id"], "label": label})
    assert response.status_code == 400
    assert "label" in response.json()["error"]


def test_feedback_with_bad_query_id_is_400(client):
    response = client.post("/feedback/", {"query_id": "not-a-uuid", "label": 1})
    assert response.status_code == 400


def test_models_lists_versions_with_rollout_state(client, answered):
    models = client.get("/models/").json()["models"]
    assert [(m["model"], m["version"], m["live"]) for m in models] == [("clf.pickle", 1, True)]
    row = models[0]
    assert row["candidate_percent"] == 0 and row["traffic_percent"] == 100
    assert len(row["sha256"]) == 64 and "sklearn_example_split" in row["metrics"]


def test_admin_api_is_off_without_a_configured_token(client, answered, settings):
    settings.DIGITS_ADMIN_TOKEN = ""
    response = client.post("/admin/models/clf.pickle/rollback/", HTTP_AUTHORIZATION="Bearer x")
    assert response.status_code == 403
    assert "disabled" in response.json()["error"]


@pytest.mark.parametrize(
    "header, code", [(None, 401), ("Bearer wrong", 401), ("Basic s3cret", 401), ("Bearer ", 401)]
)
def test_admin_api_refuses_missing_or_wrong_tokens(client, answered, settings, header, code):
    settings.DIGITS_ADMIN_TOKEN = "s3cret"
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    before = Deployment.objects.values_list("live_id", "candidate_id").get()
    response = client.post("/admin/models/clf.pickle/promote/", {"version": 1}, **extra)
    assert response.status_code == code
    assert set(response.json()) == {"status_code", "query_id", "error", "code"}
    assert Deployment.objects.values_list("live_id", "candidate_id").get() == before


def test_admin_api_canary_promote_rollback(client, answered, settings):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from predicciones.ml.classifier import dump_classifier

    settings.DIGITS_ADMIN_TOKEN = "s3cret"
    auth = {"HTTP_AUTHORIZATION": "Bearer s3cret"}
    X, y = load_digits(return_X_y=True)
    registry.model_version_register(
        name="clf.pickle",
        artifact=dump_classifier(LogisticRegression(max_iter=200).fit(X[:300], y[:300])),
        statistics={},
        metrics={},
        sklearn_version="test",
    )
    url = "/admin/models/clf.pickle/"
    response = client.post(url + "canary/", {"version": 2, "percent": 40}, **auth)
    assert response.status_code == 200, response.json()
    by_version = {m["version"]: m for m in response.json()["models"]}
    assert by_version[2]["candidate_percent"] == 40 and by_version[1]["traffic_percent"] == 60

    response = client.post(url + "promote/", {}, **auth)
    assert {m["version"]: m["live"] for m in response.json()["models"]} == {1: False, 2: True}

    response = client.post(url + "rollback/", {}, **auth)
    assert {m["version"]: m["live"] for m in response.json()["models"]} == {1: True, 2: False}

    response = client.post(url + "canary/", {"version": 2, "percent": 100}, **auth)
    assert response.status_code == 400
    response = client.post("/admin/models/nope/rollback/", {}, **auth)
    assert response.status_code == 404
