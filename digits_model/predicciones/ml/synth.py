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

Drawn
-----
``canvas``     drawn on the page's drawing pad (``static/predicciones/index.js``) with a
               mouse, a finger or a tablet's pen: black strokes 18 px wide with round caps
               and joins on a white 280x280 canvas, anti-aliased, sent as an RGBA PNG.

Pen strokes (:class:`~predicciones.ml.strokes.Trace`) are drawn with a round pen, each
stroke on its own, and then pictured in any style or condition like any other digit.

Conditions
----------
Harder uploads, as people really make them (:data:`CONDITIONS`); for each,
:func:`render_condition` also returns the digit's *clean twin*, the same strokes at the same
angle drawn plainly, so that what a condition costs the preprocessing can be measured.

``tight``        cropped to the digit: strokes touch (or are cut by) the picture's edges.
``ruled``        notebook paper with printed lines (light blue or grey, sometimes a red
                 margin) through and around the digit, scanned or photographed.
``squared``      squared (graph) notebook paper, lines both ways.
``pencil``       faint, grainy graphite on textured paper, low contrast.
``large_photo``  a 12 MP (4000x3000) phone photo holding a digit about 100 px tall.
``jpeg_q10``     heavy JPEG compression (quality about 10): blocky but readable.
``tilted``       the whole photo turned by up to 20 degrees: the page's edges and the table
                 show in the corners.
``blurred``      an out-of-focus phone photo: Gaussian blur of several pixels.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from . import strokes
from .augment import digit_shape
from .normalisation import redraw_strokes

STYLES = ("scan", "photo", "mnist", "marker", "ballpoint")
#: Drawn on the page itself rather than photographed or scanned.
DRAWN_STYLES = ("canvas",)
#: The styles pen-written digits are read in: the five, and the page's canvas.
PEN_STYLES = STYLES + DRAWN_STYLES
CONDITIONS = (
    "tight",
    "ruled",
    "squared",
    "pencil",
    "large_photo",
    "jpeg_q10",
    "tilted",
    "blurred",
)

#: Side of the high-resolution shape every style starts from.
SHAPE_SIZE = 160
#: The page's drawing pad: its side and its pen's width, in pixels (``index.js``).
CANVAS_SIDE, CANVAS_PEN = 280, 18
#: Width of the pen a trace is first drawn with, as a share of the digit's height: the
#: writer's own pen, which the styles that trace the strokes redraw at theirs.
TRACE_PEN = (0.03, 0.1)


def render(digit: np.ndarray, style: str, rng: np.random.Generator) -> bytes:
    """Render a digit as the bytes of an image file in one of :data:`STYLES`.

    Parameters
    ----------
    digit : ndarray of shape (8, 8) or (64,) with counts 0..16 (``load_digits``), a square
        binary bitmap such as (16, 16) (semeion), a square grey image with ink high
        (MNIST's (28, 28) uint8), or a :class:`~predicciones.ml.strokes.Trace`
    style : str
        One of :data:`STYLES`, :data:`DRAWN_STYLES` or :data:`CONDITIONS`.
    rng : numpy.random.Generator

    Returns
    -------
    bytes
        A JPEG or PNG file.
    """
    if style in CONDITIONS:
        return render_condition(digit, style, rng)[0]
    if style not in _RENDERERS:
        names = ", ".join(PEN_STYLES + CONDITIONS)
        raise ValueError(f"unknown style {style!r}; expected one of {names}")
    shape, traceable = _shape(digit, rng)
    return _RENDERERS[style](shape, rng, traceable)


def _shape(digit, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """The digit's high-resolution shape, and whether a pen may trace its strokes."""
    if isinstance(digit, strokes.Trace):
        width = rng.uniform(*TRACE_PEN) * strokes.SHAPE_FILL * SHAPE_SIZE
        return strokes.shape(digit, SHAPE_SIZE, width), True
    # An 8x8 grid of counts is too coarse for a centre line: a pen tracing its blobs draws
    # loops that are not there. Scans and photos of such digits keep their own strokes.
    return digit_shape(digit, size=SHAPE_SIZE), np.asarray(digit).size > 64


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
    drawn = _pen(shape, rng, traceable, (6, 14), p=0.5, coin_first=True)
    angle = rng.uniform(-4, 4)
    cov = compose(
        drawn, (rows, cols), height=height, centre=centre, angle=angle, blur=rng.uniform(0.5, 1.0)
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
    drawn = _pen(shape, rng, traceable, (7, 16), p=0.6, coin_first=True)
    angle = rng.uniform(-10, 10)
    cov = compose(
        drawn, (rows, cols), height=height, centre=centre, angle=angle, blur=rng.uniform(0.6, 1.6)
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


def _pen_on_square(shape, rng, side, height, *, pen, jitter, tilt, blur):
    """The shape redrawn with a pen of a width in ``pen`` on a square page of ``side``, its
    centre up to ``jitter`` of the side off the middle each way, tilted up to ``tilt``
    degrees."""
    drawn = stroke_shape(shape, rng.uniform(*pen))
    centre = (
        side / 2 + rng.uniform(-jitter, jitter) * side,
        side / 2 + rng.uniform(-jitter, jitter) * side,
    )
    angle = rng.uniform(-tilt, tilt)
    return compose(drawn, (side, side), height=height, centre=centre, angle=angle, blur=blur)


def _marker(shape: np.ndarray, rng: np.random.Generator, traceable: bool) -> bytes:
    side = int(rng.integers(220, 360))
    height = side * rng.uniform(0.5, 0.8)
    cov = _pen_on_square(shape, rng, side, height, pen=(22, 34), jitter=0.1, tilt=6, blur=0.8)
    paper = rng.uniform(0.9, 1.0) + rng.normal(0, 0.01, size=(side, side))
    gray = _paint(cov, paper, rng.uniform(0.0, 0.12))
    return _encode(gray, "JPEG", quality=90)


def _ballpoint(shape: np.ndarray, rng: np.random.Generator, traceable: bool) -> bytes:
    side = int(rng.integers(300, 480))
    height = side * rng.uniform(0.35, 0.7)
    cov = _pen_on_square(shape, rng, side, height, pen=(2.5, 5.0), jitter=0.15, tilt=6, blur=0.6)
    paper = np.ones((side, side, 3), dtype=np.float32) * rng.choice(
        [[1.0, 1.0, 1.0], [1.0, 0.98, 0.9]]
    )
    paper *= rng.uniform(0.9, 1.0)
    paper += rng.normal(0, 0.01, size=paper.shape)
    rgb = _paint(
        cov * rng.uniform(0.7, 1.0), paper, rng.choice([[0.1, 0.15, 0.6], [0.1, 0.1, 0.15]])
    )
    return _encode(rgb, "JPEG", quality=88)


def _canvas(shape: np.ndarray, rng: np.random.Generator, traceable: bool) -> bytes:
    side = CANVAS_SIDE
    # People draw the digit over a good part of the pad, not always in its middle.
    height = side * rng.uniform(0.4, 0.85)
    room = (side - height) / 2
    centre = (side / 2 + rng.uniform(-0.8, 0.8) * room, side / 2 + rng.uniform(-0.5, 0.5) * room)
    if traceable:
        shape = stroke_shape(shape, CANVAS_PEN * _digit_height(shape) / height)
    cov = compose(shape, (side, side), height=height, centre=centre)
    rgba = np.ones((side, side, 4), np.float32)
    rgba[..., :3] = _paint(cov, rgba[..., :3], 0.0)
    return _encode(rgba, "PNG")


_RENDERERS = {
    "scan": _scan,
    "photo": _photo,
    "mnist": _mnist,
    "marker": _marker,
    "ballpoint": _ballpoint,
    "canvas": _canvas,
}


# --- Conditions: uploads as people really make them -------------------------------------------

#: Height, in pixels, of the digit in its clean twin (:func:`clean_twin`).
TWIN_HEIGHT = 96


def render_condition(
    digit: np.ndarray, condition: str, rng: np.random.Generator
) -> tuple[bytes, np.ndarray]:
    """Render a digit in one of :data:`CONDITIONS`, with its clean twin.

    ``render(digit, condition, rng)`` gives the same bytes for the same generator state.

    Parameters
    ----------
    digit : ndarray
        As :func:`render` accepts it.
    condition : str
        One of :data:`CONDITIONS`.
    rng : numpy.random.Generator

    Returns
    -------
    data : bytes
        A JPEG or PNG file.
    twin : ndarray of shape (h, w), float32, values in [0, 1]
        The same strokes at the same angle, dark ink on white, with nothing else
        (:func:`clean_twin`): the upload's features should be close to the twin's.
    """
    if condition not in CONDITIONS:
        raise ValueError(
            f"unknown condition {condition!r}; expected one of {', '.join(CONDITIONS)}"
        )
    shape, traceable = _shape(digit, rng)
    data, drawn, angle = _CONDITION_RENDERERS[condition](shape, rng, traceable)
    return data, clean_twin(drawn, angle)


def clean_twin(shape: np.ndarray, angle: float = 0.0) -> np.ndarray:
    """A shape drawn plainly: :data:`TWIN_HEIGHT` px tall, turned by ``angle``, no noise.

    Parameters
    ----------
    shape : ndarray of shape (n, n), bool
    angle : float
        Degrees, counter-clockwise (as :func:`compose`).

    Returns
    -------
    gray : ndarray of shape (side, side), float32, values in [0, 1] (0 black, 1 white)
    """
    side = int(TWIN_HEIGHT * 1.6)
    cov = compose(
        shape, (side, side), height=TWIN_HEIGHT, centre=((side - 1) / 2,) * 2, angle=angle, blur=0.7
    )
    return (0.95 - 0.85 * cov).astype(np.float32)


def _pen(
    shape, rng, traceable, widths: tuple[float, float], p: float = 0.6, *, coin_first=False
) -> np.ndarray:
    """The writer's own strokes, or (with probability ``p``) a pen of a width in ``widths``.

    With ``coin_first`` the coin is tossed even for a shape that cannot be traced, as the
    scan and photo styles always have: their later draws, and so every picture they make,
    depend on it.
    """
    if (rng.random() < p and traceable) if coin_first else (traceable and rng.random() < p):
        return stroke_shape(shape, rng.uniform(*widths))
    return shape


def _lit_paper(rows: int, cols: int, rng: np.random.Generator, *, tint: float = 0.8):
    """Tinted paper under light that falls off in one direction: RGB (rows, cols, 3), light."""
    colour = rng.uniform(tint, 1.0, size=3)
    colour /= colour.max()
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(direction) * xx / cols + np.sin(direction) * yy / rows + 1) / 2
    light = (1.0 - rng.uniform(0.05, 0.35) * ramp) * rng.uniform(0.8, 0.97)
    return light[..., None] * colour.astype(np.float32), light


def _noisy(pixels: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    return pixels + rng.normal(0, sigma, size=pixels.shape).astype(np.float32)


def _lines(distance: np.ndarray, spacing: float, width: float, offset: float) -> np.ndarray:
    """Coverage of parallel lines ``width`` px wide, ``spacing`` apart (anti-aliased)."""
    r = np.mod(distance - offset, spacing)
    return np.clip(width / 2 + 0.5 - np.minimum(r, spacing - r), 0.0, 1.0)


def _tight(shape, rng, traceable):
    drawn = _pen(shape, rng, traceable, (6, 16))
    height = rng.uniform(50, 220)
    angle = rng.uniform(-5, 5)
    side = int(height * 1.8)
    cov = compose(
        drawn,
        (side, side),
        height=height,
        centre=(side / 2, side / 2),
        angle=angle,
        blur=rng.uniform(0.5, 1.0),
    )
    rows = np.flatnonzero(cov.max(axis=1) > 0.5)
    cols = np.flatnonzero(cov.max(axis=0) > 0.5)
    # Each side cut at the ink's extent, give or take a few per cent of the digit's height
    # (a negative margin cuts into the strokes).
    m = np.rint(rng.uniform(-0.03, 0.015, size=4) * height).astype(int)
    cov = cov[
        max(0, rows[0] - m[0]) : min(side, rows[-1] + 1 + m[1]),
        max(0, cols[0] - m[2]) : min(side, cols[-1] + 1 + m[3]),
    ]
    if rng.random() < 0.5:
        paper = rng.uniform(0.8, 0.98) + np.zeros(cov.shape, np.float32)
        pixels = _paint(cov, paper, rng.uniform(0.05, 0.35))
    else:
        paper, light = _lit_paper(*cov.shape, rng)
        ink = rng.choice([[0.08, 0.08, 0.1], [0.1, 0.12, 0.5]])
        pixels = _paint(cov, paper, np.asarray(ink) * light.mean())
    pixels = _noisy(pixels, rng, rng.uniform(0.005, 0.02))
    if rng.random() < 0.5:
        return _encode(pixels, "PNG"), drawn, angle
    return _encode(pixels, "JPEG", quality=int(rng.integers(75, 96))), drawn, angle


def _notebook(shape, rng, traceable, squared: bool):
    drawn = _pen(shape, rng, traceable, (5, 14), p=0.8)
    height = rng.uniform(60, 180)
    rows, cols = (int(height * f) for f in rng.uniform(1.8, 3.2, size=2))
    angle = rng.uniform(-4, 4)
    centre = (rows * rng.uniform(0.35, 0.65), cols * rng.uniform(0.35, 0.65))
    cov = compose(
        drawn, (rows, cols), height=height, centre=centre, angle=angle, blur=rng.uniform(0.5, 1.2)
    )
    # The writer's digit spans about two ruled lines or three to four squares.
    spacing = height * (rng.uniform(0.25, 0.45) if squared else rng.uniform(0.4, 0.7))
    width = max(1.0, spacing * rng.uniform(0.02, 0.06))
    tilt = np.deg2rad(rng.uniform(-2, 2))  # the page sits nearly square in the picture
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    lines = _lines(yy * np.cos(tilt) - xx * np.sin(tilt), spacing, width, rng.uniform(0, spacing))
    if squared:
        across = xx * np.cos(tilt) + yy * np.sin(tilt)
        lines = np.maximum(lines, _lines(across, spacing, width, rng.uniform(0, spacing)))
    if rng.random() < 0.6:
        colour = rng.uniform([0.5, 0.65, 0.88], [0.75, 0.85, 1.0])  # light blue
    else:
        colour = np.full(3, rng.uniform(0.55, 0.8))  # grey
    if rng.random() < 0.5:  # photographed
        paper, light = _lit_paper(rows, cols, rng, tint=0.85)
        quality, noise = int(rng.integers(60, 86)), rng.uniform(0.01, 0.03)
    else:  # scanned
        light = np.full((rows, cols), rng.uniform(0.9, 1.0), np.float32)
        paper = np.repeat(light[..., None], 3, axis=2)
        quality, noise = int(rng.integers(85, 96)), rng.uniform(0.005, 0.015)
    paper = _paint(lines, paper, colour * float(light.mean()))
    if not squared and rng.random() < 0.3:  # the red margin line
        margin = _lines(xx, 10 * cols, rng.uniform(1.5, 3.0), cols * rng.uniform(0.05, 0.4))
        paper = _paint(margin, paper, np.array([0.9, 0.45, 0.5]) * float(light.mean()))
    ink = rng.choice([[0.1, 0.15, 0.55], [0.08, 0.08, 0.1], [0.2, 0.2, 0.25]])
    rgb = _noisy(_paint(cov, paper, np.asarray(ink) * float(light.mean())), rng, noise)
    return _encode(rgb, "JPEG", quality=quality), drawn, angle


def _ruled(shape, rng, traceable):
    return _notebook(shape, rng, traceable, squared=False)


def _squared(shape, rng, traceable):
    return _notebook(shape, rng, traceable, squared=True)


def _near_middle(drawn, size, rng, *, height, angle, blur):
    """The digit's coverage on a page of ``size``, its centre within the middle fifth each
    way, blurred by a width drawn from the range ``blur``."""
    rows, cols = size
    centre = (rows * rng.uniform(0.4, 0.6), cols * rng.uniform(0.4, 0.6))
    return compose(drawn, size, height=height, centre=centre, angle=angle, blur=rng.uniform(*blur))


def _pencil(shape, rng, traceable):
    drawn = _pen(shape, rng, traceable, (4, 10), p=0.8)
    height = rng.uniform(70, 200)
    rows, cols = (int(height * f) for f in rng.uniform(1.4, 2.2, size=2))
    angle = rng.uniform(-5, 5)
    cov = _near_middle(drawn, (rows, cols), rng, height=height, angle=angle, blur=(0.5, 0.9))
    # Graphite catches on the paper's tooth: the stroke is broken into grains.
    tooth = ndimage.gaussian_filter(rng.standard_normal((rows, cols)).astype(np.float32), 0.8)
    tooth /= tooth.std()
    cov = cov * np.clip(rng.uniform(0.6, 0.85) + 0.25 * tooth, 0.0, 1.0)
    texture = ndimage.gaussian_filter(rng.standard_normal((rows, cols)).astype(np.float32), 1.5)
    paper = rng.uniform(0.86, 0.98) + rng.uniform(0.01, 0.03) * texture / texture.std()
    gray = _noisy(paper - rng.uniform(0.15, 0.35) * cov, rng, 0.008)
    if rng.random() < 0.5:
        return _encode(gray, "JPEG", quality=int(rng.integers(85, 96))), drawn, angle
    warm = np.array([1.0, 0.97, 0.9], np.float32)  # a photo of it under warm light
    return _encode(gray[..., None] * warm, "JPEG", quality=int(rng.integers(70, 90))), drawn, angle


def _large_photo(shape, rng, traceable):
    rows, cols = 3000, 4000
    drawn = _pen(shape, rng, traceable, (6, 16), p=0.7)
    height = rng.uniform(80, 130)
    angle = rng.uniform(-8, 8)
    cy, cx = rng.uniform(300, rows - 300), rng.uniform(300, cols - 300)
    # 12 MP are drawn in 8-bit: light and tint on a coarse grid, enlarged, the digit in its
    # own patch, and the sensor's noise added to all three channels at once.
    small, light = _lit_paper(rows // 8, cols // 8, rng)
    small8 = np.clip(np.rint(small * 255), 0, 255).astype(np.uint8)
    rgb = np.array(Image.fromarray(small8).resize((cols, rows), Image.Resampling.BILINEAR))
    half = int(height)
    r0, c0 = int(cy) - half, int(cx) - half
    cov = compose(
        drawn,
        (2 * half, 2 * half),
        height=height,
        centre=(cy - r0, cx - c0),
        angle=angle,
        blur=rng.uniform(0.8, 1.5),
    )
    ink = rng.choice([[0.08, 0.08, 0.1], [0.1, 0.12, 0.5]]) * float(light.mean())
    window = (slice(r0, r0 + 2 * half), slice(c0, c0 + 2 * half))
    patch = _paint(cov, rgb[window] * np.float32(1 / 255), ink)
    rgb[window] = np.clip(np.rint(patch * 255), 0, 255).astype(np.uint8)
    noise = rng.integers(-1, 2, size=(rows, cols), dtype=np.int16) * np.int16(rng.integers(2, 6))
    rgb = np.clip(rgb + noise[..., None], 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=int(rng.integers(85, 93)))
    return buf.getvalue(), drawn, angle


def _jpeg_q10(shape, rng, traceable):
    drawn = _pen(shape, rng, traceable, (7, 16))
    side = int(rng.integers(150, 400))
    height = side * rng.uniform(0.5, 0.8)
    angle = rng.uniform(-5, 5)
    cov = _near_middle(drawn, (side, side), rng, height=height, angle=angle, blur=(0.5, 1.0))
    paper, light = _lit_paper(side, side, rng)
    ink = rng.choice([[0.08, 0.08, 0.1], [0.1, 0.12, 0.5], [0.25, 0.25, 0.28]])
    rgb = _noisy(_paint(cov, paper, np.asarray(ink) * float(light.mean())), rng, 0.015)
    if rng.random() < 0.4:
        rgb = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return _encode(rgb, "JPEG", quality=int(rng.integers(8, 13))), drawn, angle


def _tilted(shape, rng, traceable):
    rows, cols = (480, 640) if rng.random() < 0.7 else (640, 480)
    drawn = _pen(shape, rng, traceable, (6, 16))
    angle = rng.uniform(-20, 20)
    height = rng.uniform(90, 200)
    centre = (rows * rng.uniform(0.4, 0.6), cols * rng.uniform(0.4, 0.6))
    cov = compose(
        drawn, (rows, cols), height=height, centre=centre, angle=angle, blur=rng.uniform(0.6, 1.2)
    )
    # The page, turned with the digit, about as large as the picture: the table shows
    # in the corners (and along a side when the page is smaller than the picture).
    a = np.deg2rad(angle)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    py, px = rows / 2 + rng.uniform(-0.05, 0.05) * rows, cols / 2 + rng.uniform(-0.05, 0.05) * cols
    along = np.cos(a) * (yy - py) + np.sin(a) * (xx - px)
    across = -np.sin(a) * (yy - py) + np.cos(a) * (xx - px)
    half_h, half_w = rows / 2 * rng.uniform(0.85, 1.15), cols / 2 * rng.uniform(0.85, 1.15)
    page = np.clip(half_h + 0.5 - np.abs(along), 0, 1) * np.clip(
        half_w + 0.5 - np.abs(across), 0, 1
    )
    paper, light = _lit_paper(rows, cols, rng)
    table = rng.uniform([0.15, 0.1, 0.05], [0.55, 0.45, 0.35]) * light[..., None]
    scene = _paint(page, table.astype(np.float32), 0.0) + paper * page[..., None]
    ink = rng.choice([[0.08, 0.08, 0.1], [0.1, 0.12, 0.5]]) * float(light.mean())
    rgb = _noisy(_paint(cov, scene, ink), rng, rng.uniform(0.01, 0.025))
    return _encode(rgb, "JPEG", quality=int(rng.integers(70, 91))), drawn, angle


def _blurred(shape, rng, traceable):
    rows, cols = (480, 640) if rng.random() < 0.7 else (640, 480)
    drawn = _pen(shape, rng, traceable, (8, 16))
    height = rng.uniform(80, 220)
    angle = rng.uniform(-6, 6)
    cov = compose(
        drawn,
        (rows, cols),
        height=height,
        centre=(
            rng.uniform(height * 0.7, rows - height * 0.7),
            rng.uniform(height * 0.6, cols - height * 0.6),
        ),
        angle=angle,
        blur=height * rng.uniform(0.025, 0.05),  # out of focus: several pixels
    )
    paper, light = _lit_paper(rows, cols, rng)
    ink = rng.choice([[0.08, 0.08, 0.1], [0.1, 0.12, 0.5]]) * float(light.mean())
    rgb = _noisy(_paint(cov, paper, ink), rng, rng.uniform(0.01, 0.03))
    return _encode(rgb, "JPEG", quality=int(rng.integers(70, 91))), drawn, angle


_CONDITION_RENDERERS = {
    "tight": _tight,
    "ruled": _ruled,
    "squared": _squared,
    "pencil": _pencil,
    "large_photo": _large_photo,
    "jpeg_q10": _jpeg_q10,
    "tilted": _tilted,
    "blurred": _blurred,
}
