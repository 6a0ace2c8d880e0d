"""Run management commands on a schedule: the compose ``jobs`` service, a cron in a container.

Every ``DIGITS_JOB_INTERVAL`` seconds (default 3600) it runs each command of ``DIGITS_JOBS``
(``;``-separated ``manage.py`` command lines, default ``maintain --json; run_pipeline --json``:
the log's summaries, capture and retention, then the drift/retrain pipeline) one after the
other, each in its own process with a time limit (``DIGITS_JOB_TIMEOUT``, default 3600 s).
A job's own output goes to this process's stdout; one JSON line per job run (command, exit
code, seconds) goes to stderr. A failing job is logged and the schedule goes on. SIGTERM
(``docker stop``) stops the running job and exits.

    python docker/scheduler.py            # forever
    python docker/scheduler.py --once     # each job once; exit with the worst exit code
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

DEFAULT_JOBS = "maintain --json; run_pipeline --json"
MANAGE_PY = Path(__file__).resolve().parent.parent / "digits_model" / "manage.py"

_stop = threading.Event()
_running: subprocess.Popen | None = None


def log(**fields) -> None:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(json.dumps({"time": now, "logger": "scheduler", **fields}), file=sys.stderr, flush=True)


def parse_jobs(text: str) -> list[list[str]]:
    """``"check_drift --json; run_pipeline --json"`` -> ``[["check_drift", "--json"], ...]``."""
    return [shlex.split(part) for part in text.split(";") if part.strip()]


def run_job(argv: list[str], *, manage_py: Path, timeout: float) -> int:
    """One ``manage.py`` command in its own process; its exit code (124 on timeout)."""
    global _running
    started = time.monotonic()
    command = " ".join(argv)
    try:
        # The operator's own DIGITS_JOBS, run without a shell.
        _running = subprocess.Popen([sys.executable, str(manage_py), *argv])  # noqa: S603
        try:
            code = _running.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _running.terminate()
            try:
                _running.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _running.kill()
                _running.wait()
            code = 124
    finally:
        _running = None
    if _stop.is_set() and code < 0:
        code = 143  # stopped by our SIGTERM, not a job failure
    log(
        event="job finished",
        job=command,
        exit_code=code,
        seconds=round(time.monotonic() - started, 3),
    )
    return code


def _on_signal(signum, frame) -> None:
    _stop.set()
    if _running is not None and _running.poll() is None:
        _running.terminate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run each job once, then exit")
    parser.add_argument(
        "--interval",
        type=float,
        default=float(os.environ.get("DIGITS_JOB_INTERVAL") or 3600),
        help="seconds from one round's start to the next (DIGITS_JOB_INTERVAL)",
    )
    parser.add_argument(
        "--jobs",
        default=os.environ.get("DIGITS_JOBS") or DEFAULT_JOBS,
        help="';'-separated manage.py command lines (DIGITS_JOBS)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("DIGITS_JOB_TIMEOUT") or 3600),
        help="seconds a job may run before it is stopped (DIGITS_JOB_TIMEOUT)",
    )
    parser.add_argument("--manage-py", type=Path, default=MANAGE_PY, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    jobs = parse_jobs(args.jobs)
    if not jobs:
        parser.error("no jobs: DIGITS_JOBS is empty")
    if args.interval <= 0:
        parser.error("the interval must be a positive number of seconds")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    log(event="scheduler started", jobs=[" ".join(j) for j in jobs], interval=args.interval)
    worst = 0
    while not _stop.is_set():
        round_started = time.monotonic()
        for job in jobs:
            if _stop.is_set():
                break
            worst = max(worst, run_job(job, manage_py=args.manage_py, timeout=args.timeout))
        if args.once:
            return worst
        # Sleep until the next round is due (at once if this one overran the interval).
        _stop.wait(max(0.0, args.interval - (time.monotonic() - round_started)))
    log(event="scheduler stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
