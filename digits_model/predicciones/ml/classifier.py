"""Load a pickled classifier only after checking its sha256, and predict with confidences."""

from __future__ import annotations

import hashlib
import pickle
import weakref
from pathlib import Path

import numpy as np

N_FEATURES = 64
N_CLASSES = 10


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


def predict_proba(clf, X: np.ndarray) -> np.ndarray:
    """Calibrated probability of each digit.

    Parameters
    ----------
    clf : fitted estimator with ``predict_proba`` and ``classes_`` (digits 0..9)
    X : ndarray of shape (n_samples, 64) or (64,), values 0..16

    Returns
    -------
    proba : ndarray of shape (n_samples, 10), float
        Column ``d`` is the probability of digit ``d`` (0 for a digit the model never saw);
        each row sums to 1.
    """
    X = np.asarray(X, dtype=np.float64).reshape(-1, N_FEATURES)
    proba = _fast_proba(clf, X)
    if proba is None:
        proba = clf.predict_proba(X)
    classes = np.asarray(clf.classes_, dtype=int)
    if classes.tolist() == list(range(N_CLASSES)):
        return proba
    full = np.zeros((len(X), N_CLASSES))
    full[:, classes] = proba
    return full


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
    proba = predict_proba(clf, X)
    best = proba.argmax(axis=1)
    return best.astype(int), proba[np.arange(len(best)), best]


def ranked(proba: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    """The ``k`` most likely digits of one row of :func:`predict_proba`, most likely first.

    Returns
    -------
    list of (digit, probability)
    """
    order = np.argsort(-np.asarray(proba), kind="stable")[:k]
    return [(int(d), float(proba[d])) for d in order]


# --- A faster predict_proba for the shipped model's shape -----------------------------------
# The shipped model is a CalibratedClassifierCV (temperature) around a OneVsRestClassifier of
# ten RBF SVCs. scikit-learn's predict_proba calls each SVC in turn, and its per-call checks
# cost about 2 ms for one sample. This path evaluates the same decision functions at once
# from the fitted attributes (support vectors, dual coefficients, intercepts, gamma):
# margin_k(x) = sum_i dual_coef_k[i] * exp(-gamma * |x - sv_i|^2) + intercept_k, then the
# fitted temperature: softmax(beta * margins). Any other model takes the plain
# predict_proba; a test checks that both paths agree.

_FAST_PARTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fast_proba(clf, X: np.ndarray) -> np.ndarray | None:
    parts = _fast_parts(clf)
    if parts is None:
        return None
    vectors, sq_norms, coef, intercept, gamma, beta = parts
    dist = sq_norms[None, :] - 2.0 * (X @ vectors.T) + np.einsum("ij,ij->i", X, X)[:, None]
    margins = np.exp(-gamma * np.maximum(dist, 0.0)) @ coef + intercept
    z = beta * margins
    z -= z.max(axis=1, keepdims=True)
    proba = np.exp(z)
    proba /= proba.sum(axis=1, keepdims=True)
    return proba


def _fast_parts(clf):
    try:
        cached = _FAST_PARTS.get(clf)
    except TypeError:  # not weak-referenceable
        return None
    if cached is not None:
        return cached or None
    parts = ()
    try:
        parts = _ovr_svc_parts(clf)
    except (AttributeError, ImportError, TypeError, ValueError):
        parts = ()  # another layout or scikit-learn version: use the plain path
    _FAST_PARTS[clf] = parts
    return parts or None


def _ovr_svc_parts(clf) -> tuple:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    if type(clf) is not CalibratedClassifierCV or clf.method != "temperature":
        return ()
    if len(clf.calibrated_classifiers_) != 1:
        return ()
    inner = clf.calibrated_classifiers_[0]
    ovr = inner.estimator
    if type(ovr) is not OneVsRestClassifier or len(inner.calibrators) != 1:
        return ()
    if not np.array_equal(ovr.classes_, clf.classes_) or len(ovr.estimators_) != len(clf.classes_):
        return ()
    svcs = ovr.estimators_
    if not all(type(s) is SVC and s.kernel == "rbf" for s in svcs):
        return ()
    gammas = {float(s._gamma) for s in svcs}
    if len(gammas) != 1:
        return ()
    # One stack of all support vectors (shared ones once), one coefficient column per class.
    stacked = np.vstack([s.support_vectors_ for s in svcs])
    vectors, index = np.unique(stacked, axis=0, return_inverse=True)
    # A binary SVC's decision_function is dual_coef_ @ K + intercept_: the margin of its
    # classes_[1], which one-vs-rest makes the class itself (1; the rest is 0).
    if not all(list(s.classes_) == [0, 1] for s in svcs):
        return ()
    coef = np.zeros((len(vectors), len(svcs)))
    start = 0
    for k, s in enumerate(svcs):
        n = len(s.support_vectors_)
        np.add.at(coef[:, k], index.ravel()[start : start + n], s.dual_coef_[0])
        start += n
    intercept = np.array([s.intercept_[0] for s in svcs])
    sq_norms = np.einsum("ij,ij->i", vectors, vectors)
    return (vectors, sq_norms, coef, intercept, gammas.pop(), float(inner.calibrators[0].beta_))
