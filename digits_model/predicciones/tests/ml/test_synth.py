"""Synthetic uploads are deterministic, decodable and look like their style."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from predicciones.ml.sources import load_mnist
from predicciones.ml.synth import CONDITIONS, STYLES, render, render_condition

#: sha256 (first 16 hex digits) of ``render(load_digits[3], style, default_rng(7))``: the
#: committed baselines (semeion, drift, retraining) were made from these bytes. A change
#: of Pillow's JPEG or PNG encoder changes them too; regenerate the baselines then.
STYLE_DIGESTS = {
    "scan": "3639beaa54c9d2ba",
    "photo": "3ce0807d9d1f5c31",
    "mnist": "dc6e296648873baa",
    "marker": "a4880dd21e62eb47",
    "ballpoint": "8afcdedb72ac8f0c",
}


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


@pytest.mark.parametrize("style", STYLES)
def test_the_five_styles_draw_the_bytes_the_baselines_were_made_from(style, base_digits):
    X, _ = base_digits
    digest = hashlib.sha256(render(X[3], style, np.random.default_rng(7))).hexdigest()
    assert digest[:16] == STYLE_DIGESTS[style]


@pytest.mark.parametrize("condition", [c for c in CONDITIONS if c != "large_photo"])
def test_conditions_are_deterministic_and_come_with_a_clean_twin(condition):
    digit = load_mnist()[0][9]
    data, twin = render_condition(digit, condition, np.random.default_rng(3))
    assert render(digit, condition, np.random.default_rng(3)) == data
    assert Image.open(io.BytesIO(data)).format in ("JPEG", "PNG")
    assert twin.dtype == np.float32 and twin.ndim == 2
    assert twin.min() < 0.3 and np.median(twin) > 0.9  # dark ink on white


def test_large_photo_is_12_megapixels():
    data, _ = render_condition(load_mnist()[0][9], "large_photo", np.random.default_rng(3))
    image = Image.open(io.BytesIO(data))
    assert image.size == (4000, 3000) and image.format == "JPEG"


def test_tight_crop_touches_the_edges():
    data, _ = render_condition(load_mnist()[0][19], "tight", np.random.default_rng(0))
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float)
    ink = pixels < (pixels.max() + pixels.min()) / 2
    touched = [ink[0].any(), ink[-1].any(), ink[:, 0].any(), ink[:, -1].any()]
    assert sum(touched) >= 2
