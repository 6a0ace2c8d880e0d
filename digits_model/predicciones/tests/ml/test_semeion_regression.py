"""Regression guard on handwriting by other writers (semeion, validation only).

A fixed sample of semeion digits is rendered in every upload style, preprocessed and
classified by the committed model; the accuracy may not fall more than two points below
the number committed with the model (``model/clf.semeion.json``, written by
``experiments/semeion_baseline.py``).
"""

from __future__ import annotations

import json

import pytest

from predicciones.ml.datasets import load_semeion
from predicciones.ml.validation import upload_accuracy

from .conftest import MODEL_DIR

MAX_DROP = 0.02


@pytest.fixture(scope="module")
def baseline():
    return json.loads((MODEL_DIR / "clf.semeion.json").read_text())


def test_baseline_belongs_to_the_committed_model(baseline, manifest):
    assert baseline["sha256"] == manifest["sha256"], "re-run experiments/semeion_baseline.py"


def test_semeion_accuracy_does_not_regress(clf, baseline):
    try:
        images, labels = load_semeion()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    step, seed = baseline["sample_step"], baseline["seed"]
    result = upload_accuracy(clf, images[::step], labels[::step], seed=seed)
    assert result["accuracy"] >= baseline["accuracy"] - MAX_DROP, result
    for style, score in result["styles"].items():
        assert score["accuracy"] >= baseline["styles"][style]["accuracy"] - 2 * MAX_DROP, style
