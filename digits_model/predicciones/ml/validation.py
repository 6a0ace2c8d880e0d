"""Draw digits as uploads, send them through the real preprocessing, and score a classifier.

:func:`styled_features` draws the digits (training's calibration uploads,
``bench/leave_one_out.py`` and ``experiments/compare_recipes.py``). :func:`upload_accuracy` is
used by the semeion regression test and ``experiments/semeion_baseline.py`` (same function, same
sample, same seeds, so the committed number and the test's number are comparable).
"""

from __future__ import annotations

import numpy as np

from .classifier import predict
from .exceptions import ImageError
from .parallel import parallel_map
from .preprocessing import preprocess
from .synth import STYLES, render


def styled_features(
    digits: np.ndarray,
    ids: np.ndarray,
    *,
    seed: int,
    styles: tuple[str, ...] = STYLES,
    n_jobs: int = 1,
    bitmaps: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Each digit drawn in each style and preprocessed from the image bytes, like an upload.

    Digit ``ids[i]`` in style ``k`` is drawn with ``numpy.random.default_rng([seed,
    ids[i], k])``, so a digit looks the same whatever else is drawn with it, and the result
    does not depend on ``n_jobs`` (processes drawing and reading the uploads).

    With ``bitmaps`` the 32x32 bitmaps the features are counted from are returned instead.

    Returns
    -------
    features : ndarray of shape (n, len(styles), 64), uint8 (zeros where refused)
        Or, with ``bitmaps``, of shape (n, len(styles), 32, 32), float32.
    accepted : ndarray of shape (n, len(styles)), bool
        False where the preprocessing refused the upload.
    """
    ids = np.asarray(ids)
    if n_jobs > 1 and len(digits) > 1:
        chunks = [c for c in np.array_split(np.arange(len(digits)), 8 * n_jobs) if len(c)]
        parts = parallel_map(
            styled_features,
            [
                ((digits[c], ids[c]), {"seed": seed, "styles": styles, "bitmaps": bitmaps})
                for c in chunks
            ],
            n_jobs=n_jobs,
        )
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    shape, dtype = ((32, 32), np.float32) if bitmaps else ((64,), np.uint8)
    features = np.zeros((len(digits), len(styles), *shape), dtype)
    accepted = np.zeros((len(digits), len(styles)), bool)
    for n, (digit, digit_id) in enumerate(zip(digits, ids, strict=True)):
        for k, style in enumerate(styles):
            rng = np.random.default_rng([seed, int(digit_id), k])
            try:
                done = preprocess(render(digit, style, rng))
                features[n, k] = done.bitmap if bitmaps else done.features
            except ImageError:
                continue
            accepted[n, k] = True
    return features, accepted


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
