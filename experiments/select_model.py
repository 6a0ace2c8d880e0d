"""Choose the classifier by grouped cross-validation on training rows only.

The rows are the training part of the base data (``splits.base_rows(part="train")``: MNIST,
optdigits and ``load_digits`` minus the fixed validation and calibration digits), one digit
in ``--step`` of each source, drawn clean and with ``--n-augment`` distorted copies and
preprocessed like uploads. Folds are grouped by digit: a digit's copies never sit on both
sides. Each candidate reports its accuracy on the folds' clean rows and on all their rows,
its fit time, the median time to score one upload's row, and its pickle size, because the
model must also fit the service's budget (predict alone <= 0.5 ms, pickle <= 25 MB).
Semeion and the validation digits are never touched.

Usage: python -m experiments.select_model [--step 10] [--n-augment 1] [--jobs 2] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier
from sklearn.model_selection import GroupKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import SVC

import harness  # noqa: F401 - puts digits_model/ on sys.path
from predicciones.ml import recipe, splits, training


def _mlp(**params):
    return lambda X, y: training.fit_classifier(X, y, **params)


def _sk(make):
    def fit(X, y):
        scaler = MinMaxScaler().fit(np.array([[0.0] * 64, [16.0] * 64]))
        return make_pipeline(scaler, make()).fit(X.astype(np.float32), y)

    return fit


#: name -> fit(X, y) returning a fitted classifier.
CANDIDATES = {
    "mlp 128": _mlp(members=1, hidden_layer_sizes=(128,)),
    "mlp 256-128": _mlp(members=1),
    "mlp 512-256": _mlp(members=1, hidden_layer_sizes=(512, 256)),
    f"soft vote of {recipe.N_MEMBERS} mlp 256-128": _mlp(),
    "svc rbf C=10": _sk(lambda: SVC(C=10.0, gamma="scale")),
    "hist gradient boosting": _sk(lambda: HistGradientBoostingClassifier(random_state=0)),
    "extra trees 300": _sk(lambda: ExtraTreesClassifier(300, n_jobs=1, random_state=0)),
    "knn 5": _sk(lambda: KNeighborsClassifier(5)),
}


def predict_ms(clf, X: np.ndarray, n: int = 200) -> float:
    """Median milliseconds to score one row, as the service does per upload (scikit-learn's
    own path; the service has a faster one for the shipped MLP). An SVC without Platt
    scaling has no probabilities: its decision function is timed."""
    score = clf.predict_proba if hasattr(clf, "predict_proba") else clf.decision_function
    times = []
    for row in X[:n]:
        started = time.perf_counter()
        score(row[None].astype(np.float32))
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=10, help="one training digit in STEP")
    parser.add_argument("--n-augment", type=int, default=1, help="distorted copies per digit")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=sorted(CANDIDATES), default=None)
    args = parser.parse_args(argv)
    for name, value in (("--step", args.step), ("--folds", args.folds), ("--jobs", args.jobs)):
        if value < 1 or (name == "--folds" and value < 2):
            parser.error(f"{name} must be at least {2 if name == '--folds' else 1}")
    started = time.monotonic()
    rows = splits.base_rows(
        part="train", step=args.step, n_augment=args.n_augment, n_jobs=args.jobs
    )
    print(
        f"{len(rows)} training rows from {len(np.unique(rows.ids))} digits, "
        f"{args.folds} folds grouped by digit ({time.monotonic() - started:.0f} s to draw)"
    )
    folds = list(GroupKFold(n_splits=args.folds).split(rows.X, rows.y, rows.ids))
    header = f"{'candidate':<28}{'cv clean':>9}{'cv all':>8}{'fit s':>7}{'ms/row':>8}{'MB':>7}"
    print(header)
    for name in args.only or CANDIDATES:
        clean, every, fit_s = [], [], []
        for train, test in folds:
            t = time.monotonic()
            clf = CANDIDATES[name](rows.X[train], rows.y[train])
            fit_s.append(time.monotonic() - t)
            ok = clf.predict(rows.X[test].astype(np.float32)) == rows.y[test]
            clean.append(ok[rows.variant[test] == 0].mean())
            every.append(ok.mean())
        ms = predict_ms(clf, rows.X[folds[-1][1]])
        mb = len(pickle.dumps(clf)) / 2**20
        print(
            f"{name:<28}{np.mean(clean):>9.4f}{np.mean(every):>8.4f}"
            f"{np.mean(fit_s):>7.0f}{ms:>8.3f}{mb:>7.1f}",
            flush=True,
        )
    print(f"took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
