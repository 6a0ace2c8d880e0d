"""retrain, canary_review and run_pipeline as cron calls them: JSON documents and exit codes.

The training itself is exercised end to end (tests/e2e/test_retrain_pipeline.py); here the
commands' decisions that need no training.
"""

import json

import pytest

from harness.rendering import digits_data
from predicciones.services.registry import shipped_model_bootstrap
from predicciones.tests.commands.running import command_run as run
from predicciones.tests.factories import predictions_log

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_store")]


@pytest.fixture
def drifted():
    """The live version with 200 logged predictions of inverted digits (clear drift)."""
    version = shipped_model_bootstrap()
    X, y = digits_data()
    predictions_log(version, 16 - X[:200], predictions=y[:200])
    return version


def test_retrain_dry_run_prints_one_json_document(drifted):
    code, out, _ = run("retrain", "--dry-run", "--json", "--min-samples", "10")
    assert code == 0
    doc = json.loads(out)
    assert doc["status"] == "skipped" and doc["candidate_version"] is None
    assert "not enough new labelled samples: 0 < 10" in doc["reasons"]
    assert "dry run: nothing trained or registered" in doc["reasons"]


def test_canary_review_without_a_canary_does_nothing(drifted):
    code, out, _ = run("canary_review", "--json")
    assert code == 0
    assert json.loads(out)["decision"] == "none"


def test_pipeline_reports_drift_and_why_it_did_not_retrain(drifted):
    code, out, _ = run("run_pipeline", "--json", "--min-samples", "50")
    assert code == 0
    doc = json.loads(out)
    assert (doc["drift"]["status"], doc["drift"]["severity"]) == ("drift", "critical")
    assert doc["decision"]["retrain"] is False
    assert "0 new labels: 50 needed" in doc["decision"]["reasons"][0]
    assert "retrain" not in doc and "rollout" not in doc


def test_pipeline_exits_1_on_drift_when_asked(drifted):
    code, out, err = run("run_pipeline", "--json", "--fail-on-drift")
    assert code == 1
    assert json.loads(out)["drift"]["status"] == "drift"
    assert err.strip() == "drift found"


def test_pipeline_exits_2_with_one_line_when_it_cannot_run(drifted):
    code, out, err = run("run_pipeline", "--json", "--model", "nope.pickle")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "nope.pickle" in err


def test_unknown_strategy_is_a_usage_error(drifted):
    code, _, err = run("run_pipeline", "--strategy", "yolo")
    assert code == 2
    assert "strategy" in err


def test_pipeline_with_few_live_samples_is_insufficient_not_drift():
    version = shipped_model_bootstrap()
    X, y = digits_data()
    predictions_log(version, 16 - X[:5], predictions=y[:5])
    code, out, _ = run("run_pipeline", "--json", "--fail-on-drift")
    assert code == 0
    drift = json.loads(out)["drift"]
    assert (drift["status"], drift["n_current"]) == ("insufficient_data", 5)
