"""The shipped model reads the letterforms MNIST's writers rarely use, in several styles.

Each letterform of ``ml/letterforms.py`` is drawn as pen strokes and sent as an upload
in the page's canvas style and four photographed or scanned styles, three times each with
different pens, sizes and placements; the bytes go through the real preprocessing and the
committed model. Where the model is unsure (below the confidence under which the page
offers alternatives), the right digit must still be one tap away among them.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from harness.paths import REPO_DIR
from predicciones.ml.classifier import predict_proba, ranked
from predicciones.ml.letterforms import LETTERFORMS, letterform
from predicciones.ml.preprocessing import preprocess
from predicciones.ml.synth import render

#: The styles each letterform is drawn in.
STYLES = ("canvas", "ballpoint", "scan", "photo", "marker")
#: Drawings of each letterform in each style (different pens, sizes, placements).
DRAWINGS = 3
#: The page's index.js: below this confidence it offers the alternatives.
PAGE_SCRIPT = REPO_DIR / "digits_model" / "predicciones" / "static" / "predicciones" / "index.js"


def unsure_below() -> float:
    match = re.search(r"const UNSURE_BELOW = ([0-9.]+);", PAGE_SCRIPT.read_text())
    assert match, "index.js no longer declares UNSURE_BELOW"
    return float(match.group(1))


def readings(clf, name: str) -> list[tuple[str, list[tuple[int, float]]]]:
    """(style, the three most likely digits) of every drawing of a letterform."""
    digit, trace = letterform(name)
    out = []
    for k, style in enumerate(STYLES):
        for n in range(DRAWINGS):
            data = render(trace, style, np.random.default_rng([digit, k, n]))
            proba = predict_proba(clf, preprocess(data).features)[0]
            out.append((style, ranked(proba, 3)))
    return out


@pytest.mark.parametrize("name", list(LETTERFORMS))
def test_each_letterform_is_read_in_every_style(clf, name):
    digit, _ = letterform(name)
    wrong = [(style, top) for style, top in readings(clf, name) if top[0][0] != digit]
    assert not wrong, f"{name} misread: {wrong}"


@pytest.mark.parametrize("name", list(LETTERFORMS))
def test_when_the_model_is_unsure_the_page_still_offers_the_right_digit(clf, name):
    digit, _ = letterform(name)
    threshold = unsure_below()
    for style, top in readings(clf, name):
        (best, confidence), *alternatives = top
        if confidence < threshold:
            assert digit in [best] + [d for d, _ in alternatives], (style, top)
        else:
            assert best == digit, (style, top)
