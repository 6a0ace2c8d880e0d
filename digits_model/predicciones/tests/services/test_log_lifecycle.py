"""The log's lifecycle on SQLite and a local store: summaries, capture, retention, late rows.

S3 (moto_server), PostgreSQL and concurrent writers are in commands/test_maintain.py and
e2e/test_log_lifecycle_e2e.py; the drift equality property in test_drift_from_summaries.py.
"""

import datetime as dt
import gzip
import hashlib
import json
import uuid

import numpy as np
import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from predicciones import storage
from predicciones.ml import drift
from predicciones.ml.summary import LogSummary, confidence_units, latency_counts
from predicciones.models import CapturePart, LabelHour, Prediction, PredictionHour
from predicciones.options import lifecycle_settings
from predicciones.prediction_log import capture, capture_files
from predicciones.prediction_log.layout import hour_floor
from predicciones.prediction_log.maintenance import log_maintain
from predicciones.prediction_log.summaries import hour_summary_compute, hour_summary_read
from predicciones.services.predictions import feedback_record
from predicciones.services.registry import shipped_model_bootstrap
from predicciones.tests.factories import predictions_log

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_store")]

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def now():
    return hour_floor(timezone.now()) + dt.timedelta(minutes=30)


@pytest.fixture
def logged(now, rng):
    """The live version with 3 full hours of traffic (120 rows each), 3 to 6 hours ago."""
    version = shipped_model_bootstrap()
    start = hour_floor(now) - 6 * HOUR
    n = 360
    X = rng.integers(0, 17, (n, 64))
    rows = predictions_log(
        version,
        X,
        predictions=rng.integers(0, 10, n),
        confidences=rng.uniform(0.05, 1.0, n),
        start=start,
        step=dt.timedelta(seconds=30),
    )
    for i, row in enumerate(rows):
        row.latency_ms = float(0.5 + i % 7)
    Prediction.objects.bulk_update(rows, ["latency_ms"])
    return version, rows


def config(**kwargs):
    return lifecycle_settings(**{"retention_days": 1, "grace_seconds": 600, **kwargs})


def keys(root, prefix=""):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def lines_of(path) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


# --- Summaries ------------------------------------------------------------------------------
def test_each_closed_hour_is_summarised_from_its_rows(logged, now):
    _version, rows = logged
    report = log_maintain(now=now, config=config())
    assert report.failed_step is None
    hours = {h.hour: h for h in PredictionHour.objects.all()}
    assert len(hours) == 3 and report.summarise["rows"] == 360
    for hour, summary in hours.items():
        mine = [r for r in rows if hour <= r.created_at < hour + HOUR]
        X = np.stack([np.frombuffer(r.features, dtype=np.uint8) for r in mine])
        assert summary.n == len(mine) == 120
        assert np.array_equal(summary.value_counts, drift.value_counts(X))
        assert (
            summary.class_counts == np.bincount([r.prediction for r in mine], minlength=10).tolist()
        )
        assert int(summary.confidence_units) == confidence_units([r.confidence for r in mine])
        assert summary.latency_counts == latency_counts([r.latency_ms for r in mine]).tolist()
        assert (summary.first_created_at, summary.last_created_at) == (
            mine[0].created_at,
            mine[-1].created_at,
        )


def test_an_hour_is_closed_only_after_its_grace_period(logged, now):
    del logged
    last_hour = hour_floor(now) - 4 * HOUR  # rows up to 3 h ago: the last hour is 4..3 h ago
    early = last_hour + HOUR + dt.timedelta(seconds=599)
    log_maintain(now=early, config=config())
    assert last_hour not in set(PredictionHour.objects.values_list("hour", flat=True))
    log_maintain(now=early + dt.timedelta(seconds=1), config=config())
    assert last_hour in set(PredictionHour.objects.values_list("hour", flat=True))


def test_maintain_twice_changes_nothing_and_recomputing_gives_the_same_summary(logged, now):
    log_maintain(now=now, config=config())
    before = list(PredictionHour.objects.order_by("hour").values())
    stored = {h.summary_key: h.n for h in PredictionHour.objects.all()}
    second = log_maintain(now=now, config=config())
    assert second.summarise["hours"] == second.capture["hours"] == 0
    assert list(PredictionHour.objects.order_by("hour").values()) == before
    for row in PredictionHour.objects.all():
        again = hour_summary_compute(row.model_version_id, row.hour)
        assert again.to_dict() == hour_summary_read(row).to_dict()
        doc = storage.get_json(storage.get_store(), row.summary_key)
        assert doc["n"] == stored[row.summary_key] and doc["captured_rows"] == row.n


# --- Capture --------------------------------------------------------------------------------
def test_capture_writes_every_field_under_a_partitioned_key_with_a_manifest(logged, now, own_store):
    _version, rows = logged
    log_maintain(now=now, config=config())
    first_hour = hour_floor(rows[0].created_at)
    folder = (
        own_store
        / "capture/predictions/model=clf.pickle/version=1"
        / f"date={first_hour:%Y-%m-%d}/hour={first_hour:%H}"
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    part = folder / "part-0000.jsonl.gz"
    data = part.read_bytes()
    assert manifest["rows"] == 120 and manifest["parts"][0]["rows"] == 120
    assert manifest["parts"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["first_created_at"] == rows[0].created_at.isoformat()
    assert manifest["last_created_at"] == rows[119].created_at.isoformat()
    records = lines_of(part)
    assert list(records[0]) == list(capture_files.PREDICTION_FIELDS) == manifest["fields"]
    by_id = {r.query_id: r for r in rows}
    for record in records:
        row = by_id[uuid.UUID(record["query_id"])]
        assert dt.datetime.fromisoformat(record["created_at"]) == row.created_at
        assert (record["model"], record["version"]) == ("clf.pickle", 1)
        assert record["prediction"] == row.prediction
        assert record["confidence"] == row.confidence  # exact: repr round-trips
        assert record["latency_ms"] == row.latency_ms
        assert record["image_sha256"] == row.image_sha256
        assert bytes(record["features"]) == bytes(row.features)
        assert record["label"] is None and record["labelled_at"] is None
    part_row = CapturePart.objects.get(key=manifest["parts"][0]["key"])
    assert (part_row.rows, part_row.sha256) == (120, manifest["parts"][0]["sha256"])


def test_capturing_the_same_rows_again_gives_the_same_bytes(logged, now, tmp_path):
    version, rows = logged
    hour = hour_floor(rows[0].created_at)
    parts = []
    for attempt in ("a", "b"):
        scratch = tmp_path / attempt
        scratch.mkdir()
        parts.append(capture.write_hour_part(version=version, hour=hour, part=0, scratch=scratch))
    assert parts[0].sha256 == parts[1].sha256 and parts[0].rows == 120


def test_labels_given_after_capture_are_captured_by_labelling_hour(logged, now, own_store):
    _version, rows = logged
    log_maintain(now=now, config=config())
    labelled_at = now + dt.timedelta(minutes=5)
    for row, label in ((rows[0], rows[0].prediction), (rows[130], (rows[130].prediction + 1) % 10)):
        feedback_record(query_id=row.query_id, label=label)
    Prediction.objects.filter(label__isnull=False).update(labelled_at=labelled_at)
    later = hour_floor(labelled_at) + HOUR + dt.timedelta(minutes=11)
    report = log_maintain(now=later, config=config(retention_days=30))
    assert report.capture["label_hours"] == 1 and report.capture["labels"] == 2
    label_hour = hour_floor(labelled_at)
    part = (
        own_store
        / f"capture/labels/date={label_hour:%Y-%m-%d}/hour={label_hour:%H}/part-0000.jsonl.gz"
    )
    captured = {r["query_id"]: r for r in lines_of(part)}
    assert set(captured) == {str(rows[0].query_id), str(rows[130].query_id)}
    assert list(next(iter(captured.values()))) == list(capture_files.LABEL_FIELDS)
    assert LabelHour.objects.get().captured_at is not None
    # The summaries of the two prediction hours were recounted: 1 right, 1 wrong.
    counts = {h.hour: (h.labelled, h.correct) for h in PredictionHour.objects.all()}
    assert counts[hour_floor(rows[0].created_at)] == (1, 1)
    assert counts[hour_floor(rows[130].created_at)] == (1, 0)


# --- Retention ------------------------------------------------------------------------------
def test_retention_deletes_captured_unlabelled_rows_and_keeps_labelled_ones(logged, now):
    _version, rows = logged
    feedback_record(query_id=rows[5].query_id, label=3)
    log_maintain(now=now, config=config())
    assert Prediction.objects.count() == 360  # within retention
    report = log_maintain(now=now + dt.timedelta(days=1, hours=1), config=config())
    assert report.retention["hours"] == 3
    assert report.retention["rows_deleted"] == 359
    assert report.retention["labelled_rows_kept"] == 1
    assert list(Prediction.objects.values_list("query_id", flat=True)) == [rows[5].query_id]
    assert sum(PredictionHour.objects.values_list("deleted_rows", flat=True)) == 359
    assert not PredictionHour.objects.filter(pruned_at__isnull=True).exists()


def test_nothing_is_deleted_when_a_capture_object_is_altered_or_missing(logged, now, own_store):
    log_maintain(now=now, config=config())
    parts = sorted(own_store.rglob("part-0000.jsonl.gz"))
    data = bytearray(parts[0].read_bytes())
    data[-12] ^= 0xFF
    parts[0].write_bytes(bytes(data))
    report = log_maintain(now=now + dt.timedelta(days=2), config=config())
    assert report.failed_step == "retention" and "does not have sha256" in report.error
    assert Prediction.objects.count() == 360
    parts[0].unlink()
    report = log_maintain(now=now + dt.timedelta(days=2), config=config())
    assert report.failed_step == "retention" and "is missing" in report.error
    assert Prediction.objects.count() == 360


def test_a_crash_in_the_middle_of_retention_is_finished_by_the_next_run(logged, now):
    log_maintain(now=now, config=config())
    later = now + dt.timedelta(days=2)
    deletes = {"n": 0}

    def die_on_third_delete(execute, sql, params, many, context):
        if sql.startswith('DELETE FROM "predicciones_prediction"'):
            deletes["n"] += 1
            if deletes["n"] == 3:
                raise OperationalError("the process was killed")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(die_on_third_delete):
        report = log_maintain(now=later, config=config(delete_batch=50))
    assert report.failed_step == "retention"
    remaining = Prediction.objects.count()
    assert 0 < remaining < 360
    # Each batch moved with its count: what is left plus what is counted is everything.
    assert remaining + sum(PredictionHour.objects.values_list("deleted_rows", flat=True)) == 360
    report = log_maintain(now=later, config=config(delete_batch=50))
    assert report.failed_step is None and Prediction.objects.count() == 0
    assert sum(PredictionHour.objects.values_list("deleted_rows", flat=True)) == 360


def test_a_row_that_reaches_a_captured_hour_late_is_captured_and_summarised_once(
    logged, now, own_store, rng
):
    version, rows = logged
    log_maintain(now=now, config=config())
    hour = hour_floor(rows[0].created_at)
    before = hour_summary_read(PredictionHour.objects.get(hour=hour))
    late = predictions_log(
        version, rng.integers(0, 17, (2, 64)), start=hour + dt.timedelta(minutes=7)
    )
    report = log_maintain(now=now, config=config())
    assert report.capture["late_rows"] == 2
    row = PredictionHour.objects.get(hour=hour)
    assert (row.n, row.captured_rows) == (122, 122)
    expected = before.add(
        LogSummary().add_block(
            np.stack([np.frombuffer(r.features, dtype=np.uint8) for r in late]),
            [r.prediction for r in late],
            [r.confidence for r in late],
            latency_ms=[r.latency_ms for r in late],
            labels=[None, None],
        )
    )
    assert hour_summary_read(row).to_dict() == expected.to_dict()
    part1 = next(own_store.rglob(f"hour={hour:%H}/part-0001.jsonl.gz"))
    assert {r["query_id"] for r in lines_of(part1)} == {str(r.query_id) for r in late}
    assert log_maintain(now=now, config=config()).capture["late_rows"] == 0
    # Retention deletes both parts' rows.
    log_maintain(now=now + dt.timedelta(days=2), config=config())
    assert Prediction.objects.count() == 0


def test_dry_run_says_what_would_be_done_and_writes_nothing(logged, now, own_store):
    files = keys(own_store)
    report = log_maintain(now=now + dt.timedelta(days=2), config=config(), dry_run=True)
    assert report.summarise["hours"] == 3
    assert not PredictionHour.objects.exists() and keys(own_store) == files
    log_maintain(now=now, config=config())
    files = keys(own_store)
    report = log_maintain(now=now + dt.timedelta(days=2), config=config(), dry_run=True)
    assert report.retention["hours"] == 3 and report.retention["rows_deleted"] == 360
    assert Prediction.objects.count() == 360 and keys(own_store) == files


def test_max_hours_spreads_a_backlog_over_runs(logged, now):
    report = log_maintain(now=now, config=config(max_hours=2))
    assert report.summarise["hours"] == 2 and report.summarise["more"]
    assert report.capture["hours"] == 2
    report = log_maintain(now=now, config=config(max_hours=2))
    assert report.summarise["hours"] == 1 and not report.summarise["more"]
    assert PredictionHour.objects.filter(captured_rows=120).count() == 3


def test_settings_out_of_range_are_refused_naming_the_setting(settings):
    settings.DIGITS_LOG_RETENTION_DAYS = 0
    with pytest.raises(Exception, match="DIGITS_LOG_RETENTION_DAYS"):
        lifecycle_settings()
    settings.DIGITS_LOG_RETENTION_DAYS = 30
    settings.DIGITS_LOG_GRACE_SECONDS = -1
    with pytest.raises(Exception, match="DIGITS_LOG_GRACE_SECONDS"):
        lifecycle_settings()


# --- Reading the capture back ------------------------------------------------------------------
def export(*args) -> list[dict]:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("export_predictions", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_export_from_the_capture_gives_the_database_export_and_outlives_retention(logged, now):
    _, rows = logged
    feedback_record(query_id=rows[3].query_id, label=rows[3].prediction)
    log_maintain(now=now, config=config())
    # A label given after the capture reaches the export through the label partition.
    feedback_record(query_id=rows[200].query_id, label=1)
    labelled_at = now + dt.timedelta(minutes=1)
    Prediction.objects.filter(query_id=rows[200].query_id).update(labelled_at=labelled_at)
    log_maintain(
        now=hour_floor(labelled_at) + HOUR + dt.timedelta(minutes=11),
        config=config(retention_days=30),
    )
    since = rows[50].created_at.isoformat()
    until = rows[250].created_at.isoformat()
    from_db = export("--since", since, "--until", until)
    from_capture = export("--since", since, "--until", until, "--from-capture")
    assert len(from_db) == 201
    assert sorted(from_capture, key=lambda r: r["time"]) == sorted(from_db, key=lambda r: r["time"])
    log_maintain(now=now + dt.timedelta(days=3), config=config())
    assert export("--since", since, "--until", until) == [
        r for r in from_db if r["label"] is not None
    ]
    assert export("--since", since, "--until", until, "--from-capture") == from_capture


def test_dashboard_traffic_counts_summarised_hours_and_recent_rows(logged, now, client, rng):
    from predicciones.selectors import prediction_traffic_by_version

    version, _rows = logged
    # The current hour (never summarised) is read from the rows.
    predictions_log(version, rng.integers(0, 17, (5, 64)), start=hour_floor(now))
    since = now - dt.timedelta(hours=24)
    before = prediction_traffic_by_version(name="clf.pickle", since=since, until=now)
    log_maintain(now=now, config=config())
    after = prediction_traffic_by_version(name="clf.pickle", since=since, until=now)
    assert before == after == [{"version": 1, "n": 365, "share": 1.0}]
    assert "365" in client.get("/dashboard/").content.decode()
