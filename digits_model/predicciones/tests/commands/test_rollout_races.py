"""Two operators acting on the same deployment at once, as two real ``manage.py`` processes on
PostgreSQL: the second one finds the state changed and exits 2, nothing done, instead of
silently undoing the first. The state after is what both were told."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
import pytest

from harness.paths import PROJECT_DIR

pytestmark = pytest.mark.slow

#: A second version of the shipped model (the same bytes: cheap), then live.
SECOND_VERSION = """
import django
django.setup()
from predicciones.services.registry import model_version_register, shipped_model_read
shipped = shipped_model_read()
model_version_register(name="clf.pickle", artifact=shipped.artifact,
                       statistics=shipped.statistics, metrics={}, sklearn_version="",
                       created_by="test")
"""


@pytest.fixture
def two_versions(postgres_url, tmp_path):
    """v2 live, v1 one rollback away, on a fresh PostgreSQL database; yields run(*args)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": "test-only",
        "DIGITS_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "digits_model.settings",
        "DATABASE_URL": postgres_url,
        "DIGITS_LOG_LEVEL": "WARNING",
    }

    def start(*args) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(*args) -> tuple[int, str, str]:
        process = start(*args)
        out, err = process.communicate(timeout=120)
        return process.returncode, out, err

    for args in (["migrate", "-v", "0"], ["bootstrap_model"]):
        assert run(*args)[0] == 0
    subprocess.run(
        [sys.executable, "-c", SECOND_VERSION], cwd=PROJECT_DIR, env=env, check=True, timeout=120
    )
    assert run("promote", "clf.pickle", "2")[0] == 0
    run.start = start
    yield run


def live_version(postgres_url) -> int:
    with psycopg.connect(postgres_url) as conn:
        return conn.execute(
            "SELECT v.version FROM predicciones_deployment d "
            "JOIN predicciones_modelversion v ON v.id = d.live_id"
        ).fetchone()[0]


def waiting_on_locks(conn, database: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
        [database],
    ).fetchone()[0]


def test_two_simultaneous_rollbacks_do_not_cancel_each_other(two_versions, postgres_url):
    database = postgres_url.rsplit("/", 1)[1]
    # Hold the deployment row so both commands read the same state, then queue on the lock:
    # what two operators typing `rollback` at the same moment do.
    # (The watcher in autocommit: pg_stat_activity is read once per transaction.)
    with (
        psycopg.connect(postgres_url) as holder,
        psycopg.connect(postgres_url, autocommit=True) as watcher,
    ):
        holder.execute("SELECT 1 FROM predicciones_deployment FOR UPDATE")
        processes = [two_versions.start("rollback", "clf.pickle") for _ in range(2)]
        deadline = time.monotonic() + 90
        while waiting_on_locks(watcher, database) < 2:
            assert time.monotonic() < deadline, "the commands never reached the lock"
            assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
            time.sleep(0.1)
        holder.commit()
        results = [(p.wait(timeout=60), *p.communicate()) for p in processes]

    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    (winner,) = [r for r in results if r[0] == 0]
    (loser,) = [r for r in results if r[0] == 2]
    for _, out, _ in results:
        assert "clf.pickle: acting on live clf.pickle:2, no candidate" in out
    assert "clf.pickle: now live clf.pickle:1, no candidate" in winner[1]
    (line,) = loser[2].strip().splitlines()
    assert "changed since this command read it (now live clf.pickle:1" in line
    assert "nothing done" in line and "Traceback" not in loser[2]
    assert live_version(postgres_url) == 1  # rolled back once, as both were told


def test_expect_live_refuses_a_state_the_operator_did_not_see(two_versions, postgres_url):
    code, out, err = two_versions("rollback", "clf.pickle", "--expect-live", "2")
    assert (code, err) == (0, "")
    assert "now live clf.pickle:1" in out
    # A second operator who also saw v2 live, a minute later.
    code, out, err = two_versions("rollback", "clf.pickle", "--expect-live", "2")
    assert code == 2
    assert err.strip().splitlines() == [
        "CommandError: clf.pickle:2 is not live (now live clf.pickle:1, no candidate); nothing done"
    ]
    assert live_version(postgres_url) == 1
    code, _, err = two_versions("promote", "clf.pickle", "2", "--expect-live", "5")
    assert code == 2 and "clf.pickle:5 is not live" in err
    code, _, err = two_versions(
        "canary", "clf.pickle", "2", "--percent", "10", "--expect-live", "1"
    )
    assert (code, err) == (0, "")
