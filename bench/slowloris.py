"""Slow clients against the service: legitimate latency while N slow connections are held.

The service is started as the container starts it (``docker/entrypoint.sh serve``, gunicorn
with ``gunicorn.conf.py``'s defaults, SQLite in a fresh folder), once behind the buffering
front (``DIGITS_FRONT=nginx``) and once without it (``DIGITS_FRONT=none``, what ``make run``
serves). ``--slow`` connections (64) each send a request's headers a byte every half second;
meanwhile one legitimate client posts a 200x200 JPEG to /predict/ for ``--seconds``, each
request with a ``--timeout`` (a request that times out counts as failed, at the timeout).
Prints one JSON object per run: requests, answered, failed, p50 and p99 in milliseconds.

``make bench BENCH_ARGS=--slowloris`` runs it from ``bench/run.py``; alone:
``.venv/bin/python -m bench.slowloris [--seconds 20] [--slow 64] [--timeout 10]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.images import http_image
from harness.servers import EntrypointServer
from harness.slow_clients import SlowClients


def legitimate_client(port: int, image: bytes, seconds: float, timeout: float) -> dict:
    """Post the image again and again for ``seconds``; latencies of every request."""
    url = f"http://127.0.0.1:{port}/predict/"
    latencies, failed = [], 0
    deadline = time.monotonic() + seconds
    with requests.Session() as session:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                answer = session.post(url, files={"image": ("d.jpg", image)}, timeout=timeout)
                ok = answer.status_code == 200
            except requests.RequestException:
                ok = False
            elapsed = time.perf_counter() - started
            latencies.append(elapsed if ok else timeout)
            failed += not ok
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "answered": len(ordered) - failed,
        "failed": failed,
        "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1)
        if ordered
        else None,
    }


def run(front: str, *, slow: int, seconds: float, timeout: float) -> dict:
    """The container's server through ``front`` (``nginx`` or ``none``), on its defaults."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"bench-slowloris-{front}-"))
    server = EntrypointServer(var_dir=var_dir, front=front).start(timeout=180)
    port = server.port
    try:
        with SlowClients(port, slow, interval=0.5) as clients:
            time.sleep(2)  # every slow connection open and sending
            result = legitimate_client(port, http_image(), seconds, timeout)
        return {
            "front": front,
            "slow_connections": slow,
            "seconds": seconds,
            "timeout": timeout,
            "slow_closed_by_server": clients.closed_by_server,
            **result,
        }
    finally:
        server.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="legitimate client's run")
    parser.add_argument("--slow", type=int, default=64, help="slow connections held")
    parser.add_argument("--timeout", type=float, default=10.0, help="per legitimate request")
    args = parser.parse_args(argv)
    fronts = ["nginx", "none"] if shutil.which("nginx") else ["none"]
    if "nginx" not in fronts:
        print("nginx is not installed: only the run without the front", file=sys.stderr)
    for front in fronts:
        print(json.dumps(run(front, slow=args.slow, seconds=args.seconds, timeout=args.timeout)))
    return 0


def render_slowloris(result: dict) -> list[str]:
    """Lines for ``var/bench.txt``."""
    lines = [
        "",
        "Slow clients: legitimate POST /predict/ while slow connections hold their headers",
        "| front | slow connections | requests | answered | failed | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result.get("results", []):
        lines.append(
            f"| {row['front']} | {row['slow_connections']} | {row['requests']} | "
            f"{row['answered']} | {row['failed']} | {row['p50_ms']} | {row['p99_ms']} |"
        )
    if result.get("stderr_tail"):
        lines += ["(slowloris run failed:)", *result["stderr_tail"]]
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
