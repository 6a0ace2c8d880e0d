"""manage.py maintain in process: output, exit codes, and S3 (moto_server) going away.

The store is a real S3-protocol server on loopback behind a relay the test can cut, so an
outage looks to boto3 exactly like S3 going away, and the objects are still there when it
comes back.
"""

import datetime as dt
import gzip
import json

import pytest
from django.utils import timezone

from harness.s3 import MotoServer, moto_server_path
from predicciones import storage
from predicciones.models import CapturePart, Prediction, PredictionHour
from predicciones.prediction_log.layout import hour_floor
from predicciones.services.predictions import feedback_record
from predicciones.services.registry import shipped_model_bootstrap
from predicciones.tests.commands.running import command_run
from predicciones.tests.conftest import require
from predicciones.tests.factories import predictions_log
from predicciones.tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


def run(*args) -> tuple[int, str, str]:
    return command_run("maintain", *args)


@pytest.fixture
def s3_behind_relay(settings, monkeypatch):
    """A moto_server of this test's own, reached through a relay that can be cut."""
    require(moto_server_path() is not None, "moto_server is not installed (moto[server])")
    server = MotoServer().start()
    relay = TcpProxy(server.port).start()
    bucket = server.create_bucket()
    for name, value in {**server.env(bucket), "AWS_ENDPOINT_URL": relay.endpoint}.items():
        monkeypatch.setenv(name, value)
    settings.DIGITS_S3_BUCKET = bucket
    settings.DIGITS_S3_PREFIX = "digits"
    storage._store_for.cache_clear()
    yield server, relay, bucket
    relay.stop()
    server.stop()
    storage._store_for.cache_clear()


@pytest.fixture
def three_days_ago(rng):
    """Four hours of traffic (30 rows each) three days ago, one row labelled."""
    version = shipped_model_bootstrap()
    start = hour_floor(timezone.now()) - dt.timedelta(days=3)
    rows = predictions_log(
        version, rng.integers(0, 17, (120, 64)), start=start, step=dt.timedelta(minutes=2)
    )
    feedback_record(query_id=rows[7].query_id, label=4)
    return rows


def captured_ids(server: MotoServer, bucket: str) -> set[str]:
    client = server.client()
    ids = set()
    for key in server.keys(bucket, "digits/capture/predictions/"):
        if key.endswith(".jsonl.gz"):
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            ids |= {json.loads(line)["query_id"] for line in gzip.decompress(body).splitlines()}
    return ids


def test_json_reports_each_step_and_a_rerun_does_nothing(s3_behind_relay, three_days_ago):
    server, _, bucket = s3_behind_relay
    code, out, err = run("--json", "--retention-days", "1")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "ok" and doc["retention_days"] == 1
    assert (doc["summarise"]["hours"], doc["capture"]["hours"], doc["retention"]["hours"]) == (
        4,
        4,
        4,
    )
    assert doc["retention"]["rows_deleted"] == 119
    assert doc["retention"]["labelled_rows_kept"] == 1
    assert captured_ids(server, bucket) == {str(r.query_id) for r in three_days_ago}
    assert len(server.keys(bucket, "digits/summaries/")) == 4
    code, out, _ = run("--json", "--retention-days", "1")
    doc = json.loads(out)
    assert code == 0
    assert doc["summarise"]["hours"] == doc["capture"]["hours"] == doc["retention"]["hours"] == 0


def test_s3_stopped_in_the_middle_of_a_capture_deletes_nothing_and_a_rerun_completes(
    s3_behind_relay, three_days_ago, monkeypatch
):
    server, relay, bucket = s3_behind_relay
    put_file = storage.S3Store.put_file
    uploads = []

    def put_then_lose_s3(self, key, source):
        put_file(self, key, source)
        uploads.append(key)
        if len(uploads) == 2:  # the second hour's object is written; S3 goes before read-back
            relay.stop()

    monkeypatch.setattr(storage.S3Store, "put_file", put_then_lose_s3)
    code, out, err = run("--json", "--retention-days", "1")
    assert code == 2
    doc = json.loads(out)  # the account is still printed
    assert doc["status"] == "failed" and doc["step"] == "capture"
    assert doc["summarise"]["hours"] == 4
    assert err.strip().startswith("the capture step failed: cannot read capture/predictions/")
    assert len(err.strip().splitlines()) == 1
    assert Prediction.objects.count() == 120  # nothing deleted
    assert CapturePart.objects.count() == 1  # only the hour read back whole is recorded
    assert PredictionHour.objects.filter(captured_rows__isnull=False).count() == 1

    # Still down: nothing more happens, nothing is deleted.
    code, out, _ = run("--json", "--retention-days", "1")
    assert code == 2 and Prediction.objects.count() == 120

    relay.start()
    monkeypatch.setattr(storage.S3Store, "put_file", put_file)
    code, out, err = run("--json", "--retention-days", "1")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["capture"]["hours"] == 3 and doc["retention"]["rows_deleted"] == 119
    # Zero lost rows: every prediction is in the database or in the checked capture.
    remaining = {str(q) for q in Prediction.objects.values_list("query_id", flat=True)}
    everything = {str(r.query_id) for r in three_days_ago}
    assert remaining | captured_ids(server, bucket) == everything
    assert remaining == {str(three_days_ago[7].query_id)}


def test_nothing_is_deleted_while_the_store_is_unreachable(s3_behind_relay, three_days_ago):
    _, relay, _ = s3_behind_relay
    assert run("--retention-days", "30")[0] == 0  # summarised and captured, nothing due
    relay.stop()
    code, out, err = run("--retention-days", "1")
    assert code == 2
    assert "Failed at retention: cannot read" in out
    assert err.startswith("the retention step failed: cannot read")
    assert Prediction.objects.count() == 120


def test_dry_run_in_words(s3_behind_relay, three_days_ago):
    code, out, _ = run("--dry-run", "--retention-days", "1")
    assert code == 0
    assert "Summarise: 4 closed hours would be summarised" in out
    assert "Dry run: nothing recorded, stored or deleted." in out
    assert not PredictionHour.objects.exists()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--retention-days", "0"], "--retention-days"),
        (["--grace-seconds", "-1"], "--grace-seconds"),
        (["--max-hours", "0"], "--max-hours"),
        (["--batch-rows", "50000"], "--batch-rows"),
    ],
)
def test_numeric_options_are_range_checked_naming_the_option(args, option):
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert f"argument {option}:" in err and len(err.strip().splitlines()) == 1


def test_a_bad_setting_is_named(settings):
    settings.DIGITS_LOG_RETENTION_DAYS = 0
    code, out, err = run("--json")
    assert code == 2 and out == "" and "DIGITS_LOG_RETENTION_DAYS" in err


def empty_the_bucket(server: MotoServer, bucket: str) -> None:
    """The bucket recreated empty: every captured object is gone, the database remembers them."""
    client = server.client()
    for key in server.keys(bucket):
        client.delete_object(Bucket=bucket, Key=key)


def test_a_lost_capture_names_its_recovery_and_recapture_rebuilds_it(
    s3_behind_relay, three_days_ago
):
    server, _, bucket = s3_behind_relay
    code, _, err = run("--json")  # summarised and captured; 30 days of retention: none due
    assert code == 0, err
    empty_the_bucket(server, bucket)

    code, out, err = run("--json", "--retention-days", "1")
    assert code == 2
    first_hour = hour_floor(three_days_ago[0].created_at)
    (line,) = err.strip().splitlines()
    assert "manifest.json is missing" in line
    assert f"manage.py maintain --recapture {first_hour:%Y-%m-%dT%H}" in line
    assert Prediction.objects.count() == 120  # nothing deleted

    code, out, err = run("--recapture", "missing", "--dry-run", "--json")
    assert code == 0 and len(json.loads(out)["hours"]) == 4
    assert server.keys(bucket) == []  # a dry run writes nothing
    code, out, err = run("--recapture", "missing")
    assert (code, err) == (0, "")
    assert out.strip() == (
        # (the one label was given this hour, which is not closed yet: not captured)
        "Recapture: 4 hours captured again from the database (120 rows), 0 hours of labels "
        "captured again."
    )
    assert captured_ids(server, bucket) == {str(r.query_id) for r in three_days_ago}

    code, out, err = run("--json", "--retention-days", "1")
    assert code == 0, err
    assert json.loads(out)["retention"]["rows_deleted"] == 119
    # Lost again after retention: only the labelled row is left, nothing can be rebuilt.
    empty_the_bucket(server, bucket)
    code, out, err = run("--recapture", "missing", "--json")
    assert code == 0
    assert len(json.loads(out)["lost"]) == 4 and json.loads(out)["hours"] == []
    assert err.startswith("warning: 4 hours were pruned by retention")
    assert Prediction.objects.count() == 1


def test_recapture_of_one_hour(s3_behind_relay, three_days_ago):
    server, _, bucket = s3_behind_relay
    assert run()[0] == 0
    empty_the_bucket(server, bucket)
    hour = hour_floor(three_days_ago[0].created_at)
    code, out, err = run("--recapture", f"{hour:%Y-%m-%dT%H}", "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == 30
    keys = server.keys(bucket, "digits/capture/predictions/")
    assert len(keys) == 2 and all(f"hour={hour:%H}/" in key for key in keys)
    code, _, err = run("--recapture", "yesterday")
    assert code == 2 and "--recapture must be an ISO 8601 date or time" in err
