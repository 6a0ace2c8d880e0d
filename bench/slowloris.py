"""Slow clients against the service: legitimate latency while N slow connections are held.

The service is started as the container starts it (``docker/entrypoint.sh serve``, gunicorn
with ``gunicorn.conf.py``'s defaults, SQLite in a fresh folder), once behind the buffering
front (``DIGITS_FRONT=nginx``) and once without it (``DIGITS_FRONT=none``, what ``make run``
serves). ``--slow`` connections (64) each send a request's headers a byte every half second;
meanwhile one legitimate client posts a 200x200 JPEG to /predict/ for ``--seconds``, each
request with a ``--timeout`` (a request that times out counts as failed, at the timeout).
Prints one JSON object per run: requests, answered, failed, p50 and p99 in milliseconds.

``make bench BENCH_ARGS=--slowloris`` runs it from ``bench/run.py``; alone:
``.venv/bin/python bench/slowloris.py [--seconds 20] [--slow 64] [--timeout 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path[:0] = [
    str(Path(__file__).resolve().parents[1]),
    str(Path(__file__).resolve().parents[1] / "digits_model"),
]

from bench.images import http_image  # noqa: E402
from bench.paths import REPO_DIR  # noqa: E402
from predicciones.tests.processes import free_port  # noqa: E402
from predicciones.tests.slow_clients import SlowClients  # noqa: E402

ENTRYPOINT = REPO_DIR / "docker" / "entrypoint.sh"


def start(front: str, var_dir: Path) -> tuple[subprocess.Popen, int]:
    """``entrypoint.sh serve`` on a free loopback port; returns once /health/ answers 200."""
    port = free_port()
    front_dir = Path(tempfile.mkdtemp(prefix="bench-front-"))
    front_dir.chmod(0o755)  # nginx's workers run as nobody when the bench runs as root
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DIGITS_", "PROMETHEUS_")) and k != "DATABASE_URL"
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        DIGITS_VAR_DIR=str(var_dir),
        PROMETHEUS_MULTIPROC_DIR=str(var_dir / "metrics"),
        DIGITS_LOG_LEVEL="WARNING",
        DIGITS_BIND=f"127.0.0.1:{port}",
        DIGITS_FRONT=front,
        DIGITS_FRONT_DIR=str(front_dir),
    )
    log = open(var_dir / f"serve-{front}.log", "wb")  # noqa: SIM115 - the process keeps it
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((var_dir / f"serve-{front}.log").read_text()[-2000:])
        try:
            if requests.get(f"http://127.0.0.1:{port}/health/", timeout=2).status_code == 200:
                return process, port
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the {front} server never became ready")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


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
    var_dir = Path(tempfile.mkdtemp(prefix=f"bench-slowloris-{front}-"))
    process, port = start(front, var_dir)
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
        stop(process)
        shutil.rmtree(var_dir, ignore_errors=True)


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
