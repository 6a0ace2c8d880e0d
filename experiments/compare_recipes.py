"""Compare training recipes at full scale: one perceptron or a vote, wider, longer, weighted.

``experiments/select_model.py`` picks the family on small samples; this script settles the
recipe on the shipped model's own training rows (``splits.base_rows(part="train")``, all
203,688, rendered once and cached in ``var/recipes/``). Each recipe is fitted on them and
reads handwriting no recipe trains on, sent as uploads in the five styles:

- MNIST's validation slice (its first ``--mnist`` digits);
- the calibration writers (``load_digits``' second half: 13 other writers of the
  scikit-learn form, the same uploads the temperature is fitted on).

The accuracies are of the classifier before its temperature (which does not change the
answer). Semeion is never used.

Usage: python -m experiments.compare_recipes [--mnist 1500] [--jobs 2] [--only NAME ...]
       [--out var/compare_recipes.txt]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from harness.paths import REPO_DIR as REPO
from predicciones.ml import recipe, sources, splits, training
from predicciones.ml.synth import STYLES
from predicciones.ml.validation import styled_features

SHIPPED = recipe.SOURCE_WEIGHT["optdigits"]
#: name -> (fit_classifier keyword arguments, weight of the scikit-learn form's rows).
RECIPES = {
    "one perceptron": ({"members": 1}, 1.0),
    "one perceptron, 512-256": ({"members": 1, "hidden_layer_sizes": (512, 256)}, 1.0),
    "one perceptron, 30 epochs": ({"members": 1, "max_iter": 30}, 1.0),
    "one perceptron, weight 3": ({"members": 1}, 3.0),
    "vote of 5": ({"members": 5}, 1.0),
    "vote of 5, weight 2": ({"members": 5}, 2.0),
    "vote of 5, weight 3": ({"members": 5}, 3.0),
}


def training_rows(seed: int, jobs: int) -> splits.Rows:
    cache = REPO / "var" / "recipes" / f"rows-{seed}.npz"
    if cache.exists():
        with np.load(cache) as saved:
            return splits.Rows(*(saved[f] for f in ("X", "y", "ids", "variant")))
    rows = splits.base_rows(part="train", seed=seed, n_jobs=jobs)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, X=rows.X, y=rows.y, ids=rows.ids, variant=rows.variant)
    return rows


def mnist_uploads(n: int, jobs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (n, 5, 64), accepted (n, 5) and labels of MNIST's first n validation digits."""
    images, labels = sources.load_mnist()
    index = np.flatnonzero(splits.digit_part("mnist", np.arange(len(labels))) == "validation")
    index = index[:n]
    features = styled_features(images[index], index, seed=splits.VALIDATION_SEED, n_jobs=jobs)
    return (*features, labels[index])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=int, default=1500, help="MNIST validation digits")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--out", default=str(REPO / "var" / "compare_recipes.txt"))
    args = parser.parse_args(argv)

    rows = training_rows(args.seed, args.jobs)
    small = splits.source_of(rows.ids) != "mnist"
    F, accepted, y = mnist_uploads(args.mnist, args.jobs)
    X_cal, y_cal = splits.calibration_uploads(n_jobs=args.jobs)
    header = f"{'recipe':<28}" + "".join(f"{s:>10}" for s in STYLES)
    header += f"{'all 5':>8}{'calib.':>8}{'fit s':>7}"
    lines = [
        f"training rows: {len(rows.y)}; MNIST validation digits: {len(y)} x {len(STYLES)} "
        f"styles; calibration uploads: {len(y_cal)}; shipped weight: {SHIPPED:g}",
        header,
    ]
    print("\n".join(lines), flush=True)
    for name in args.only:
        params, weight = RECIPES[name]
        started = time.monotonic()
        clf = training.fit_classifier(
            rows.X, rows.y, seed=args.seed, sample_weight=np.where(small, weight, 1.0), **params
        )
        seconds = time.monotonic() - started
        n, k = accepted.shape
        right = clf.predict(F.reshape(-1, 64).astype(np.float32)).reshape(n, k) == y[:, None]
        right &= accepted
        calibration = float((clf.predict(X_cal.astype(np.float32)) == y_cal).mean())
        line = f"{name:<28}" + "".join(f"{right[:, j].mean():>10.4f}" for j in range(k))
        line += f"{right.mean():>8.4f}{calibration:>8.4f}{seconds:>7.0f}"
        lines.append(line)
        print(line, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
