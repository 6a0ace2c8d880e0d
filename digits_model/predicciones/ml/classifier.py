"""Load a pickled classifier only after checking its sha256, and predict with confidences."""

from __future__ import annotations

import hashlib
import pickle
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
    X : ndarray of shape (n_samples, 64), values 0..16

    Returns
    -------
    labels : ndarray of shape (n_samples,), int
    confidences : ndarray of shape (n_samples,), float in [0, 1]
        The predicted class's probability.
    """
    X = np.asarray(X, dtype=np.float64).reshape(-1, N_FEATURES)
    proba = clf.predict_proba(X)
    best = proba.argmax(axis=1)
    return np.asarray(clf.classes_)[best].astype(int), proba[np.arange(len(best)), best]
