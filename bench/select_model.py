"""Choose the classifier's hyper-parameters by grouped cross-validation on training data only.

Uses the first half of ``load_digits`` (the scikit-learn example split's training half, so
the split's score stays a clean test), rendered, distorted and preprocessed exactly as for
training. Folds are grouped by source digit: a digit's distortions never sit on both sides.
Scores are on the folds' undistorted rows and on all their rows. Semeion is never touched.

The rest of the model's choices (preprocessing, distortions, number of copies, classifier
kind) are made on the writer-disjoint upload proxy, ``bench/proxy.py``.

Usage: python bench/select_model.py [--n-augment N] [--jobs N]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "digits_model"))

from sklearn.model_selection import GroupKFold  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from predicciones.ml.training import N_AUGMENT, normalised_base_data  # noqa: E402

GRID = {"C": (3.0, 10.0, 30.0), "gamma": (0.0008, 0.0015, 0.003)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-augment", type=int, default=N_AUGMENT)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    started = time.monotonic()
    X, y, groups, variant = normalised_base_data(
        seed=0, n_augment=args.n_augment, n_jobs=args.jobs, indices=np.arange(1797 // 2)
    )
    print(
        f"{len(X)} rows from {len(np.unique(groups))} digits in {time.monotonic() - started:.0f} s"
    )
    folds = list(GroupKFold(n_splits=3).split(X, y, groups))
    print(f"{'C':>6}{'gamma':>9}{'cv clean':>10}{'cv all':>9}{'n SV':>7}")
    results = []
    for C, gamma in itertools.product(GRID["C"], GRID["gamma"]):
        clean, every, n_sv = [], [], []
        for train, test in folds:
            clf = SVC(C=C, gamma=gamma).fit(X[train], y[train])
            pred = clf.predict(X[test])
            ok = pred == y[test]
            clean.append(ok[variant[test] == 0].mean())
            every.append(ok.mean())
            n_sv.append(clf.n_support_.sum())
        results.append((np.mean(clean), np.mean(every), C, gamma))
        print(
            f"{C:>6g}{gamma:>9g}{np.mean(clean):>10.4f}{np.mean(every):>9.4f}{np.mean(n_sv):>7.0f}"
        )
    best = max(results, key=lambda r: (r[1], r[0]))
    print(f"best by cv on all rows: C={best[2]:g} gamma={best[3]:g}")
    print(f"took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
