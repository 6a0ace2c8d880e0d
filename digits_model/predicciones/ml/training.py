"""Train the digit classifier deterministically and describe what it was trained on.

Train/serve parity: every training row is a ``load_digits`` digit rebuilt as a picture,
distorted, and sent through the same :func:`~predicciones.ml.preprocessing.preprocess` as
uploads (:mod:`~predicciones.ml.augment`). The classifier is ten one-vs-rest RBF SVCs;
their confidence is calibrated by temperature scaling on out-of-fold scores where each
half of the digits (different writers) is scored by SVCs trained on the other half. The
holdout (index % 10 == 9) is never trained on: it is the fixed validation set.
The SVC's hyper-parameters were chosen by grouped cross-validation on the first half of the
training data only (``bench/select_model.py``); preprocessing and augmentation variants are
compared on a writer-disjoint proxy (``bench/proxy.py``: one half of ``load_digits`` trains,
the other half is sent as uploads in five styles, and the other way round).
The pickle holds only scikit-learn and NumPy objects. Semeion is never used here.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GroupKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import SVC

from .augment import DEFAULT_DISTORTION, Distortion, training_features
from .datasets import load_base_data

N_VALUES = 17  # feature values are integers 0..16
N_CLASSES = 10
N_FEATURES = 64
#: Rows of ``load_digits``; its first and second halves come from different writers.
N_BASE = 1797

#: Distorted copies of each digit in the shipped model's training set.
N_AUGMENT = 10
#: A cheaper setting for tests: same pipeline, fewer rows.
N_AUGMENT_FAST = 1
#: SVC hyper-parameters (features on 0..16), from ``bench/select_model.py``.
SVC_PARAMS = {"C": 3.0, "gamma": 0.0015}
#: Kernel cache of each SVC while it is fitted (MB; a larger cache fits large sets faster).
SVC_CACHE_MB = 1000
#: Folds whose held-out scores fit the temperature.
CALIBRATION_FOLDS = 3
#: Base digits no model is trained on (``index % 10 == 9``): the fixed validation holdout.
HOLDOUT_MODULUS, HOLDOUT_REMAINDER = 10, 9
#: Seed of the holdout's renderings, fixed so every model is validated on the same rows.
VALIDATION_SEED = 12345
#: Distorted copies of each holdout digit in the validation set (besides the clean one).
VALIDATION_AUGMENT = 2

__all__ = [
    "base_validation_set",
    "evaluate",
    "fit_classifier",
    "load_base_data",
    "normalised_base_data",
    "sklearn_example_split",
    "train_baseline",
    "train_classifier",
    "training_statistics",
]


def sklearn_example_split(X: np.ndarray, y: np.ndarray, *rest: np.ndarray):
    """scikit-learn's classic example split: first half trains, second half tests (no shuffle).

    Extra arrays aligned with ``X`` are split the same way and returned after ``y``'s halves.
    """
    half = len(X) // 2
    out = [X[:half], X[half:], y[:half], y[half:]]
    for a in rest:
        out += [a[:half], a[half:]]
    return out


def normalised_base_data(
    *,
    seed: int = 0,
    n_augment: int = N_AUGMENT,
    n_jobs: int = 1,
    indices=None,
    distortion: Distortion = DEFAULT_DISTORTION,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The base digits (or ``indices`` of them), rendered, distorted and preprocessed.

    Returns
    -------
    X : ndarray of shape (n_rows, 64), float64, values 0..16
    y : ndarray of shape (n_rows,), int
    groups : ndarray of shape (n_rows,), int
        Index of the ``load_digits`` row each row came from.
    variant : ndarray of shape (n_rows,), int
        0 for the undistorted rendering.
    """
    X, y = load_base_data()
    if indices is None:
        indices = np.arange(len(X))
    indices = np.asarray(indices)
    F, source, variant = training_features(
        X[indices],
        n_augment=n_augment,
        seed=seed,
        distortion=distortion,
        n_jobs=n_jobs,
        ids=indices,
    )
    groups = indices[source]
    return F.astype(np.float64), y[groups], groups, variant


def fit_classifier(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    seed: int = 0,
    calibrate: bool = True,
    **params,
):
    """Fit the calibrated classifier on rows already in the model's 0..16 format.

    The confidence's temperature is fitted on out-of-fold scores, then the SVCs are refitted
    on all rows. When the rows come from both halves of ``load_digits`` (different writers:
    the data set is ordered by writer), the two folds are those halves, so the temperature
    is learnt on writers the fold's model never saw; otherwise :data:`CALIBRATION_FOLDS`
    folds grouped by ``groups``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, 64), values 0..16
    y : ndarray of shape (n_samples,), int
    groups : ndarray of shape (n_samples,), optional
        The ``load_digits`` index each row was rendered from; rows of a group stay in one
        fold. Extra rows carry ids from ``N_BASE`` up and are spread over both folds.
    seed : int
    calibrate : bool
        False fits the one-vs-rest SVCs alone (same predictions, no confidence; used for
        the scikit-learn example split, whose metric is accuracy only).
    **params
        Override :data:`SVC_PARAMS`.

    Returns
    -------
    CalibratedClassifierCV
        Ten one-vs-rest RBF SVCs with one temperature (only scikit-learn objects: it
        pickles and loads with scikit-learn alone).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    groups = np.arange(len(X)) if groups is None else np.asarray(groups)
    # One RBF SVC per digit (one-vs-rest): each gives a margin for its own class, which the
    # temperature turns into a confidence that separates sure from unsure answers (the
    # one-vs-one SVC's 10 scores are mostly vote counts, so its confidence hardly varies).
    # Fitted in this process: SVCs fitted in worker processes unpickle with other object
    # sharing, and the artifact would no longer be the same bytes for the same seed.
    svc = OneVsRestClassifier(
        SVC(kernel="rbf", cache_size=SVC_CACHE_MB, random_state=seed, **{**SVC_PARAMS, **params})
    )
    if not calibrate:
        return svc.fit(X, y)
    first = np.where(groups < N_BASE, groups < N_BASE // 2, groups % 2 == 0)
    if first.all() or not first.any():
        folds = list(GroupKFold(n_splits=CALIBRATION_FOLDS).split(X, y, groups))
    else:
        folds = [(np.flatnonzero(first), np.flatnonzero(~first))]
        folds.append(folds[0][::-1])
    clf = CalibratedClassifierCV(svc, method="temperature", cv=folds, ensemble=False)
    return clf.fit(X, y)


def evaluate(clf, X: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and per-class recall of a fitted classifier."""
    pred = clf.predict(np.asarray(X, dtype=np.float64))
    recall = {
        str(c): round(float((pred[y == c] == c).mean()), 4) if (y == c).any() else None
        for c in range(N_CLASSES)
    }
    return {"accuracy": round(float((pred == y).mean()), 4), "recall": recall, "n": len(y)}


def training_statistics(X: np.ndarray, y: np.ndarray) -> dict:
    """Per-feature histogram of the training inputs: what drift is measured against.

    Parameters
    ----------
    X : ndarray of shape (n_samples, 64), values 0..16
    y : ndarray of shape (n_samples,), int

    Returns
    -------
    dict with ``n_samples``, ``value_counts`` (64 lists of 17 counts: how many samples
    have value v in feature j), ``class_counts`` (10 counts) and ``feature_means``.
    """
    Xi = np.clip(np.rint(X), 0, N_VALUES - 1).astype(np.int64)
    offsets = np.arange(Xi.shape[1]) * N_VALUES
    counts = np.bincount((Xi + offsets).ravel(), minlength=Xi.shape[1] * N_VALUES)
    return {
        "n_samples": len(Xi),
        "value_counts": counts.reshape(Xi.shape[1], N_VALUES).tolist(),
        "class_counts": np.bincount(y, minlength=N_CLASSES).tolist(),
        "feature_means": [round(float(v), 4) for v in Xi.mean(axis=0)],
    }


def train_classifier(
    *,
    seed: int = 0,
    extra_X: np.ndarray | None = None,
    extra_y: np.ndarray | None = None,
    quick: bool = False,
    n_augment: int | None = None,
    n_jobs: int = 1,
    base_indices: np.ndarray | None = None,
):
    """Train on the base digits (less the validation holdout) plus extra labelled rows.

    Parameters
    ----------
    seed : int
        Seeds the distortions and the classifier: same inputs and seed, same pickle bytes.
    extra_X : ndarray of shape (n_extra, 64), values 0..16, optional
        Rows already in the model's format (for example logged features of uploads with
        feedback). They are used as they are, each repeated ``1 + n_augment`` times so that
        it weighs as much as a base digit with its distorted copies. (Re-rendering them with
        the base digits' distortions instead, tried in ML round 2, made the retrained
        model's gain on marker feedback smaller: the redraw normalises away the style.)
    extra_y : ndarray of shape (n_extra,), int, optional
    quick : bool
        Use :data:`N_AUGMENT_FAST` distortions per digit (tests) instead of :data:`N_AUGMENT`.
    n_augment : int, optional
        Distorted copies per base digit; overrides ``quick``.
    n_jobs : int
        Processes for rendering the training rows (the result does not depend on it).
    base_indices : ndarray of int, optional
        Train on these ``load_digits`` rows only (default: all but the holdout). Tests use
        a small subset to stay fast.

    Returns
    -------
    clf : fitted classifier with ``predict_proba``
    statistics : dict
        :func:`training_statistics` of the exact rows the classifier was fitted on.
    """
    if n_augment is None:
        n_augment = N_AUGMENT_FAST if quick else N_AUGMENT
    if base_indices is None:
        base_indices = base_training_indices()
    X, y, groups, _ = normalised_base_data(
        seed=seed, n_augment=n_augment, n_jobs=n_jobs, indices=base_indices
    )
    if extra_X is not None and len(extra_X):
        extra_X = _check_rows(extra_X)
        extra_y = np.asarray(extra_y, dtype=int).ravel()
        if len(extra_y) != len(extra_X):
            raise ValueError(f"extra_y has {len(extra_y)} labels for {len(extra_X)} rows")
        if extra_y.min() < 0 or extra_y.max() >= N_CLASSES:
            raise ValueError("extra_y labels must be digits 0..9")
        # Each extra row weighs as much as one base digit (its row plus n_augment distorted
        # copies): repeated 1 + n_augment times, its copies in one calibration fold.
        copies = 1 + n_augment
        X = np.vstack([X, np.repeat(extra_X, copies, axis=0)])
        y = np.concatenate([y, np.repeat(extra_y, copies)])
        groups = np.concatenate([groups, np.repeat(N_BASE + np.arange(len(extra_X)), copies)])
    clf = fit_classifier(X, y, groups, seed=seed)
    return clf, training_statistics(X, y)


def base_training_indices() -> np.ndarray:
    """Indices of the ``load_digits`` rows models train on: all but the validation holdout."""
    index = np.arange(len(load_base_data()[1]))
    return index[index % HOLDOUT_MODULUS != HOLDOUT_REMAINDER]


@functools.lru_cache(maxsize=1)
def _base_validation_set() -> tuple[np.ndarray, np.ndarray]:
    index = np.arange(len(load_base_data()[1]))
    holdout = index[index % HOLDOUT_MODULUS == HOLDOUT_REMAINDER]
    X, y, _, _ = normalised_base_data(
        seed=VALIDATION_SEED, n_augment=VALIDATION_AUGMENT, indices=holdout
    )
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def base_validation_set() -> tuple[np.ndarray, np.ndarray]:
    """The fixed validation rows: holdout digits no model trains on, clean and distorted.

    Returns
    -------
    X : ndarray of shape (n_rows, 64), float64, values 0..16 (read-only, cached)
    y : ndarray of shape (n_rows,), int
    """
    return _base_validation_set()


def train_baseline(*, seed: int = 0, n_augment: int = N_AUGMENT, n_jobs: int = 1):
    """Train the shipped baseline and return ``(clf, metrics, statistics)``.

    The model is :func:`train_classifier` without extra rows. Metrics hold the scikit-learn
    example split (a classifier trained the same way on the first half of the digits,
    scored on the undistorted second half after the same normalisation as uploads; the
    classic SVC on raw features scores 0.969), the score on :func:`base_validation_set`
    and the training accuracy.
    """
    X, y, groups, variant = normalised_base_data(seed=seed, n_augment=n_augment, n_jobs=n_jobs)
    half = len(load_base_data()[1]) // 2
    first = groups < half
    test = ~first & (variant == 0)
    split_clf = fit_classifier(X[first], y[first], groups[first], seed=seed, calibrate=False)
    split = evaluate(split_clf, X[test], y[test])
    # The shipped model: the same rows as train_classifier(seed=seed) would render.
    train = groups % HOLDOUT_MODULUS != HOLDOUT_REMAINDER
    X, y, groups, variant = X[train], y[train], groups[train], variant[train]
    clf = fit_classifier(X, y, groups, seed=seed)
    X_val, y_val = base_validation_set()
    metrics = {
        "sklearn_example_split": split,
        "validation": evaluate(clf, X_val, y_val),
        "training": evaluate(clf, X[variant == 0], y[variant == 0]),
        "n_augment": n_augment,
        "distortion": dataclasses.asdict(DEFAULT_DISTORTION),
        "svc_params": SVC_PARAMS,
        "calibration": "temperature, on out-of-fold scores of the two writer halves",
        "sklearn_version": sklearn.__version__,
        "seed": seed,
    }
    return clf, metrics, training_statistics(X, y)


def _check_rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != N_FEATURES:
        raise ValueError(f"expected rows of shape (n, 64), got {X.shape}")
    if np.isnan(X).any() or X.min() < 0 or X.max() > N_VALUES - 1:
        raise ValueError("feature values must be numbers in 0..16")
    return X
