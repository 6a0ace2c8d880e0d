"""Synthetic uploads are deterministic, decodable and look like their style."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from predicciones.ml.synth import STYLES, render


@pytest.mark.parametrize("style", STYLES)
def test_same_generator_state_gives_the_same_bytes(style, base_digits):
    X, _ = base_digits
    a = render(X[3], style, np.random.default_rng(7))
    b = render(X[3], style, np.random.default_rng(7))
    assert a == b
    assert a != render(X[3], style, np.random.default_rng(8))


def test_styles_have_their_shape_and_format(base_digits):
    X, _ = base_digits
    rng = np.random.default_rng(0)
    photo = Image.open(io.BytesIO(render(X[0], "photo", rng)))
    assert photo.size == (640, 480) and photo.format == "JPEG" and photo.mode == "RGB"
    mnist = Image.open(io.BytesIO(render(X[0], "mnist", rng)))
    assert mnist.size == (28, 28) and mnist.format == "PNG"
    corners = np.asarray(mnist)[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() < 30  # white on black


def test_semeion_bitmaps_render_too():
    bitmap = np.zeros((16, 16), np.uint8)
    bitmap[2:14, 7:9] = 1
    data = render(bitmap, "scan", np.random.default_rng(0))
    assert Image.open(io.BytesIO(data)).format == "JPEG"


def test_unknown_style_is_refused(base_digits):
    X, _ = base_digits
    with pytest.raises(ValueError, match="unknown style"):
        render(X[0], "watercolour", np.random.default_rng(0))
