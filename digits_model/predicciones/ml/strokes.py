"""Digits written with a pen, as strokes: drawn the way a pen, a mouse or a tablet draws them.

A pen-written digit (UNIPEN, pendigits, a drawing on the page's canvas) is a few strokes,
each a polyline of the pen's positions while it touched the paper. :func:`draw` paints them
with a round pen of a given width (round caps and joins, as a ball-point or the canvas's
``lineCap = "round"``), each stroke on its own, the pen-up moves between them not drawn.
:func:`distort` varies the writing (slant, rotation, proportions, a wobble along the
strokes, where each stroke lands) before it is drawn, so distorted copies stay pen strokes
of one width instead of resampled pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

#: Share of the shape's side the digit's height takes in :func:`shape`.
SHAPE_FILL = 0.75
#: Supersampling of :func:`draw`: strokes are painted this many times finer, then averaged
#: (anti-aliased, as a browser's canvas and a camera's pixels are).
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Trace:
    """One digit as pen strokes.

    Attributes
    ----------
    strokes : tuple of ndarray of shape (n_points, 2), float
        Each stroke's points in writing order, (x, y) with x to the right and y **down**
        (image coordinates), in any unit: drawing scales the digit to a height.
    """

    strokes: tuple[np.ndarray, ...]

    @classmethod
    def from_points(cls, strokes, *, y_up: bool = False) -> Trace:
        """A trace from stroke point lists; ``y_up`` flips tablets' y-up coordinates."""
        parts = []
        for stroke in strokes:
            points = np.asarray(stroke, dtype=np.float64).reshape(-1, 2).copy()
            if not len(points):
                continue
            if y_up:
                points[:, 1] = -points[:, 1]
            parts.append(points)
        if not parts:
            raise ValueError("a trace needs at least one stroke with a point")
        return cls(tuple(parts))

    @property
    def points(self) -> np.ndarray:
        """Every point of every stroke, shape (n, 2)."""
        return np.concatenate(self.strokes)

    def normalised(self) -> Trace:
        """The same strokes with the digit's top-left corner at 0 and its height 1.

        A digit flatter than a fifth of its width (a dash) is scaled by its width / 5
        instead, so that no trace becomes infinitely tall.
        """
        points = self.points
        low, high = points.min(axis=0), points.max(axis=0)
        extent = high - low
        unit = max(extent[1], extent[0] / 5, 1e-9)
        return Trace(tuple((s - low) / unit for s in self.strokes))


def draw(
    trace: Trace,
    *,
    height: float,
    width: float,
    margin: float | None = None,
    supersample: int = SUPERSAMPLE,
) -> np.ndarray:
    """Ink coverage of a trace drawn ``height`` px tall with a round pen ``width`` px wide.

    Parameters
    ----------
    trace : Trace
    height : float
        Height in pixels of the pen's path (the ink is ``width`` taller).
    width : float
        The pen's diameter in pixels.
    margin : float, optional
        Paper around the ink in pixels (default: the pen's width, at least 2 px).
    supersample : int
        Painted this many times finer and averaged (1: no anti-aliasing, a binary image).

    Returns
    -------
    coverage : ndarray of shape (rows, cols), float32, values in [0, 1]
    """
    norm = trace.normalised()
    margin = max(2.0, width) if margin is None else margin
    extent = norm.points.max(axis=0) * height
    factor = supersample
    cols = int(np.ceil(extent[0] + width + 2 * margin))
    rows = int(np.ceil(extent[1] + width + 2 * margin))
    img = Image.new("L", (cols * factor, rows * factor), 0)
    pen = ImageDraw.Draw(img)
    offset = margin + width / 2
    radius = width * factor / 2
    for stroke in norm.strokes:
        xy = (stroke * height + offset) * factor
        pairs = [tuple(p) for p in xy]
        if len(pairs) > 1:
            pen.line(pairs, fill=255, width=max(1, round(width * factor)), joint="curve")
        for x, y in (pairs[0], pairs[-1]):
            pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
    coverage = np.asarray(img, dtype=np.float32) / np.float32(255)
    if factor > 1:
        coverage = coverage.reshape(rows, factor, cols, factor).mean(axis=(1, 3))
    return coverage


def shape(trace: Trace, size: int, width: float) -> np.ndarray:
    """A square binary shape of a trace, as ``augment.digit_shape`` gives for a bitmap.

    The pen's path is :data:`SHAPE_FILL` of ``size`` tall, centred, drawn with a round pen
    ``width`` px wide.

    Returns
    -------
    shape : ndarray of shape (size, size), bool
    """
    height = SHAPE_FILL * size - width
    coverage = draw(trace, height=height, width=width, margin=0.0, supersample=1) > 0.5
    out = np.zeros((size, size), dtype=bool)
    rows, cols = coverage.shape
    if cols > size:  # wider than the square: centre the middle of it
        cut = (cols - size) // 2
        coverage, cols = coverage[:, cut : cut + size], size
    top, left = (size - rows) // 2, (size - cols) // 2
    out[top : top + rows, left : left + cols] = coverage[:size]
    return out


@dataclass(frozen=True)
class PenDistortion:
    """Ranges of the random changes :func:`distort` makes to a trace (uniform in +-value).

    Attributes
    ----------
    rotation : float
        Degrees.
    shear : float
        Horizontal shift per unit of height (slant).
    scale : float
        Relative change of width and height, drawn independently (proportions change).
    wobble : float
        Amplitude of a smooth displacement along the strokes, as a share of the height.
    shift : float
        How far each stroke after the first lands from where it was (a 7's bar, a 4's
        stem), as a share of the height.
    """

    rotation: float = 12.0
    shear: float = 0.3
    scale: float = 0.15
    wobble: float = 0.03
    shift: float = 0.04


def distort(trace: Trace, rng: np.random.Generator, d: PenDistortion = PenDistortion()) -> Trace:
    """The same digit written a little differently: a new trace, strokes still strokes.

    Parameters
    ----------
    trace : Trace
    rng : numpy.random.Generator
    d : PenDistortion

    Returns
    -------
    Trace
        In the units of ``trace.normalised()`` (height about 1).
    """
    norm = trace.normalised()
    centre = norm.points.mean(axis=0)
    angle = np.deg2rad(rng.uniform(-d.rotation, d.rotation))
    shear = rng.uniform(-d.shear, d.shear)
    sx, sy = 1 + rng.uniform(-d.scale, d.scale, size=2)
    # y points down: a positive shear leans the top to the right, as a right-handed slant.
    forward = (
        np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        @ np.array([[1.0, -shear], [0.0, 1.0]])
        @ np.diag([sx, sy])
    )
    # A smooth wobble: displacements on a 4x4 grid over the digit's box, interpolated.
    grid = rng.standard_normal((2, 4, 4)) * d.wobble
    extent = np.maximum(norm.points.max(axis=0), 1e-9)
    strokes = []
    for k, stroke in enumerate(norm.strokes):
        at = (stroke / extent * 3).T[::-1]  # (row, col) on the 4x4 grid
        moved = stroke + np.column_stack(
            [ndimage.map_coordinates(grid[j], at, order=1, mode="nearest") for j in range(2)]
        )
        if k:
            moved = moved + rng.uniform(-d.shift, d.shift, size=2)
        strokes.append((moved - centre) @ forward.T + centre)
    return Trace(tuple(strokes))


#: Digits :func:`continental` knows a continental form of.
CONTINENTAL = (0, 1, 7)


def continental(trace: Trace, label: int, rng: np.random.Generator) -> Trace:
    """The digit in the form many European writers give it, from the writer's own strokes.

    - a 1 gets a long flag (three tenths to seven tenths of its height, 25 to 60 degrees from
      its stem) in place of whatever led up to its top, and one time in three a foot;
    - a 7 gets a bar across its stem, a little below the middle;
    - a 0 gets a slash from its top right to its bottom left, past its outline.

    Other digits are returned unchanged.

    Parameters
    ----------
    trace : Trace
    label : int
    rng : numpy.random.Generator

    Returns
    -------
    Trace
        In the units of ``trace.normalised()`` (height 1).
    """
    if label not in CONTINENTAL:
        return trace
    norm = trace.normalised()
    points = norm.points
    low, high = points.min(axis=0), points.max(axis=0)
    width = high[0] - low[0]
    parts = list(norm.strokes)
    if label == 1:
        k = int(np.argmin([s[:, 1].min() for s in parts]))
        stroke = parts[k]
        top = int(np.argmin(stroke[:, 1]))
        length = rng.uniform(0.3, 0.7)
        angle = np.deg2rad(rng.uniform(25, 60))
        start = stroke[top] + length * np.array([-np.sin(angle), np.cos(angle)])
        parts[k] = np.vstack([start, stroke[top:]])
        if rng.random() < 1 / 3:
            bottom = parts[k][np.argmax(parts[k][:, 1])]
            half = rng.uniform(0.15, 0.3)
            parts.append(np.array([[bottom[0] - half, bottom[1]], [bottom[0] + half, bottom[1]]]))
    elif label == 7:
        y = rng.uniform(0.45, 0.62)
        # Where the stem crosses that height: the stroke point nearest to it below the top.
        stem = min(parts, key=lambda s: np.abs(s[:, 1] - y).min())
        x = stem[np.argmin(np.abs(stem[:, 1] - y)), 0]
        half = max(0.12, rng.uniform(0.25, 0.45) * max(width, 0.4))
        parts.append(np.array([[x - half, y], [x + half, y]]))
    else:
        over = rng.uniform(0.02, 0.12, size=2)
        parts.append(np.array([[high[0] + over[0], -over[1]], [low[0] - over[0], 1.0 + over[1]]]))
    return Trace(tuple(parts))
