"""HTTP load with ``wrk``: each server at every concurrency, rounds, and service/peer ratios."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from bench.servers import Server, logged_predictions
from harness.paths import BENCH_DIR

CONCURRENCIES = (1, 32)
WARMUP_SECONDS = 3


def wrk(url: str, image_path: Path, *, connections: int, seconds: float, result: Path) -> dict:
    env = {**os.environ, "BENCH_IMAGE": str(image_path), "BENCH_RESULT": str(result)}
    subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH_DIR / "wrk_multipart.lua"),
            url,
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return json.loads(result.read_text())


def bench_http(server: Server, images: dict[str, Path], seconds: float) -> list[dict]:
    """Every image at every concurrency against ``server``: one row each."""
    rows = []
    answered = 1  # the readiness probe in Server.start()
    for image, image_path in images.items():
        for connections in CONCURRENCIES:
            result = server.var_dir / f"{len(rows)}.json"
            warm = wrk(
                server.url,
                image_path,
                connections=connections,
                seconds=WARMUP_SECONDS,
                result=result,
            )
            answered += warm["requests"] - warm["status_errors"]
            load_before = os.getloadavg()[0]
            cpu_before = server.cpu_seconds()
            out = wrk(
                server.url, image_path, connections=connections, seconds=seconds, result=result
            )
            cpu = server.cpu_seconds() - cpu_before
            answered += out["requests"] - out["status_errors"]
            errors = sum(
                out[k]
                for k in (
                    "connect_errors",
                    "read_errors",
                    "write_errors",
                    "status_errors",
                    "timeouts",
                )
            )
            # Little's law: with a closed loop, mean latency ~ connections x duration / requests.
            # wrk's histogram has been seen to disagree badly with its own count; say so.
            expected_mean_us = connections * out["duration_us"] / max(1, out["requests"])
            consistent = out["latency_us"]["mean"] <= 1.5 * expected_mean_us
            rows.append(
                {
                    "server": server.name,
                    "label": server.label,
                    "image": image,
                    "concurrency": connections,
                    "requests": out["requests"],
                    "rps": out["requests"] / (out["duration_us"] / 1e6),
                    "p50_ms": out["latency_us"]["p50"] / 1000,
                    "p99_ms": out["latency_us"]["p99"] / 1000,
                    "errors": errors,
                    "error_detail": {
                        k: v for k, v in out.items() if k.endswith(("errors", "outs"))
                    },
                    "server_cpu_ms_per_request": cpu * 1000 / max(1, out["requests"]),
                    # CPU seconds a wall second: how many cores the server kept busy.
                    "cores_used": cpu / (out["duration_us"] / 1e6),
                    "worker_rss_mib": [round(x, 1) for x in server.worker_rss_mib()],
                    "load_average_before": round(load_before, 2),
                    "latency_consistent": consistent,
                }
            )
    if server.logs_predictions:
        time.sleep(1.0)  # requests still in flight when wrk stopped finish and log
        logged = logged_predictions(server) - server.prefill
        # Runs and warm-ups cut off mid-request.
        in_flight_allowance = sum(CONCURRENCIES) * 2 * len(images)
        for row in rows:
            row["logged"] = logged
            row["answered"] = answered
            row["log_complete"] = answered <= logged <= answered + in_flight_allowance
    return rows


def best_rounds(rows: list[dict]) -> list[dict]:
    """Per server and concurrency, the round with the most requests/s (best of N: on a
    shared machine, other work only ever makes a run slower). Every round's prediction log
    must be complete and every round's errors count."""
    best: dict[tuple[str, str, int], dict] = {}
    for row in rows:
        key = (row["label"], row["image"], row["concurrency"])
        if key not in best or row["rps"] > best[key]["rps"]:
            best[key] = dict(row)
    for key, row in best.items():
        same = [r for r in rows if (r["label"], r["image"], r["concurrency"]) == key]
        row["rounds"] = len(same)
        row["errors"] = sum(r["errors"] for r in same)
        if "log_complete" in row:
            row["log_complete"] = all(r["log_complete"] for r in same)
    return list(best.values())


#: The servers the service is compared with: the same-work peer and the naive one.
PEERS = ("peer", "naive")
#: ...and, with ``make bench BENCH_ARGS='--before REV'``, the service of an earlier revision.
BASELINES = (*PEERS, "before")


def ratios(http_rows: list[dict]) -> list[dict]:
    """Each service row over each baseline's row of the same image and concurrency."""
    peers = {(r["server"], r["image"], r["concurrency"]): r for r in http_rows}
    out = []
    for row in http_rows:
        if row["server"] in PEERS:
            continue
        for peer in BASELINES:
            base = peers.get((peer, row["image"], row["concurrency"]))
            if base is None or peer == row["server"]:
                continue
            out.append(
                {
                    "server": row["server"],
                    "label": row["label"],
                    "peer": peer,
                    "image": row["image"],
                    "concurrency": row["concurrency"],
                    "rps": row["rps"] / base["rps"],
                    "p50": row["p50_ms"] / max(base["p50_ms"], 1e-9),
                    "p99": row["p99_ms"] / max(base["p99_ms"], 1e-9),
                    "cpu": row["server_cpu_ms_per_request"]
                    / max(base["server_cpu_ms_per_request"], 1e-9),
                }
            )
    return out
