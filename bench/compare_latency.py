"""Model-side latency of this tree against a git revision, measured in pairs.

On a machine shared with other work (training beside the benchmark), absolute medians move
by a factor of two from one minute to the next. This script loads the preprocessing of a
git revision (exported with ``git archive`` to a temporary folder) and that of the working
tree in the same process and times decode + preprocess + predict of ``bench/images.py``'s
images (the model side's rows in docs/performance.md) alternately, one call of each in turn,
each side with its own classifier code and its own shipped model. The paired ratio (median
of after / before over the pairs) is what to read; the medians are printed too, in wall time
and in CPU time of the calling thread.

Usage: python -m bench.compare_latency [--before main] [--repeat 1000]
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.images import model_side_images
from harness.paths import PROJECT_DIR, REPO_DIR
from harness.paths import SHIPPED_MODEL as MODEL


def load_package(root: Path):
    """Import ``predicciones`` from ``root`` afresh; return its preprocess and classifier."""
    for name in [n for n in sys.modules if n == "predicciones" or n.startswith("predicciones.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        preprocess = importlib.import_module("predicciones.ml.preprocessing").preprocess
        classifier = importlib.import_module("predicciones.ml.classifier")
    finally:
        sys.path.remove(str(root))
    return preprocess, classifier


def export_revision(revision: str, into: Path) -> Path:
    """``digits_model/predicciones`` and the model of a git revision, unpacked under ``into``."""
    paths = ["digits_model/predicciones", "digits_model/model"]
    archive = subprocess.run(
        ["git", "-C", str(REPO_DIR), "archive", revision, *paths],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "digits_model"


def _model_side(preprocess, predict, clf):
    return lambda data: predict(clf, preprocess(data).features)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="git revision to compare against")
    parser.add_argument("--repeat", type=int, default=1000, help="pairs per image (40 for 12 MP)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = export_revision(args.before, Path(tmp))
        sides = {
            "before": (*load_package(root), root / "model" / "clf.pickle"),
            "after": (*load_package(PROJECT_DIR), MODEL),
        }
        timed = {}
        for key, (preprocess, classifier, model) in sides.items():
            manifest = json.loads(model.with_suffix(".manifest.json").read_text())
            clf = classifier.load_classifier(model.read_bytes(), sha256=manifest["sha256"])
            timed[key] = _model_side(preprocess, classifier.predict, clf)
        print(f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(
            f"{'image':<16}{'before ms':>10}{'after ms':>10}{'ratio':>7}"
            f"{'cpu before':>12}{'cpu after':>11}{'ratio':>7}"
        )
        for name, data in model_side_images().items():
            n = 40 if "4000" in name else args.repeat
            wall = {key: [] for key in timed}
            cpu = {key: [] for key in timed}
            for _ in range(5):  # warm caches and lazy imports
                for run in timed.values():
                    run(data)
            for i in range(n):
                for key in ("before", "after") if i % 2 else ("after", "before"):
                    started, cpu_started = time.perf_counter(), time.thread_time()
                    timed[key](data)
                    cpu[key].append(time.thread_time() - cpu_started)
                    wall[key].append(time.perf_counter() - started)
            wb, wa = np.array(wall["before"]), np.array(wall["after"])
            cb, ca = np.median(cpu["before"]), np.median(cpu["after"])
            print(
                f"{name:<16}{np.median(wb) * 1e3:>10.2f}{np.median(wa) * 1e3:>10.2f}"
                f"{np.median(wa / wb):>7.3f}{cb * 1e3:>12.2f}{ca * 1e3:>11.2f}{ca / cb:>7.3f}"
            )
        print(f"load average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
