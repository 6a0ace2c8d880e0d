"""Model side, in process: decode + preprocess + predict of the shipped model, per image."""

from __future__ import annotations

import json
import statistics
import time

from bench.images import HTTP_IMAGE, http_image, model_side_images
from harness.paths import PROJECT_DIR


def bench_model_side(seconds_per_image: float) -> list[dict]:
    """Median and p99 of decode + preprocess + predict, in this process, per image."""
    from predicciones.ml.classifier import load_classifier, predict
    from predicciones.ml.preprocessing import preprocess

    manifest = json.loads((PROJECT_DIR / "model" / "clf.manifest.json").read_text())
    clf = load_classifier(
        (PROJECT_DIR / "model" / "clf.pickle").read_bytes(), sha256=manifest["sha256"]
    )
    images = model_side_images()
    width, _, fmt, _ = HTTP_IMAGE
    images[f"{width} px {fmt} (HTTP runs)"] = http_image()
    rows = []
    for name, data in images.items():
        for _ in range(5):  # warm caches and lazy imports
            predict(clf, preprocess(data).features)
        times, cpu_times = [], []
        deadline = time.perf_counter() + seconds_per_image
        while time.perf_counter() < deadline or len(times) < 30:
            started, cpu_started = time.perf_counter(), time.process_time()
            predict(clf, preprocess(data).features)
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
        rows.append(
            {
                "image": name,
                "bytes": len(data),
                "n": len(times),
                "median_ms": statistics.median(times) * 1000,
                "p99_ms": percentile(times, 99) * 1000,
                # CPU time of this process only: what other processes on a busy machine take
                # does not count, so it moves less than the wall-clock median.
                "cpu_median_ms": statistics.median(cpu_times) * 1000,
            }
        )
    return rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
