"""Loading artifacts safely, pickling round trips, and the shape of predictions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from predicciones.ml.classifier import (
    ArtifactIntegrityError,
    _fast_proba,
    dump_classifier,
    load_classifier,
    predict,
    predict_proba,
    sha256_bytes,
)

from .conftest import MODEL_DIR


def test_committed_artifact_matches_its_manifest(manifest):
    data = (MODEL_DIR / "clf.pickle").read_bytes()
    assert sha256_bytes(data) == manifest["sha256"]


def test_tampered_bytes_are_refused(manifest):
    data = bytearray((MODEL_DIR / "clf.pickle").read_bytes())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(ArtifactIntegrityError):
        load_classifier(bytes(data), sha256=manifest["sha256"])


def test_a_different_pickle_is_refused_even_if_valid(manifest):
    other = pickle.dumps({"not": "a model"})
    with pytest.raises(ArtifactIntegrityError):
        load_classifier(other, sha256=manifest["sha256"])


def test_pickle_round_trip_keeps_predictions(clf, base_digits):
    X, _ = base_digits
    data = dump_classifier(clf)
    again = load_classifier(data, sha256=sha256_bytes(data))
    a_labels, a_conf = predict(clf, X[:50])
    b_labels, b_conf = predict(again, X[:50])
    np.testing.assert_array_equal(a_labels, b_labels)
    np.testing.assert_allclose(a_conf, b_conf)


def test_fast_path_matches_predict_proba(clf, base_digits):
    X, _ = base_digits
    assert _fast_proba(clf, X) is not None, "the shipped model no longer takes the fast path"
    np.testing.assert_allclose(_fast_proba(clf, X), clf.predict_proba(X), rtol=0, atol=1e-12)
    # Ink where no training digit has any (a corner) is clipped to the training range alike.
    beyond = np.vstack([np.full(64, 16.0), np.eye(64)[[0, 7, 56, 63]].sum(axis=0) * 16])
    assert (beyond > clf.calibrated_classifiers_[0].estimator.estimator[0].data_max_).any()
    np.testing.assert_allclose(
        _fast_proba(clf, beyond), clf.predict_proba(beyond), rtol=0, atol=1e-12
    )


def test_shipped_model_is_a_soft_vote_of_perceptrons(clf):
    from sklearn.ensemble import VotingClassifier

    from predicciones.ml.recipe import N_MEMBERS

    vote = clf.calibrated_classifiers_[0].estimator.estimator[-1]
    assert type(vote) is VotingClassifier and vote.voting == "soft"
    assert len(vote.estimators_) == N_MEMBERS
    # Members differ: each was initialised from its own seed.
    first_layers = [m.coefs_[0] for m in vote.estimators_]
    assert not np.array_equal(first_layers[0], first_layers[1])


def test_one_perceptron_takes_the_fast_path_too(base_digits):
    # Models trained before the vote (one perceptron) may still sit in a registry.
    from predicciones.ml.training import fit_classifier

    X, y = base_digits
    for members in (1, 2):
        model = fit_classifier(X[:400], y[:400], members=members, max_iter=5)
        assert _fast_proba(model, X[400:450]) is not None
        np.testing.assert_allclose(
            _fast_proba(model, X[400:450]), model.predict_proba(X[400:450]), rtol=0, atol=1e-12
        )


def test_a_weighted_vote_takes_the_plain_path(base_digits):
    from predicciones.ml.training import fit_classifier

    X, y = base_digits
    model = fit_classifier(X[:400], y[:400], members=2, max_iter=5)
    model[-1].weights = [1.0, 3.0]
    assert _fast_proba(model, X[:5]) is None
    np.testing.assert_allclose(predict_proba(model, X[:5]), model.predict_proba(X[:5]))


def test_other_models_take_the_plain_path(base_digits):
    from sklearn.linear_model import LogisticRegression

    X, y = base_digits
    model = LogisticRegression(max_iter=200).fit(X[:300], y[:300])
    labels, confidences = predict(model, X[:5])
    np.testing.assert_array_equal(labels, model.predict(X[:5]))
    np.testing.assert_allclose(confidences, model.predict_proba(X[:5]).max(axis=1))


def test_artifact_holds_only_sklearn_and_numpy_objects():
    data = (MODEL_DIR / "clf.pickle").read_bytes()
    modules = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            modules.add(module.split(".")[0])
            return super().find_class(module, name)

    import io

    Recorder(io.BytesIO(data)).load()
    assert modules <= {"sklearn", "numpy", "builtins", "copyreg", "_codecs", "collections"}


def test_predict_returns_labels_and_confidences(clf, base_digits):
    X, _ = base_digits
    labels, confidences = predict(clf, X[:20])
    assert labels.shape == (20,) and confidences.shape == (20,)
    assert set(labels) <= set(range(10))
    assert np.all((confidences >= 0) & (confidences <= 1))
    one, conf = predict(clf, X[0])
    assert one.shape == (1,) and conf.shape == (1,)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.zeros(128), r"shape \(n, 64\) or \(64,\); got \(128,\)"),
        (np.zeros((2, 8, 8)), r"got \(2, 8, 8\)"),
        (np.zeros((3, 63)), r"got \(3, 63\)"),
        (np.full((1, 64), 17.0), "numbers in 0..16"),
        (np.full((1, 64), -1.0), "numbers in 0..16"),
        (np.full((1, 64), np.nan), "numbers in 0..16"),
    ],
)
def test_predict_refuses_rows_of_the_wrong_shape_or_scale(clf, X, message):
    """128 values are not silently read as two rows, nor a 0..255 image as features."""
    with pytest.raises(ValueError, match=message):
        predict(clf, X)
    with pytest.raises(ValueError, match=message):
        predict_proba(clf, X)
