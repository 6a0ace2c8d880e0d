"""Benchmark: the most expensive upload under the byte limit, and what eight of them cost.

1. **Candidates, in process**: for every accepted format, the files that cost most to decode
   while fitting the limits: the largest picture each pixel cap allows, in the modes with the
   most bytes a pixel (RGBA, 32-bit float, 16-bit, CMYK, palette, 1-bit), compressed to a few
   KB; a baseline JPEG of the most pixels allowed, plain and full of noise up to the byte
   limit, and smaller ones of noise filling the byte limit; a progressive JPEG with the most
   scans allowed; and, for the record, files the caps refuse (the security review's
   40-megapixel lossless WebP, a 40-megapixel JPEG of noise, a JPEG of 830,000 scans). Each is
   decoded and preprocessed in a fresh child process, three times: the median CPU time, and
   the highest peak of resident memory above the process's idle size.
2. **Eight at once, over HTTP**: the service as ``make run`` starts it (gunicorn, 2 workers x
   2 threads); the costliest candidate is posted by eight clients at the same moment while
   one client keeps posting an ordinary 200 px JPEG. Per worker: peak memory above its idle
   size; the answers the eight got (a 422 for a blank picture that was decoded, a 503 with
   Retry-After for one that found the worker's decode slot busy); the servers' CPU per
   large upload; and the ordinary predictions' latency before and during the burst.

One JSON object per measurement on stdout (``make bench`` renders them); ``--wait`` runs the
burst once per ``DIGITS_DECODE_WAIT`` value given. Targets (issue 21): at most 150 ms of CPU
and 150 MiB above idle per worker for the costliest upload.

    python -m bench.decode_cost [--wait 0.5] [--wait 0 --wait 2] [--skip-http]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from bench.images import http_image
from harness.hostile import bmp_rle8, jpeg_scans, webp_bomb
from harness.paths import REPO_DIR
from predicciones.ml.decoding import (
    ALPHA_FULL_DECODE_SHARE,
    MAX_FULL_DECODE_PIXELS,
    MAX_JPEG_SCANS,
    MAX_PIXELS,
)

MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # the service's default DIGITS_MAX_UPLOAD_BYTES
TARGET_CPU_MS = 150
TARGET_MIB = 150
#: Large uploads posted at the same moment.
BURST = 8

#: Decodes one file in a fresh process: CPU ms, peak MiB above idle, outcome (JSON).
CHILD = r"""
import json, sys, time
import harness.paths  # run from the repository's folder: digits_model/ on sys.path
from predicciones.ml.exceptions import ImageError
from predicciones.ml.preprocessing import preprocess

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

from bench.images import digit_image

# Every decoder and the whole pipeline once first: imports and first-call costs are not the
# upload's.
for warm in [digit_image(640, 480, fmt) for fmt in ("JPEG", "PNG", "GIF", "TIFF", "WEBP")]:
    preprocess(warm)
data = open(sys.argv[1], "rb").read()
idle = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # the peak (VmHWM) starts again from here
started = time.process_time()
try:
    preprocess(data)
    outcome = "decoded"
except ImageError as exc:
    outcome = type(exc).__name__
cpu = time.process_time() - started
print(json.dumps({"cpu_ms": cpu * 1000, "peak_mib": status("VmHWM:") - idle, "outcome": outcome}))
"""


def encoded(img: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def flat(mode: str, side: int) -> Image.Image:
    colour = {
        "RGBA": (250, 250, 250, 255),
        "LA": (250, 255),
        "RGB": (250, 250, 250),
        "CMYK": (0, 0, 0, 5),
        "F": 0.98,
        "I;16": 64000,
        "1": 1,
    }
    return Image.new(mode, (side, side), colour.get(mode, 250))


def noise_jpeg(side: int, quality: int) -> bytes:
    rng = np.random.default_rng(side)
    pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encoded(Image.fromarray(pixels), "JPEG", quality=quality, subsampling=0)


def largest_noise_jpeg(side: int, limit: int = MAX_UPLOAD_BYTES) -> tuple[int, bytes]:
    """The noisiest JPEG of ``side`` px under ``limit`` bytes: the highest quality that fits
    (a JPEG's decoding CPU grows with its bytes)."""
    low, high, best = 1, 95, None
    while low <= high:  # bisection: the size grows with the quality
        quality = (low + high) // 2
        data = noise_jpeg(side, quality)
        if len(data) <= limit:
            low, best = quality + 1, (quality, data)
        else:
            high = quality - 1
    if best is None:
        raise AssertionError("no quality fits")
    return best


def candidates() -> dict[str, bytes]:
    """name -> file: the costliest files each format allows, and a few the caps refuse."""
    full = int(MAX_FULL_DECODE_PIXELS**0.5)  # the largest square a full-size decode allows
    alpha = int((MAX_FULL_DECODE_PIXELS * ALPHA_FULL_DECODE_SHARE) ** 0.5)  # ... with alpha
    jpeg = int(MAX_PIXELS**0.5)
    files = {
        f"PNG RGBA {alpha}x{alpha}": encoded(flat("RGBA", alpha), "PNG", compress_level=9),
        f"PNG LA {alpha}x{alpha}": encoded(flat("LA", alpha), "PNG", compress_level=9),
        f"PNG 16-bit {full}x{full}": encoded(flat("I;16", full), "PNG"),
        f"PNG palette {full}x{full}": encoded(flat("P", full), "PNG"),
        f"PNG 1-bit {full}x{full}": encoded(flat("1", full), "PNG"),
        f"GIF {full}x{full}": encoded(flat("P", full), "GIF"),
        f"BMP RLE8 {full}x{full}": bmp_rle8(full, full),
        f"TIFF float {full}x{full}": encoded(
            flat("F", full), "TIFF", compression="tiff_adobe_deflate"
        ),
        f"TIFF RGBA {alpha}x{alpha}": encoded(
            flat("RGBA", alpha), "TIFF", compression="tiff_adobe_deflate"
        ),
        f"TIFF CMYK {full}x{full}": encoded(
            flat("CMYK", full), "TIFF", compression="tiff_adobe_deflate"
        ),
        f"WebP lossless RGBA {alpha}x{alpha}": encoded(flat("RGBA", alpha), "WEBP", lossless=True),
        f"WebP lossless RGB {full}x{full}": encoded(flat("RGB", full), "WEBP", lossless=True),
        f"progressive JPEG {full}x{full}": encoded(
            flat("RGB", full), "JPEG", progressive=True, subsampling=0
        ),
        f"progressive JPEG {MAX_JPEG_SCANS} scans {full}x{full}": jpeg_scans(
            MAX_JPEG_SCANS - 10, side=full
        ),
        f"JPEG {jpeg}x{jpeg}": encoded(flat("RGB", jpeg), "JPEG", subsampling=0),
    }
    for side in (jpeg, 3000, 2000, 1500):
        quality, data = largest_noise_jpeg(side)
        files[f"JPEG noise {side}x{side} q{quality}"] = data
    files["refused: WebP lossless 6300x6300 (the review's)"] = webp_bomb(6300, 6300)
    files[f"refused: PNG RGBA {full}x{full}"] = encoded(flat("RGBA", full), "PNG")
    quality, data = largest_noise_jpeg(6324)
    files[f"refused: JPEG noise 6324x6324 (40 MP) q{quality}"] = data
    files["refused: JPEG of 830,000 scans"] = jpeg_scans(830_000, side=full)[:MAX_UPLOAD_BYTES]
    return {name: data for name, data in files.items() if len(data) <= MAX_UPLOAD_BYTES}


def measure(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_candidates(folder: Path, repeat: int) -> list[dict]:
    """Each candidate decoded ``repeat`` times, each in a fresh process: the median run."""
    rows = []
    for name, data in candidates().items():
        path = folder / "candidate"
        path.write_bytes(data)
        runs = sorted((measure(path) for _ in range(repeat)), key=lambda run: run["cpu_ms"])
        median = runs[len(runs) // 2]
        row = {
            "kind": "candidate",
            "name": name,
            "bytes": len(data),
            **median,
            "peak_mib": max(run["peak_mib"] for run in runs),
            "cpu_ms_runs": [round(run["cpu_ms"], 1) for run in runs],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


# --- Eight at once, over HTTP --------------------------------------------------------------------
def worker_status(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return 0.0


def post(url: str, data: bytes, session: requests.Session | None = None) -> tuple[int, float]:
    started = time.perf_counter()
    response = (session or requests).post(
        url, files={"image": ("upload", data)}, data={"model": "clf.pickle"}, timeout=120
    )
    return response.status_code, time.perf_counter() - started


def ordinary_latencies(url: str, stop: threading.Event, out: list[float]) -> None:
    session, image = requests.Session(), http_image()
    while not stop.is_set():
        code, seconds = post(url, image, session)
        if code == 200:
            out.append(seconds)


def bench_burst(worst_name: str, worst: bytes, folder: Path, wait: float) -> dict:
    from bench.servers import service_server

    image_path = folder / "digit.jpg"
    image_path.write_bytes(http_image())
    server = service_server(
        folder / f"wait-{wait:g}",
        image_path,
        "service",
        "service (make run defaults)",
        DIGITS_DECODE_WAIT=str(wait),
    )
    server.start()
    try:
        url = server.url
        for _ in range(40):  # both workers warm
            post(url, http_image())
        pids = [proc.pid for proc in server.tree()[1:]]
        idle = {pid: worker_status(pid, "VmRSS:") for pid in pids}
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        before: list[float] = []
        stop = threading.Event()
        ordinary = threading.Thread(target=ordinary_latencies, args=(url, stop, before))
        cpu_started = server.cpu_seconds()
        ordinary.start()
        time.sleep(3)
        stop.set()
        ordinary.join()
        ordinary_cpu = (server.cpu_seconds() - cpu_started) / max(1, len(before))

        during: list[float] = []
        stop = threading.Event()
        ordinary = threading.Thread(target=ordinary_latencies, args=(url, stop, during))
        answers: list[tuple[int, float]] = []
        go = threading.Barrier(BURST + 1)

        def large() -> None:
            go.wait()
            answers.append(post(url, worst))

        senders = [threading.Thread(target=large) for _ in range(BURST)]
        for sender in senders:
            sender.start()
        cpu_before = server.cpu_seconds()
        ordinary.start()
        go.wait()
        for sender in senders:
            sender.join()
        time.sleep(0.5)
        stop.set()
        ordinary.join()
        # The server's CPU over the burst, less what the ordinary predictions took.
        cpu = server.cpu_seconds() - cpu_before - ordinary_cpu * len(during)
        peaks = {pid: worker_status(pid, "VmHWM:") - idle[pid] for pid in pids}
        codes = [code for code, _ in answers]
        decoded = sum(code != 503 for code in codes)
        row = {
            "kind": "burst",
            "upload": worst_name,
            "decode_wait_s": wait,
            "answers": {str(code): codes.count(code) for code in sorted(set(codes))},
            "large_seconds_max": max(seconds for _, seconds in answers),
            "server_cpu_ms_per_decoded": cpu * 1000 / max(1, decoded),
            "worker_idle_mib": [round(idle[pid], 1) for pid in pids],
            "worker_peak_above_idle_mib": [round(peaks[pid], 1) for pid in pids],
            "ordinary_before_ms": _latency(before),
            "ordinary_during_ms": _latency(during),
        }
        print(json.dumps(row), flush=True)
        return row
    finally:
        server.stop()


def _latency(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": statistics.median(values) * 1000,
        "max": max(values) * 1000,
    }


def render_decode_cost(result: dict) -> list[str]:
    """The step's lines of ``make bench``'s table, from ``script_run``'s ``results``."""
    rows = result.get("results", [])
    lines = [
        "Decode cost under the byte limit (bench/decode_cost.py), each file decoded and "
        "preprocessed in a fresh process",
        f"  {'upload':<50} {'bytes':>9} {'cpu ms':>7} {'MiB':>6}  outcome",
    ]
    for row in rows:
        if row["kind"] == "candidate":
            lines.append(
                f"  {row['name'][:50]:<50} {row['bytes']:>9} {row['cpu_ms']:>7.1f} "
                f"{row['peak_mib']:>6.1f}  {row['outcome']}"
            )
    for row in rows:
        if row["kind"] == "burst":
            before, during = row["ordinary_before_ms"], row["ordinary_during_ms"]
            lines += [
                f"  {BURST} x {row['upload']} at once, DIGITS_DECODE_WAIT={row['decode_wait_s']:g}"
                f" s: answers {row['answers']}, slowest {row['large_seconds_max']:.2f} s, "
                f"server CPU {row['server_cpu_ms_per_decoded']:.0f} ms per decoded upload "
                f"(its {MAX_UPLOAD_BYTES / 2**20:g} MiB multipart body parsed and hashed too)",
                f"    worker peak above idle {row['worker_peak_above_idle_mib']} MiB (idle "
                f"{row['worker_idle_mib']} MiB); an ordinary 200 px JPEG: p50 "
                f"{before.get('p50', 0):.1f} ms, max {before.get('max', 0):.0f} ms before; "
                f"p50 {during.get('p50', 0):.1f} ms, max {during.get('max', 0):.0f} ms during "
                f"({during['n']} requests)",
            ]
    if "stderr_tail" in result:
        lines.append(f"  decode_cost.py exited {result['exit_code']}")
        lines += ["  " + line for line in result["stderr_tail"]]
    lines.append("")
    return lines


def decode_cost_targets(result: dict) -> list[dict]:
    out = []
    for row in result.get("results", []):
        if row["kind"] == "worst":
            out += [
                {
                    "text": f"costliest upload <= {TARGET_CPU_MS} ms of CPU (is "
                    f"{row['cpu']['cpu_ms']:.0f} ms: {row['cpu']['name']})",
                    "met": row["cpu_met"],
                },
                {
                    "text": f"costliest upload <= {TARGET_MIB} MiB above idle (is "
                    f"{row['memory']['peak_mib']:.0f} MiB: {row['memory']['name']})",
                    "met": row["memory_met"],
                },
            ]
        if row["kind"] == "burst":
            peak = max(row["worker_peak_above_idle_mib"])
            out.append(
                {
                    "text": f"{BURST} at once: every worker <= {TARGET_MIB} MiB above idle (is "
                    f"{peak:.0f} MiB)",
                    "met": peak <= TARGET_MIB,
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="decodes per candidate (median)")
    parser.add_argument(
        "--wait", type=float, action="append", help="DIGITS_DECODE_WAIT of a burst (repeatable)"
    )
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="decode-cost-"))
    try:
        rows = bench_candidates(folder, args.repeat)
        accepted = [row for row in rows if not row["name"].startswith("refused")]
        worst = max(accepted, key=lambda row: row["cpu_ms"])
        heaviest = max(accepted, key=lambda row: row["peak_mib"])
        summary = {
            "kind": "worst",
            "cpu": {"name": worst["name"], "cpu_ms": worst["cpu_ms"]},
            "memory": {"name": heaviest["name"], "peak_mib": heaviest["peak_mib"]},
            "cpu_met": worst["cpu_ms"] <= TARGET_CPU_MS,
            "memory_met": heaviest["peak_mib"] <= TARGET_MIB,
        }
        print(json.dumps(summary), flush=True)
        if not args.skip_http:
            files = candidates()
            for wait in args.wait or [float(os.environ.get("DIGITS_DECODE_WAIT") or 0.5)]:
                bench_burst(worst["name"], files[worst["name"]], folder, wait)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if summary["cpu_met"] and summary["memory_met"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
