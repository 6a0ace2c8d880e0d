"""manage.py check_drift in process: output shapes, exit codes, S3 (moto_server) failures."""

import json

import pytest

from harness.rendering import digits_data, handwriting_features
from harness.s3 import MotoServer, moto_server_path
from predicciones import storage
from predicciones.models import DriftReport
from predicciones.prediction_log import windows
from predicciones.services.registry import model_version_register, shipped_model_bootstrap
from predicciones.tests.commands.running import command_run
from predicciones.tests.conftest import require
from predicciones.tests.factories import predictions_log

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_store")]


@pytest.fixture(scope="module")
def digits():
    return digits_data()


@pytest.fixture(scope="module")
def handwriting():
    return handwriting_features()


@pytest.fixture
def in_distribution(handwriting):
    """The live version with 200 logged in-distribution predictions."""
    version = shipped_model_bootstrap()
    X, y = handwriting
    predictions_log(version, X[:200], predictions=y[:200])
    return version


@pytest.fixture
def drifted(digits):
    """The live version with 200 logged predictions of inverted digits."""
    version = shipped_model_bootstrap()
    X, y = digits
    predictions_log(version, 16 - X[:200], predictions=y[:200])
    return version


def run(*args) -> tuple[int, str, str]:
    return command_run("check_drift", *args)


def test_json_has_the_documented_fields(in_distribution):
    code, out, _ = run("--json", "--last", "200")
    assert code == 0
    doc = json.loads(out)  # exactly one JSON document on stdout
    for key in ("status", "severity", "score", "n_reference", "n_current", "window", "model"):
        assert key in doc
    assert doc["version"] == 1 and doc["model"] == "clf.pickle"
    assert (doc["status"], doc["severity"], doc["n_current"]) == ("ok", "none", 200)
    assert doc["window"]["kind"] == "last" and doc["window"]["last"] == 200
    assert len(doc["features"]) == 64
    assert {"feature", "wasserstein", "drifted", "normalised"} <= set(doc["features"][0])
    assert DriftReport.objects.get(pk=doc["report_id"]).document["report_uid"] == doc["report_uid"]


def test_table_lists_worst_features_first_and_the_8x8_map(drifted):
    code, out, _ = run("--last", "200")
    assert code == 0
    assert "DRIFT" in out and "severity critical" in out
    lines = out.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("  feature  pixel")))
    scores = [float(line.split()[4]) for line in lines[header + 1 : header + 11]]
    assert scores == sorted(scores, reverse=True)
    grid_title = lines.index("Normalised W1 per pixel (* drifted)")
    grid = lines[grid_title + 2 : grid_title + 10]
    assert [line.split()[0] for line in grid] == [str(r) for r in range(8)]
    assert all(len(line.split()) == 9 for line in grid)
    assert "recorded; JSON at drift/clf.pickle/v1/" in out


def test_fail_on_drift_exits_1_only_when_drift_is_found(in_distribution, digits):
    assert run("--last", "200", "--fail-on-drift")[0] == 0
    X, _ = digits
    predictions_log(in_distribution, 16 - X[:200])
    code, out, err = run("--last", "200", "--fail-on-drift", "--json")
    assert code == 1
    assert json.loads(out)["status"] == "drift"  # the report is still printed and recorded
    assert "drift found" in err
    assert DriftReport.objects.count() == 2


def test_five_samples_are_insufficient_data_and_exit_0_even_with_fail_on_drift(digits):
    version = shipped_model_bootstrap()
    predictions_log(version, 16 - digits[0][:5])
    code, out, _ = run("--json", "--fail-on-drift")
    assert code == 0
    assert json.loads(out)["status"] == "insufficient_data"


def test_thresholds_can_be_overridden_by_flag_and_setting(in_distribution, settings):
    code, out, _ = run("--json", "--feature-threshold", "0.01", "--warning-share", "0.1")
    assert code == 0 and json.loads(out)["severity"] != "none"
    settings.DIGITS_DRIFT_MIN_SAMPLES = 500
    code, out, _ = run("--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["status"] == "insufficient_data" and doc["thresholds"]["min_samples"] == 500


def test_since_window(in_distribution):
    _, out, _ = run("--json", "--since", "2000-01-01")
    doc = json.loads(out)
    assert doc["window"]["kind"] == "since" and doc["n_current"] == 200
    _, out, _ = run("--json", "--since", "2999-01-01T00:00:00Z")
    assert json.loads(out)["n_current"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--last", "0"], "argument --last: expected an integer >= 1"),
        (["--last", "5", "--since", "2024-01-01"], "not allowed with"),
        (["--since", "yesterday"], "ISO 8601"),
        (["--warning-share", "0.9"], "warning <= critical"),
        (["--model", "nope.pickle"], "no model named 'nope.pickle'"),
        (["--model-version", "9"], "has no version 9"),
    ],
)
def test_bad_options_exit_2_with_one_line(in_distribution, args, message):
    code, out, err = run(*args)
    assert code == 2
    assert message in err and "\n" not in err.strip() and "Traceback" not in err
    assert out == ""
    assert not DriftReport.objects.exists()


def test_unregistered_default_model_exits_2():
    code, _, err = run()
    assert code == 2 and "bootstrap_model" in err


def test_missing_statistics_for_a_trained_version_exits_2(in_distribution):
    trained = model_version_register(
        name="clf.pickle", artifact=b"retrained", statistics={}, metrics={}, sklearn_version=""
    )
    storage.get_store().delete(trained.stats_key)
    code, _, err = run("--model-version", str(trained.version))
    assert code == 2 and "training statistics of clf.pickle:2 are missing" in err


def test_reads_statistics_from_s3_and_stores_the_report_there(s3_store, in_distribution):
    code, out, _ = run("--json")
    assert code == 0
    doc = json.loads(out)
    assert f"digits/{doc['store_key']}" in s3_store.server.keys(s3_store.bucket, "digits/drift/")
    assert (
        storage.get_json(storage.get_store(), doc["store_key"])["report_uid"] == doc["report_uid"]
    )


@pytest.fixture
def own_moto(settings, monkeypatch):
    """A moto_server of this test's own, so it can be stopped mid-run."""
    require(moto_server_path() is not None, "moto_server is not installed (moto[server])")
    server = MotoServer().start()
    bucket = server.create_bucket()
    for name, value in server.env(bucket).items():
        monkeypatch.setenv(name, value)
    settings.DIGITS_S3_BUCKET = bucket
    storage._store_for.cache_clear()
    yield server
    server.stop()
    storage._store_for.cache_clear()


def test_s3_stopped_mid_run_exits_2_and_records_nothing(own_moto, digits, monkeypatch):
    version = shipped_model_bootstrap()  # artifact and statistics go to S3
    predictions_log(version, digits[0][:300])
    aggregate = windows.prediction_window_aggregate

    def aggregate_then_lose_s3(**kwargs):
        result = aggregate(**kwargs)  # the statistics have been read from S3 by now
        own_moto.stop()
        return result

    monkeypatch.setattr(windows, "prediction_window_aggregate", aggregate_then_lose_s3)
    code, out, err = run("--json")
    assert code == 2
    assert "cannot write drift/clf.pickle/v1/" in err and "\n" not in err.strip()
    assert out == ""
    assert not DriftReport.objects.exists()


def test_s3_down_from_the_start_exits_2(own_moto, digits):
    version = shipped_model_bootstrap()
    predictions_log(version, digits[0][:150])
    own_moto.stop()
    code, _, err = run()
    assert code == 2 and "cannot read models/clf.pickle/v1/training_stats.json" in err
    assert not DriftReport.objects.exists()
