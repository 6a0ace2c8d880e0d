"""Ink-finding on hand-made pictures: tight crops, printed lines, a digit's bar, noise."""

from __future__ import annotations

import numpy as np
import pytest

from predicciones.ml.exceptions import NoDigitError
from predicciones.ml.preprocessing import _normalise, preprocess


def test_a_stroke_touching_every_edge_is_the_digit_not_a_page_edge():
    # A tight crop of a thick 0: its ring touches all four sides of the picture.
    yy, xx = np.mgrid[0:120, 0:90]
    ring = np.abs(np.hypot((yy - 59.5) / 58, (xx - 44.5) / 43) - 0.86) < 0.14
    gray = np.where(ring, 0.15, 0.92).astype(np.float32)
    bitmap = preprocess(gray).bitmap
    assert bitmap[:, :16].sum() > 40 and bitmap[:, 16:].sum() > 40  # both sides of the 0
    assert bitmap[12:20, 12:20].max() < 0.5  # and its hole stays open


def test_printed_lines_are_not_part_of_the_digit():
    # A 1 written across three ruled lines: the lines are fainter than the pen and span
    # the page; the digit's box is the 1's, not the page's width.
    gray = np.full((200, 300), 0.95, np.float32)
    for row in (50, 100, 150):
        gray[row : row + 2] = 0.7
    gray[30:170, 145:153] = 0.1
    bitmap = preprocess(gray).bitmap
    cols = np.flatnonzero(bitmap.max(axis=0) > 0.5)
    assert cols.size <= 16  # a bare stroke, widened like load_digits' 1s, not a wide box
    rows = np.flatnonzero(bitmap.max(axis=1) > 0.5)
    assert rows[0] <= 1 and rows[-1] >= 30


def test_a_digits_bar_is_not_taken_for_a_printed_line():
    # A tight crop of a 7: its bar runs along the top edge across the whole picture, as
    # dark as the stem.
    gray = np.full((120, 80), 0.93, np.float32)
    gray[0:12, :] = 0.1
    for y in range(12, 120):
        x = int(72 - 0.45 * (y - 12))
        gray[y, max(0, x - 6) : x + 6] = 0.1
    bitmap = preprocess(gray).bitmap
    assert bitmap[:4].sum() > 30  # the bar is still there


def test_paper_noisier_than_any_ink_is_no_digit():
    # Values spread evenly over the whole range: the paper's noise floor lies above 1.
    spread = np.linspace(-1, 1, 1000, dtype=np.float32).reshape(20, 50)
    with pytest.raises(NoDigitError):
        _normalise(spread)
