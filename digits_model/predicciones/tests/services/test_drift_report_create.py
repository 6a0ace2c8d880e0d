"""drift_report_create and the window aggregation behind it (SQLite; PostgreSQL in the bench)."""

import datetime as dt
import json

import numpy as np
import pytest
from django.conf import settings
from django.utils import timezone

from harness.rendering import handwriting_features, shrunk_shifted_features
from predicciones import selectors, storage
from predicciones.exceptions import DriftCheckError, TrainingStatsUnavailableError
from predicciones.ml import drift
from predicciones.models import DriftReport
from predicciones.prediction_log import windows
from predicciones.services.drift import drift_report_create
from predicciones.services.registry import model_version_register, shipped_model_bootstrap
from predicciones.tests.factories import predictions_log

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_store")]


@pytest.fixture
def live():
    return shipped_model_bootstrap()


@pytest.fixture(scope="module")
def digits():
    return handwriting_features()


def sample(digits, n, seed=0):
    X, y = digits
    idx = np.random.default_rng(seed).choice(len(X), n, replace=False)
    return X[idx], y[idx]


def test_window_aggregate_equals_numpy_across_chunk_boundaries(live, rng):
    X = rng.integers(0, 17, (53, 64))
    predicted = rng.integers(0, 10, 53)
    confidence = rng.uniform(0.2, 1.0, 53)
    predictions_log(live, X, predictions=predicted, confidences=confidence)
    window = windows.prediction_window_aggregate(version=live, last=1000, chunk_rows=7)
    assert window.n == 53
    assert np.array_equal(window.value_counts, drift.value_counts(X))
    assert np.array_equal(window.class_counts, np.bincount(predicted, minlength=10))
    assert window.confidence_mean == pytest.approx(confidence.mean())


def test_last_n_takes_the_newest_rows_of_that_version_only(live, rng):
    other = model_version_register(
        name="other.pickle",
        artifact=b"not a pickle",
        statistics={},
        metrics={},
        sklearn_version="",
    )
    old, new = rng.integers(0, 17, (30, 64)), rng.integers(0, 17, (20, 64))
    start = timezone.now() - dt.timedelta(hours=1)
    predictions_log(live, old, start=start)
    predictions_log(live, new, start=start + dt.timedelta(minutes=30))
    predictions_log(other, rng.integers(0, 17, (40, 64)), start=start + dt.timedelta(minutes=40))
    window = windows.prediction_window_aggregate(version=live, last=20, chunk_rows=6)
    assert window.n == 20
    assert np.array_equal(window.value_counts, drift.value_counts(new))
    assert window.start == start + dt.timedelta(minutes=30)
    assert window.end == start + dt.timedelta(minutes=30, seconds=19)


def test_since_takes_the_rows_logged_from_that_time(live, rng):
    X = rng.integers(0, 17, (40, 64))
    start = timezone.now() - dt.timedelta(minutes=10)
    predictions_log(live, X, start=start)
    window = windows.prediction_window_aggregate(
        version=live, since=start + dt.timedelta(seconds=25)
    )
    assert window.n == 15
    assert np.array_equal(window.value_counts, drift.value_counts(X[25:]))


def test_in_distribution_inputs_are_ok_and_recorded_in_db_and_store(live, digits):
    X, y = sample(digits, 300)
    predictions_log(live, X, predictions=y)
    report = drift_report_create(last=300)
    assert report.pk is not None
    assert (report.status, report.severity) == ("ok", "none")
    shipped_stats = json.loads(
        settings.DIGITS_SHIPPED_MODEL_PATH.with_suffix(".stats.json").read_text()
    )
    assert report.n_current == 300 and report.n_reference == shipped_stats["n_samples"]
    stored = storage.get_json(storage.get_store(), report.store_key)
    assert stored == report.document
    assert stored["model"] == "clf.pickle" and stored["version"] == 1
    assert report.store_key.startswith("drift/clf.pickle/v1/")


def test_shrunk_and_shifted_digits_from_a_non_normalising_pipeline_are_drift(live, digits):
    # What a client that does not crop and centre (or a preprocessing regression) would log.
    X, y = sample(digits, 300, seed=1)
    predictions_log(live, np.stack([shrunk_shifted_features(x) for x in X]), predictions=y)
    report = drift_report_create(last=300)
    assert report.status == "drift"
    assert report.severity == "critical"
    worst = max(report.document["features"], key=lambda f: f["normalised"])
    assert worst["drifted"]


def test_five_samples_are_insufficient_data_even_if_they_look_drifted(live, digits):
    X, y = sample(digits, 5)
    predictions_log(live, 16 - X, predictions=y)
    report = drift_report_create(last=1000)
    assert report.status == "insufficient_data"
    assert report.severity == "none"
    assert report.n_current == 5


def test_confidence_shift_is_against_the_previous_window(live, digits):
    X, y = sample(digits, 200)
    start = timezone.now() - dt.timedelta(hours=1)
    predictions_log(live, X[:100], predictions=y[:100], confidences=0.95, start=start)
    predictions_log(
        live, X[100:], predictions=y[100:], confidences=0.75, start=start + dt.timedelta(minutes=5)
    )
    confidence = drift_report_create(last=100, save=False).document["confidence"]
    assert confidence["current_mean"] == pytest.approx(0.75)
    assert confidence["reference_mean"] == pytest.approx(0.95)
    assert confidence["shift"] == pytest.approx(-0.2)


def test_prediction_mix_shift_is_reported(live, digits):
    X, _ = sample(digits, 200)
    predictions_log(live, X, predictions=np.full(200, 7))
    mix = drift_report_create(last=200, save=False).document["prediction_mix"]
    assert mix["current"][7] == 1.0
    assert mix["total_variation"] == pytest.approx(1 - mix["reference"][7])


def test_dry_run_records_nothing(live, digits):
    predictions_log(live, sample(digits, 150)[0])
    report = drift_report_create(save=False)
    assert report.pk is None and report.document["store_key"] is None
    assert not DriftReport.objects.exists()


def test_missing_statistics_of_a_trained_version_is_a_clear_error(live):
    trained = model_version_register(
        name="clf.pickle", artifact=b"retrained", statistics={}, metrics={}, sklearn_version=""
    )
    storage.get_store().delete(trained.stats_key)
    with pytest.raises(TrainingStatsUnavailableError, match="missing from local folder"):
        drift_report_create(version=trained.version)
    assert not DriftReport.objects.exists()


def test_missing_statistics_of_the_shipped_version_are_restored(live):
    storage.get_store().delete(live.stats_key)
    # A dry run reads them from model/ and writes nothing...
    report = drift_report_create(save=False)
    assert report.status == "insufficient_data"
    assert not storage.get_store().exists(live.stats_key)
    # ...a recorded check puts them back in the store.
    drift_report_create()
    assert storage.get_store().exists(live.stats_key)


def test_malformed_statistics_are_a_clear_error(live):
    malformed = {"value_counts": [[1, 2]], "class_counts": [1] * 10}
    storage.put_json(storage.get_store(), live.stats_key, malformed)
    with pytest.raises(TrainingStatsUnavailableError, match=r"malformed: .*64 lists of 17"):
        drift_report_create()


def test_corrupt_log_rows_are_reported_not_miscounted(live):
    predictions_log(live, np.zeros((3, 64)))
    from predicciones.models import Prediction

    Prediction.objects.filter(pk=Prediction.objects.first().pk).update(features=b"\x00" * 10)
    with pytest.raises(DriftCheckError, match="corrupt"):
        drift_report_create()


def test_latest_report_per_model_for_the_metrics_endpoint(live, digits):
    predictions_log(live, sample(digits, 150)[0])
    drift_report_create()
    second = drift_report_create()
    [latest] = selectors.drift_report_latest_per_model()
    assert (latest.model, latest.version) == ("clf.pickle", 1)
    assert latest.status == second.status and latest.score == pytest.approx(second.score)
    assert latest.severity_code == 0 and latest.created_at == second.created_at
