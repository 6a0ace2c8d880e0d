"""Any image of a handwritten digit -> the 64 features of scikit-learn's digits format.

scikit-learn's digits are 32x32 binary bitmaps counted in 4x4 blocks: 8x8 integers 0..16,
the digit filling the box's height, keeping its aspect ratio, centred. This module finds
the ink in a real picture (polarity, uneven light, noise, specks, printed lines, the table
around a page, a small digit in a large photo), keeps the digit's strokes, removes its
slant, redraws its strokes at one width and rebuilds that format: decoding in
:mod:`.decoding`, finding the ink here, keeping the digit's strokes in :mod:`.segmentation`,
the normal form and the features in :mod:`.normalisation`. It is the one
preprocessing path: the API, ``app.py``, the notebook and training
(:mod:`~predicciones.ml.augment`) all call :func:`preprocess`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image
from scipy import ndimage

from .decoding import (
    MAX_FULL_DECODE_PIXELS,
    MAX_PIXELS,
    WORK_SIZE,
    Decoded,
    Header,
    decode_upload,
)
from .exceptions import NoDigitError
from .normalisation import FRAME_HEIGHT, bitmap_to_features, normalize_digit
from .segmentation import STRONG, WEAK, digit_mask, find_lines, subtract_lines

#: Minimum ink contrast (0..1 scale) below which an image counts as blank.
MIN_CONTRAST = 0.1
#: The same thresholds, at least, as standard deviations of the paper's noise above its
#: level: faint pencil on grainy paper keeps its strokes without its grain. Stroke cores
#: below NOISE_FLOOR deviations do not count, and an image without them has no digit.
NOISE_STRONG, NOISE_WEAK, NOISE_FLOOR = 5.0, 2.5, 6.0
#: Lines are looked for when ink reaches two opposite borders and one of the digit's rows or
#: columns holds ink across this share of the picture (its bar, or a line that joined it).
LINE_JOINED = 0.3
#: Long side, in pixels, of the reduced copy the digit is searched on.
FIND_SIZE = 128
#: A digit spanning fewer pixels than this in the decoded picture is read again from the
#: finer copy that decoding keeps of a large picture (a small digit in a 12 MP photo).
DETAIL_MIN = 48
#: Long side of the reduced copy on which a digit too small to be found in the working
#: picture is searched for in the finer copy.
DETAIL_FIND_SIZE = 512
#: How far the paper level may rise above its estimate over a window twice as wide
#: (:func:`_background`; 0..1 scale).
BACKGROUND_SLACK = 0.2


class Paper(NamedTuple):
    """The paper's level and noise (standard deviation) on the normalised ink scale."""

    level: float
    noise: float

    def threshold(self, share: float, deviations: float) -> float:
        """``share`` of the stroke cores' level, or more when the paper's noise reaches it."""
        return max(share, self.level + deviations * self.noise)


@dataclass(frozen=True)
class Preprocessed:
    """What the model sees.

    Attributes
    ----------
    features : ndarray of shape (64,), uint8, values 0..16
        Row-major 8x8 grid, as one row of ``load_digits().data``.
    inverted : bool
        True when the image had light ink on a dark background.
    bitmap : ndarray of shape (32, 32), float32, values in [0, 1], or None
        The normalised digit the grid was counted from (for display and debugging).
    """

    features: np.ndarray
    inverted: bool = False
    bitmap: np.ndarray | None = None

    @property
    def grid(self) -> list[list[int]]:
        """The features as 8 rows of 8 integers (for JSON and display)."""
        return self.features.reshape(8, 8).astype(int).tolist()


def preprocess(
    data: bytes | np.ndarray,
    *,
    max_pixels: int = MAX_PIXELS,
    max_full_decode_pixels: int = MAX_FULL_DECODE_PIXELS,
    work_size: int = WORK_SIZE,
    admit: Callable[[Header], AbstractContextManager] | None = None,
) -> Preprocessed:
    """Turn an upload (bytes) or a greyscale array into the model's input.

    Parameters
    ----------
    data : bytes or ndarray of shape (height, width)
        Encoded image bytes, or greyscale pixels on 0..1 (0 black, 1 white), either polarity.
    max_pixels, max_full_decode_pixels, work_size, admit
        Passed to :func:`~predicciones.ml.decoding.decode_upload` (bytes only).

    Returns
    -------
    Preprocessed

    Raises
    ------
    ImageError
        A subclass saying why: unsupported, unreadable, too large, or no digit.
    """
    if isinstance(data, np.ndarray):
        gray = np.asarray(data, dtype=np.float32)
        if gray.ndim != 2:
            raise ValueError(f"expected a 2-D greyscale array, got shape {gray.shape}")
        ink, mask, inverted, _ = _find_digit(gray)
    else:
        decoded = decode_upload(
            data,
            max_pixels=max_pixels,
            max_full_decode_pixels=max_full_decode_pixels,
            work_size=work_size,
            admit=admit,
        )
        ink, mask, inverted = _find_in_upload(decoded)
    bitmap = normalize_digit(ink, mask)
    return Preprocessed(features=bitmap_to_features(bitmap), inverted=inverted, bitmap=bitmap)


# --- 1. Where is the ink? ---------------------------------------------------------------------


def _find_in_upload(decoded: Decoded) -> tuple[np.ndarray, np.ndarray, bool]:
    """:func:`_find_digit` on a decoded upload, reading a small digit again from the finer copy.

    A digit spanning fewer than :data:`DETAIL_MIN` px of the working picture is read again
    from its surroundings in ``decoded.detail``; one too small to be found at all is
    searched for in the whole finer copy, on a reduced copy of :data:`DETAIL_FIND_SIZE` px.
    """
    try:
        ink, mask, inverted, box = _find_digit(decoded.gray)
    except NoDigitError:
        if decoded.detail is None:
            raise
        whole = decoded.detail_gray((0, 0, *decoded.detail.size))
        ink, mask, inverted, _ = _find_digit(whole, find_size=DETAIL_FIND_SIZE)
        return ink, mask, inverted
    top, bottom, left, right = box
    extent = max(bottom - top, right - left)
    if decoded.detail is None or extent >= DETAIL_MIN:
        return ink, mask, inverted
    margin = max(extent, 4)  # paper around the digit, for its level and noise
    scale, (width, height) = decoded.scale, decoded.detail.size
    region = (
        max(0, int((left - margin) * scale)),
        max(0, int((top - margin) * scale)),
        min(width, int((right + margin) * scale) + 1),
        min(height, int((bottom + margin) * scale) + 1),
    )
    # About FRAME_HEIGHT px tall, so that thin strokes are averaged before the ink is
    # normalised, not after.
    reduce = max(1, round(extent * scale / FRAME_HEIGHT))
    ink, mask, inverted, _ = _find_digit(decoded.detail_gray(region, reduce))
    return ink, mask, inverted


def _find_digit(
    gray: np.ndarray, find_size: int = FIND_SIZE
) -> tuple[np.ndarray, np.ndarray, bool, tuple]:
    """Locate the digit on a reduced copy, then read its ink at the resolution it needs.

    Finding the digit (polarity, background, strokes, specks) works on a copy whose long
    side is about :data:`FIND_SIZE` px, which keeps large photos fast; the digit's own
    region is then re-read from the image at the coarsest level where the digit still spans
    :data:`FRAME_HEIGHT` px, so small digits and thin strokes keep their detail.

    Parameters
    ----------
    gray : ndarray of shape (height, width), float, values in [0, 1]
    find_size : int
        Long side of the reduced copy the digit is found on.

    Returns
    -------
    ink : ndarray of shape (h, w), float32, values in [0, 1]
        Ink strength over the digit's region (a crop of the image).
    mask : ndarray of shape (h, w), bool
        The digit's pixels in that region.
    inverted : bool
        True when the ink was lighter than the paper.
    box : tuple
        The digit's box (top, bottom, left, right) in ``gray``.

    Raises
    ------
    NoDigitError
        The image is blank or holds no stroke.
    """
    factor = max(1, -(-max(gray.shape) // find_size))
    ink, inverted, background, peak, paper = _ink(_block_mean(gray, factor))
    weak = paper.threshold(WEAK, NOISE_WEAK)
    strong = paper.threshold(STRONG, NOISE_STRONG)
    mask = digit_mask(ink, weak=weak, strong=strong)
    lines = []
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    height, width = mask.shape
    # Printed lines cross the picture from border to border; when there is ink on two
    # opposite borders and a long straight run in the digit, lines may have joined it.
    across = (ink[:, 0] > weak).any() and (ink[:, -1] > weak).any()
    down = (ink[0] > weak).any() and (ink[-1] > weak).any()
    if (across and mask.sum(axis=1).max() >= LINE_JOINED * width) or (
        down and mask.sum(axis=0).max() >= LINE_JOINED * height
    ):
        lines = find_lines(ink, weak)
        if lines:
            ink = subtract_lines(ink, lines)
            mask = digit_mask(ink, weak=weak, strong=strong)
            rows = np.flatnonzero(mask.any(axis=1))
            cols = np.flatnonzero(mask.any(axis=0))
    # Read the digit at the coarsest level where it still spans the frame's height.
    extent = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    step = max(1, min(factor, int(extent * factor // FRAME_HEIGHT)))
    box = (rows[0] * factor, (rows[-1] + 1) * factor, cols[0] * factor, (cols[-1] + 1) * factor)
    if step == factor:
        return ink, mask, inverted, box
    # The digit's box on the coarse grid, one coarse pixel wider, read at that level.
    r0, r1 = max(0, rows[0] - 1), min(mask.shape[0], rows[-1] + 2)
    c0, c1 = max(0, cols[0] - 1), min(mask.shape[1], cols[-1] + 2)
    fine = _block_mean(gray[r0 * factor : r1 * factor, c0 * factor : c1 * factor], step)
    size = (fine.shape[1], fine.shape[0])
    region = ndimage.binary_dilation(mask[r0:r1, c0:c1], structure=np.ones((3, 3), bool))
    region = np.asarray(Image.fromarray(region).resize(size, Image.Resampling.NEAREST))
    bg = _resized(background[r0:r1, c0:c1], size, Image.Resampling.BILINEAR)
    x = fine if inverted else 1.0 - fine
    # Stroke cores are at least as dark at full resolution as on the reduced copy.
    ink, _, _ = _normalise(x - bg, within=region, floor=peak / 2)
    if lines:
        # Fine pixel (i, j) is centred at coarse (r0 - 1/2 + (i + 1/2) * step / factor, ...).
        half = 0.5 * step / factor - 0.5
        ink = subtract_lines(ink, lines, scale=step / factor, origin=(r0 + half, c0 + half))
    return ink, (ink > weak) & region, inverted, box


def _ink(gray: np.ndarray) -> tuple[np.ndarray, bool, np.ndarray, float, Paper]:
    """Ink strength on 0..1 (paper ~0, stroke cores ~1), whether the ink was light-on-dark,
    the background subtracted, the stroke level divided by, and the paper's level and noise.

    The paper is the majority of pixels, so the polarity is whichever side of the median
    holds the farther tail. A large-scale background estimate is subtracted so that a
    lighting gradient or a soft shadow does not become ink, and the result is divided by
    the level of the stroke cores, so a faint pencil and a black marker look alike. Raises
    NoDigitError for a (nearly) uniform image.
    """
    inverted = _polarity(gray)
    x = gray if inverted else 1.0 - gray
    background = _background(x)
    ink, peak, paper = _normalise(x - background)
    return ink, inverted, background, peak, paper


def _polarity(gray: np.ndarray) -> bool:
    """True for light ink on dark paper; raises NoDigitError for a (nearly) uniform image."""
    if gray.ndim != 2 or min(gray.shape) < 2:
        raise NoDigitError()
    lo, med, hi = _quantiles(gray, (1e-4, 0.5, 1 - 1e-4))
    if hi - lo < MIN_CONTRAST:
        raise NoDigitError()
    if (hi - med) <= (med - lo):
        return False
    # The median is the paper's level unless the ink covers most of the picture, as a fat
    # marker cropped to the digit does. Light ink is then confirmed by the picture's border,
    # which is mostly paper even in a tight crop: a dark digit filling a light crop is not
    # taken for light ink. (Dark ink stays the default when the two disagree.)
    border = np.concatenate((gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]))
    return float(np.median(border)) < (lo + hi) / 2


def _normalise(
    ink: np.ndarray, within: np.ndarray | None = None, floor: float | None = None
) -> tuple[np.ndarray, float, Paper]:
    """Divide background-free ink by the level of its stroke cores; clip to 0..1.

    Stroke pixels are those above ``floor`` (by default :data:`NOISE_FLOOR` standard
    deviations above the paper's level) and above 30 % of the darkest ink; their 90th
    percentile is the peak. Returns the normalised ink, the peak and the paper's level and
    noise on the normalised scale.
    """
    values = ink[within] if within is not None else ink
    # One histogram of the signed values (bins of 1/1023 on [-1, 1]) answers every quantile.
    idx = np.rint(values.ravel() * 1023.0).astype(np.intp)
    _clip(idx, -1023, 1023)
    hist = np.bincount(idx + 1023, minlength=2047)
    # Every quantile below is read from one cumulative histogram.
    cdf = np.cumsum(hist)
    n = int(cdf[-1])
    q05, q30, q999 = np.searchsorted(cdf, np.array([0.05, 0.3, 0.999]) * (n - 1) + 1)
    # The paper's level and noise from the 5th and 30th percentiles, which are paper's even
    # when strokes cover most of a tight crop (for Gaussian noise they lie 1.645 and 0.524
    # standard deviations below its centre).
    q05, q30 = (q05 - 1023) / 1023.0, (q30 - 1023) / 1023.0
    sigma = max((q30 - q05) / 1.121, 1 / 1023)
    paper = q30 + 0.524 * sigma
    if floor is None:
        floor = max(paper + NOISE_FLOOR * sigma, 0.5 * MIN_CONTRAST)
    # Residues of shadows and gradients can outnumber thin strokes: candidates must also
    # reach a good share of the darkest ink (the 99.9th percentile ignores lone hot pixels).
    top = min(max(0, int(q999) - 1023), 1023) / 1023.0
    floor = max(floor, 0.3 * top)
    first = int(floor * 1023.0) + 1  # the first bin above the floor
    if first > 1023:  # a floor above any ink (paper noisier than the darkest stroke)
        raise NoDigitError()
    below = int(cdf[1023 + first - 1])
    if n - below < 3:
        raise NoDigitError()
    # The 90th percentile of the stroke pixels, those in the bins from `first` on.
    index = np.searchsorted(cdf[1023 + first :], 0.9 * (n - below - 1) + 1 + below)
    peak = (first + int(index)) / 1023.0
    if peak < MIN_CONTRAST:
        raise NoDigitError()
    ink = ink * np.float32(1.0 / peak)
    _clip(ink, 0.0, 1.0)
    return ink.astype(np.float32, copy=False), peak, Paper(paper / peak, sigma / peak)


def _block_mean(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks (the remainder rows and columns are dropped)."""
    factor = min(factor, *x.shape)  # a sliver thinner than one block stays whole
    if factor <= 1:
        return x
    h, w = x.shape[0] // factor, x.shape[1] // factor
    x = x[: h * factor, : w * factor]
    # Strided sums (rows, then columns): a few passes over the data, no copy to Pillow.
    rows = x[0::factor].astype(np.float32)
    for i in range(1, factor):
        rows += x[i::factor]
    out = np.ascontiguousarray(rows[:, 0::factor])
    for j in range(1, factor):
        out += rows[:, j::factor]
    out *= np.float32(1.0 / (factor * factor))
    return out


def _quantiles(x: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """Approximate quantiles of values in [0, 1] from a 1024-bin histogram (fast, no sort)."""
    idx = _clip((x.ravel() * 1023.0 + 0.5).astype(np.intp), 0, 1023)
    cdf = np.cumsum(np.bincount(idx, minlength=1024))
    index = np.searchsorted(cdf, np.asarray(qs) * (cdf[-1] - 1) + 1)
    return [min(int(i), 1023) / 1023.0 for i in index]


def _background(x: np.ndarray) -> np.ndarray:
    """The slowly varying paper level, by a grey opening on a reduced copy.

    An opening (min then max filter) whose window is wider than any stroke removes the
    strokes and keeps the paper, including gradients and shadows larger than the window.
    A fat marker stroke or a filled loop can hold the whole window, and the opening then
    returns ink: an opening over twice the window (two thirds of the picture, wider than
    any stroke) is never above the first and holds only paper, so the paper level may
    exceed it by at most :data:`BACKGROUND_SLACK` (the depth of a shadow smaller than the
    wide window but larger than the narrow one).
    """
    height, width = x.shape
    small = _block_mean(x, max(1, min(height, width) // 24))
    size = max(3, min(small.shape) // 3)
    opened = _opening(small, size)
    # The wide opening is never below the picture's minimum: when the first one stays within
    # the slack of that minimum everywhere (even paper), the bound cannot act.
    if opened.max() > small.min() + BACKGROUND_SLACK:
        wide = _opening(small, 2 * size)
        np.minimum(opened, wide + np.float32(BACKGROUND_SLACK), out=opened)
    # ndimage.uniform_filter(opened, size=size, mode="nearest"), as its two passes.
    opened = ndimage.uniform_filter1d(opened, size, axis=0, mode="nearest")
    ndimage.uniform_filter1d(opened, size, axis=1, mode="nearest", output=opened)
    if opened.shape != x.shape:
        return _resized(opened, (width, height), Image.Resampling.BILINEAR)
    return opened


def _resized(x: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    """A float32 array resized by Pillow (mode "F") to ``size`` (width, height)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    img = Image.frombytes("F", (x.shape[1], x.shape[0]), x.tobytes())
    data = img.resize(size, resample).tobytes()
    return np.frombuffer(data, np.float32).reshape(size[1], size[0])


def _clip(x: np.ndarray, lo, hi) -> np.ndarray:
    """``np.clip(x, lo, hi, out=x)`` as two ufunc calls (np.clip's wrapper costs more)."""
    np.minimum(x, hi, out=x)
    return np.maximum(x, lo, out=x)


def _opening(x: np.ndarray, size: int) -> np.ndarray:
    """``ndimage.grey_opening(x, size=(size, size), mode="nearest")``, in four 1-D passes."""
    # grey_dilation shifts an even window by one pixel (origin -1) relative to the erosion's.
    origin = 0 if size % 2 else -1
    out = ndimage.minimum_filter1d(x, size, axis=0, mode="nearest")
    ndimage.minimum_filter1d(out, size, axis=1, mode="nearest", output=out)
    ndimage.maximum_filter1d(out, size, axis=0, mode="nearest", origin=origin, output=out)
    ndimage.maximum_filter1d(out, size, axis=1, mode="nearest", origin=origin, output=out)
    return out
