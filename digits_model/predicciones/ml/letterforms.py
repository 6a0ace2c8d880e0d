"""Letterforms many European writers use and MNIST's writers rarely do, as pen strokes.

Each form is a few strokes in a unit box (x to the right, y down), written as a person
would: a 1 with a long flag and a foot, a crossed 7, an open 4, a 9 with a straight stem, a
2 with a loop, a slashed 0 (and a 1 with a long flag alone, the form read as a 7 most
often). ``tests/ml/test_letterforms.py`` and ``make eval`` draw them in several upload
styles; ``tests/e2e/test_page.py`` draws them with the mouse on the page's pad.
"""

from __future__ import annotations

import numpy as np

from .strokes import Trace


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 24):
    angles = np.deg2rad(np.linspace(start, stop, n))
    return list(zip(cx + rx * np.cos(angles), cy + ry * np.sin(angles), strict=True))


#: name -> (digit, strokes).
LETTERFORMS = {
    "1 with a long flag and a foot": (
        1,
        [[(0.15, 0.38), (0.55, 0.0), (0.55, 1.0)], [(0.2, 1.0), (0.9, 1.0)]],
    ),
    "1 with a long flag": (1, [[(0.1, 0.45), (0.6, 0.0), (0.6, 1.0)]]),
    "crossed 7": (7, [[(0.05, 0.05), (0.95, 0.05), (0.35, 1.0)], [(0.3, 0.52), (0.9, 0.52)]]),
    "open 4": (4, [[(0.3, 0.0), (0.05, 0.6), (0.95, 0.6)], [(0.72, 0.15), (0.72, 1.0)]]),
    "9 with a straight stem": (
        9,
        [_arc(0.5, 0.27, 0.38, 0.27, -10, 350), [(0.88, 0.2), (0.88, 1.0)]],
    ),
    "2 with a loop": (
        2,
        [
            [
                (0.1, 0.25),
                (0.3, 0.04),
                (0.65, 0.02),
                (0.88, 0.2),
                (0.82, 0.45),
                (0.45, 0.75),
                (0.2, 0.92),
                (0.08, 0.8),
                (0.22, 0.72),
                (0.32, 0.85),
                (0.4, 0.97),
                (0.95, 0.95),
            ]
        ],
    ),
    "slashed 0": (0, [_arc(0.5, 0.5, 0.4, 0.5, -90, 270, 40), [(0.95, 0.0), (0.05, 1.0)]]),
}


def letterform(name: str) -> tuple[int, Trace]:
    """The digit and the trace of a named letterform."""
    digit, strokes = LETTERFORMS[name]
    return digit, Trace.from_points(strokes)
