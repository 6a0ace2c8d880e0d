"""``make bench``: the service's numbers, beside a FastAPI peer doing the same work.

What it measures, in one run on one machine:

1. Model side, in process: decode + preprocess + predict (the shipped ``clf.pickle``) for a
   28 px PNG, a 280 px scan, a 640x480 and a 4000x3000 JPEG: median and p99.
2. HTTP under ``wrk`` (a Lua script posts the multipart form, like the README's curl call), at
   concurrency 1 and 32, ``--duration`` seconds each, after a short warm-up:
   - the service exactly as ``make run`` starts it (gunicorn.conf.py, SQLite in a fresh var
     folder, every prediction logged before its 200);
   - the same with ``DIGITS_SQLITE_SYNCHRONOUS=FULL`` (one fsync per prediction: survives a
     power cut too, see docs/performance.md);
   Each service's log starts with ``--prefill`` rows (100,000), as after weeks of traffic: on
   an empty table a commit, and above all its fsync, is much cheaper than in steady state.
   - the service with one worker (requests/s against workers: 1 and every core);
   - ``bench/fastapi_peer.py`` on uvicorn: the same preprocess + predict, no log;
   - ``bench/naive_peer.py`` on uvicorn: crop, resize, 4x4 counts and an SVC, no log.
   Each posts the 200 px and the 640x480 JPEG; servers run in turn, round by round.
   Requests/s, p50, p99, errors, server CPU per request (noise-robust: it does not count
   time other processes took), the cores it kept busy, worker memory, and the ratios
   service/peer for each peer. For the service,
   the prediction log is counted afterwards: every answered request must have its row.
3. ``check_drift`` over 1,000,000 logged predictions: ``bench/drift_bench.py`` (the drift
   work's), run from the slot ``bench_drift``: seconds and peak memory.
4. The costliest upload under the byte limit (``bench/decode_cost.py``): CPU and peak memory
   of each format's worst file, then eight of the worst at once against the service, with
   an ordinary prediction's latency meanwhile (about 2 minutes; ``--skip-decode``).
5. With ``--lifecycle`` only (about 4 more minutes): ``bench/lifecycle_bench.py``, the log's
   lifecycle: rows/s summarised, captured to S3 (moto_server) and deleted by retention;
   ``check_drift`` over 30 days of summaries plus one raw hour at 450 requests/s; database
   size over 7 simulated days with 1-day retention.
5. With ``--slowloris`` only (about a minute): ``bench/slowloris.py``, a legitimate client's
   p50/p99 while 64 slow connections hold their headers, with and without the container's
   buffering front (nginx); ``--slowloris-seconds`` per run.

The table goes to stdout and ``var/bench.txt``; every number also to ``var/bench.json``.
Timing goals live here, never in a timed unit test.

With ``--before REV`` the service of an earlier revision (``git archive``, its own shipped
model, its own gunicorn.conf.py) runs in every round beside the others, and the service is
compared with it as with the peers.

Usage: ``python -m bench.run [--duration 20] [--rounds 3] [--quick] [--skip-http]
[--skip-model] [--lifecycle] [--slowloris] [--before REV]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.images import http_image, http_images
from bench.load import bench_http, best_rounds, ratios
from bench.machine import machine_info
from bench.model_side import bench_model_side
from bench.report import render, targets
from bench.scripts import script_run
from bench.servers import http_servers
from harness.paths import VAR_DIR


def bench_drift(rows: int) -> dict:
    """``check_drift`` over ``rows`` logged predictions: ``bench/drift_bench.py``.

    That script (the drift work's) makes a fresh SQLite database, writes ``rows`` predictions
    straight into the log, runs the drift check in a child process, and prints one JSON
    object per size (seconds, peak RSS, within its 10 s budget or not).
    """
    return script_run("bench.drift_bench", "--rows", str(rows))


def bench_lifecycle() -> dict:
    """``bench/lifecycle_bench.py``: one JSON object per measurement (see its docstring)."""
    return script_run("bench.lifecycle_bench")


def bench_slowloris(seconds: float) -> dict:
    """``bench/slowloris.py``: one JSON object per run (front, then none)."""
    return script_run("bench.slowloris", "--seconds", str(seconds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per HTTP run")
    parser.add_argument("--model-seconds", type=float, default=3.0, help="seconds per image")
    parser.add_argument("--quick", action="store_true", help="skip the synchronous=FULL run")
    parser.add_argument(
        "--prefill", type=int, default=100_000, help="log rows before the HTTP runs"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="run every server N times; report the best run"
    )
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-drift", action="store_true")
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--drift-rows", type=int, default=1_000_000, help="logged predictions")
    parser.add_argument(
        "--lifecycle", action="store_true", help="add bench/lifecycle_bench.py (about 4 min)"
    )
    parser.add_argument(
        "--slowloris", action="store_true", help="add bench/slowloris.py (about a minute)"
    )
    parser.add_argument("--slowloris-seconds", type=float, default=20.0)
    parser.add_argument(
        "--peer-workers", type=int, default=os.cpu_count(), help="uvicorn workers (cores)"
    )
    parser.add_argument(
        "--before",
        metavar="REV",
        help="also serve the service of git revision REV, round by round (c=1 p50 against it)",
    )
    parser.add_argument("--out", type=Path, default=VAR_DIR / "bench.txt")
    args = parser.parse_args(argv)

    if not args.skip_http and shutil.which("wrk") is None:
        print("make bench needs wrk: sudo apt-get install wrk", file=sys.stderr)
        return 2
    report: dict = {
        "command": "make bench" + (f" BENCH_ARGS='{' '.join(argv)}'" if argv else ""),
        "machine": machine_info(),
        "duration": args.duration,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    var_root = Path(tempfile.mkdtemp(prefix="bench-", dir=args.out.parent))
    try:
        if not args.skip_model:
            print("model side ...", file=sys.stderr)
            report["model_side"] = bench_model_side(args.model_seconds)
        if not args.skip_http:
            image_path = var_root / "digit.jpg"
            image_path.write_bytes(http_image())
            images = {}
            for number, (name, data) in enumerate(http_images().items()):
                images[name] = var_root / f"upload{number}.jpg"
                images[name].write_bytes(data)
            report["http_rounds"] = []
            # Round by round, every server in turn: a change in the machine's state during
            # the run falls on all of them.
            for round_no in range(1, args.rounds + 1):
                servers = http_servers(var_root / f"round{round_no}", image_path, args)
                report["servers"] = {server.label: server.config for server in servers}
                for server in servers:
                    print(f"HTTP round {round_no}: {server.label} ...", file=sys.stderr)
                    server.start()
                    try:
                        rows = bench_http(server, images, args.duration)
                    finally:
                        server.stop()
                    report["http_rounds"] += [{**row, "round": round_no} for row in rows]
            report["http"] = best_rounds(report["http_rounds"])
            report["ratios"] = ratios(report["http"])
        if not args.skip_drift:
            print("check_drift ...", file=sys.stderr)
            report["drift"] = bench_drift(args.drift_rows)
        if not args.skip_decode:
            print("decode cost ...", file=sys.stderr)
            report["decode_cost"] = script_run("bench.decode_cost")
        if args.lifecycle:
            print("log lifecycle ...", file=sys.stderr)
            report["lifecycle"] = bench_lifecycle()
        if args.slowloris:
            print("slow clients ...", file=sys.stderr)
            report["slowloris"] = bench_slowloris(args.slowloris_seconds)
        report["targets"] = targets(report)
    finally:
        shutil.rmtree(var_root, ignore_errors=True)
    text = render(report)
    print(text)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"written to {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
