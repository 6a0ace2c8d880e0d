"""Any image of a handwritten digit -> the 64 features of scikit-learn's digits format.

scikit-learn's digits are 32x32 binary bitmaps counted in 4x4 blocks: 8x8 integers 0..16,
the digit filling the box's height, keeping its aspect ratio, centred. This module finds
the ink in a real picture (polarity, uneven light, noise, specks, printed lines, the table
around a page, a small digit in a large photo), keeps the digit's strokes, removes its
slant, redraws its strokes at one width and rebuilds that format. It is the one
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
from skimage.morphology import convex_hull_image, skeletonize

from .decoding import (
    MAX_FULL_DECODE_PIXELS,
    MAX_PIXELS,
    WORK_SIZE,
    Decoded,
    Header,
    decode_upload,
)
from .exceptions import NoDigitError

#: Side of the bitmap the 8x8 grid is counted from, as in scikit-learn's digits.
BITMAP_SIZE = 32
#: Side of one counting block (BITMAP_SIZE / 8).
BLOCK = 4
#: Range of the digit's width in the bitmap (px); its height is always BITMAP_SIZE. A bare
#: stroke (a 1) is widened to MIN_WIDTH; a digit wider than MAX_WIDTH is squeezed.
MIN_WIDTH, MAX_WIDTH = 12, 26
#: Minimum ink contrast (0..1 scale) below which an image counts as blank.
MIN_CONTRAST = 0.1
#: Hysteresis thresholds on the peak-normalised ink: strokes are grown from pixels above
#: STRONG into connected pixels above WEAK (faint parts of a stroke survive, noise does not).
STRONG, WEAK = 0.5, 0.25
#: The same thresholds, at least, as standard deviations of the paper's noise above its
#: level: faint pencil on grainy paper keeps its strokes without its grain. Stroke cores
#: below NOISE_FLOOR deviations do not count, and an image without them has no digit.
NOISE_STRONG, NOISE_WEAK, NOISE_FLOOR = 5.0, 2.5, 6.0
#: Threshold that decides the digit's shape once it is resampled to the normalisation frame.
SHAPE_THRESHOLD = 0.4
#: Components whose ink is below this share of the largest one are specks.
SPECK_RATIO = 0.04
#: A component touching the image border along this share of a side may be the table, a page
#: edge or a page's corner; it is one when it lies outside the page (:func:`_drop_page_edges`).
EDGE_CONTACT = 0.05
#: Pieces farther than this share of the digit's height from the digit are not part of it.
MAX_GAP = 0.4
#: Printed lines of ruled or squared paper (:func:`find_lines`): straight runs of ink
#: across at least LINE_COVER of the picture, within LINE_TILT degrees of its axes, whose
#: median ink is below LINE_LEVEL of the stroke cores' level.
LINE_COVER, LINE_TILT, LINE_LEVEL = 0.6, 5.0, 0.75
#: Lines are looked for when ink reaches two opposite borders and one of the digit's rows or
#: columns holds ink across this share of the picture (its bar, or a line that joined it).
LINE_JOINED = 0.3
#: Thickest printed line, in pixels of the reduced copy the digit is searched on.
LINE_THICK = 4
#: The tilts (as slopes) at which lines are looked for: every half degree.
LINE_SLOPES = np.tan(np.deg2rad(np.arange(-LINE_TILT, LINE_TILT + 0.01, 0.5)))
#: Blank regions at least this share of the image are paper (:func:`_drop_page_edges`).
PAPER_SHARE = 0.02
#: Largest slant (horizontal shift per unit of height) that deskewing removes.
MAX_SLANT = 0.6
#: Long side, in pixels, of the reduced copy the digit is searched on.
FIND_SIZE = 128
#: A digit spanning fewer pixels than this in the decoded picture is read again from the
#: finer copy that decoding keeps of a large picture (a small digit in a 12 MP photo).
DETAIL_MIN = 48
#: Long side of the reduced copy on which a digit too small to be found in the working
#: picture is searched for in the finer copy.
DETAIL_FIND_SIZE = 512
#: Height, in pixels, of the digit in the frame where strokes are redrawn (1.5x the bitmap).
FRAME_HEIGHT = 48
#: Margin around the digit in that frame, room for redrawn strokes.
FRAME_PAD = 6
#: How far the paper level may rise above its estimate over a window twice as wide
#: (:func:`_background`; 0..1 scale).
BACKGROUND_SLACK = 0.2
#: Width, in frame pixels, every digit's strokes are redrawn at (an eighth of its height):
#: a ball-point, a pencil, a marker and a 28x28 crop all come out alike. Chosen among 5 to
#: 10 and against keeping widths within a range, with an SVC on 15,000 MNIST training
#: digits judged on 1,500 of MNIST's validation slice sent as uploads in five styles:
#: width 6 read thick marker 0.930 (widths kept within a range: 0.897) and the mean of the
#: styles 0.971 (0.966), for 0.002 less on plain 28x28 crops.
STROKE_WIDTH = 6.0
#: Ink deeper than this (frame pixels from the paper) is a blob, kept as it is when strokes
#: are redrawn: ink at least 12 px (a quarter of the digit's height) across, twice the
#: redrawn pen. Chosen among depths of 1.2, 1.5, 2 and 2.5 pen half widths and against
#: redrawing everything, with one perceptron trained on a quarter of MNIST's training digits
#: and ``load_digits``' training part, read as uploads in five styles. Accuracy on optdigits'
#: writers (left out of training) / the calibration writers / 1,500 of MNIST's validation
#: slice: everything redrawn 0.930 / 0.943 / 0.953 (thick marker 0.895); depth 1.2: 0.926 /
#: 0.943 / 0.959; 1.5: 0.934 / 0.951 / 0.958; 2: 0.937 / 0.949 / 0.962 (marker 0.936);
#: 2.5: 0.937 / 0.941 / 0.961.
BLOB_DEPTH = STROKE_WIDTH


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
    bg = Image.fromarray(np.ascontiguousarray(background[r0:r1, c0:c1], np.float32), "F")
    bg = np.asarray(bg.resize(size, Image.Resampling.BILINEAR))
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
    np.clip(idx, -1023, 1023, out=idx)
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
    np.clip(ink, 0.0, 1.0, out=ink)
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
    idx = np.clip((x.ravel() * 1023.0 + 0.5).astype(np.intp), 0, 1023)
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
    opened = ndimage.uniform_filter(opened, size=size, mode="nearest")
    if opened.shape != x.shape:
        img = Image.fromarray(opened.astype(np.float32), mode="F")
        opened = np.asarray(img.resize((width, height), Image.Resampling.BILINEAR))
    return opened


def _opening(x: np.ndarray, size: int) -> np.ndarray:
    """``ndimage.grey_opening(x, size=(size, size), mode="nearest")``, in four 1-D passes."""
    # grey_dilation shifts an even window by one pixel (origin -1) relative to the erosion's.
    origin = 0 if size % 2 else -1
    out = ndimage.minimum_filter1d(x, size, axis=0, mode="nearest")
    ndimage.minimum_filter1d(out, size, axis=1, mode="nearest", output=out)
    ndimage.maximum_filter1d(out, size, axis=0, mode="nearest", origin=origin, output=out)
    ndimage.maximum_filter1d(out, size, axis=1, mode="nearest", origin=origin, output=out)
    return out


# --- 2. Which ink is the digit? ---------------------------------------------------------------


def digit_mask(ink: np.ndarray, *, weak: float = WEAK, strong: float = STRONG) -> np.ndarray:
    """Pixels of the digit: strokes found by hysteresis, without specks and page edges.

    Disconnected parts of one digit (the bar of a 5, the two strokes of a 4) are kept when
    they are near the main stroke; specks, far marks and dark page borders are dropped.

    Parameters
    ----------
    ink : ndarray of shape (height, width), float, values in [0, 1]
    weak, strong : float
        Hysteresis thresholds: strokes grow from pixels above ``strong`` into the connected
        pixels above ``weak``.

    Returns
    -------
    mask : ndarray of shape (height, width), bool

    Raises
    ------
    NoDigitError
        No stroke is left.
    """
    above = ink > weak
    labels, n = ndimage.label(above, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        raise NoDigitError()
    core = ink > strong
    if n == 1:  # one piece (a clean scan): the digit, if it has a core
        if not core.any():
            raise NoDigitError()
        return above
    flat = labels.ravel()
    ink_mass = np.bincount(flat, weights=ink.ravel(), minlength=n + 1)[1:]
    cores = np.bincount(flat[core.ravel()], minlength=n + 1)[1:]
    boxes = ndimage.find_objects(labels)
    ink_mass[cores == 0] = 0.0  # faint on its own: not a stroke
    if not ink_mass.any():
        raise NoDigitError()
    # Specks are dropped relative to the largest piece; tiny ones first, cheaply.
    big = np.flatnonzero(ink_mass >= 0.25 * SPECK_RATIO * ink_mass.max())
    candidates = [(float(ink_mass[i]), i + 1, boxes[i]) for i in big]
    if len(candidates) > 1:
        candidates = _drop_page_edges(labels, n, candidates, ink <= weak)
    candidates.sort(key=lambda c: -c[0])
    biggest = candidates[0][0]
    candidates = [c for c in candidates if c[0] >= SPECK_RATIO * biggest]
    # Grow the digit from its largest piece: add pieces close to what is kept already.
    _, label, box = candidates[0]
    keep = [label]
    top, bottom, left, right = box[0].start, box[0].stop, box[1].start, box[1].stop
    rest = candidates[1:]
    changed = True
    while changed and rest:
        changed = False
        for c in list(rest):
            b = c[2]
            reach = MAX_GAP * max(bottom - top, (right - left) * 0.75)
            gap_y = max(0, b[0].start - bottom, top - b[0].stop)
            gap_x = max(0, b[1].start - right, left - b[1].stop)
            if max(gap_y, gap_x) <= reach:
                keep.append(c[1])
                top, bottom = min(top, b[0].start), max(bottom, b[0].stop)
                left, right = min(left, b[1].start), max(right, b[1].stop)
                rest.remove(c)
                changed = True
    lut = np.zeros(n + 1, dtype=bool)
    lut[keep] = True
    return lut[labels]


def _drop_page_edges(labels: np.ndarray, n: int, candidates: list, paper: np.ndarray) -> list:
    """Drop the pieces that lie beyond the page: the table, a page's edge or its corners.

    The page is the convex hull of the paper (the large blank regions, ``paper``): a
    photographed sheet is convex, so whatever dark lies outside that hull along the image
    border (:data:`EDGE_CONTACT`) is not written on it. A digit cropped tight, whose strokes
    touch the border, is surrounded by paper and stays. ``paper`` is a boolean image.
    """
    contact = _border_contact(labels, n)
    edges = [c for c in candidates if contact[c[1]] >= EDGE_CONTACT]
    if not edges or len(edges) == len(candidates):
        return candidates
    blank, n_blank = ndimage.label(paper)
    sizes = np.bincount(blank.ravel(), minlength=n_blank + 1)
    sizes[0] = 0
    large = sizes >= PAPER_SHARE * paper.size
    if not large.any():
        return candidates
    hull = convex_hull_image(large[blank])
    inside = ndimage.mean(hull, labels, [c[1] for c in edges])
    dropped = {c[1] for c, share in zip(edges, np.atleast_1d(inside), strict=True) if share < 0.5}
    kept = [c for c in candidates if c[1] not in dropped]
    return kept or candidates


class Line(NamedTuple):
    """A printed line: ``y = slope * x + offset`` (``x = slope * y + offset`` if vertical)."""

    vertical: bool
    slope: float
    offset: float
    level: float


def find_lines(ink: np.ndarray, weak: float = WEAK) -> list[Line]:
    """The printed lines of ruled or squared paper in an ink map.

    A line is a thin straight run of ink above ``weak`` across at least :data:`LINE_COVER`
    of the picture, nearly horizontal or vertical (within :data:`LINE_TILT` degrees), with
    paper either side, fainter than the stroke cores (its median ink below
    :data:`LINE_LEVEL`): a digit's bar, as dark as its other strokes, is not one, nor is
    the table beyond a page's edge.

    Parameters
    ----------
    ink : ndarray of shape (height, width), float, values in [0, 1]
    weak : float
        The level above which a pixel is ink.

    Returns
    -------
    list of Line
        In pixel coordinates of ``ink``, each with its median ink level.
    """
    found = []
    for vertical in (False, True):
        img = ink.T if vertical else ink
        w = img.shape[1]
        # Only thin ink can be a line: pixels with paper LINE_THICK rows above and below.
        # Thick strokes and the table beyond a page's edge are left out of the search, and
        # a printed line's faint stretches (down to half the weak level) count.
        above = img > weak / 2
        thin = above.copy()
        thin[LINE_THICK:] &= ~above[:-LINE_THICK]
        thin[:-LINE_THICK] &= ~above[LINE_THICK:]
        ys, xs = np.nonzero(thin)
        if xs.size < LINE_COVER * w:
            continue
        # Project the ink along every tilt at once (one histogram per tilt, side by side):
        # a line falls in one or two bins at its own tilt.
        n_bins = img.shape[0] + 2 * w + 2
        bins = np.rint(ys - LINE_SLOPES[:, None] * xs).astype(np.intp) + w
        bins += np.arange(len(LINE_SLOPES))[:, None] * n_bins
        counts = np.bincount(bins.ravel(), minlength=len(LINE_SLOPES) * n_bins)
        counts = counts.reshape(len(LINE_SLOPES), n_bins)
        all_pairs = counts[:, :-1] + counts[:, 1:]
        tilt = int(all_pairs.max(axis=1).argmax())
        pairs = all_pairs[tilt]
        if pairs.max() < LINE_COVER * w:
            continue
        slope, bins = LINE_SLOPES[tilt], bins[tilt] - tilt * n_bins
        values = img[ys, xs]
        peaks = (pairs >= LINE_COVER * w) & (
            pairs >= np.maximum(np.roll(pairs, 1), np.roll(pairs, -1))
        )
        if not peaks.any():
            continue
        # All the ink at that tilt, thick or thin, for the test of what lies beside a line.
        ya, xa = np.nonzero(above)
        every = np.bincount(np.rint(ya - slope * xa).astype(np.intp) + w, minlength=n_bins)
        for index in np.flatnonzero(peaks):
            # Paper either side: a strip of the table beyond a page's edge is no line.
            lo, hi = max(0, index - 3), min(n_bins - 2, index + 3)
            beside = max(every[lo] + every[lo + 1], every[hi] + every[hi + 1])
            if beside > 0.5 * pairs[index]:
                continue
            on = (bins == index) | (bins == index + 1)
            # Across the picture, not a thick stroke filling both bins over a shorter run.
            if np.unique(xs[on]).size < LINE_COVER * w:
                continue
            # Its median tells a printed line from a stroke; its 80th percentile (its core
            # pixels, strokes crossing it aside) is what is subtracted.
            median, level = np.quantile(values[on], (0.5, 0.8))
            if median < LINE_LEVEL:
                # At most 1.5 times the median: a bar lying along the line keeps its ink.
                level = min(level, 1.5 * median)
                found.append(Line(vertical, float(slope), index + 0.5 - w, float(level)))
    return found


def subtract_lines(
    ink: np.ndarray,
    lines: list[Line],
    *,
    scale: float = 1.0,
    origin: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Subtract each line's level from the pixels on it: a stroke crossing it keeps its ink.

    Parameters
    ----------
    ink : ndarray of shape (height, width), float, values in [0, 1]
    lines : list of Line
        From :func:`find_lines` on a grid where this image's pixel ``(i, j)`` lies at
        ``origin + scale * (i, j)``.
    scale : float
    origin : (float, float)

    Returns
    -------
    ink : ndarray of shape (height, width), float32
    """
    out = np.array(ink, dtype=np.float32)
    if not lines:
        return out
    h, w = out.shape
    yy = origin[0] + scale * np.arange(h, dtype=np.float32)[:, None]
    xx = origin[1] + scale * np.arange(w, dtype=np.float32)[None, :]
    for line in lines:
        along, across = (xx, yy) if line.vertical else (yy, xx)
        # The line's two bins and a pixel either side (its anti-aliased edges).
        on = np.abs(along - line.slope * across - line.offset) <= 1.5
        out[on] = np.maximum(out[on] - np.float32(line.level), 0.0)
    return out


def _border_contact(labels: np.ndarray, n: int) -> np.ndarray:
    """For each label, the largest share of one image side that it covers (0 for none)."""
    contact = np.zeros(n + 1)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        share = np.bincount(edge, minlength=n + 1) / len(edge)
        np.maximum(contact, share, out=contact)
    contact[0] = 0.0
    return contact


# --- 3. Normalise: slant, size, position, stroke width ----------------------------------------


def normalize_digit(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Deskew, scale and centre the digit, redraw its strokes at one width, fit it to 32x32.

    The slant is measured by image moments (``mu11 / mu02``) and sheared away; the digit is
    resampled so that its larger side spans :data:`FRAME_HEIGHT` pixels; its strokes are
    redrawn at one width (:func:`normalize_stroke_width`), so a thin ball-point and a thick
    marker look alike, but a loop the pen filled stays a blob; finally it fills the 32 px
    box's height, keeping its aspect ratio within [:data:`MIN_WIDTH`, :data:`MAX_WIDTH`],
    centred.

    Parameters
    ----------
    ink : ndarray of shape (height, width), float, values in [0, 1]
    mask : ndarray of shape (height, width), bool
        The digit's pixels (from :func:`digit_mask`).

    Returns
    -------
    bitmap : ndarray of shape (32, 32), float32, values in [0, 1]
        Share of each bitmap pixel covered by ink.
    """
    frame = _deskewed_frame(ink, mask)
    shape = frame > SHAPE_THRESHOLD
    if not shape.any():
        shape = frame >= frame.max() * 0.5
    return fit_to_bitmap(normalize_stroke_width(shape))


def _deskewed_frame(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Resample the digit's ink, slant removed, so its larger side spans FRAME_HEIGHT px."""
    ys, xs = np.nonzero(mask)
    w = ink[ys, xs].astype(np.float64)
    total = w.sum()
    cy, cx = (w @ ys) / total, (w @ xs) / total
    dy, dx = ys - cy, xs - cx
    mu02 = (w @ (dy * dy)) / total
    mu11 = (w @ (dx * dy)) / total
    slant = float(np.clip(mu11 / mu02, -MAX_SLANT, MAX_SLANT)) if mu02 > 1e-6 else 0.0
    # Bounding box after the shear x' = x - slant * (y - cy), in pixel-edge coordinates.
    xd = xs - slant * dy
    y0, y1 = ys.min() - 0.5, ys.max() + 0.5
    x0, x1 = xd.min() - 0.5, xd.max() + 0.5
    scale = FRAME_HEIGHT / max(y1 - y0, x1 - x0)  # frame pixels per source pixel
    src = np.where(mask, ink, 0.0).astype(np.float32)
    # Reduce large digits first (box filter) so that bilinear sampling skips no thin stroke.
    factor = max(1, round(1.0 / scale)) if scale < 0.75 else 1
    y_off = x_off = 0.0
    if factor > 1:
        top, left = max(0, int(y0 - 2 * factor)), max(0, int(min(xs.min(), x0) - 2 * factor))
        bottom = min(src.shape[0], int(y1 + 2 * factor) + 1)
        right = min(src.shape[1], int(max(xs.max(), x1) + 2 * factor) + 1)
        crop = src[top:bottom, left:right]
        h, w_ = -(-crop.shape[0] // factor), -(-crop.shape[1] // factor)
        padded = np.zeros((h * factor, w_ * factor), dtype=np.float32)
        padded[: crop.shape[0], : crop.shape[1]] = crop
        src = padded.reshape(h, factor, w_, factor).mean(axis=(1, 3))
        # Reduced pixel j covers source pixels [top + j*f, top + (j+1)*f).
        y_off, x_off = top + (factor - 1) / 2, left + (factor - 1) / 2
    size = FRAME_HEIGHT + 2 * FRAME_PAD
    centre = (size - 1) / 2
    yc, xc = (y0 + y1) / 2, (x0 + x1) / 2  # centre of the deskewed box, source coordinates
    # Output (v, u) -> source: y = yc + (v - centre) / scale; x = xc + (u - centre) / scale
    # + slant * (y - cy). Then into the reduced grid: (y - y_off) / factor.
    inv = 1.0 / scale
    matrix = np.array([[inv, 0.0], [slant * inv, inv]]) / factor
    top_y = yc - centre * inv  # source row of output row 0
    offset = np.array([top_y - y_off, xc - centre * inv + slant * (top_y - cy) - x_off]) / factor
    return ndimage.affine_transform(
        src, matrix, offset=offset, output_shape=(size, size), order=1, cval=0.0
    )


def normalize_stroke_width(shape: np.ndarray) -> np.ndarray:
    """Redraw the digit's strokes :data:`STROKE_WIDTH` frame pixels wide, keeping its blobs.

    The pen is normalised away: a thin ball-point, a blurred pencil and a fat marker give the
    same strokes, and only the path of the pen is left for the classifier. Only where the
    ink is much thicker than any pen stroke (deeper than :data:`BLOB_DEPTH` from the paper)
    is it kept as it is: there a fat pen or a coarse scan has filled a loop, and the
    skeleton of a filled loop is a bare line that says nothing of the loop (a 9's filled
    head became a 7's bar), while the blob still shows where the loop was.

    Parameters
    ----------
    shape : ndarray of shape (h, w), bool

    Returns
    -------
    shape : ndarray of shape (h, w), bool
    """
    return redraw_strokes(shape, STROKE_WIDTH, keep_deeper_than=BLOB_DEPTH)


def redraw_strokes(
    shape: np.ndarray, width: float, *, keep_deeper_than: float | None = None
) -> np.ndarray:
    """The shape's strokes redrawn ``width`` pixels wide around its skeleton (a pen tracing it).

    Parameters
    ----------
    shape : ndarray of shape (h, w), bool
    width : float
    keep_deeper_than : float, optional
        Ink further than this from the paper is kept as it is (grown back by ``width / 2``
        around its core) instead of being thinned to the skeleton.

    Returns
    -------
    strokes : ndarray of shape (h, w), bool
    """
    skeleton = skeletonize(shape)
    if not skeleton.any():
        return shape
    # Ink deeper than ``keep_deeper_than`` has the square inscribed in that disc all around
    # it; where no such square fits (every pen stroke), the distance transform is skipped.
    if keep_deeper_than is not None:
        square = 2 * int(keep_deeper_than / np.sqrt(2)) + 1
        if ndimage.minimum_filter(shape, size=square).any():
            skeleton |= ndimage.distance_transform_edt(shape) > keep_deeper_than
    return ndimage.distance_transform_edt(~skeleton) <= width / 2


def fit_to_bitmap(mask: np.ndarray) -> np.ndarray:
    """Crop a mask to its ink and fit it to the 32 px box as scikit-learn's digits are.

    The digit fills the box's height. Its width keeps the aspect ratio within
    [:data:`MIN_WIDTH`, :data:`MAX_WIDTH`] px and is stretched or squeezed into that range
    outside it: a bare vertical stroke (a 1) is widened to three blocks, so its slant and
    its flag still show in the 8x8 grid, and a very wide digit is squeezed. (In
    ``load_digits`` and optdigits every digit, a 1 included, was stretched to about 20 px.)

    Parameters
    ----------
    mask : ndarray of shape (h, w), bool or float in [0, 1]

    Returns
    -------
    bitmap : ndarray of shape (32, 32), float32, values in [0, 1]
        Share of each bitmap pixel covered by ink, the digit centred.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise NoDigitError()
    crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = crop.shape
    new_w = int(np.clip(round(width * BITMAP_SIZE / height), MIN_WIDTH, MAX_WIDTH))
    img = Image.fromarray(np.asarray(crop, dtype=np.float32), mode="F")
    scaled = np.asarray(img.resize((new_w, BITMAP_SIZE), Image.Resampling.BOX))
    bitmap = np.zeros((BITMAP_SIZE, BITMAP_SIZE), dtype=np.float32)
    left = (BITMAP_SIZE - new_w) // 2
    bitmap[:, left : left + new_w] = np.clip(scaled, 0.0, 1.0)
    return bitmap


def bitmap_to_features(bitmap: np.ndarray) -> np.ndarray:
    """Count ink in 4x4 blocks of a 32x32 bitmap: the 64 integer features 0..16.

    Parameters
    ----------
    bitmap : ndarray of shape (32, 32), values in [0, 1]

    Returns
    -------
    features : ndarray of shape (64,), uint8, values 0..16
    """
    blocks = bitmap.reshape(8, BLOCK, 8, BLOCK).sum(axis=(1, 3))
    return np.clip(np.rint(blocks), 0, 16).astype(np.uint8).ravel()
