"""A few hundred labels of a population the base lacks teach a candidate that passes the gate.

The population: pen-tablet digits from Istanbul (pendigits' writers), drawn on the page's
canvas as a mouse or tablet draws them, which a model trained without them reads poorly.
150 of them are labelled as feedback, split by the image's hash like the service splits
feedback (``gate.in_feedback_holdout``); the candidate trains on the rest among the base
rows, and the gate judges it against the live model on the fixed base rows plus the
held-out labels. Unseen drawings of the same writers must read at least 5 points better,
and the same uploads with random labels must be refused. Quick models (a thirtieth of the
base) keep the test to a few minutes; the recipe is the shipped one.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from django.conf import settings

from predicciones.ml import sources, splits, training
from predicciones.ml.classifier import predict
from predicciones.ml.gate import evaluate_gate, in_feedback_holdout
from predicciones.ml.preprocessing import preprocess
from predicciones.ml.synth import render

#: The base without the population the feedback brings.
BASE = ("mnist", "optdigits", "sklearn", "unipen")
LABELS = 150


def drawn_on_the_canvas(index: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Features, labels and image sha256 of pendigits digits drawn on the page's canvas."""
    pen = sources.load_pendigits()
    rows, digests = [], []
    for i in index:
        data = render(pen.traces[i], "canvas", np.random.default_rng([seed, int(i)]))
        rows.append(preprocess(data).features)
        digests.append(hashlib.sha256(data).hexdigest())
    return np.array(rows, dtype=np.float64), pen.labels[index], digests


@pytest.fixture(scope="module")
def scenario():
    X, y, digests = drawn_on_the_canvas(np.arange(0, sources.N_PENDIGITS, 50)[:LABELS], 1)
    # The service's share of feedback held out to judge.
    percent = settings.DIGITS_FEEDBACK_HOLDOUT_PERCENT
    held = np.array([in_feedback_holdout(d, percent) for d in digests])
    unseen = drawn_on_the_canvas(np.arange(25, sources.N_PENDIGITS, 25)[:300], 2)[:2]
    live, _ = training.train_classifier(seed=0, quick=True, sources_=BASE, n_jobs=2)
    return X, y, held, unseen, live


def retrain_and_judge(scenario, labels):
    X, y, held, _, live = scenario
    candidate, _ = training.train_classifier(
        seed=0, quick=True, sources_=BASE, n_jobs=2, extra_X=X[~held], extra_y=labels[~held]
    )
    X_base, y_base = splits.base_validation_set(n_jobs=2)
    X_val, y_val = np.vstack([X_base, X[held]]), np.concatenate([y_base, y[held]])
    result = evaluate_gate(
        y_val,
        predict(live, X_val)[0],
        predict(candidate, X_val)[0],
        feedback=np.arange(len(y_val)) >= len(y_base),
    )
    return candidate, result


def test_150_labels_of_a_new_population_give_a_candidate_that_passes_the_gate(scenario):
    _, y, held, (X_unseen, y_unseen), live = scenario
    assert held.sum() >= 30  # enough held out to judge on them alone
    candidate, result = retrain_and_judge(scenario, y)
    before = (predict(live, X_unseen)[0] == y_unseen).mean()
    after = (predict(candidate, X_unseen)[0] == y_unseen).mean()
    print(f"held out {held.sum()} of {len(y)}; unseen {before:.3f} -> {after:.3f}; {result}")
    assert after >= before + 0.05, (before, after)
    assert result.passed and result.judged_on == "feedback", result.reasons


def test_random_labels_on_the_same_uploads_are_refused(scenario):
    _, y, _, _, _ = scenario
    noise = np.random.default_rng(7).integers(0, 10, len(y))
    _, result = retrain_and_judge(scenario, noise)
    assert not result.passed and result.reasons
