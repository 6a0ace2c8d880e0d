"""Load a pickled classifier only after checking its sha256, and predict with confidences."""

from __future__ import annotations

import copy
import hashlib
import pickle
import weakref
from pathlib import Path

import numpy as np

N_FEATURES = 64


class ArtifactIntegrityError(RuntimeError):
    """The artifact's bytes do not match the sha256 recorded for them."""


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_classifier(data: bytes, *, sha256: str):
    """Unpickle a classifier from bytes we wrote ourselves, after checking their sha256.

    Parameters
    ----------
    data : bytes
        The pickle's bytes (read once, so the bytes checked are the bytes loaded).
    sha256 : str
        The hex digest recorded when the artifact was made.

    Raises
    ------
    ArtifactIntegrityError
        The digest does not match: the pickle is not loaded.
    """
    actual = sha256_bytes(data)
    if actual != sha256:
        raise ArtifactIntegrityError(
            f"artifact sha256 is {actual[:12]}..., expected {sha256[:12]}...: refusing to load it"
        )
    return pickle.loads(data)  # noqa: S301 - only after the digest matched our own record


def dump_classifier(clf) -> bytes:
    """Pickle a classifier (highest protocol)."""
    return pickle.dumps(clf, protocol=pickle.HIGHEST_PROTOCOL)


def predict(clf, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predict digits and their confidence.

    Parameters
    ----------
    clf : fitted estimator with ``predict_proba`` and ``classes_``
    X : ndarray of shape (n_samples, 64) or (64,), values 0..16

    Returns
    -------
    labels : ndarray of shape (n_samples,), int
    confidences : ndarray of shape (n_samples,), float in [0, 1]
        The predicted class's calibrated probability.
    """
    X = np.asarray(X, dtype=np.float64).reshape(-1, N_FEATURES)
    proba = _fast_proba(clf, X)
    if proba is None:
        proba = clf.predict_proba(X)
    best = proba.argmax(axis=1)
    return np.asarray(clf.classes_)[best].astype(int), proba[np.arange(len(best)), best]


# --- A faster predict_proba for the shipped model's shape -----------------------------------
# The shipped model is a CalibratedClassifierCV (temperature) around one RBF SVC. Its
# predict_proba spends most of a single-sample call in scikit-learn's Python loop that turns
# the SVC's 45 one-vs-one scores into 10 one-vs-rest scores (about 0.6 ms of 1.3 ms). This
# path asks the same SVC for its one-vs-one scores (its public ``decision_function`` with
# ``decision_function_shape="ovo"``, on a shallow copy), applies the same formula as one
# matrix product, and the fitted temperature (softmax(beta * scores)). Any other model takes
# the plain predict_proba; a test checks that both paths agree.

_OVO_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fast_proba(clf, X: np.ndarray) -> np.ndarray | None:
    parts = _fast_parts(clf)
    if parts is None:
        return None
    ovo, calibrator, to_votes_i, to_votes_j, to_conf = parts
    dec = ovo.decision_function(X)  # (n, 45), pairs (i, j) in scikit-learn's order
    wins_i = (dec >= 0).astype(np.float64)
    votes = wins_i @ to_votes_i + (1.0 - wins_i) @ to_votes_j
    conf = (-dec) @ to_conf
    ovr = votes + conf / (3 * (np.abs(conf) + 1))
    # Temperature scaling: softmax(beta * scores), as the calibrator's own predict computes.
    z = calibrator.beta_ * ovr
    z -= z.max(axis=1, keepdims=True)
    proba = np.exp(z)
    proba /= proba.sum(axis=1, keepdims=True)
    return proba


def _fast_parts(clf):
    try:
        cached = _OVO_COPIES.get(clf)
    except TypeError:  # not weak-referenceable
        return None
    if cached is not None:
        return cached or None
    parts = ()
    try:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        if (
            type(clf) is CalibratedClassifierCV
            and clf.method == "temperature"
            and len(clf.calibrated_classifiers_) == 1
        ):
            inner = clf.calibrated_classifiers_[0]
            svc = inner.estimator
            n = len(clf.classes_)
            if (
                type(svc) is SVC
                and svc.decision_function_shape == "ovr"
                and n > 2
                and np.array_equal(svc.classes_, clf.classes_)
                and len(inner.calibrators) == 1
                and hasattr(inner.calibrators[0], "beta_")
            ):
                ovo = copy.copy(svc)
                ovo.decision_function_shape = "ovo"
                pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
                to_i = np.zeros((len(pairs), n))
                to_j = np.zeros((len(pairs), n))
                for k, (i, j) in enumerate(pairs):
                    to_i[k, i] = 1.0
                    to_j[k, j] = 1.0
                parts = (ovo, inner.calibrators[0], to_i, to_j, to_j - to_i)
    except (AttributeError, ImportError):  # another scikit-learn layout: use the plain path
        parts = ()
    _OVO_COPIES[clf] = parts
    return parts or None
