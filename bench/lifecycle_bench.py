"""Benchmark: the prediction log's lifecycle (``manage.py maintain``) and drift from summaries.

Three measurements, each on a fresh database (SQLite, or a new database on the PostgreSQL
server given by ``--database-url``) and a fresh bucket on a local ``moto_server`` (the S3
protocol on loopback; a local folder with ``--local-store``):

1. ``capture``: ``--capture-rows`` predictions over four closed hours; ``maintain`` times its
   summarise and capture steps, then (two days later) retention: rows/s for each step,
   compressed bytes per row.
2. ``drift``: 30 days of hourly summaries (720 rows) plus one hour of raw rows at 450
   requests/s (1,620,000) not summarised yet; ``check_drift --since <30 days ago>`` in a
   fresh child process: seconds and peak RSS (target <= 2 s and <= 200 MiB).
3. ``retention``: ``--days`` simulated days at ``--rows-per-hour`` (1 % labelled) with
   ``maintain`` every simulated hour and ``--retention-days 1`` (and, on PostgreSQL,
   ``maintain --reindex`` once a simulated day unless ``--no-reindex``): rows and database
   size at the end of each day (bounded: it levels off after the retention period).

    python -m bench.lifecycle_bench                    # all three, SQLite (about 4 minutes)
    python -m bench.lifecycle_bench --only drift --database-url postgres://u:pw@127.0.0.1/postgres

Prints one JSON object per measurement. Exits 1 when the drift check misses its target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.drift_bench import (
    INSERT_BATCH,
    django_setup,
    fresh_database_url,
    generate,
    log_rows,
    rss_mib,
)
from bench.scripts import phase_run
from harness.s3 import MotoServer
from harness.servers import project_env

HOUR = dt.timedelta(hours=1)
#: check_drift over 30 days of summaries plus one raw hour at this rate.
REQUESTS_PER_SECOND = 450
DRIFT_DAYS = 30
TARGET_SECONDS = 2.0
TARGET_RSS_MIB = 200.0


# --- Writing rows straight into the log ---------------------------------------------------
def insert_rows(version_id: int, times: list[dt.datetime], seed: int, labelled_share=0.0):
    """Log ``len(times)`` realistic predictions at the given times (COPY on PostgreSQL), a
    ``labelled_share`` of them labelled a minute later."""
    from predicciones.prediction_log.writing import log_rows_load

    rng = np.random.default_rng(seed + 1)
    done = 0
    for features, predictions, confidences in generate(len(times), seed):
        k = len(features)
        labels = np.where(rng.random(k) < labelled_share, predictions, -1)
        rows = log_rows(
            version_id,
            times[done : done + k],
            features,
            predictions,
            confidences,
            latency_ms=rng.gamma(4.0, 0.5, k) + 0.5,
            labels=[None if label < 0 else int(label) for label in labels],
        )
        done += log_rows_load(rows)


def spread(start: dt.datetime, n: int, seconds: float) -> list[dt.datetime]:
    step = seconds / n
    return [start + dt.timedelta(seconds=i * step) for i in range(n)]


def database_size() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_database_size(current_database())")
            total = cursor.fetchone()[0]
            cursor.execute(
                "SELECT pg_relation_size('predicciones_prediction'), "
                "pg_indexes_size('predicciones_prediction')"
            )
            heap, indexes = cursor.fetchone()
            cursor.execute(
                "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
                "WHERE indrelid = 'predicciones_prediction'::regclass ORDER BY 1"
            )
            return {
                "database_bytes": total,
                "log_heap_bytes": heap,
                "log_index_bytes": indexes,
                "log_indexes": dict(cursor.fetchall()),
            }
        cursor.execute("PRAGMA page_size")
        page = cursor.fetchone()[0]
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute("PRAGMA freelist_count")
        free = cursor.fetchone()[0]
    return {"database_bytes": pages * page, "used_bytes": (pages - free) * page}


# --- The three measurements (each in its own child process) ------------------------------
def phase_capture(rows: int, seed: int) -> dict:
    from django.core.management import call_command

    from predicciones.options import lifecycle_settings
    from predicciones.prediction_log.layout import hour_floor
    from predicciones.prediction_log.maintenance import log_maintain
    from predicciones.services.registry import shipped_model_bootstrap

    call_command("migrate", verbosity=0)
    version = shipped_model_bootstrap()
    start = hour_floor(dt.datetime.now(dt.UTC)) - 6 * HOUR
    insert_rows(version.pk, spread(start, rows, 4 * 3600), seed)
    report = log_maintain(config=lifecycle_settings(retention_days=30)).to_dict()
    assert report["status"] == "ok", report
    s, c = report["summarise"], report["capture"]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    pruned = log_maintain(now=later, config=lifecycle_settings(retention_days=1)).to_dict()
    r = pruned["retention"]
    assert pruned["status"] == "ok" and r["rows_deleted"] == rows, pruned
    return {
        "retention_seconds": r["seconds"],
        "retention_rows_per_s": round(rows / r["seconds"]),
        "rows": rows,
        "hours": c["hours"],
        "summarise_seconds": s["seconds"],
        "summarise_rows_per_s": round(rows / s["seconds"]),
        "capture_seconds": c["seconds"],
        "capture_rows_per_s": round(rows / c["seconds"]),
        "capture_bytes": c["bytes"],
        "bytes_per_row": round(c["bytes"] / rows, 1),
    }


def phase_drift_populate(seed: int) -> dict:
    """720 summaries (30 days) and 1,620,000 raw rows in the last hour."""
    from django.core.management import call_command
    from django.utils import timezone

    from predicciones import storage
    from predicciones.ml.features import N_FEATURES
    from predicciones.ml.summary import LogSummary
    from predicciones.models import PredictionHour
    from predicciones.prediction_log.layout import hour_floor
    from predicciones.services.registry import shipped_model_bootstrap

    call_command("migrate", verbosity=0)
    version = shipped_model_bootstrap()
    now = timezone.now()
    first = hour_floor(now) - (DRIFT_DAYS * 24 + 1) * HOUR
    hourly_rows = REQUESTS_PER_SECOND * 3600
    started = time.perf_counter()
    rows = []
    for i, (features, predictions, confidences) in enumerate(generate(DRIFT_DAYS * 24 * 500, seed)):
        # 500 generated rows stand in for each hour's histograms, scaled to 450 req/s.
        for j in range(0, len(features), 500):
            h = first + (i * (INSERT_BATCH // 500) + j // 500) * HOUR
            block = LogSummary().add_block(
                features[j : j + 500],
                predictions[j : j + 500],
                confidences[j : j + 500],
                latency_ms=np.full(500, 2.0),
                labels=[None] * 500,
            )
            scale = hourly_rows // 500
            rows.append(
                PredictionHour(
                    model_version=version,
                    hour=h,
                    n=block.n * scale,
                    value_counts=(block.value_counts * scale).tolist(),
                    class_counts=(block.class_counts * scale).tolist(),
                    confidence_units=str(block.confidence_units * scale),
                    latency_counts=(block.latency_counts * scale).tolist(),
                    first_created_at=h,
                    last_created_at=h + HOUR - dt.timedelta(microseconds=1),
                    summarised_at=now,
                    summary_key=storage.summary_key(version.model.name, version.version, h),
                    summary_stored=True,
                    captured_rows=block.n * scale,
                    captured_at=now,
                )
            )
    PredictionHour.objects.bulk_create(rows, batch_size=200)
    assert len(rows) == DRIFT_DAYS * 24 and N_FEATURES == 64
    raw_start = first + DRIFT_DAYS * 24 * HOUR
    insert_rows(version.pk, spread(raw_start, hourly_rows, 3600), seed + 7)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {
        "since": first.isoformat(),
        "until": (raw_start + HOUR).isoformat(),
        "populate_seconds": round(time.perf_counter() - started, 1),
    }


def phase_drift_check(since: str, until: str) -> dict:
    from predicciones.services.drift import drift_report_create, drift_version_resolve

    drift_version_resolve()  # imports and connection warmed: the measurement is the check
    rss_before = rss_mib()
    started = time.perf_counter()
    report = drift_report_create(
        since=dt.datetime.fromisoformat(since), until=dt.datetime.fromisoformat(until)
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_mib": round(rss_before, 1),
        "n_current": report.n_current,
        "sources": report.document["sources"],
        "status": report.status,
    }


def phase_retention(days: int, rows_per_hour: int, seed: int, reindex: bool) -> dict:
    from django.core.management import call_command
    from django.db import connection

    from predicciones.models import Prediction
    from predicciones.options import lifecycle_settings
    from predicciones.prediction_log.layout import hour_floor
    from predicciones.prediction_log.maintenance import log_maintain, log_reindex
    from predicciones.services.registry import shipped_model_bootstrap

    call_command("migrate", verbosity=0)
    version = shipped_model_bootstrap()
    start = hour_floor(dt.datetime.now(dt.UTC)) - (days * 24 + 1) * HOUR
    config = lifecycle_settings(retention_days=1, grace_seconds=600)
    per_day, maintain_seconds = [], []
    for h in range(days * 24):
        hour = start + h * HOUR
        insert_rows(version.pk, spread(hour, rows_per_hour, 3600), seed + h, labelled_share=0.01)
        started = time.perf_counter()
        report = log_maintain(now=hour + HOUR + dt.timedelta(minutes=11), config=config)
        maintain_seconds.append(time.perf_counter() - started)
        assert report.failed_step is None, report.to_dict()
        if (h + 1) % 24 == 0:
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("VACUUM predicciones_prediction")
                if reindex:  # maintain --reindex, here once a simulated day
                    log_reindex()
            per_day.append(
                {
                    "day": (h + 1) // 24,
                    "rows": Prediction.objects.count(),
                    "labelled_rows": Prediction.objects.filter(label__isnull=False).count(),
                    **database_size(),
                }
            )
    return {
        "days": days,
        "rows_per_hour": rows_per_hour,
        "labelled_share": 0.01,
        "reindex_daily": reindex,
        "maintain_seconds_median": round(float(np.median(maintain_seconds)), 3),
        "per_day": per_day,
    }


# --- Driver ------------------------------------------------------------------------------
def child(env: dict, *args: str) -> dict:
    return phase_run("bench.lifecycle_bench", env, *args)


def measure(name: str, args, moto: MotoServer | None, phases) -> dict:
    with tempfile.TemporaryDirectory(prefix="digits-lifecycle-bench-") as var_dir:
        url, drop = fresh_database_url(args.database_url, Path(var_dir))
        # The caller's database and bucket are never used: each measurement makes its own.
        env = project_env(var_dir)
        env.pop("DIGITS_S3_BUCKET", None)
        if url:
            env["DATABASE_URL"] = url
        if moto is not None:
            env.update(moto.env(moto.create_bucket()))
        try:
            result = phases(env)
        finally:
            drop()
    return {
        "measure": name,
        "backend": "postgresql" if args.database_url else "sqlite",
        "store": "local folder" if moto is None else "s3 (moto_server)",
        **result,
    }


# --- For bench/run.py's report -----------------------------------------------------------------
def render_lifecycle(lifecycle: dict) -> list[str]:
    lines = ["The log's lifecycle (bench/lifecycle_bench.py)"]
    for r in lifecycle["results"]:
        where = f"{r['backend']}, {r['store']}"
        if r["measure"] == "capture":
            lines.append(
                f"  {r['rows']:,} rows in {r['hours']} hours ({where}): summarised "
                f"{r['summarise_rows_per_s']:,} rows/s, captured {r['capture_rows_per_s']:,} "
                f"rows/s ({r['bytes_per_row']} bytes/row gzip), deleted by retention "
                f"{r['retention_rows_per_s']:,} rows/s"
            )
        elif r["measure"] == "drift":
            met = "met" if r["within_target"] else "MISSED"
            lines.append(
                f"  check_drift over 30 days: {r['sources']['summary_hours']} hourly summaries + "
                f"{r['sources']['raw_rows']:,} raw rows ({where}): {r['seconds']:.2f} s, peak RSS "
                f"{r['peak_rss_mib']:.0f} MiB (target <= 2 s and <= 200 MiB: {met})"
            )
        else:
            lines.append(
                f"  {r['days']} simulated days at {r['rows_per_hour']:,} rows/hour, 1 % labelled, "
                f"retention 1 day ({where}); maintain per hour: median "
                f"{r['maintain_seconds_median']:.2f} s"
            )
            for day in r["per_day"]:
                lines.append(
                    f"    day {day['day']}: {day['rows']:,} rows ({day['labelled_rows']:,} "
                    f"labelled), database {day['database_bytes'] / 2**20:.1f} MiB"
                )
    if "stderr_tail" in lifecycle:
        lines.append(f"  lifecycle_bench.py exited {lifecycle['exit_code']}")
        lines += ["  " + line for line in lifecycle["stderr_tail"]]
    return [*lines, ""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["capture", "drift", "retention"], action="append")
    parser.add_argument("--database-url", help="PostgreSQL server to use (default: SQLite).")
    parser.add_argument("--local-store", action="store_true", help="A folder instead of moto.")
    parser.add_argument("--capture-rows", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rows-per-hour", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-reindex",
        action="store_true",
        help="retention: no daily maintain --reindex (shows PostgreSQL's index growth)",
    )
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        django_setup()
        name, *rest = args.phase
        result = {
            "capture": lambda: phase_capture(int(rest[0]), args.seed),
            "drift_populate": lambda: phase_drift_populate(args.seed),
            "drift_check": lambda: phase_drift_check(rest[0], rest[1]),
            "retention": lambda: phase_retention(
                int(rest[0]), int(rest[1]), args.seed, rest[2] == "reindex"
            ),
        }[name]()
        print(json.dumps(result, default=str))
        return 0
    moto = None if args.local_store else MotoServer().start()
    ok = True
    try:
        for name in args.only or ["capture", "drift", "retention"]:
            if name == "capture":
                result = measure(
                    name, args, moto, lambda env: child(env, "capture", str(args.capture_rows))
                )
            elif name == "drift":

                def drift_phases(env):
                    populated = child(env, "drift_populate")
                    checked = child(env, "drift_check", populated["since"], populated["until"])
                    return {**populated, **checked}

                result = measure(name, args, moto, drift_phases)
                result["within_target"] = (
                    result["seconds"] <= TARGET_SECONDS and result["peak_rss_mib"] <= TARGET_RSS_MIB
                )
                ok &= result["within_target"]
            else:
                result = measure(
                    name,
                    args,
                    moto,
                    lambda env: child(
                        env,
                        "retention",
                        str(args.days),
                        str(args.rows_per_hour),
                        "plain" if args.no_reindex else "reindex",
                    ),
                )
            print(json.dumps(result), flush=True)
    finally:
        if moto is not None:
            moto.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
