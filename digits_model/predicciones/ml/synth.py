"""Synthetic uploads: a small digit array rendered as realistic image bytes in named styles.

Used by the notebook that makes ``test/``, the tests, ``make eval`` and the drift and
retraining tests. Everything is drawn from the given ``numpy.random.Generator``, so the
same digit, style and generator state always give the same bytes.

Styles
------
``scan``       dark ink on light paper, flatbed scanner: mild blur, little noise, JPEG.
``photo``      640x480 phone photo: small digit off-centre on tinted paper, lighting
               gradient and a shadow, blur, sensor noise, strong JPEG compression.
``mnist``      28x28 white-on-black crop, digit in a 20x20 box centred by mass, PNG.
``marker``     thick black marker on white, JPEG.
``ballpoint``  thin blue ball-point pen on white or ivory paper, JPEG.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from .augment import digit_shape
from .preprocessing import redraw_strokes

STYLES = ("scan", "photo", "mnist", "marker", "ballpoint")

#: Side of the high-resolution shape every style starts from.
SHAPE_SIZE = 160


def render(digit: np.ndarray, style: str, rng: np.random.Generator) -> bytes:
    """Render a digit as the bytes of an image file in one of :data:`STYLES`.

    Parameters
    ----------
    digit : ndarray of shape (8, 8) or (64,) with counts 0..16 (``load_digits``), or a square
        binary bitmap such as (16, 16) (semeion)
    style : str
        One of :data:`STYLES`.
    rng : numpy.random.Generator

    Returns
    -------
    bytes
        A JPEG or PNG file.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    shape = digit_shape(digit, size=SHAPE_SIZE)
    # An 8x8 grid of counts is too coarse for a centre line: a pen tracing its blobs draws
    # loops that are not there. Scans and photos of such digits keep their own strokes.
    traceable = np.asarray(digit).size > 64
    return _RENDERERS[style](shape, rng, traceable)


def stroke_shape(shape: np.ndarray, width: float) -> np.ndarray:
    """The shape's strokes redrawn ``width`` pixels wide (a pen of that size tracing it)."""
    return redraw_strokes(shape, max(1.0, width))


def _digit_height(shape: np.ndarray) -> int:
    rows = np.flatnonzero(shape.any(axis=1))
    return int(rows[-1] - rows[0] + 1)


def compose(
    shape: np.ndarray,
    canvas: tuple[int, int],
    *,
    height: float,
    centre: tuple[float, float],
    angle: float = 0.0,
    blur: float = 0.0,
) -> np.ndarray:
    """Coverage (0..1) of a canvas by a shape scaled to ``height`` px, rotated, placed.

    Parameters
    ----------
    shape : ndarray of shape (n, n), bool
    canvas : (rows, cols)
    height : float
        Height in canvas pixels that the shape's ink spans.
    centre : (row, col)
        Where the shape's centre lands on the canvas.
    angle : float
        Rotation in degrees (counter-clockwise).
    blur : float
        Gaussian blur sigma in canvas pixels (optics, ink bleeding).

    Returns
    -------
    coverage : ndarray of shape canvas, float32, values in [0, 1]
    """
    src = shape.astype(np.float32)
    scale = height / _digit_height(shape)  # canvas px per shape px
    if scale < 0.7:
        # Anti-alias before shrinking, as a camera's optics would.
        src = ndimage.gaussian_filter(src, 0.4 / scale)
    a = np.deg2rad(angle)
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    matrix = rot / scale  # canvas offset -> shape offset
    n = shape.shape[0]
    c_shape = np.array([(n - 1) / 2, (n - 1) / 2])
    offset = c_shape - matrix @ np.asarray(centre, dtype=np.float64)
    cov = ndimage.affine_transform(src, matrix, offset=offset, output_shape=canvas, order=1)
    if blur > 0:
        cov = ndimage.gaussian_filter(cov, blur)
    return np.clip(cov, 0.0, 1.0)


def _paint(coverage: np.ndarray, paper: np.ndarray, ink) -> np.ndarray:
    """Mix ink into paper by coverage. paper: (h, w) or (h, w, 3); ink: scalar or RGB."""
    ink = np.asarray(ink, dtype=np.float32)
    if paper.ndim == 3:
        coverage = coverage[..., None]
    return paper * (1 - coverage) + ink * coverage


def _encode(pixels: np.ndarray, fmt: str, **params) -> bytes:
    arr = np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **params)
    return buf.getvalue()


def _scan(shape: np.ndarray, rng: np.random.Generator, traceable: bool) -> bytes:
    height = rng.uniform(70, 200)
    margins = rng.uniform(0.25, 0.9, size=4) * height
    rows = int(height + margins[0] + margins[1])
    cols = int(height * 0.8 + margins[2] + margins[3])
    centre = (margins[0] + height / 2, margins[2] + height * 0.4)
    cov = compose(
        stroke_shape(shape, rng.uniform(6, 14)) if rng.random() < 0.5 and traceable else shape,
        (rows, cols),
        height=height,
        centre=centre,
        angle=rng.uniform(-4, 4),
        blur=rng.uniform(0.5, 1.0),
    )
    paper = rng.uniform(0.86, 0.98) + rng.normal(0, 0.012, size=(rows, cols))
    gray = _paint(cov, paper, rng.uniform(0.05, 0.3))
    return _encode(gray, "JPEG", quality=int(rng.integers(85, 96)))


def _photo(shape: np.ndarray, rng: np.random.Generator, traceable: bool) -> bytes:
    rows, cols = 480, 640
    height = rng.uniform(60, 200)
    centre = (
        rng.uniform(height * 0.7, rows - height * 0.7),
        rng.uniform(height * 0.6, cols - height * 0.6),
    )
    cov = compose(
        stroke_shape(shape, rng.uniform(7, 16)) if rng.random() < 0.6 and traceable else shape,
        (rows, cols),
        height=height,
        centre=centre,
        angle=rng.uniform(-10, 10),
        blur=rng.uniform(0.6, 1.6),
    )
    # Tinted paper under uneven light: a linear gradient in a random direction and a soft
    # shadow edge across part of the sheet.
    tint = rng.uniform(0.72, 1.0, size=3)
    tint /= tint.max()
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(direction) * xx / cols + np.sin(direction) * yy / rows + 1) / 2
    light = 1.0 - rng.uniform(0.15, 0.45) * ramp
    edge_angle = rng.uniform(0, 2 * np.pi)
    signed = np.cos(edge_angle) * (xx - cols / 2) + np.sin(edge_angle) * (yy - rows / 2)
    shadow = 1.0 - rng.uniform(0.1, 0.3) / (1 + np.exp(-(signed - rng.uniform(-200, 200)) / 40))
    level = rng.uniform(0.75, 0.95)
    paper = (level * light * shadow)[..., None] * tint
    ink = rng.choice([[0.08, 0.08, 0.1], [0.1, 0.12, 0.45], [0.2, 0.2, 0.22]])
    rgb = _paint(cov, paper, np.asarray(ink) * light.mean())
    rgb += rng.normal(0, rng.uniform(0.01, 0.035), size=rgb.shape)
    return _encode(rgb, "JPEG", quality=int(rng.integers(55, 81)))


def _mnist(shape: np.ndarray, rng: np.random.Generator, traceable: bool) -> bytes:
    shape = stroke_shape(shape, rng.uniform(14, 22))
    rows = np.flatnonzero(shape.any(axis=1))
    cols = np.flatnonzero(shape.any(axis=0))
    extent = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    height = 20.0 * (rows[-1] - rows[0] + 1) / extent
    # Place the box's centre, then shift so the centre of mass lands at (14, 14), as MNIST.
    cov = compose(shape, (28, 28), height=height, centre=(13.5, 13.5), blur=0.5)
    cy, cx = ndimage.center_of_mass(cov)
    cov = ndimage.shift(cov, (13.5 - cy, 13.5 - cx), order=1)
    return _encode(np.clip(cov * rng.uniform(0.85, 1.0), 0, 1), "PNG")


def _marker(shape: np.ndarray, rng: np.random.Generator, traceable: bool) -> bytes:
    side = int(rng.integers(220, 360))
    height = side * rng.uniform(0.5, 0.8)
    cov = compose(
        stroke_shape(shape, rng.uniform(22, 34)),
        (side, side),
        height=height,
        centre=(side / 2 + rng.uniform(-0.1, 0.1) * side, side / 2 + rng.uniform(-0.1, 0.1) * side),
        angle=rng.uniform(-6, 6),
        blur=0.8,
    )
    paper = rng.uniform(0.9, 1.0) + rng.normal(0, 0.01, size=(side, side))
    gray = _paint(cov, paper, rng.uniform(0.0, 0.12))
    return _encode(gray, "JPEG", quality=90)


def _ballpoint(shape: np.ndarray, rng: np.random.Generator, traceable: bool) -> bytes:
    side = int(rng.integers(300, 480))
    height = side * rng.uniform(0.35, 0.7)
    cov = compose(
        stroke_shape(shape, rng.uniform(2.5, 5.0)),
        (side, side),
        height=height,
        centre=(
            side / 2 + rng.uniform(-0.15, 0.15) * side,
            side / 2 + rng.uniform(-0.15, 0.15) * side,
        ),
        angle=rng.uniform(-6, 6),
        blur=0.6,
    )
    paper = np.ones((side, side, 3), dtype=np.float32) * rng.choice(
        [[1.0, 1.0, 1.0], [1.0, 0.98, 0.9]]
    )
    paper *= rng.uniform(0.9, 1.0)
    paper += rng.normal(0, 0.01, size=paper.shape)
    rgb = _paint(
        cov * rng.uniform(0.7, 1.0), paper, rng.choice([[0.1, 0.15, 0.6], [0.1, 0.1, 0.15]])
    )
    return _encode(rgb, "JPEG", quality=88)


_RENDERERS = {
    "scan": _scan,
    "photo": _photo,
    "mnist": _mnist,
    "marker": _marker,
    "ballpoint": _ballpoint,
}
