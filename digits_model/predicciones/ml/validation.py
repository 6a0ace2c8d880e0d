"""Score a classifier on digits rendered as uploads and sent through the real preprocessing.

Used by the semeion regression test and ``bench/semeion_baseline.py`` (same function, same
sample, same seeds, so the committed number and the test's number are comparable).
"""

from __future__ import annotations

import numpy as np

from .classifier import predict
from .exceptions import ImageError
from .preprocessing import preprocess
from .synth import STYLES, render


def upload_accuracy(
    clf,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    styles: tuple[str, ...] = STYLES,
) -> dict:
    """Render each image in each style, preprocess the bytes, predict, and score.

    Parameters
    ----------
    clf : fitted classifier
    images : ndarray of shape (n, 16, 16) or (n, 64)
        Digits as :func:`~predicciones.ml.synth.render` accepts them.
    labels : ndarray of shape (n,), int
    seed : int
        Seeds the renderings (style ``k`` uses ``numpy.random.default_rng([seed, k])``).
    styles : tuple of str

    Returns
    -------
    dict
        ``accuracy`` overall, ``mean_confidence``, ``n``, and ``styles``: per style its
        ``accuracy`` and ``mean_confidence``. A refused upload counts as wrong.
    """
    labels = np.asarray(labels)
    per_style, correct, confidence = {}, [], []
    for k, style in enumerate(styles):
        rng = np.random.default_rng([seed, k])
        rows, ok = [], []
        for image in images:
            try:
                rows.append(preprocess(render(image, style, rng)).features)
                ok.append(True)
            except ImageError:
                rows.append(np.zeros(64, np.uint8))
                ok.append(False)
        predicted, conf = predict(clf, np.array(rows))
        hit = (predicted == labels) & np.array(ok)
        per_style[style] = {
            "accuracy": round(float(hit.mean()), 4),
            "mean_confidence": round(float(conf.mean()), 4),
        }
        correct.append(hit)
        confidence.append(conf)
    correct, confidence = np.concatenate(correct), np.concatenate(confidence)
    return {
        "accuracy": round(float(correct.mean()), 4),
        "mean_confidence": round(float(confidence.mean()), 4),
        "n": int(correct.size),
        "styles": per_style,
    }
