"""Train the digit classifier on real handwriting, deterministically, and describe its data.

Base data (:mod:`~predicciones.ml.sources`): MNIST's 60,000 training digits, optdigits'
3,823, ``load_digits``' 1,797, UNIPEN's 13,583 pen-written digits and pendigits' 7,494,
split by writer and drawn as uploads (:mod:`~predicciones.ml.splits`). Train/serve
parity: no model ever sees a data set's own pixels, counts or pen points.

The classifier is a soft vote of a few small multi-layer perceptrons (family and size by
grouped cross-validation on training rows only, ``experiments/select_model.py``) with a
temperature, by the recipe of :mod:`~predicciones.ml.recipe`. The pickle holds only
scikit-learn objects. Semeion is never used here.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import VotingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits

from .augment import training_features
from .classifier import check_features
from .drift import value_counts
from .features import N_CLASSES, N_VALUES
from .gate import Scores
from .recipe import (
    FEEDBACK_AUGMENT,
    FEEDBACK_MAX_SHARE,
    FEEDBACK_SHARE,
    MIN_STEPS,
    MLP_PARAMS,
    N_AUGMENT,
    N_AUGMENT_FAST,
    N_MEMBERS,
    QUICK_STEP,
    SOURCE_WEIGHT,
    TRAINING_DISTORTION,
)
from .splits import (
    FEEDBACK_ID_OFFSET,
    ID_OFFSET,
    PEN_SOURCES,
    SOURCES,
    Rows,
    base_rows,
    base_validation_set_with_ids,
    calibration_uploads,
    source_forms,
    source_of,
)

__all__ = [
    "evaluate",
    "feedback_rows",
    "fit_classifier",
    "train_baseline",
    "train_classifier",
    "training_rows",
    "training_statistics",
]


def fit_classifier(
    X: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 0,
    calibration: tuple[np.ndarray, np.ndarray] | None = None,
    sample_weight: np.ndarray | None = None,
    members: int = N_MEMBERS,
    **params,
):
    """Fit the classifier on rows already in the model's 0..16 format.

    Parameters
    ----------
    X : ndarray of shape (n_samples, 64), values 0..16
    y : ndarray of shape (n_samples,), int
    seed : int
        Seeds the weights' initialisation and the batches' order of every perceptron.
    calibration : (X_cal, y_cal), optional
        Rows of writers the classifier is not trained on; the confidence's temperature is
        fitted on them. Without them the classifier's own probabilities are used.
    sample_weight : ndarray of shape (n_samples,), optional
        Each row's weight in the loss (all 1 when not given).
    members : int
        Perceptrons in the soft vote, fitted one after the other in this process (fitted in
        worker processes their pickle's bytes would differ).
    **params
        Override :data:`MLP_PARAMS`. Without an explicit ``max_iter`` a small training set
        is trained for more epochs, up to :data:`MIN_STEPS` batches.

    Returns
    -------
    estimator
        A pipeline (each feature scaled to 0..1 by its training range, clipped, then the
        soft vote of the perceptrons), wrapped in a temperature-scaled
        ``CalibratedClassifierCV`` when ``calibration`` is given.
    """
    X = check_features(X).astype(np.float32)
    y = np.asarray(y, dtype=np.int64)
    # Each feature scaled to 0..1 by its range in the training rows; an upload beyond that
    # range (ink in a corner no training digit reaches) is clipped to it.
    scaler = MinMaxScaler(clip=True)
    mlp_params = {**MLP_PARAMS, **params}
    if "max_iter" not in params:
        batches = -(-len(X) // mlp_params["batch_size"])
        mlp_params["max_iter"] = max(mlp_params["max_iter"], -(-MIN_STEPS // batches))
    mlps = [
        (f"mlp{i}", MLPClassifier(random_state=seed * members + i, **mlp_params))
        for i in range(members)
    ]
    vote = VotingClassifier(mlps, voting="soft")
    # One BLAS thread: the same bytes for the same seed on any number of cores.
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        # A fixed number of epochs is the recipe, not a failure to converge.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = Pipeline([("scale", scaler), ("vote", vote)])
        model.fit(X, y, vote__sample_weight=sample_weight)
    if calibration is None:
        return model
    X_cal = check_features(calibration[0]).astype(np.float32)
    calibrated = CalibratedClassifierCV(FrozenEstimator(model), method="temperature")
    return calibrated.fit(X_cal, np.asarray(calibration[1], dtype=np.int64))


def evaluate(clf, X: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and per-class recall of a fitted classifier."""
    scores = Scores.of(y, clf.predict(np.asarray(X, dtype=np.float32)))
    recall = {str(c): None if r is None else round(r, 4) for c, r in enumerate(scores.recall)}
    return {"accuracy": round(scores.accuracy, 4), "recall": recall, "n": scores.n}


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
    return {
        "n_samples": len(Xi),
        "value_counts": value_counts(Xi).tolist(),
        "class_counts": np.bincount(y, minlength=N_CLASSES).tolist(),
        "feature_means": [round(float(v), 4) for v in Xi.mean(axis=0)],
    }


def train_classifier(
    *,
    seed: int = 0,
    extra_X: np.ndarray | None = None,
    extra_y: np.ndarray | None = None,
    quick: bool = False,
    n_augment: int | dict[str, int] | None = None,
    n_jobs: int = 1,
    step: int | None = None,
    sources_: tuple[str, ...] = SOURCES,
):
    """Train on the base digits' training part plus extra labelled rows, and calibrate.

    Parameters
    ----------
    seed : int
        Seeds the renderings and the classifier: same inputs and seed, same pickle bytes.
    extra_X : ndarray of shape (n_extra, 64), values 0..16, optional
        Rows already in the model's format (for example logged features of uploads with
        feedback), trained on as :func:`feedback_rows` makes them count.
    extra_y : ndarray of shape (n_extra,), int, optional
    quick : bool
        Tests' setting: one digit in :data:`QUICK_STEP`, :data:`N_AUGMENT_FAST` copies, and
        ``MLP_PARAMS["max_iter"]`` epochs (not raised to :data:`MIN_STEPS` batches).
    n_augment : int or dict, optional
        Distorted copies per base digit (a dict: per source); overrides ``quick``.
    n_jobs : int
        Processes rendering the pictures (the result does not depend on it).
    step : int, optional
        Keep one base digit in ``step``; overrides ``quick``.
    sources_ : tuple of str
        Base sources to train on (leave-one-source-out evaluations drop one).

    Returns
    -------
    clf : fitted classifier with ``predict_proba``
    statistics : dict
        :func:`training_statistics` of the exact rows the classifier was fitted on.
    """
    if n_augment is None:
        n_augment = N_AUGMENT_FAST if quick else N_AUGMENT
    if step is None:
        step = QUICK_STEP if quick else 1
    rows, weight = training_rows(
        seed=seed, n_augment=n_augment, sources_=sources_, step=step, n_jobs=n_jobs
    )
    X, y = rows.X, rows.y
    if extra_X is not None and len(extra_X):
        F, labels, extra_weight = feedback_rows(
            extra_X, extra_y, base_weight=float(weight.sum()), seed=seed, n_jobs=n_jobs
        )
        X, y = np.vstack([X, F]), np.concatenate([y, labels])
        weight = np.concatenate([weight, extra_weight])
    calibration = calibration_uploads(step=max(1, step // 3), n_jobs=n_jobs)
    # Quick models keep the perceptrons' epochs however few their rows: tests stay cheap.
    epochs = {"max_iter": MLP_PARAMS["max_iter"]} if quick else {}
    clf = fit_classifier(X, y, seed=seed, calibration=calibration, sample_weight=weight, **epochs)
    return clf, training_statistics(X, y)


def feedback_rows(
    X: np.ndarray,
    y: np.ndarray,
    *,
    base_weight: float,
    seed: int = 0,
    n_jobs: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled uploads as training rows that count: each drawn again, and weighed heavily.

    Each row is kept as it was logged and drawn :data:`FEEDBACK_AUGMENT` times more, from
    its own 8x8 counts, distorted and preprocessed like a ``load_digits`` digit: a few
    hundred labels become a few thousand rows of the same writers' forms, at other slants,
    sizes and pens. Every row weighs at least as much as the heaviest base source's
    (:data:`SOURCE_WEIGHT`), and together they weigh at least :data:`FEEDBACK_SHARE` of the
    base rows' weight, so that a new population is learnt from a few hundred labels. In a
    simulation (one perceptron, the base without pendigits, 120 labelled drawings of
    pendigits' writers on the page's canvas, 749 others unseen, read 0.773 by the base):
    kept as logged and weighted 3, they read the unseen drawings 2.8 points better; drawn
    again and weighing 2.6 % of the base, 6.3; 8 %, 5.7 to 7.9 (three draws of the 150
    labels); 16 % and 32 %, up to a point more, while MNIST's slice fell 0.4 to 0.7 points.

    Parameters
    ----------
    X : ndarray of shape (n, 64), values 0..16
    y : ndarray of shape (n,), int 0..9
    base_weight : float
        Total weight of the base rows they are trained with.
    seed : int
    n_jobs : int

    Returns
    -------
    X : ndarray of shape (m, 64), uint8
    y : ndarray of shape (m,), int
    weight : ndarray of shape (m,), float
    """
    X = check_features(X)
    y = np.asarray(y, dtype=int).ravel()
    if len(y) != len(X):
        raise ValueError(f"extra_y has {len(y)} labels for {len(X)} rows")
    if len(y) and (y.min() < 0 or y.max() >= N_CLASSES):
        raise ValueError("extra_y labels must be digits 0..9")
    F, which, variant = training_features(
        X,
        n_augment=FEEDBACK_AUGMENT,
        seed=seed,
        distortion=TRAINING_DISTORTION,
        n_jobs=n_jobs,
        ids=FEEDBACK_ID_OFFSET + np.arange(len(X)),
    )
    drawn = variant > 0  # the rows as logged stand for the clean renderings
    F = np.vstack([np.rint(X).astype(np.uint8), F[drawn]])
    labels = np.concatenate([y, y[which[drawn]]])
    each = max(max(SOURCE_WEIGHT.values()), FEEDBACK_SHARE * base_weight / max(1, len(F)))
    # ...but never more than FEEDBACK_MAX_SHARE of the base in all: on a small base (a quick
    # model) a few hundred labels drawn nine times would otherwise outweigh what it knew.
    each = min(each, FEEDBACK_MAX_SHARE * base_weight / max(1, len(F)))
    return F, labels, np.full(len(F), each)


def training_rows(
    *,
    seed: int = 0,
    n_augment: int | dict[str, int] = N_AUGMENT,
    sources_: tuple[str, ...] = SOURCES,
    step: int = 1,
    n_jobs: int = 1,
) -> tuple[Rows, np.ndarray]:
    """The base training rows and each row's weight in the loss (:data:`SOURCE_WEIGHT`).

    Parameters as :func:`base_rows`.

    Returns
    -------
    rows : Rows
    weight : ndarray of shape (n_rows,), float
    """
    rows = base_rows(
        part="train",
        seed=seed,
        n_augment=n_augment,
        sources_=sources_,
        step=step,
        n_jobs=n_jobs,
    )
    return rows, np.vectorize(SOURCE_WEIGHT.get, otypes=[np.float64])(source_of(rows.ids))


def train_baseline(*, seed: int = 0, n_jobs: int = 1):
    """Train the shipped baseline and return ``(clf, metrics, statistics)``.

    The model is :func:`train_classifier` without extra rows. Metrics hold the score on
    :func:`base_validation_set` (each part), the training accuracy on clean rows, and the
    scikit-learn example split: a classifier trained the same way on the first half of
    ``load_digits`` only, scored on the clean second half after the same normalisation as
    uploads (the classic SVC on raw features scores 0.969), and the baseline's own score on
    that second half (it trains on the first half with the other sources).
    """
    clf, statistics = train_classifier(seed=seed, n_jobs=n_jobs)
    metrics = {
        "validation": validation_metrics(clf, n_jobs=n_jobs),
        "sklearn_example_split": sklearn_example_split(seed=seed, n_jobs=n_jobs, base_model=clf),
        "n_augment": N_AUGMENT,
        "distortion": dataclasses.asdict(TRAINING_DISTORTION),
        "classifier": {
            "members": N_MEMBERS,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in MLP_PARAMS.items()},
        },
        "source_weight": SOURCE_WEIGHT,
        "calibration": (
            "temperature, on load_digits' second-half writers and UNIPEN's calibration "
            "writers sent as uploads"
        ),
        "sklearn_version": sklearn.__version__,
        "seed": seed,
    }
    return clf, metrics, statistics


def validation_metrics(clf, *, n_jobs: int = 1) -> dict:
    """Scores on the fixed validation set, whole and per source."""
    X, y, ids = base_validation_set_with_ids(n_jobs)
    result = evaluate(clf, X, y)
    names = source_of(ids)
    for source in ("mnist", "sklearn", *PEN_SOURCES):
        inside = names == source
        result[source] = evaluate(clf, X[inside], y[inside])
    return result


def sklearn_example_split(*, seed: int = 0, n_jobs: int = 1, base_model=None) -> dict:
    """scikit-learn's example split through this pipeline: first half trains, second tests.

    Only ``load_digits`` is used (its first half, 898 digits, rendered and distorted as
    for training; the second half's clean renderings are scored), without a temperature.

    Parameters
    ----------
    base_model : fitted classifier, optional
        A model trained on the base data, whose ``load_digits`` part is that first half
        (the second half is its calibration writers): its score on the same second half
        is added as ``"base_model"``.
    """
    ((digits, labels, _),) = source_forms("sklearn")
    half = len(labels) // 2
    first, second = np.arange(half), np.arange(half, len(labels))
    F, which, _ = training_features(
        digits[first],
        n_augment=N_AUGMENT["sklearn"],
        seed=seed,
        distortion=TRAINING_DISTORTION,
        n_jobs=n_jobs,
        ids=ID_OFFSET["sklearn"] + first,
    )
    clf = fit_classifier(F, labels[first][which], seed=seed)
    F_test, which_test, _ = training_features(
        digits[second], n_augment=0, seed=seed, n_jobs=n_jobs, ids=ID_OFFSET["sklearn"] + second
    )
    result = evaluate(clf, F_test, labels[second][which_test])
    if base_model is not None:
        result["base_model"] = evaluate(base_model, F_test, labels[second][which_test])
    return result
