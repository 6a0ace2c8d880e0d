"""Load a pickled classifier only after checking its sha256, and predict with confidences."""

from __future__ import annotations

import hashlib
import pickle
import weakref

import numpy as np

from .features import N_CLASSES, N_FEATURES


class ArtifactIntegrityError(RuntimeError):
    """The artifact's bytes do not match the sha256 recorded for them."""


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


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


def check_features(X) -> np.ndarray:
    """Rows of the model's input, validated: shape (n, 64) or (64,), numbers in 0..16.

    Returns
    -------
    X : ndarray of shape (n_samples, 64), float64

    Raises
    ------
    ValueError
        Another shape, or a value that is not a number in 0..16.
    """
    if type(X) is np.ndarray and X.dtype == np.uint8 and X.shape == (N_FEATURES,):
        # One row as preprocess makes it: integers, so finite and not negative.
        if X.max() > 16:
            raise ValueError("feature values must be numbers in 0..16")
        return X.astype(np.float64).reshape(1, N_FEATURES)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1 and X.shape == (N_FEATURES,):
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != N_FEATURES:
        raise ValueError(f"expected rows of 64 features, shape (n, 64) or (64,); got {X.shape}")
    if not np.isfinite(X).all() or (X.size and (X.min() < 0 or X.max() > 16)):
        raise ValueError("feature values must be numbers in 0..16")
    return X


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

    Raises
    ------
    ValueError
        ``X`` is not rows of 64 values in 0..16.
    """
    X = check_features(X)
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
# The shipped model is a CalibratedClassifierCV (temperature) around a frozen pipeline: a
# MinMaxScaler (clipped to 0..1) then a soft VotingClassifier of MLPClassifiers with ReLU
# hidden layers (or one MLPClassifier, as earlier models were). scikit-learn's predict_proba
# walks every estimator, each validating its input: about a millisecond for one sample, ten
# times the arithmetic. This path computes the same thing from the fitted attributes: the
# scaled input through each perceptron's layers, their softmaxes averaged, then the
# temperature as scikit-learn applies it, softmax(beta * log(p + 1e-12)). Any other model
# takes the plain predict_proba; a test checks that both paths agree.

_FAST_PARTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: What scikit-learn adds to probabilities before taking their log for the temperature.
_LOG_EPS = 1e-12


def _fast_proba(clf, X: np.ndarray) -> np.ndarray | None:
    parts = _fast_parts(clf)
    if parts is None:
        return None
    scale, shift, (coef, intercept), layers, beta = parts
    members = layers[0][0].shape[0]
    # The members' first layers side by side: one product, then (members, n, units).
    scaled = X * scale
    scaled += shift
    np.minimum(scaled, 1.0, out=scaled)  # MinMaxScaler's clip, without np.clip's wrapper
    np.maximum(scaled, 0.0, out=scaled)
    activation = scaled @ coef
    activation += intercept
    activation = activation.reshape(len(X), members, -1).transpose(1, 0, 2)
    for coefs, intercepts in layers:
        np.maximum(activation, 0, out=activation)
        activation = activation @ coefs
        activation += intercepts
    # The mean over the members, as np.mean computes it.
    proba = np.add.reduce(_softmax(activation), axis=0) / members
    if beta is None:
        return proba
    proba += _LOG_EPS
    np.log(proba, out=proba)
    proba *= beta
    return _softmax(proba)


def _softmax(z: np.ndarray) -> np.ndarray:
    """Softmax along the last axis, in place on ``z``."""
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def _fast_parts(clf):
    try:
        cached = _FAST_PARTS.get(clf)
    except TypeError:  # not weak-referenceable
        return None
    if cached is not None:
        return cached or None
    parts = ()
    try:
        parts = _mlp_parts(clf)
    except (AttributeError, ImportError, TypeError, ValueError, IndexError):
        parts = ()  # another layout or scikit-learn version: use the plain path
    _FAST_PARTS[clf] = parts
    return parts or None


def _mlp_parts(clf) -> tuple:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import VotingClassifier
    from sklearn.frozen import FrozenEstimator
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    beta = None
    pipeline = clf
    if type(clf) is CalibratedClassifierCV:
        if clf.method != "temperature" or len(clf.calibrated_classifiers_) != 1:
            return ()
        inner = clf.calibrated_classifiers_[0]
        if type(inner.estimator) is not FrozenEstimator or len(inner.calibrators) != 1:
            return ()
        pipeline = inner.estimator.estimator
        beta = float(np.asarray(inner.calibrators[0].beta_).ravel()[0])
    if type(pipeline) is not Pipeline or len(pipeline.steps) != 2:
        return ()
    (_, scaler), (_, head) = pipeline.steps
    if type(scaler) is not MinMaxScaler or scaler.clip is not True:
        return ()
    if tuple(scaler.feature_range) != (0, 1):
        return ()
    if not np.array_equal(head.classes_, clf.classes_):
        return ()
    if type(head) is VotingClassifier:
        if head.voting != "soft" or head.weights is not None:
            return ()
        # The vote's members were fitted on the labels' positions in classes_.
        mlps = head.estimators_
        expected = np.arange(len(head.classes_))
    else:
        mlps, expected = [head], head.classes_
    for mlp in mlps:
        if type(mlp) is not MLPClassifier or mlp.activation != "relu":
            return ()
        if mlp.out_activation_ != "softmax" or not np.array_equal(mlp.classes_, expected):
            return ()
        if [c.shape for c in mlp.coefs_] != [c.shape for c in mlps[0].coefs_]:
            return ()
    if len(mlps[0].coefs_) < 2:
        return ()
    # In float64, as scikit-learn computes it for float64 input. The first layers side by
    # side (64, members * units); each later layer stacked (members, units_in, units_out).
    first = (
        np.hstack([np.asarray(m.coefs_[0], np.float64) for m in mlps]),
        np.hstack([np.asarray(m.intercepts_[0], np.float64) for m in mlps]),
    )
    layers = tuple(
        (
            np.stack([np.asarray(m.coefs_[k], np.float64) for m in mlps]),
            np.stack([np.asarray(m.intercepts_[k], np.float64)[None, :] for m in mlps]),
        )
        for k in range(1, len(mlps[0].coefs_))
    )
    return (scaler.scale_, scaler.min_, first, layers, beta)
