"""Which ink is the digit: its strokes found by hysteresis, without specks, page edges,
the table around a page, or the printed lines of ruled and squared paper.

The second step of :func:`~predicciones.ml.preprocessing.preprocess`, on the normalised ink
the first step found.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

from .exceptions import NoDigitError

#: Hysteresis thresholds on the peak-normalised ink: strokes are grown from pixels above
#: STRONG into connected pixels above WEAK (faint parts of a stroke survive, noise does not).
STRONG, WEAK = 0.5, 0.25
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
#: Thickest printed line, in pixels of the reduced copy the digit is searched on.
LINE_THICK = 4
#: The tilts (as slopes) at which lines are looked for: every half degree.
LINE_SLOPES = np.tan(np.deg2rad(np.arange(-LINE_TILT, LINE_TILT + 0.01, 0.5)))
#: Blank regions at least this share of the image are paper (:func:`_drop_page_edges`).
PAPER_SHARE = 0.02


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
