"""Training images of every source's digits, sent through the same preprocessing.

Train/serve parity: the model never sees a raw ``load_digits`` row. Each row is turned back
into an approximate 32x32 bitmap (:func:`reconstruct_bitmap`), drawn as a smooth shape,
optionally distorted (rotation, shear, scale, stroke width, elastic warp), rendered as a
greyscale picture and passed through :func:`~predicciones.ml.preprocessing.preprocess`,
exactly like an upload. Pen strokes (:class:`~predicciones.ml.strokes.Trace`) are
distorted as strokes and drawn with a round pen of a random width at a random size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from . import strokes
from .exceptions import NoDigitError
from .normalisation import redraw_strokes
from .parallel import parallel_map
from .preprocessing import preprocess


@dataclass(frozen=True)
class Distortion:
    """Ranges of the random distortions (uniform in +-value unless said otherwise).

    Attributes
    ----------
    rotation : float
        Degrees.
    shear : float
        Horizontal shift per unit of height.
    scale : float
        Relative change of width and height, drawn independently (aspect ratio changes).
    width : float
        Stroke width change, as a share of the digit's height (negative thins).
    elastic : float
        Elastic displacement amplitude, as a share of the digit's height.
    min_height, max_height : int
        Range of the digit's height in pixels in the rendered picture (resolution effects).
    trace : float
        Probability that a distorted copy is redrawn by a round pen tracing its skeleton
        (how a ball-point, a marker or a drawing on the page makes a digit), at a width
        drawn uniformly in ``trace_width`` (shares of the digit's height).
    trace_width : tuple of float
    blur : float
        Largest Gaussian blur sigma, in pixels of the rendered picture (drawn uniformly).
    stroke_shift : float
        Pen strokes only: how far each stroke after the first may land from where it was
        written, as a share of the height (:class:`~predicciones.ml.strokes.PenDistortion`).
    continental : float
        Pen strokes only: probability that a copy of a 0, 1 or 7 is first given the form
        many European writers use (:func:`~predicciones.ml.strokes.continental`: a slashed
        0, a 1 with a long flag, a crossed 7).
    """

    rotation: float = 12.0
    shear: float = 0.3
    scale: float = 0.15
    width: float = 0.05
    elastic: float = 0.025
    min_height: int = 18
    max_height: int = 72
    trace: float = 0.0
    trace_width: tuple[float, float] = (0.04, 0.2)
    blur: float = 0.8
    stroke_shift: float = 0.04
    continental: float = 0.0

    def pen(self) -> strokes.PenDistortion:
        """The same ranges for pen strokes (the elastic warp becomes a wobble)."""
        return strokes.PenDistortion(
            rotation=self.rotation,
            shear=self.shear,
            scale=self.scale,
            wobble=self.elastic,
            shift=self.stroke_shift,
        )


#: The distortions' defaults (training widens rotation and blur:
#: ``recipe.TRAINING_DISTORTION``).
DEFAULT_DISTORTION = Distortion()
#: A pen-written digit's clean picture: its height in pixels and its pen's width (a share
#: of the height).
CLEAN_PEN_HEIGHT, CLEAN_PEN_WIDTH = 40, 0.08


def reconstruct_bitmap(features: np.ndarray) -> np.ndarray:
    """An approximate 32x32 binary bitmap whose 4x4 block counts are the given features.

    In each block the ``count`` pixels that a smooth (bilinear) upsampling of the grid rates
    darkest are switched on, so the blocks' counts are reproduced exactly and the strokes
    run smoothly across blocks.

    Parameters
    ----------
    features : array-like of shape (64,) or (8, 8), values 0..16

    Returns
    -------
    bitmap : ndarray of shape (32, 32), bool
    """
    grid = np.clip(np.rint(np.asarray(features, dtype=np.float64).reshape(8, 8)), 0, 16)
    padded = np.pad(grid, 1, mode="constant")
    # Bilinear upsampling of block centres: the 4 pixels of a block sit at +-1/8, +-3/8.
    smooth = ndimage.zoom(padded, 4, order=1, grid_mode=True, mode="grid-constant")[4:-4, 4:-4]
    blocks = smooth.reshape(8, 4, 8, 4).transpose(0, 2, 1, 3).reshape(8, 8, 16)
    ranks = np.argsort(np.argsort(-blocks, axis=2, kind="stable"), axis=2, kind="stable")
    on = ranks < grid[..., None]
    return on.reshape(8, 8, 4, 4).transpose(0, 2, 1, 3).reshape(32, 32)


def digit_shape(digit: np.ndarray, size: int = 128) -> np.ndarray:
    """A smooth, high-resolution binary shape of a digit given as a small array.

    Parameters
    ----------
    digit : ndarray of shape (8, 8) or (64,) with counts 0..16 (``load_digits``), a square
        binary bitmap such as (16, 16) (semeion) or (32, 32) (optdigits), or a square grey
        image with ink high, on 0..1 or 0..255 (MNIST's (28, 28) uint8)
    size : int
        Side of the returned shape.

    Returns
    -------
    shape : ndarray of shape (size, size), bool
    """
    digit = np.asarray(digit)
    if digit.size == 64:
        bitmap = reconstruct_bitmap(digit)
    elif digit.ndim == 2 and digit.shape[0] == digit.shape[1]:
        bitmap = np.asarray(digit, dtype=np.float32)
        if bitmap.max() > 1:
            bitmap = bitmap / np.float32(255)
    else:
        raise ValueError(f"expected an 8x8 grid or a square bitmap, got shape {digit.shape}")
    n = bitmap.shape[0]
    zoomed = ndimage.zoom(
        np.asarray(bitmap, dtype=np.float32),
        size / n,
        order=1,
        grid_mode=True,
        mode="grid-constant",
    )
    smooth = ndimage.gaussian_filter(zoomed, sigma=0.45 * size / n)
    return smooth > 0.5


def distort(shape: np.ndarray, rng: np.random.Generator, d: Distortion) -> np.ndarray:
    """Randomly rotate, shear, rescale, warp and thicken/thin a binary shape.

    Parameters
    ----------
    shape : ndarray of shape (n, n), bool
    rng : numpy.random.Generator
    d : Distortion

    Returns
    -------
    shape : ndarray of shape (m, m), bool
        A padded canvas holding the distorted shape.
    """
    n = shape.shape[0]
    pad = n // 4
    canvas = np.pad(shape, pad).astype(np.float32)
    m = canvas.shape[0]
    angle = np.deg2rad(rng.uniform(-d.rotation, d.rotation))
    shear = rng.uniform(-d.shear, d.shear)
    sy, sx = 1 + rng.uniform(-d.scale, d.scale, size=2)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    forward = rot @ np.array([[1.0, 0.0], [shear, 1.0]]) @ np.diag([sy, sx])
    inverse = np.linalg.inv(forward)
    centre = np.array([(m - 1) / 2, (m - 1) / 2])
    coords = np.indices((m, m), dtype=np.float64).reshape(2, -1)
    src = inverse @ (coords - centre[:, None]) + centre[:, None]
    if d.elastic > 0:
        amp = d.elastic * n
        for axis in range(2):
            # A smooth random field: a 5x5 grid of random offsets, interpolated.
            coarse = Image.fromarray((rng.standard_normal((5, 5)) * amp).astype(np.float32), "F")
            src[axis] += np.asarray(coarse.resize((m, m), Image.Resampling.BICUBIC)).ravel()
    warped = ndimage.map_coordinates(canvas, src, order=1, cval=0.0).reshape(m, m) > 0.5
    change = rng.uniform(-d.width, d.width) * n
    if change > 0.5:
        warped = ndimage.distance_transform_edt(~warped) <= change / 2
    elif change < -0.5:
        thinned = ndimage.distance_transform_edt(warped) > -change / 2
        # Thinning may not erase a stroke: fall back to the unthinned shape if it would.
        if thinned.sum() > 0.35 * warped.sum():
            warped = thinned
    if d.trace > 0 and rng.random() < d.trace:
        rows = np.flatnonzero(warped.any(axis=1))
        if rows.size:
            height = rows[-1] - rows[0] + 1
            warped = redraw_strokes(warped, max(1.0, rng.uniform(*d.trace_width) * height))
    return warped


def render_gray(
    shape: np.ndarray, height: int, rng: np.random.Generator, *, blur: float = 0.0
) -> np.ndarray:
    """Draw a binary shape as dark ink on white paper, its ink about ``height`` px tall.

    Parameters
    ----------
    shape : ndarray of shape (n, n), bool
    height : int
    rng : numpy.random.Generator
    blur : float
        Gaussian blur sigma in output pixels.

    Returns
    -------
    gray : ndarray of shape (side, side), float32, values in [0, 1] (0 black, 1 white)
    """
    rows = np.flatnonzero(shape.any(axis=1))
    ink_h = max(1, rows[-1] - rows[0] + 1)
    factor = height / ink_h
    coverage = ndimage.zoom(
        shape.astype(np.float32), factor, order=1, grid_mode=True, mode="grid-constant"
    )
    return paint_gray(coverage, rng, blur=blur)


def paint_gray(coverage: np.ndarray, rng: np.random.Generator, *, blur: float = 0.0):
    """Ink coverage (0..1) on paper: a margin, blur, the paper's and ink's levels, noise.

    Returns
    -------
    gray : ndarray, float32, values in [0, 1] (0 black, 1 white)
    """
    coverage = np.pad(coverage, max(2, int(0.15 * coverage.shape[0])))
    if blur > 0:
        coverage = ndimage.gaussian_filter(coverage, blur)
    paper = rng.uniform(0.85, 1.0)
    ink = rng.uniform(0.0, 0.35)
    gray = paper - (paper - ink) * np.clip(coverage, 0, 1)
    gray += rng.normal(0, 0.02, size=gray.shape)
    return np.clip(gray, 0, 1).astype(np.float32)


def pen_gray(
    trace: strokes.Trace,
    rng: np.random.Generator,
    d: Distortion | None,
    label: int | None = None,
) -> np.ndarray:
    """A pen-written digit as a picture: clean (``d`` None) or written differently by ``d``.

    A distorted copy is the trace, with probability ``d.continental`` in its continental
    form (given its ``label``), distorted as strokes (:func:`strokes.distort`), drawn
    ``d.min_height`` to ``d.max_height`` px tall with a round pen ``d.trace_width`` of its
    height wide, blurred up to ``d.blur``.

    Returns
    -------
    gray : ndarray, float32, values in [0, 1] (0 black, 1 white)
    """
    if d is None:
        height = CLEAN_PEN_HEIGHT
        coverage = strokes.draw(trace, height=height, width=CLEAN_PEN_WIDTH * height)
        return paint_gray(coverage, rng)
    if d.continental > 0 and label in strokes.CONTINENTAL and rng.random() < d.continental:
        trace = strokes.continental(trace, label, rng)
    trace = strokes.distort(trace, rng, d.pen())
    height = int(rng.integers(d.min_height, d.max_height + 1))
    width = max(1.0, rng.uniform(*d.trace_width) * height)
    coverage = strokes.draw(trace, height=height, width=width)
    return paint_gray(coverage, rng, blur=rng.uniform(0, d.blur))


def clean_gray(digit: np.ndarray, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The undistorted picture of a digit: a grey image as it is, anything else drawn.

    A grey image (MNIST's 28x28, ink high) is already a picture: it is inverted to dark ink
    on white and used as it is, the way such a crop is uploaded. A bitmap or a grid of
    counts is drawn from its smooth shape with its ink 32 px tall.

    Parameters
    ----------
    digit : ndarray
        As :func:`digit_shape` accepts it.
    shape : ndarray of shape (n, n), bool
        ``digit_shape(digit)``.
    rng : numpy.random.Generator

    Returns
    -------
    gray : ndarray of shape (h, w), float32, values in [0, 1] (0 black, 1 white)
    """
    digit = np.asarray(digit)
    if digit.ndim == 2 and digit.shape[0] == digit.shape[1] and digit.max() > 1:
        return (1.0 - digit.astype(np.float32) / np.float32(255)).astype(np.float32)
    return render_gray(shape, 32, rng)


def training_features(
    X: np.ndarray,
    *,
    n_augment: int,
    seed: int,
    distortion: Distortion = DEFAULT_DISTORTION,
    n_jobs: int = 1,
    ids: np.ndarray | None = None,
    bitmaps: bool = False,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render each digit cleanly and ``n_augment`` times distorted, and preprocess them all.

    Each digit draws from its own generator, seeded by ``(seed, id)``, so the result does
    not depend on ``n_jobs`` nor on which other digits are rendered with it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, 64) with counts 0..16, or (n_samples, s, s), or
        (n_samples,) of :class:`~predicciones.ml.strokes.Trace`
        Digits in any form :func:`digit_shape` accepts (grids of counts, binary bitmaps,
        grey images with ink high) or pen strokes, all of one form.
    n_augment : int
        Distorted copies per digit (0 gives only the clean rendering).
    seed : int
    distortion : Distortion
    n_jobs : int
        Worker processes (joblib); 1 runs in this process.
    ids : ndarray of shape (n_samples,), int, optional
        A stable id per digit, unique across sources; default ``0..n_samples - 1``.
    bitmaps : bool
        Return the 32x32 bitmaps the features are counted from instead of the features
        (studies of other grids, ``experiments/what_limits.py``).
    labels : ndarray of shape (n_samples,), int, optional
        The digits' labels, for distortions that change a letterform
        (``distortion.continental``).

    Returns
    -------
    features : ndarray of shape (n_rows, 64), uint8, values 0..16
        Or, with ``bitmaps``, of shape (n_rows, 32, 32), float32, values in [0, 1].
    source : ndarray of shape (n_rows,), int
        Index into ``X`` of the digit each row came from (for grouped splits and labels).
    variant : ndarray of shape (n_rows,), int
        0 for the clean rendering, 1..n_augment for distorted ones.
    """
    X = np.asarray(X)
    ids = np.arange(len(X)) if ids is None else np.asarray(ids)
    labels = np.full(len(X), -1) if labels is None else np.asarray(labels)
    chunks = np.array_split(np.arange(len(X)), max(1, n_jobs * 8))
    args = [
        (X[idx], idx, ids[idx], n_augment, seed, distortion, bitmaps, labels[idx])
        for idx in chunks
        if len(idx)
    ]
    if n_jobs > 1:
        parts = parallel_map(_features_chunk, [(a, {}) for a in args], n_jobs=n_jobs)
    else:
        parts = [_features_chunk(*a) for a in args]
    if not parts:
        rows = np.zeros((0, 32, 32), np.float32) if bitmaps else np.zeros((0, 64), np.uint8)
        return rows, np.zeros(0, np.int64), np.zeros(0, np.int64)
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def _features_chunk(X, indices, ids, n_augment, seed, distortion, bitmaps, labels):
    rows, source, variant = [], [], []
    for i, digit_id, x, label in zip(indices, ids, X, labels, strict=True):
        rng = np.random.default_rng([seed, int(digit_id)])
        pen = isinstance(x, strokes.Trace)
        shape = None if pen else digit_shape(x, size=64)
        for k in range(n_augment + 1):
            if pen:
                gray = pen_gray(x, rng, distortion if k else None, int(label))
            elif k == 0:
                gray = clean_gray(x, shape, rng)
            else:
                height = int(rng.integers(distortion.min_height, distortion.max_height + 1))
                gray = render_gray(
                    distort(shape, rng, distortion),
                    height,
                    rng,
                    blur=rng.uniform(0, distortion.blur),
                )
            try:
                done = preprocess(gray)
            except NoDigitError:
                continue
            rows.append(done.bitmap if bitmaps else done.features)
            source.append(i)
            variant.append(k)
    if bitmaps:
        rows = np.array(rows, dtype=np.float32).reshape(-1, 32, 32)
    else:
        rows = np.array(rows, dtype=np.uint8).reshape(-1, 64)
    return (
        rows,
        np.array(source, dtype=np.int64),
        np.array(variant, dtype=np.int64),
    )
