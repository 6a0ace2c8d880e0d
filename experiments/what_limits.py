"""What limits the model: the 8x8 grid it reads, or the handwriting it learns from?

One perceptron of the shipped recipe (``recipe.MLP_PARAMS``, the scikit-learn form's rows
weighted ``recipe.SOURCE_WEIGHT``) is fitted on rows drawn like training rows, and the
same digits are read back as uploads. The variants:

- a quarter of MNIST's training digits, each clean and once distorted, plus
  ``load_digits``' training part with its shipped copies, read at 8x8 (the model's
  contract), 16x16 and 32x32: the same 32x32 bitmaps counted in 4x4 blocks, in 2x2 blocks,
  and pixel by pixel (each scaled to 0..16 and rounded, as the 8x8 counts are);
- the same quarter with three distorted copies of each digit (more rows, no new writer);
- half of MNIST's training digits, each once distorted (as many rows, twice the digits).

Each reads, sent as uploads in the five styles of ``ml/synth.py``: optdigits (one 32x32
bitmap in three; no variant trains on optdigits), the calibration writers (``load_digits``'
second half) and MNIST's first ``--mnist`` validation digits. Semeion is never used.

Usage: python -m experiments.what_limits [--mnist 1500] [--jobs 2] [--seed 0]
       [--out var/what_limits.txt]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from harness.paths import REPO_DIR as REPO
from predicciones.ml import recipe, sources, splits
from predicciones.ml.augment import training_features
from predicciones.ml.synth import STYLES
from predicciones.ml.validation import styled_features


def counted(bitmaps: np.ndarray, grid: int) -> np.ndarray:
    """32x32 bitmaps counted on a ``grid`` x ``grid`` grid, on 0..16, rounded."""
    block = 32 // grid
    sums = bitmaps.reshape(len(bitmaps), grid, block, grid, block).sum(axis=(2, 4))
    return np.rint(sums * (16.0 / (block * block))).reshape(len(bitmaps), -1)


def one_perceptron(X: np.ndarray, y: np.ndarray, weight: np.ndarray, seed: int):
    """The shipped recipe's perceptron on any number of columns (fit_classifier takes 64)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler
    from threadpoolctl import threadpool_limits

    model = Pipeline(
        [
            ("scale", MinMaxScaler(clip=True)),
            ("mlp", MLPClassifier(random_state=seed, **recipe.MLP_PARAMS)),
        ]
    )
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X.astype(np.float32), y, mlp__sample_weight=weight)


def rows(source: str, index: np.ndarray, n_augment: int, seed: int, jobs: int):
    """Bitmaps, labels and variants (0 clean) of some digits, drawn like training rows."""
    digits, labels = sources.load_mnist() if source == "mnist" else sources.load_sklearn_digits()
    bitmaps, which, variant = training_features(
        digits[index],
        n_augment=n_augment,
        seed=seed,
        distortion=recipe.TRAINING_DISTORTION,
        n_jobs=jobs,
        ids=splits.ID_OFFSET[source] + index,
        bitmaps=True,
    )
    return bitmaps, labels[index][which], variant


def uploads(mnist: int, jobs: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """name -> (bitmaps (n, 5, 32, 32), accepted (n, 5), labels (n,))."""
    sets = {}
    opt_bitmaps, opt_labels = sources.load_optdigits_bitmaps()
    pick = np.arange(0, len(opt_labels), 3)
    sets["optdigits"] = (
        opt_bitmaps[pick],
        splits.ID_OFFSET["optdigits"] + pick,
        opt_labels[pick],
    )
    digits, labels = sources.load_sklearn_digits()
    pick = np.flatnonzero(splits.digit_part("sklearn", np.arange(len(labels))) == "calibration")
    sets["calibration"] = (digits[pick], splits.ID_OFFSET["sklearn"] + pick, labels[pick])
    images, labels = sources.load_mnist()
    pick = np.flatnonzero(splits.digit_part("mnist", np.arange(len(labels))) == "validation")
    pick = pick[:mnist]
    sets["MNIST"] = (images[pick], pick, labels[pick])
    return {
        name: (
            *styled_features(digits, ids, seed=splits.VALIDATION_SEED, n_jobs=jobs, bitmaps=True),
            labels,
        )
        for name, (digits, ids, labels) in sets.items()
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=int, default=1500, help="MNIST validation digits")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "var" / "what_limits.txt"))
    args = parser.parse_args(argv)
    started = time.monotonic()

    n_sklearn = recipe.N_AUGMENT["sklearn"]
    mnist_train = np.flatnonzero(splits.digit_part("mnist", np.arange(60_000)) == "train")
    sklearn_train = np.flatnonzero(splits.digit_part("sklearn", np.arange(1797)) == "train")
    small, small_y, _ = rows("sklearn", sklearn_train, n_sklearn, args.seed, args.jobs)
    quarter3, quarter3_y, variant = rows("mnist", mnist_train[::4], 3, args.seed, args.jobs)
    # Each digit draws from its own generator: with one copy it gets the same clean picture
    # and first distorted copy as the first two of its three.
    first_two = variant <= 1
    quarter1, quarter1_y = quarter3[first_two], quarter3_y[first_two]
    other, other_y, _ = rows("mnist", mnist_train[1::4], 1, args.seed, args.jobs)
    sets = uploads(args.mnist, args.jobs)
    weight = recipe.SOURCE_WEIGHT["sklearn"]
    variants = {
        "quarter of MNIST, 1 copy, 8x8": (quarter1, quarter1_y, 8),
        "quarter of MNIST, 1 copy, 16x16": (quarter1, quarter1_y, 16),
        "quarter of MNIST, 1 copy, 32x32": (quarter1, quarter1_y, 32),
        "quarter of MNIST, 3 copies, 8x8": (quarter3, quarter3_y, 8),
        "half of MNIST, 1 copy, 8x8": (
            np.concatenate([quarter1, other]),
            np.concatenate([quarter1_y, other_y]),
            8,
        ),
    }
    header = f"{'variant':<34}{'rows':>8}" + "".join(f"{name:>13}" for name in sets)
    header += "".join(f"{style:>10}" for style in STYLES)
    lines = [
        f"load_digits training rows: {len(small_y)} (weight {weight:g}); uploads: "
        + ", ".join(f"{name} {len(s[2])} x {len(STYLES)}" for name, s in sets.items()),
        header,
    ]
    print("\n".join(lines), flush=True)
    for name, (mnist_bitmaps, mnist_y, grid) in variants.items():
        X = counted(np.concatenate([mnist_bitmaps, small]), grid)
        y = np.concatenate([mnist_y, small_y])
        w = np.concatenate([np.ones(len(mnist_y)), np.full(len(small_y), weight)])
        model = one_perceptron(X, y, w, args.seed)
        line = f"{name:<34}{len(y):>8}"
        right = {}
        for set_name, (bitmaps, accepted, labels) in sets.items():
            n, k = accepted.shape
            predicted = model.predict(
                counted(bitmaps.reshape(n * k, 32, 32), grid).astype(np.float32)
            )
            right[set_name] = (predicted.reshape(n, k) == labels[:, None]) & accepted
            line += f"{right[set_name].mean():>13.4f}"
        line += "".join(f"{a:>10.4f}" for a in right["MNIST"].mean(axis=0))
        lines.append(line)
        print(line, flush=True)
    lines.append(f"({time.monotonic() - started:.0f} s)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
