"""Any image of a handwritten digit -> the 64 features of scikit-learn's digits format.

scikit-learn's digits are 32x32 binary bitmaps counted in 4x4 blocks: 8x8 integers 0..16,
the digit filling the box's height, keeping its aspect ratio, centred. This module finds
the ink in a real picture (polarity, uneven light, specks), crops to it and rebuilds that
format. It is the one preprocessing path: the API, ``app.py``, the notebook and training
all call :func:`preprocess`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from .decoding import MAX_PIXELS, WORK_SIZE, decode_image
from .errors import NoDigitError

#: Side of the bitmap the 8x8 grid is counted from, as in scikit-learn's digits.
BITMAP_SIZE = 32
#: Side of one counting block (BITMAP_SIZE / 8).
BLOCK = 4
#: Minimum ink contrast (0..1 scale) below which an image counts as blank.
MIN_CONTRAST = 0.12
#: Components smaller than this share of the largest one are specks.
SPECK_RATIO = 0.05


@dataclass(frozen=True)
class Preprocessed:
    """What the model sees.

    Attributes
    ----------
    features : ndarray of shape (64,), uint8, values 0..16
        Row-major 8x8 grid, as one row of ``load_digits().data``.
    inverted : bool
        True when the image had light ink on a dark background.
    """

    features: np.ndarray
    inverted: bool = False

    @property
    def grid(self) -> list[list[int]]:
        """The features as 8 rows of 8 integers (for JSON and display)."""
        return self.features.reshape(8, 8).astype(int).tolist()


def preprocess(
    data: bytes | np.ndarray, *, max_pixels: int = MAX_PIXELS, work_size: int = WORK_SIZE
) -> Preprocessed:
    """Turn an upload (bytes) or a greyscale array into the model's input.

    Parameters
    ----------
    data : bytes or ndarray of shape (height, width)
        Encoded image bytes, or greyscale pixels on 0..1 (0 black, 1 white).
    max_pixels, work_size : int
        Passed to :func:`~predicciones.ml.decoding.decode_image`.

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
    else:
        gray = decode_image(data, max_pixels=max_pixels, work_size=work_size)
    ink, inverted = ink_map(gray)
    mask = digit_mask(ink)
    return Preprocessed(features=bitmap_to_features(fit_to_bitmap(mask)), inverted=inverted)


def ink_map(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Return ink strength on 0..1 (background ~0) and whether the polarity was light-on-dark.

    The background is the majority of pixels, so the polarity is whichever side of the
    median holds the longer tail. A large-scale background estimate is subtracted so that
    a lighting gradient or a shadow does not become ink.
    """
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise NoDigitError()
    lo, med, hi = np.percentile(gray, (1, 50, 99))
    if hi - lo < MIN_CONTRAST:
        raise NoDigitError()
    inverted = (hi - med) > (med - lo)
    x = gray if inverted else 1.0 - gray
    background = _background(x)
    ink = np.clip(x - background, 0.0, None)
    peak = float(np.percentile(ink, 99.5))
    if peak < MIN_CONTRAST:
        raise NoDigitError()
    return np.clip(ink / peak, 0.0, 1.0), bool(inverted)


def _background(x: np.ndarray) -> np.ndarray:
    """Estimate the slowly varying background level by a grey opening with a large window."""
    size = max(3, min(x.shape) // 3)
    small = x
    factor = 1
    if min(x.shape) > 64:
        factor = min(x.shape) // 64
        small = x[::factor, ::factor]
        size = max(3, size // factor)
    opened = ndimage.grey_opening(small, size=(size, size), mode="nearest")
    opened = ndimage.uniform_filter(opened, size=size, mode="nearest")
    if factor > 1:
        opened = np.asarray(
            Image.fromarray(opened.astype(np.float32), mode="F").resize(
                (x.shape[1], x.shape[0]), Image.Resampling.BILINEAR
            )
        )
    return opened


def digit_mask(ink: np.ndarray) -> np.ndarray:
    """Binary mask of the digit: Otsu threshold, then the main strokes without specks."""
    threshold = otsu_threshold(ink)
    mask = ink > threshold
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        raise NoDigitError()
    areas = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(areas >= SPECK_RATIO * areas.max()) + 1
    mask = np.isin(labels, keep)
    if not mask.any():
        raise NoDigitError()
    return mask


def otsu_threshold(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold on values in 0..1."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mean0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mean1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def fit_to_bitmap(mask: np.ndarray) -> np.ndarray:
    """Crop a mask to its ink, scale it to fill the 32 px height keeping aspect, centre it.

    Returns
    -------
    bitmap : ndarray of shape (32, 32), float, values in [0, 1]
        Share of each bitmap pixel covered by ink.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = crop.shape
    scale = BITMAP_SIZE / max(height, width)
    new_h = max(1, min(BITMAP_SIZE, round(height * scale)))
    new_w = max(1, min(BITMAP_SIZE, round(width * scale)))
    img = Image.fromarray((crop * 255).astype(np.uint8), mode="L")
    scaled = np.asarray(img.resize((new_w, new_h), Image.Resampling.BOX), dtype=np.float32) / 255
    bitmap = np.zeros((BITMAP_SIZE, BITMAP_SIZE), dtype=np.float32)
    top = (BITMAP_SIZE - new_h) // 2
    left = (BITMAP_SIZE - new_w) // 2
    bitmap[top : top + new_h, left : left + new_w] = scaled
    return bitmap


def bitmap_to_features(bitmap: np.ndarray) -> np.ndarray:
    """Count ink in 4x4 blocks of a 32x32 bitmap: the 64 integer features 0..16."""
    blocks = bitmap.reshape(8, BLOCK, 8, BLOCK).sum(axis=(1, 3))
    return np.clip(np.rint(blocks), 0, 16).astype(np.uint8).ravel()
