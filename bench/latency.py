"""Model-side latency per upload style: decode + preprocess + predict, in this process.

Renders a few digits in each style (plus a 640x480 photo JPEG, the reference case), runs
the shipped model on each many times and prints the median wall time and the median CPU
time of the calling thread (less sensitive to other processes on a shared machine).

Usage: python -m bench.latency [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from harness.paths import SHIPPED_MODEL as MODEL
from predicciones.ml.classifier import load_classifier, predict
from predicciones.ml.datasets import load_base_data
from predicciones.ml.preprocessing import preprocess
from predicciones.ml.synth import STYLES, render


def measure(clf, uploads: list[bytes], repeat: int) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(repeat):
        for data in uploads:
            w, c = time.perf_counter(), time.thread_time()
            predict(clf, preprocess(data).features)
            cpu.append(time.thread_time() - c)
            wall.append(time.perf_counter() - w)
    return float(np.median(wall)) * 1e3, float(np.median(cpu)) * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    manifest = json.loads(MODEL.with_suffix(".manifest.json").read_text())
    started = time.perf_counter()
    clf = load_classifier(MODEL.read_bytes(), sha256=manifest["sha256"])
    print(f"model load: {(time.perf_counter() - started) * 1e3:.1f} ms")
    X, _ = load_base_data()
    digits = X[::180][:10]
    print(f"{'style':<12}{'median wall ms':>16}{'median cpu ms':>15}")
    for k, style in enumerate(STYLES):
        rng = np.random.default_rng([7, k])
        uploads = [render(d, style, rng) for d in digits]
        for data in uploads:  # warm caches
            predict(clf, preprocess(data).features)
        wall, cpu = measure(clf, uploads, args.repeat)
        print(f"{style:<12}{wall:>16.2f}{cpu:>15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
