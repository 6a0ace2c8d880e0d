"""The SQLite database on a small tmpfs under a real server: the file system fills up, then is
made read-only. What a load balancer needs: /health/ fails readiness (503) with the reason
while predictions cannot be logged, and says ok again once they can; no answered prediction
lacks its row; a read-only database is reported as the database's fault, never as "no model
loaded"."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from harness.rendering import draw_digit_image
from predicciones.tests.conftest import require

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

IMAGE = {"image": ("seven.png", draw_digit_image("7"))}


@pytest.fixture
def small_tmpfs():
    """A 16 MiB tmpfs of this test's own (mounting needs root)."""
    require(os.geteuid() == 0 and shutil.which("mount") is not None, "mounting a tmpfs needs root")
    path = Path(tempfile.mkdtemp(prefix="digits-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path)], check=True)
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)
    path.rmdir()


def fill(directory: Path) -> Path:
    """Write a file until the file system is full; returns it (delete it to free the space)."""
    filler = directory / "filler"
    with open(filler, "wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()
    return filler


def predict(server) -> requests.Response:
    return requests.post(server.url("/predict/"), files=IMAGE, timeout=30)


def checkpoint(database: Path) -> None:
    """Fold the write-ahead log into the database and truncate it, as SQLite does from time
    to time: the next commits must grow the log again (a log left large by earlier writes
    would take new commits in its old space for a while, full disk or not)."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def logged_ids(database: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        return {
            uuid.UUID(row[0]).hex
            for row in conn.execute("SELECT query_id FROM predicciones_prediction")
        }


@pytest.fixture
def server_on_tmpfs(small_tmpfs, fresh_server_factory):
    """One worker (readiness is per process) with its database on the tmpfs."""
    database = small_tmpfs / "db.sqlite3"
    server = fresh_server_factory(workers=1, database_url=f"sqlite:///{database}")
    return server, small_tmpfs, database


def test_a_full_disk_fails_readiness_with_the_reason_and_loses_nothing(server_on_tmpfs):
    server, mount, database = server_on_tmpfs
    answered = []
    first = predict(server)
    assert first.status_code == 200
    answered.append(first.json()["query_id"])

    checkpoint(database)
    filler = fill(mount)
    refused = None
    for _ in range(400):  # SQLite's write-ahead log reuses its space for a while
        answer = predict(server)
        if answer.status_code == 200:
            answered.append(answer.json()["query_id"])
            continue
        refused = answer
        break
    assert refused is not None, "the full disk never stopped a prediction"
    assert refused.status_code == 503
    assert refused.headers["Retry-After"]
    assert "could not be recorded" in refused.json()["error"]

    health = requests.get(server.url("/health/"), timeout=10)
    assert health.status_code == 503, health.text
    body = health.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("error: disk full")
    assert "disk full" in body["reason"]
    assert health.headers["Retry-After"]
    assert requests.get(server.url("/metrics"), timeout=10).status_code == 200

    filler.unlink()
    recovered = predict(server)
    assert recovered.status_code == 200, recovered.text
    answered.append(recovered.json()["query_id"])
    health = requests.get(server.url("/health/"), timeout=10)
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    # Every 200 has its row.
    assert {uuid.UUID(q).hex for q in answered} <= logged_ids(database)


def test_a_read_only_database_is_the_databases_fault_not_a_missing_model(server_on_tmpfs):
    server, mount, _ = server_on_tmpfs
    assert predict(server).status_code == 200
    # The server is started again on the same file, now on a read-only file system.
    server.group.stop()
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    try:
        server.group.start(ready=lambda: _answers(server), timeout=60)
        answer = predict(server)
        assert answer.status_code == 503, answer.text
        # Routing reads the registry (that works here), the log's write fails: said as such,
        # or as the database being unavailable when even the read fails; never "no model".
        assert "No model version is loaded" not in answer.text
        assert answer.json()["error"] in {
            "The prediction could not be recorded; try again shortly.",
            "The database is unavailable; try again shortly.",
        }
        assert answer.headers["Retry-After"]
        health = requests.get(server.url("/health/"), timeout=10)
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert health.json()["checks"]["database"] == "error: read-only", health.text
        assert "read-only" in health.json()["reason"]
    finally:
        server.group.stop()
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
    server.group.start(ready=lambda: _answers(server), timeout=60)
    assert predict(server).status_code == 200


def _answers(server) -> bool:
    try:
        return requests.get(server.url("/health/live/"), timeout=2).status_code == 200
    except requests.RequestException:
        return False
