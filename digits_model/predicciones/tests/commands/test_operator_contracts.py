"""The operator commands keep their contract under bad options and failures.

Bad options are refused at parse time, naming the option, before anything is read, trained
or recorded; unknown model names exit 2 everywhere; a dry run writes nothing; a pass of
run_pipeline that fails after doing part of its work still says what it did.
"""

import json

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from harness.rendering import digits_data
from predicciones import storage
from predicciones.ml.classifier import load_classifier, sha256_bytes
from predicciones.models import Deployment, DriftReport, ModelVersion, RetrainRun
from predicciones.provenance import address_source, key_source
from predicciones.services import registry
from predicciones.services.registry import shipped_model_bootstrap
from predicciones.tests.commands.running import command_run as run
from predicciones.tests.factories import predictions_log

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_store")]

MODEL = "clf.pickle"


TRUSTED_KEY = "trusted-labeller-key-0123"


def label_rows(version, *, source):
    """200 labelled predictions of inverted digits (drift, labels), labelled by ``source``."""
    X, y = digits_data()
    rows = predictions_log(version, 16 - X[:200], predictions=y[:200])
    for row, label in zip(rows, y[:200], strict=True):
        row.label = int(label)
        row.labelled_at = timezone.now()
        row.label_source = source
        row.save(update_fields=["label", "labelled_at", "label_source"])


@pytest.fixture
def drifted_with_labels(settings):
    """The live version with 200 predictions labelled by a trusted labeller."""
    settings.DIGITS_TRUSTED_API_KEYS = [TRUSTED_KEY]
    version = shipped_model_bootstrap()
    label_rows(version, source=key_source(TRUSTED_KEY))
    return version


@pytest.fixture
def drifted_with_anonymous_labels():
    """The same labels, from one client address nobody vouches for."""
    version = shipped_model_bootstrap()
    label_rows(version, source=address_source("203.0.113.66"))
    return version


def recorded() -> tuple[int, int, int, list[str]]:
    """What a pass can leave behind: versions, retrain runs, drift reports, stored objects."""
    root = storage.get_store().root
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return (
        ModelVersion.objects.count(),
        RetrainRun.objects.count(),
        DriftReport.objects.count(),
        files,
    )


# --- Numeric options are checked at parse time, naming the option ----------------------------
@pytest.mark.parametrize(
    ("command", "args", "option"),
    [
        ("retrain", ["--cooldown-hours", "-3"], "--cooldown-hours"),
        ("retrain", ["--min-samples", "-1"], "--min-samples"),
        ("retrain", ["--min-improvement", "2"], "--min-improvement"),
        ("retrain", ["--max-class-drop", "1.5"], "--max-class-drop"),
        ("retrain", ["--cooldown-hours", "nan"], "--cooldown-hours"),
        ("retrain", ["--seed", "-1"], "--seed"),
        ("train_model", ["--seed", "-1"], "--seed"),
        ("train_model", ["--register", "--jobs", "0"], "--jobs"),
        ("canary_review", ["--min-requests", "-1"], "--min-requests"),
        ("run_pipeline", ["--canary-percent", "150"], "--canary-percent"),
        ("run_pipeline", ["--canary-min-requests", "0"], "--canary-min-requests"),
        ("run_pipeline", ["--min-samples-without-drift", "-5"], "--min-samples-without-drift"),
        ("run_pipeline", ["--last", "0"], "--last"),
        ("run_pipeline", ["--cooldown-hours", "-3"], "--cooldown-hours"),
        ("canary", [MODEL, "1", "--percent", "100"], "--percent"),
        ("canary", [MODEL, "0", "--percent", "10"], "version"),
        ("promote", [MODEL, "-2"], "version"),
        ("check_drift", ["--feature-threshold", "0"], "--feature-threshold"),
        ("check_drift", ["--warning-share", "1.5"], "--warning-share"),
    ],
)
def test_numeric_options_are_range_checked_naming_the_option(
    drifted_with_labels, command, args, option
):
    before = recorded()
    code, out, err = run(command, *args)
    assert code == 2, (out, err)
    assert f"argument {option}:" in err, err
    assert len(err.strip().splitlines()) == 1 and out == ""
    assert recorded() == before


@pytest.mark.parametrize(
    ("command", "setting", "value"),
    [
        ("retrain", "DIGITS_RETRAIN_COOLDOWN_HOURS", -3.0),
        ("retrain", "DIGITS_GATE_MIN_IMPROVEMENT", 2.0),
        ("run_pipeline", "DIGITS_CANARY_PERCENT", 150),
        ("run_pipeline", "DIGITS_RETRAIN_MIN_SAMPLES", -1),
        ("canary_review", "DIGITS_CANARY_MIN_REQUESTS", -1),
    ],
)
def test_out_of_range_settings_are_refused_before_any_work(
    drifted_with_labels, settings, command, setting, value
):
    setattr(settings, setting, value)
    before = recorded()
    code, out, err = run(command, "--json")
    assert code == 2 and out == ""
    assert setting in err and len(err.strip().splitlines()) == 1
    assert recorded() == before


def test_invalid_canary_percent_costs_nothing(drifted_with_labels):
    """Drift and enough labels: a valid pass would train; an invalid option must not."""
    before = recorded()
    code, out, err = run("run_pipeline", "--json", "--min-samples", "10", "--canary-percent", "150")
    assert code == 2 and out == ""
    assert "--canary-percent" in err
    assert recorded() == before
    assert Deployment.objects.get().candidate is None


# --- Unknown model names: exit 2, saying there is no such model --------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["canary_review", "--model", "nosuch"],
        ["models", "--model", "nosuch"],
        ["export_predictions", "--model", "nosuch"],
        ["retrain", "--model", "nosuch"],
        ["run_pipeline", "--model", "nosuch"],
        ["check_drift", "--model", "nosuch"],
        ["promote", "nosuch"],
    ],
)
def test_unknown_model_exits_2_everywhere(drifted_with_labels, args):
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert "nosuch" in err and "no" in err.lower()
    assert len(err.strip().splitlines()) == 1


# --- A dry run writes nothing -------------------------------------------------------------
def test_pipeline_dry_run_writes_nothing(drifted_with_labels):
    before = recorded()
    code, out, _ = run("run_pipeline", "--dry-run", "--json", "--min-samples", "10")
    assert code == 0
    doc = json.loads(out)
    assert doc["dry_run"] is True and doc["status"] == "ok"
    assert doc["drift"]["status"] == "drift" and doc["drift"]["report_id"] is None
    assert doc["retrain"]["status"] == "skipped"
    assert doc["outcome"].startswith("dry run, nothing recorded")
    assert recorded() == before


def test_pipeline_dry_run_with_statistics_missing_from_the_store_writes_nothing(
    drifted_with_labels,
):
    storage.get_store().delete(drifted_with_labels.stats_key)
    before = recorded()
    code, out, _ = run("run_pipeline", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["drift"]["status"] == "drift"
    assert recorded() == before


# --- A step that fails after others did their part ------------------------------------------
@pytest.fixture
def training_returns_the_live_model(monkeypatch, settings):
    """Training replaced by the live classifier itself (minutes -> nothing); the gate, the
    registration and the rollout stay real. With --min-improvement 0 it passes the gate."""
    from predicciones.ml import training

    shipped = settings.DIGITS_SHIPPED_MODEL_PATH
    artifact = shipped.read_bytes()
    clf = load_classifier(artifact, sha256=sha256_bytes(artifact))
    statistics = json.loads(shipped.with_suffix(".stats.json").read_text())
    monkeypatch.setattr(training, "train_classifier", lambda **kwargs: (clf, statistics))


def test_a_rollout_that_fails_after_registration_still_prints_the_account(
    drifted_with_labels, training_returns_the_live_model
):
    def deployment_table_down(execute, sql, params, many, context):
        if sql.startswith('UPDATE "predicciones_deployment"'):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(deployment_table_down):
        code, out, err = run(
            "run_pipeline", "--json", "--min-samples", "10", "--min-improvement", "0"
        )
    assert code == 2
    doc = json.loads(out)  # the account is printed whole before the error
    assert doc["status"] == "failed" and doc["step"] == "rollout"
    assert doc["retrain"]["status"] == "registered" and doc["retrain"]["candidate_version"] == 2
    assert "rollout" not in doc
    assert "clf.pickle:2 registered, not rolled out" in doc["outcome"]
    assert "server closed the connection" in doc["error"]
    assert err.strip().splitlines() == [
        "the rollout step failed: server closed the connection unexpectedly"
    ]
    dep = Deployment.objects.get()
    assert (dep.live.version, dep.candidate) == (1, None)


def test_a_pass_that_rolls_out_says_so_in_sentences(
    drifted_with_labels, training_returns_the_live_model
):
    code, out, err = run("run_pipeline", "--min-samples", "10", "--min-improvement", "0")
    assert code == 0, err
    assert "Outcome: clf.pickle:2 registered and rolled out as a canary at 10 %." in out
    assert "Drift check: drift found, severity critical (score " in out
    assert "{" not in out
    assert registry.Deployment.objects.get().candidate.version == 2
    # The candidate's accuracy on the fixed holdout is recorded, comparable with v1's.
    _, listing, _ = run("models", "--json")
    holdout = {row["version"]: row["holdout"] for row in json.loads(listing)}
    assert holdout[1]["n"] == holdout[2]["n"] == 12150


def test_a_version_trained_on_untrusted_labels_is_registered_but_not_rolled_out(
    drifted_with_anonymous_labels, training_returns_the_live_model
):
    code, out, err = run("run_pipeline", "--json", "--min-samples", "10", "--min-improvement", "0")
    assert code == 0, err
    doc = json.loads(out)
    retrain = doc["retrain"]
    assert retrain["status"] == "registered" and retrain["candidate_version"] == 2
    provenance = retrain["gate"]["provenance"]
    # One source, capped: 50 of its training rows, and none of its held-out rows judged.
    assert provenance["trained_untrusted"] == 50 and provenance["trained_trusted"] == 0
    assert provenance["capped"] > 0 and provenance["judged_trusted"] == 0
    assert retrain["gate"]["judged_on"] == "all" and retrain["n_feedback_validation"] == 0
    assert "rollout" not in doc
    assert doc["held"]["version"] == 2
    assert doc["outcome"].startswith(
        "clf.pickle:2 registered, not rolled out: it was trained on 50 labels from untrusted "
        "sources"
    )
    dep = Deployment.objects.get()
    assert (dep.live.version, dep.candidate) == (1, None)
    assert ModelVersion.objects.get(version=2).untrusted_feedback_rows == 50


def test_a_setting_lets_the_pipeline_roll_out_on_untrusted_labels(
    drifted_with_anonymous_labels, training_returns_the_live_model, settings
):
    settings.DIGITS_ROLLOUT_UNTRUSTED_FEEDBACK = True
    code, out, err = run("run_pipeline", "--min-samples", "10", "--min-improvement", "0")
    assert code == 0, err
    assert "Outcome: clf.pickle:2 registered and rolled out as a canary at 10 %." in out


# --- Only the project's own failures exit 2; a bug keeps its traceback -----------------------
def test_an_operator_error_exits_2_with_its_message(monkeypatch):
    from predicciones.exceptions import OperatorError
    from predicciones.management.commands import models as models_command

    def refuse(**kwargs):
        raise OperatorError("--model must name a registered model")

    monkeypatch.setattr(models_command, "model_version_list", refuse)
    code, out, err = run("models")
    assert code == 2 and out == ""
    assert err.strip() == "--model must name a registered model"


def test_a_bug_is_not_dressed_up_as_an_operator_error(monkeypatch):
    from predicciones.management.commands import models as models_command

    def bug(**kwargs):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(models_command, "model_version_list", bug)
    with pytest.raises(ValueError, match="broadcast"):
        run("models")
