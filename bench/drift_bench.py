"""Benchmark: check_drift over 1,000,000 logged predictions in <= 10 s with bounded memory.

For each size it makes a fresh database (a SQLite file, or a new database on the
PostgreSQL server given by ``--database-url``), registers the shipped model, writes the
rows straight into the prediction log, then runs the drift check (the whole service:
statistics from the store, streaming aggregation, report to store and database) in a
fresh child process, reporting wall time, peak RSS, the RSS growth during the check and
tracemalloc's peak. Exits 1 when a check is over ``--budget-seconds``.

    python -m bench.drift_bench                         # SQLite, 100k and 1M rows
    python -m bench.drift_bench --database-url postgres://user:pw@127.0.0.1:5432/postgres
    python -m bench.drift_bench --rows 5000 --verify    # exact counts check (used by tests)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from bench.scripts import phase_run
from harness.servers import project_env

INSERT_BATCH = 50_000


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_model.settings")
    import django

    django.setup()


# --- Populate (parent) ---------------------------------------------------------------------------
def generate(n: int, seed: int):
    """Yield (features uint8 (k, 64), predictions, confidences) batches of realistic rows:
    the features of 600 MNIST validation digits drawn plainly and preprocessed like uploads
    (what the shipped model's traffic looks like), resampled, with a little +-1 jitter so
    the histograms are not tiny."""
    from predicciones.ml.splits import base_rows

    rows = base_rows(part="validation", n_augment=0, sources_=("mnist",), step=10)
    X, labels = rows.X.astype(np.int16), rows.y
    rng = np.random.default_rng(seed)
    done = 0
    while done < n:
        k = min(INSERT_BATCH, n - done)
        idx = rng.integers(0, len(X), k)
        jitter = rng.integers(-1, 2, (k, 64)) * (rng.random((k, 64)) < 0.1)
        features = np.clip(X[idx] + jitter, 0, 16).astype(np.uint8)
        yield features, labels[idx], rng.uniform(0.4, 1.0, k)
        done += k


def log_rows(version_id: int, times, features, predictions, confidences, **extra):
    """The benchmark's rows as the log writes them (``extra``: per-row latencies, labels...)."""
    from predicciones.prediction_log.writing import LogRow

    latency = extra.get("latency_ms", [1.0] * len(times))
    labels = extra.get("labels", [None] * len(times))
    return [
        LogRow.of(
            query_id=uuid.UUID(bytes=os.urandom(16)),
            created_at=t,
            model_version_id=version_id,
            features=f,
            prediction=int(p),
            confidence=float(c),
            latency_ms=float(lat),
            image_sha256="0" * 64,
            label=label,
            labelled_at=None if label is None else t + dt.timedelta(minutes=1),
        )
        for t, f, p, c, lat, label in zip(
            times, features, predictions, confidences, latency, labels, strict=True
        )
    ]


def populate(n: int, seed: int) -> dict:
    """Write n predictions of the live version; returns the expected aggregate."""
    from django.core.management import call_command
    from django.db import connection

    from predicciones.ml import drift
    from predicciones.prediction_log.writing import log_rows_load
    from predicciones.services.registry import shipped_model_bootstrap

    call_command("migrate", verbosity=0)
    version = shipped_model_bootstrap()
    counts = np.zeros((64, 17), dtype=np.int64)
    classes = np.zeros(10, dtype=np.int64)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=n)
    written = 0
    started = time.perf_counter()
    for features, predictions, confidences in generate(n, seed):
        counts += drift.value_counts(features)
        classes += np.bincount(predictions, minlength=10)
        times = [start + dt.timedelta(seconds=written + i) for i in range(len(features))]
        written += log_rows_load(log_rows(version.pk, times, features, predictions, confidences))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE predicciones_prediction")
    return {
        "insert_seconds": round(time.perf_counter() - started, 2),
        "value_counts": counts.tolist(),
        "class_counts": classes.tolist(),
    }


# --- Check (child) -------------------------------------------------------------------------------
def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def check(n: int, verify: bool) -> dict:
    django_setup()
    from predicciones.prediction_log import windows
    from predicciones.services.drift import drift_report_create, drift_version_resolve

    # Warm imports and the connection so the measurement is the check itself.
    version = drift_version_resolve()
    rss_before = rss_mib()
    started = time.perf_counter()
    report = drift_report_create(last=n)
    seconds = time.perf_counter() - started
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # A second pass under tracemalloc (slower, so not timed): Python-level peak allocation.
    tracemalloc.start()
    drift_report_create(last=n, save=False)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result = {
        "seconds": round(seconds, 3),
        "status": report.status,
        "n_current": report.n_current,
        "rss_before_mib": round(rss_before, 1),
        "peak_rss_mib": round(peak_rss, 1),
        "tracemalloc_peak_mib": round(traced_peak / 2**20, 2),
    }
    started = time.perf_counter()
    since = drift_report_create(since=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    result["since_seconds"] = round(time.perf_counter() - started, 3)
    result["since_n_current"] = since.n_current
    if verify:
        window = windows.prediction_window_aggregate(version=version, last=n)
        result["value_counts"] = window.value_counts.tolist()
        result["class_counts"] = window.class_counts.tolist()
    return result


# --- Driver --------------------------------------------------------------------------------------
def fresh_database_url(base: str | None, var_dir: Path) -> tuple[str | None, callable]:
    """A new empty database: a SQLite file in var_dir, or a new PostgreSQL database."""
    if not base:
        return None, lambda: None
    import psycopg

    parts = urlsplit(base)
    name = f"digits_bench_{uuid.uuid4().hex[:10]}"
    admin = urlunsplit(parts._replace(scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path=f"/{name}")), drop


def run_size(n: int, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="digits-bench-") as var_dir:
        url, drop = fresh_database_url(args.database_url, Path(var_dir))
        env = project_env(var_dir)
        if not args.s3:
            env.pop("DIGITS_S3_BUCKET", None)
        if url:
            env["DATABASE_URL"] = url
        try:
            populated = phase_run(
                "bench.drift_bench", env, "populate", "--rows", str(n), "--seed", str(args.seed)
            )
            verify = ["--verify"] if args.verify else []
            checked = phase_run("bench.drift_bench", env, "check", "--rows", str(n), *verify)
        finally:
            drop()
    result = {
        "rows": n,
        "backend": "postgresql" if url else "sqlite",
        "insert_seconds": populated["insert_seconds"],
        **{k: v for k, v in checked.items() if k not in {"value_counts", "class_counts"}},
    }
    if args.verify:
        result["verified"] = (
            checked["value_counts"] == populated["value_counts"]
            and checked["class_counts"] == populated["class_counts"]
            and checked["n_current"] == n
            and checked["since_n_current"] == n
        )
    result["within_budget"] = checked["seconds"] <= args.budget_seconds
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000", help="Comma-separated sizes.")
    parser.add_argument("--database-url", help="PostgreSQL server to use (default: SQLite).")
    parser.add_argument("--budget-seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verify", action="store_true", help="Compare counts exactly.")
    parser.add_argument("--s3", action="store_true", help="Keep DIGITS_S3_BUCKET from the env.")
    parser.add_argument("--phase", choices=["populate", "check"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase == "populate":
        django_setup()
        print(json.dumps(populate(int(args.rows), args.seed)))
        return 0
    if args.phase == "check":
        print(json.dumps(check(int(args.rows), args.verify)))
        return 0
    ok = True
    for n in (int(size) for size in args.rows.split(",")):
        result = run_size(n, args)
        print(json.dumps(result), flush=True)
        ok &= result["within_budget"] and result.get("verified", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
