"""The log's lifecycle with real writers: gunicorn workers answering /predict/ on SQLite and
PostgreSQL while another process summarises and captures the very hour they write into.

``maintain`` runs in its own process with its clock an hour and a grace period ahead, so the
hour being written counts as closed: rows keep arriving after it was summarised and
captured. Afterwards, by query id: every answered prediction is in the database or in the
checked capture (zero lost), no query id is captured twice, and each hour's summary counts
exactly the rows captured for it (nothing counted twice, nothing left out). Then retention
runs and the same holds with the rows gone from the database. S3 is moto_server on loopback.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import gzip
import hashlib
import json
import subprocess
import sys
import time
from collections import Counter

import pytest

from harness.paths import PROJECT_DIR
from harness.rendering import draw_digit_image
from harness.servers import ServerProcess
from predicciones.tests.e2e.load import LoadRun

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

IMAGES = [draw_digit_image(d, size=s) for d in "0127" for s in (64, 200)]
LOAD_SECONDS = 12
CLIENTS = 6


def probe(server: ServerProcess, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "predicciones.tests.e2e.lifecycle_probe", *args],
        cwd=PROJECT_DIR,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def captured(s3, parts: list[dict]) -> Counter:
    """Query ids in the capture, read from the bucket and checked against the records."""
    client = s3.server.client()
    ids: Counter = Counter()
    for part in parts:
        body = client.get_object(Bucket=s3.bucket, Key=f"digits/{part['key']}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == part["sha256"]
        lines = gzip.decompress(body).splitlines()
        assert len(lines) == part["rows"]
        ids.update(json.loads(line)["query_id"] for line in lines)
    return ids


def logged_ids(server: ServerProcess) -> set[str]:
    out = server.manage("export_predictions").stdout
    return {json.loads(line)["query_id"] for line in out.splitlines()}


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, moto_server, fresh_server_factory):
    s3_env = moto_server.env(moto_server.create_bucket())
    database_url = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
    srv = fresh_server_factory(workers=2, database_url=database_url, env=s3_env)
    srv.s3 = type("S3", (), {"server": moto_server, "bucket": s3_env["DIGITS_S3_BUCKET"]})
    srv.backend = request.param
    return srv


def test_writers_during_summary_and_capture_lose_nothing_and_count_nothing_twice(server):
    load = LoadRun(server.url("/predict/"), IMAGES, clients=CLIENTS).start()
    passes = []
    try:
        deadline = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < deadline:
            ahead = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1, minutes=11)
            passes.append(probe(server, "maintain", ahead.isoformat()))
            time.sleep(1)
    finally:
        samples = load.stop()
    answered = {s.query_id for s in samples if s.status == 200}
    assert len(answered) > 100 and all(p["status"] == "ok" for p in passes)
    assert sum(p["capture"]["hours"] for p in passes) >= 1
    # Rows written after their hour was captured were folded in by the later passes; one
    # more pass once the writers stopped catches the last ones.
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1, minutes=11)
    final = probe(server, "maintain", ahead.isoformat())
    late = final["capture"]["late_rows"] + sum(p["capture"]["late_rows"] for p in passes)
    state = probe(server, "state")
    ids = captured(server.s3, state["parts"])
    assert max(ids.values()) == 1, "a query id was captured twice"
    assert set(ids) == answered | (logged_ids(server) - answered)  # all rows, once
    assert answered <= set(ids), "an answered prediction is missing from the capture"
    for hour in state["hours"]:
        assert hour["n"] == hour["captured_rows"]
    assert sum(hour["n"] for hour in state["hours"]) == len(ids)
    print(f"{server.backend}: {len(answered)} answered, {late} captured late")
    # Drift read from the summaries is the drift read from the rows (this database's SQL).
    first = dt.datetime.fromisoformat(state["hours"][0]["hour"])
    end = dt.datetime.fromisoformat(state["hours"][-1]["hour"]) + dt.timedelta(hours=1)
    whole = first.isoformat(), (end - dt.timedelta(microseconds=1)).isoformat()
    compared = probe(server, "compare", *whole)
    assert compared["equal"] and compared["sources"]["summary_hours"] >= 1, compared
    assert compared["sources"]["raw_rows"] == 0 and compared["n"] == len(ids)
    partial = (first + dt.timedelta(seconds=1)).isoformat(), end.isoformat()
    assert probe(server, "compare", *partial)["equal"]
    # Raw rows read by two connections at once add up to the same as by one.
    readers = probe(server, "readers", *partial)
    assert readers["equal"] and readers["n"] > 0, readers

    # Retention: the rows leave the database, the capture keeps every one of them.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    pruned = probe(server, "maintain", later.isoformat(), "30")
    assert pruned["status"] == "ok" and pruned["retention"]["rows_deleted"] == len(ids)
    assert logged_ids(server) == set()
    state = probe(server, "state")
    assert set(captured(server.s3, state["parts"])) >= answered


def test_a_second_maintain_on_the_same_database_exits_2(server):
    if server.backend == "sqlite":
        lock = open(server.var_dir / "db.sqlite3.maintain.lock", "a")  # noqa: SIM115
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            result = server.manage("maintain", check=False)
        finally:
            lock.close()
    else:
        import psycopg

        key = int.from_bytes(hashlib.sha256(b"digits-maintain").digest()[:8], "big", signed=True)
        with psycopg.connect(
            server.env["DATABASE_URL"].replace("postgres://", "postgresql://")
        ) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [key])
            result = server.manage("maintain", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "CommandError: another maintain is running on this database"
    ]


def test_reindex_rebuilds_the_log_indexes_on_postgresql_and_is_not_needed_on_sqlite(server):
    result = server.manage("maintain", "--reindex", "--json")
    report = json.loads(result.stdout)["reindex"]
    if server.backend == "postgresql":
        assert "predicciones_prediction_pkey" in report["indexes"]
        assert report["bytes_after"] > 0
    else:
        assert (report["indexes"], report["note"]) == ([], "not needed on sqlite")
    words = server.manage("maintain", "--reindex", "--dry-run").stdout
    assert "Reindex:" in words
