"""Leave one source out: train without optdigits (or load_digits), read it as uploads.

Each run trains the shipped model's full recipe on the base data minus one source, then
sends every digit of the left-out source through the upload path in the five styles of
``predicciones.ml.synth`` (drawn as image bytes, decoded and preprocessed like an upload)
and scores them: how the model reads 30 (or 13) writers whose handwriting it never saw,
in the very form of the data set. Semeion is never used.

The temperature of a model trained without ``load_digits`` is still fitted on the second
half of ``load_digits`` (the recipe's calibration writers), so for that run the mean
confidence is also reported on the first half alone (writers that served neither training
nor calibration).

Usage: python -m experiments.leave_one_out [--source optdigits|sklearn ...] [--jobs 2]
       [--out var/leave_one_out.txt]   (the whole recipe trained once a source)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from harness.paths import REPO_DIR as REPO
from predicciones.ml import sources, training
from predicciones.ml.classifier import predict
from predicciones.ml.synth import STYLES
from predicciones.ml.validation import styled_features

#: Seed of the left-out digits' renderings (style k of digit i: default_rng([SEED, i, k])).
SEED = 4242
LOADERS = {"optdigits": sources.load_optdigits, "sklearn": sources.load_sklearn_digits}


def read_as_uploads(source: str, jobs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (n, 5, 64), accepted (n, 5) and labels (n,) of a source's digits."""
    X, y = LOADERS[source]()
    return (*styled_features(X, np.arange(len(y)), seed=SEED, n_jobs=jobs), y)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "var" / "leave_one_out.txt"))
    args = parser.parse_args(argv)
    lines = []
    for source in args.source:
        started = time.monotonic()
        kept = tuple(s for s in training.SOURCES if s != source)
        clf, _ = training.train_classifier(seed=args.seed, n_jobs=args.jobs, sources_=kept)
        F, ok, y = read_as_uploads(source, args.jobs)
        n, k = ok.shape
        pred, conf = predict(clf, F.reshape(-1, 64))
        pred, conf = pred.reshape(n, k), conf.reshape(n, k)
        right = (pred == y[:, None]) & ok
        lines.append(
            f"trained on {' + '.join(kept)}, read {source} ({n} digits) as uploads "
            f"({time.monotonic() - started:.0f} s):"
        )
        lines.append(f"  {'style':<12}{'accuracy':>9}{'mean conf':>11}{'refused':>9}")
        for j, style in enumerate(STYLES):
            lines.append(
                f"  {style:<12}{right[:, j].mean():>9.4f}{conf[:, j].mean():>11.4f}"
                f"{int((~ok[:, j]).sum()):>9}"
            )
        lines.append(
            f"  {'overall':<12}{right.mean():>9.4f}{conf.mean():>11.4f}{int((~ok).sum()):>9}"
        )
        if source == "sklearn":
            first = np.arange(n) < training.CALIBRATION_START
            lines.append(
                f"  {'first half':<12}{right[first].mean():>9.4f}{conf[first].mean():>11.4f}"
                "   (writers used neither to train nor to calibrate)"
            )
        print("\n".join(lines[-(len(STYLES) + 3 + (source == "sklearn")) :]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
