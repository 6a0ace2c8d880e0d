"""Train the digit classifier deterministically and describe what it was trained on."""

from __future__ import annotations

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.svm import SVC

N_VALUES = 17  # feature values are integers 0..16
N_CLASSES = 10


def load_base_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits: X of shape (1797, 64) on 0..16, y of shape (1797,)."""
    digits = load_digits()
    return digits.data.astype(np.float64), digits.target.astype(int)


def sklearn_example_split(X: np.ndarray, y: np.ndarray):
    """scikit-learn's classic example split: first half trains, second half tests (no shuffle)."""
    half = len(X) // 2
    return X[:half], X[half:], y[:half], y[half:]


def fit_classifier(X: np.ndarray, y: np.ndarray, *, seed: int = 0):
    """Fit the classifier on features already in the model's 0..16 format."""
    clf = SVC(C=10.0, gamma=0.001, probability=True, random_state=seed)
    return clf.fit(X, y)


def evaluate(clf, X: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and per-class recall of a fitted classifier."""
    pred = clf.predict(X)
    recall = {
        str(c): round(float((pred[y == c] == c).mean()), 4) if (y == c).any() else None
        for c in range(N_CLASSES)
    }
    return {"accuracy": round(float((pred == y).mean()), 4), "recall": recall, "n": len(y)}


def training_statistics(X: np.ndarray, y: np.ndarray) -> dict:
    """Per-feature histogram of the training inputs: what drift is measured against.

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


def train_baseline(*, seed: int = 0):
    """Train the shipped baseline and return ``(clf, metrics, statistics)``.

    Metrics hold the scikit-learn example split (a classifier fitted on the first half,
    scored on the second) and the training accuracy of the final model fitted on all data.
    """
    X, y = load_base_data()
    X_train, X_test, y_train, y_test = sklearn_example_split(X, y)
    split = evaluate(fit_classifier(X_train, y_train, seed=seed), X_test, y_test)
    clf = fit_classifier(X, y, seed=seed)
    metrics = {
        "sklearn_example_split": split,
        "training": evaluate(clf, X, y),
        "sklearn_version": sklearn.__version__,
        "seed": seed,
    }
    return clf, metrics, training_statistics(X, y)
