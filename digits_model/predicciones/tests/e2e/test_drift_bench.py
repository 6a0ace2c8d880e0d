"""The drift bench in miniature: exact window counts on SQLite and on real PostgreSQL.

The timing goal (1,000,000 rows in <= 10 s) is checked by ``make bench``, not here; this
runs the same script on a few thousand rows with ``--verify``, which compares the streamed
histograms with the ones computed while the rows were generated.
PostgreSQL comes from ``DIGITS_TEST_POSTGRES_URL`` (a role that may create databases,
e.g. ``postgres://user:pw@127.0.0.1:5432/postgres``); the bench makes and drops its own.
"""

import json
import os
import subprocess
import sys

import pytest

from harness.paths import REPO_DIR
from predicciones.tests.conftest import require

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def run_bench(*args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    result = subprocess.run(
        [sys.executable, "-m", "bench.drift_bench", "--rows", "3000", "--verify", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_streamed_window_counts_are_exact_on_sqlite():
    result = run_bench()
    assert result["backend"] == "sqlite"
    assert result["verified"] and result["n_current"] == 3000 and result["status"] == "ok"


def test_streamed_window_counts_are_exact_on_postgresql():
    url = os.environ.get("DIGITS_TEST_POSTGRES_URL", "")
    require(bool(url), "DIGITS_TEST_POSTGRES_URL is not set (a PostgreSQL server for tests)")
    result = run_bench("--database-url", url)
    assert result["backend"] == "postgresql"
    assert result["verified"] and result["n_current"] == 3000 and result["status"] == "ok"
