"""Fixtures of the ML tests: the committed model, a reference digit, a drawing helper.

These tests need neither a database nor Django: they exercise ``predicciones.ml`` alone.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from predicciones.ml.classifier import load_classifier
from predicciones.ml.datasets import load_base_data
from predicciones.ml.synth import compose

MODEL_DIR = Path(__file__).resolve().parents[3] / "model"


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads((MODEL_DIR / "clf.manifest.json").read_text())


@pytest.fixture(scope="session")
def clf(manifest):
    return load_classifier((MODEL_DIR / "clf.pickle").read_bytes(), sha256=manifest["sha256"])


@pytest.fixture(scope="session")
def base_digits():
    return load_base_data()


#: Reference digits as pen strokes (polylines in a unit box, y down), as a person draws them.
STROKES = {
    2: [
        [
            (0.1, 0.25),
            (0.25, 0.07),
            (0.5, 0.02),
            (0.75, 0.07),
            (0.9, 0.25),
            (0.85, 0.42),
            (0.6, 0.62),
            (0.08, 0.97),
            (0.95, 0.97),
        ]
    ],
    3: [
        [(0.1, 0.12), (0.4, 0.02), (0.75, 0.07), (0.88, 0.24), (0.72, 0.42), (0.4, 0.48)],
        [(0.4, 0.48), (0.75, 0.55), (0.92, 0.72), (0.82, 0.9), (0.45, 0.98), (0.08, 0.88)],
    ],
    4: [[(0.62, 0.02), (0.05, 0.66), (0.95, 0.66)], [(0.66, 0.3), (0.66, 0.98)]],
    7: [[(0.08, 0.04), (0.92, 0.04), (0.4, 0.98)]],
}


def pen_shape(label: int, width: float, size: int = 160) -> np.ndarray:
    """A reference digit drawn with a round pen ``width`` px wide on a size x size canvas."""
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    box_h, box_w = 0.8 * size, 0.55 * size
    top, left = 0.1 * size, (size - box_w) / 2
    for line in STROKES[label]:
        points = [(left + x * box_w, top + y * box_h) for x, y in line]
        draw.line(points, fill=255, width=max(1, round(width)), joint="curve")
        r = width / 2
        for x, y in (points[0], points[-1]):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return np.asarray(img) > 127


def digit_coverage(
    label: int = 2,
    *,
    canvas: tuple[int, int] = (220, 180),
    height: float = 150,
    centre: tuple[float, float] | None = None,
    angle: float = 0.0,
    width: float = 10.0,
    blur: float = 0.7,
) -> np.ndarray:
    """Ink coverage (0..1) of a reference digit drawn with a pen ``width`` px (of 160)."""
    shape = pen_shape(label, width)
    if centre is None:
        centre = (canvas[0] / 2, canvas[1] / 2)
    return compose(shape, canvas, height=height, centre=centre, angle=angle, blur=blur)


def paint(coverage: np.ndarray, *, ink=0.1, paper=0.95) -> np.ndarray:
    """Mix ink into paper: scalars give grey, 3-tuples give RGB, values on 0..1."""
    ink, paper = np.asarray(ink, np.float32), np.asarray(paper, np.float32)
    if ink.ndim or paper.ndim:
        coverage = coverage[..., None]
    return paper * (1 - coverage) + ink * coverage


def encode(pixels: np.ndarray, fmt: str = "PNG", mode: str | None = None, **params) -> bytes:
    """Pixels on 0..1 (grey or RGB) -> image file bytes, optionally converted to ``mode``."""
    img = Image.fromarray(np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8))
    if mode is not None:
        img = img.convert(mode)
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()
