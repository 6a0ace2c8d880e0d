"""The digit's normal form: slant removed, scaled and centred, strokes redrawn at one width,
fitted to scikit-learn's 32x32 bitmap and counted in 4x4 blocks into the 8x8 features.

The third step of :func:`~predicciones.ml.preprocessing.preprocess`; training draws pen
strokes with :func:`redraw_strokes` too.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.morphology import skeletonize

from .exceptions import NoDigitError

#: Side of the bitmap the 8x8 grid is counted from, as in scikit-learn's digits.
BITMAP_SIZE = 32
#: Side of one counting block (BITMAP_SIZE / 8).
BLOCK = 4
#: Range of the digit's width in the bitmap (px); its height is always BITMAP_SIZE. A bare
#: stroke (a 1) is widened to MIN_WIDTH; a digit wider than MAX_WIDTH is squeezed.
MIN_WIDTH, MAX_WIDTH = 12, 26
#: Threshold that decides the digit's shape once it is resampled to the normalisation frame.
SHAPE_THRESHOLD = 0.4
#: Largest slant (horizontal shift per unit of height) that deskewing removes.
MAX_SLANT = 0.6
#: Height, in pixels, of the digit in the frame where strokes are redrawn (1.5x the bitmap).
FRAME_HEIGHT = 48
#: Margin around the digit in that frame, room for redrawn strokes.
FRAME_PAD = 6
#: Side of the square frame.
FRAME_SIZE = FRAME_HEIGHT + 2 * FRAME_PAD
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
    # The strokes are redrawn on the shape's box (with room for the pen): what lies beyond
    # is paper either way, and fit_to_bitmap crops to the ink.
    return fit_to_bitmap(normalize_stroke_width(_ink_box(shape, margin=int(STROKE_WIDTH))))


def _ink_box(shape: np.ndarray, margin: int) -> np.ndarray:
    """The shape cropped to its ink, ``margin`` px wider on every side (within the image)."""
    rows = np.flatnonzero(shape.any(axis=1))
    cols = np.flatnonzero(shape.any(axis=0))
    return shape[
        max(0, rows[0] - margin) : rows[-1] + margin + 1,
        max(0, cols[0] - margin) : cols[-1] + margin + 1,
    ]


def _deskewed_frame(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Resample the digit's ink, slant removed, so its larger side spans FRAME_HEIGHT px."""
    ys, xs = np.nonzero(mask)
    w = ink[ys, xs].astype(np.float64)
    total = w.sum()
    cy, cx = (w @ ys) / total, (w @ xs) / total
    dy, dx = ys - cy, xs - cx
    mu02 = (w @ (dy * dy)) / total
    mu11 = (w @ (dx * dy)) / total
    slant = min(max(float(mu11 / mu02), -MAX_SLANT), MAX_SLANT) if mu02 > 1e-6 else 0.0
    # Bounding box after the shear x' = x - slant * (y - cy), in pixel-edge coordinates.
    xd = xs - slant * dy
    y0, y1 = ys.min() - 0.5, ys.max() + 0.5
    x0, x1 = xd.min() - 0.5, xd.max() + 0.5
    scale = FRAME_HEIGHT / max(y1 - y0, x1 - x0)  # frame pixels per source pixel
    src = np.where(mask, ink, np.float32(0)).astype(np.float32, copy=False)
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
    centre = (FRAME_SIZE - 1) / 2
    yc, xc = (y0 + y1) / 2, (x0 + x1) / 2  # centre of the deskewed box, source coordinates
    # Output (v, u) -> source: y = yc + (v - centre) / scale; x = xc + (u - centre) / scale
    # + slant * (y - cy). Then into the reduced grid: (y - y_off) / factor.
    inv = 1.0 / scale
    matrix = np.array([[inv, 0.0], [slant * inv, inv]]) / factor
    top_y = yc - centre * inv  # source row of output row 0
    offset = np.array([top_y - y_off, xc - centre * inv + slant * (top_y - cy) - x_off]) / factor
    # Only output pixels within reach of the ink can be other than 0: a reduced pixel lies
    # within (factor - 1) / 2 source pixels of the ink it holds and bilinear sampling reaches
    # one reduced pixel, so the ink is within 1.5 * factor source pixels along y, and 2.4 *
    # factor along the deskewed x (the shear adds up to MAX_SLANT times the y distance).
    reach_y = (1.5 * factor - 0.5) * scale + 1
    reach_x = ((1 + MAX_SLANT) * 1.5 * factor - 0.5) * scale + 1
    rows = (
        max(0, int(centre + (y0 - yc) * scale - reach_y)),
        min(FRAME_SIZE, int(centre + (y1 - yc) * scale + reach_y) + 2),
    )
    cols = (
        max(0, int(centre + (x0 - xc) * scale - reach_x)),
        min(FRAME_SIZE, int(centre + (x1 - xc) * scale + reach_x) + 2),
    )
    return _affine_bilinear(src, matrix, offset, rows, cols)


_FRAME_GRID = np.arange(FRAME_SIZE, dtype=np.float64)


def _affine_bilinear(
    src: np.ndarray, matrix: np.ndarray, offset: np.ndarray, rows: tuple, cols: tuple
) -> np.ndarray:
    """``ndimage.affine_transform(src, matrix, offset, (FRAME_SIZE, FRAME_SIZE), order=1)``
    for a matrix ``[[a, 0], [c, d]]``, computed over ``rows`` x ``cols`` of the output only
    (0 elsewhere).

    The same arithmetic as scipy's, in the same order (a row's coordinate with the offset,
    plus the column's; weights ``1 - t`` and ``1 - (1 - t)``; the four products summed row
    by row), so the same float32 values: a test checks it against scipy. Coordinates
    outside ``[0, size - 1]`` give 0.
    """
    height, width = src.shape
    out = np.zeros((FRAME_SIZE, FRAME_SIZE), np.float32)
    v, u = _FRAME_GRID[rows[0] : rows[1]], _FRAME_GRID[cols[0] : cols[1]]
    if not v.size or not u.size:
        return out
    y = v * matrix[0, 0] + offset[0]
    x = (v * matrix[1, 0] + offset[1])[:, None] + u * matrix[1, 1]
    inside = ((y >= 0) & (y <= height - 1))[:, None] & (x >= 0) & (x <= width - 1)
    fy, fx = np.floor(y), np.floor(x)
    wy0 = (1.0 - (y - fy))[:, None]
    wy1 = 1.0 - wy0
    wx0 = 1.0 - (x - fx)
    wx1 = 1.0 - wx0
    # Outside the picture the indices are clamped (the value is replaced by 0); at its last
    # row or column the second weight is 0, so which pixel it weighs does not matter.
    iy = np.clip(fy, 0, height - 1).astype(np.intp)
    ix = np.clip(fx, 0, width - 1).astype(np.intp)
    row0 = (iy * width)[:, None]
    row1 = (np.minimum(iy + 1, height - 1) * width)[:, None]
    ix1 = np.minimum(ix + 1, width - 1)
    flat = src.ravel()
    total = (flat[row0 + ix] * wy0) * wx0
    total += (flat[row0 + ix1] * wy0) * wx1
    total += (flat[row1 + ix] * wy1) * wx0
    total += (flat[row1 + ix1] * wy1) * wx1
    total[~inside] = 0.0
    out[rows[0] : rows[1], cols[0] : cols[1]] = total
    return out


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
        # ndimage.minimum_filter(shape, size=square), as its two passes.
        square = 2 * int(keep_deeper_than / np.sqrt(2)) + 1
        core = ndimage.minimum_filter1d(shape, square, axis=0)
        if ndimage.minimum_filter1d(core, square, axis=1).any():
            skeleton |= ndimage.distance_transform_edt(shape) > keep_deeper_than
    return _within(skeleton, width / 2)


#: Dilating by a disc costs about this many scattered pixels before the distance transform,
#: which costs the same at any radius, is cheaper.
_SCATTER_LIMIT = 20_000


def _within(skeleton: np.ndarray, radius: float) -> np.ndarray:
    """``ndimage.distance_transform_edt(~skeleton) <= radius``: the pixels within ``radius``.

    The distance transform measures every pixel's distance to the nearest skeleton pixel;
    for a thin skeleton and a small radius it is cheaper to mark the disc around each
    skeleton pixel (the disc's offsets are those whose distance, computed as the transform
    computes it, is at most ``radius``: the same pixels).
    """
    ys, xs = np.nonzero(skeleton)
    offsets, reach = _disc_offsets(radius, skeleton.shape[1])
    if ys.size * offsets.size > _SCATTER_LIMIT:
        return ndimage.distance_transform_edt(~skeleton) <= radius
    height, width = skeleton.shape
    padded_width = width + 2 * reach
    out = np.zeros((height + 2 * reach) * padded_width, bool)
    centres = (ys + reach) * padded_width + (xs + reach)
    out[(centres[:, None] + offsets).ravel()] = True
    return out.reshape(-1, padded_width)[reach : reach + height, reach : reach + width]


@functools.lru_cache(maxsize=64)
def _disc_offsets(radius: float, width: int) -> tuple[np.ndarray, int]:
    """Flat offsets (rows of ``width + 2 * reach``) of the disc of ``radius``, and its reach."""
    reach = int(radius)
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    inside = np.sqrt((dy * dy + dx * dx).astype(np.float64)) <= radius
    offsets = dy[inside] * (width + 2 * reach) + dx[inside]
    offsets.flags.writeable = False
    return offsets, reach


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
    new_w = min(max(round(width * BITMAP_SIZE / height), MIN_WIDTH), MAX_WIDTH)
    img = Image.frombytes("F", (width, height), crop.astype(np.float32).tobytes())
    scaled = img.resize((new_w, BITMAP_SIZE), Image.Resampling.BOX).tobytes()
    bitmap = np.zeros((BITMAP_SIZE, BITMAP_SIZE), dtype=np.float32)
    left = (BITMAP_SIZE - new_w) // 2
    np.clip(
        np.frombuffer(scaled, np.float32).reshape(BITMAP_SIZE, new_w),
        0.0,
        1.0,
        out=bitmap[:, left : left + new_w],
    )
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
    np.rint(blocks, out=blocks)
    return np.clip(blocks, 0, 16, out=blocks).astype(np.uint8).ravel()
