"""Pen-written digits: the carried copies load checked, and strokes are drawn as a pen draws."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from predicciones.ml import sources, strokes
from predicciones.ml.augment import training_features
from predicciones.ml.preprocessing import preprocess
from predicciones.ml.recipe import TRAINING_DISTORTION
from predicciones.ml.strokes import Trace
from predicciones.ml.synth import CANVAS_PEN, CANVAS_SIDE, PEN_STYLES, render


def test_the_data_readme_lists_the_checksums_the_loaders_check():
    text = (sources.DATA_DIR / "README.md").read_text()
    found = re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.M)
    listed = {name: digest for digest, name in found}
    for name, digest in sources.CHECKSUMS.items():
        assert listed[name] == digest, name


def test_a_substituted_data_file_is_refused(tmp_path: Path):
    target = tmp_path / "unipen" / "unipen-1a-digits.npz"
    target.parent.mkdir()
    target.write_bytes((sources.DATA_DIR / "unipen" / "unipen-1a-digits.npz").read_bytes()[:-1])
    with pytest.raises(sources.DataFileError, match="sha256"):
        sources._read_checked("unipen/unipen-1a-digits.npz", tmp_path)


def test_unipen_holds_its_writers_and_groups():
    unipen = sources.load_unipen()
    assert len(unipen.traces) == len(unipen.labels) == sources.N_UNIPEN
    assert len(set(unipen.writer)) == 166
    assert set(unipen.group) == {
        "aga", "apa", "apb", "app", "art", "ced", "gmd", "ibm", "syn", "uqb"
    }  # fmt: skip
    assert (unipen.group == "gmd").sum() == 1145
    assert all(w.startswith(g + "-") for w, g in zip(unipen.writer, unipen.group, strict=True))
    # Multi-stroke digits keep their strokes apart (a crossed 7, a 4 in two strokes).
    assert max(len(t.strokes) for t in unipen.traces) >= 3
    assert np.bincount(unipen.labels).min() > 1000


def test_pendigits_is_one_eight_point_path_a_digit():
    pen = sources.load_pendigits()
    assert len(pen.traces) == len(pen.labels) == sources.N_PENDIGITS
    assert {len(t.strokes) for t in pen.traces[:100]} == {1}
    assert {len(t.strokes[0]) for t in pen.traces[:100]} == {8}
    # y pointed up in the file: after the flip the first point of a 1 is at its top.
    one = pen.traces[np.flatnonzero(pen.labels == 1)[0]].normalised().strokes[0]
    assert one[0, 1] < one[-1, 1]


def test_a_stroke_is_drawn_with_round_caps_of_the_pens_width():
    dot = strokes.draw(Trace.from_points([[(0, 0)]]), height=10, width=9, margin=3)
    ink = dot > 0.5
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert rows.size == cols.size == 9  # a round dot 9 px across
    assert not ink[rows[0], cols[0]] and ink[rows[4], cols[4]]  # no square corner
    bar = strokes.draw(Trace.from_points([[(0, 0), (0, 1)]]), height=40, width=6)
    assert round(float((bar > 0.5).sum(axis=1).max())) == 6
    assert ((bar > 0) & (bar < 1)).any()  # anti-aliased edges, as a canvas draws them


def test_pen_ups_are_not_drawn():
    # Two vertical strokes side by side: nothing between them.
    pair = Trace.from_points([[(0, 0), (0, 1)], [(1, 0), (1, 1)]])
    ink = strokes.draw(pair, height=40, width=4, margin=2) > 0.5
    middle = ink[:, ink.shape[1] // 2]
    assert not middle.any()


def test_distorting_keeps_the_strokes_and_is_seeded():
    seven = Trace.from_points([[(0, 0), (1, 0), (0.4, 1)], [(0.2, 0.5), (0.8, 0.5)]])
    a = strokes.distort(seven, np.random.default_rng(3))
    b = strokes.distort(seven, np.random.default_rng(3))
    assert [s.shape for s in a.strokes] == [s.shape for s in seven.strokes]
    for x, y in zip(a.strokes, b.strokes, strict=True):
        np.testing.assert_array_equal(x, y)
    moved = np.abs(a.normalised().points - seven.normalised().points).max()
    assert 0 < moved < 0.5


def test_a_canvas_drawing_is_sent_as_the_page_sends_it():
    four = Trace.from_points([[(0.6, 0), (0, 0.65), (0.95, 0.65)], [(0.65, 0.3), (0.65, 1)]])
    data = render(four, "canvas", np.random.default_rng(0))
    img = Image.open(io.BytesIO(data))
    assert (img.format, img.mode, img.size) == ("PNG", "RGBA", (CANVAS_SIDE, CANVAS_SIDE))
    gray = np.asarray(img.convert("L"), dtype=np.float32) / 255
    ink = gray < 0.5
    # The stem's width, a few rows below the bar: the pad's pen, 18 px.
    rows = np.flatnonzero(ink.any(axis=1))
    low = ink[rows[-1] - 30]
    assert abs(int(low.sum()) - CANVAS_PEN) <= 3
    assert preprocess(data).features.sum() > 0


@pytest.mark.parametrize("style", PEN_STYLES)
def test_every_style_reads_a_trace(style):
    unipen = sources.load_unipen()
    for i in (0, 1):
        data = render(unipen.traces[i], style, np.random.default_rng(i))
        assert preprocess(data).features.max() > 8


def test_pen_rows_are_seeded_per_digit_and_do_not_depend_on_the_processes():
    traces = sources.load_unipen().traces[:6]
    one = training_features(traces, n_augment=2, seed=1, distortion=TRAINING_DISTORTION)
    two = training_features(traces, n_augment=2, seed=1, distortion=TRAINING_DISTORTION, n_jobs=2)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(one[0]) == 18 and set(one[2]) == {0, 1, 2}
    # Each copy is another drawing of the digit, not the same row again.
    assert len({row.tobytes() for row in one[0][:3]}) == 3


def test_continental_forms_add_a_flag_a_bar_and_a_slash():
    rng = np.random.default_rng(0)
    stem = Trace.from_points([[(0.5, 0.0), (0.5, 1.0)]])
    flagged = strokes.continental(stem, 1, rng).normalised()
    start, top = flagged.strokes[0][0], flagged.strokes[0][1]
    assert start[0] < top[0] and start[1] > top[1]  # the flag runs down and to the left
    assert np.hypot(*(start - top)) >= 0.25
    seven = Trace.from_points([[(0, 0), (1, 0), (0.4, 1)]])
    crossed = strokes.continental(seven, 7, rng).normalised()
    bar = crossed.strokes[-1]
    assert len(crossed.strokes) == 2 and bar[0, 1] == bar[1, 1] and 0.4 < bar[0, 1] < 0.7
    ring = Trace.from_points([np.column_stack([np.cos(t), np.sin(t)]) for t in [np.arange(32)]])
    slashed = strokes.continental(ring, 0, rng).normalised()
    outline, slash = slashed.strokes
    low, high = outline.min(axis=0), outline.max(axis=0)
    # From past the top right of the outline to past its bottom left.
    assert slash[0, 0] > high[0] and slash[0, 1] < low[1]
    assert slash[1, 0] < low[0] and slash[1, 1] > high[1]
    assert strokes.continental(stem, 4, rng) is stem
