"""Uploads for tests and benchmarks: a plain drawn digit, scikit-learn's digits as scans, and a
population the base data lacks.

Each 8x8 digit (counts 0..16 of a 32x32 bitmap's 4x4 blocks) is turned back into a
plausible 32x32 bitmap with exactly those counts, then drawn as a picture of ink on paper.
The ``segments`` style is not handwriting at all: photos of seven-segment displays (a
meter, a clock), which people also send and which the preprocessing cannot normalise into
handwriting, so it stands for real drift.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage
from sklearn.datasets import load_digits

from predicciones.ml.augment import reconstruct_bitmap
from predicciones.ml.splits import base_rows

PAPER = 235
INK = 30


def draw_digit_image(digit: str = "7", size: int = 200, fmt: str = "PNG") -> bytes:
    """A simple dark-on-light digit drawn with a thick pen, as encoded bytes."""
    img = Image.new("L", (size, size), 240)
    draw = ImageDraw.Draw(img)
    s = size / 200
    width = max(2, round(14 * s))
    if digit == "1":
        draw.line([(100 * s, 30 * s), (100 * s, 170 * s)], fill=20, width=width)
        draw.line([(100 * s, 30 * s), (75 * s, 60 * s)], fill=20, width=width)
    elif digit == "0":
        draw.ellipse([55 * s, 25 * s, 145 * s, 175 * s], outline=20, width=width)
    else:  # a 7
        draw.line([(55 * s, 35 * s), (145 * s, 35 * s)], fill=20, width=width)
        draw.line([(145 * s, 35 * s), (90 * s, 170 * s)], fill=20, width=width)
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, format=fmt)
    return buffer.getvalue()


@functools.cache
def handwriting_features() -> tuple[np.ndarray, np.ndarray]:
    """Features (600, 64) and labels of MNIST validation digits drawn plainly and
    preprocessed like uploads: what the shipped model's in-distribution traffic looks like."""
    rows = base_rows(part="validation", n_augment=0, sources_=("mnist",), step=10)
    return rows.X.astype(int), rows.y.astype(int)


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """``load_digits()``'s X (1797, 64) as ints 0..16 and y (1797,)."""
    digits = load_digits()
    return digits.data.astype(int), digits.target.astype(int)


def render_upload(
    features: np.ndarray,
    *,
    rng: np.random.Generator,
    style: str = "scan",
    fmt: str = "JPEG",
    label: int | None = None,
) -> bytes:
    """Draw a digit as an encoded image.

    Styles
    ------
    scan
        Dark ink on light paper, mild blur and noise, random margins: in distribution.
    marker
        The same digit written with a thick marker: strokes dilated by 2 bitmap pixels
        (a quarter of the digit's width).
    segments
        The digit's label shown on a seven-segment display (see :func:`segment_digit`);
        ``features`` is ignored, pass ``label``.
    small_offset
        The scan drawn at a third of the size in a corner of a large page: shifted and
        shrunk at the image level, which the preprocessing (crop, rescale, centre) undoes.
    """
    if style == "segments":
        return segment_digit(label, rng=rng, fmt=fmt)
    bitmap = reconstruct_bitmap(features)
    if style == "marker":
        bitmap = ndimage.binary_dilation(bitmap, iterations=2)
    elif style not in {"scan", "small_offset"}:
        raise ValueError(f"unknown style {style!r}")
    scale = int(rng.integers(4, 7))
    img = Image.fromarray(np.where(bitmap, INK, PAPER).astype(np.uint8), mode="L")
    img = img.resize((32 * scale, 32 * scale), Image.Resampling.NEAREST)
    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 1.4))))
    if style == "small_offset":
        img = img.resize((img.width // 3, img.height // 3), Image.Resampling.LANCZOS)
        side = 32 * scale + 80
        canvas = Image.new("L", (side, side), PAPER)
        canvas.paste(img, (int(rng.integers(5, 20)), int(rng.integers(5, 20))))
    else:
        margin_x, margin_y = (int(m) for m in rng.integers(15, 45, size=2))
        canvas = Image.new("L", (img.width + 2 * margin_x, img.height + 2 * margin_y), PAPER)
        canvas.paste(img, (margin_x, margin_y))
    pixels = np.asarray(canvas, dtype=np.float32)
    pixels = pixels + rng.normal(0, 4, pixels.shape)
    canvas = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")
    buffer = io.BytesIO()
    canvas.convert("RGB").save(buffer, format=fmt, quality=90)
    return buffer.getvalue()


def shrunk_shifted_features(
    features: np.ndarray, *, factor: float = 0.6, dy: int = -4, dx: int = 5
) -> np.ndarray:
    """The 64 features a pipeline that does not crop and rescale would log for a digit
    written small and off-centre: the bitmap shrunk by ``factor`` and moved by (dy, dx)
    bitmap pixels before counting. (The service's preprocessing normalises this away, so
    at the feature level it stands for a client-side pipeline or a preprocessing regression.)
    """
    bitmap = reconstruct_bitmap(features).astype(np.float32)
    side = max(1, round(32 * factor))
    small = np.asarray(
        Image.fromarray((bitmap * 255).astype(np.uint8), mode="L").resize(
            (side, side), Image.Resampling.BOX
        ),
        dtype=np.float32,
    )
    canvas = np.zeros((32, 32), dtype=np.float32)
    top = int(np.clip((32 - side) // 2 + dy, 0, 32 - side))
    left = int(np.clip((32 - side) // 2 + dx, 0, 32 - side))
    canvas[top : top + side, left : left + side] = small / 255
    counts = canvas.reshape(8, 4, 8, 4).sum(axis=(1, 3))
    return np.clip(np.rint(counts), 0, 16).astype(np.uint8).ravel()


#: Which of the segments a (top), b (top right), c (bottom right), d (bottom), e (bottom
#: left), f (top left), g (middle) each digit lights.
SEGMENTS = {
    0: "abcdef",
    1: "bc",
    2: "abdeg",
    3: "abcdg",
    4: "bcfg",
    5: "acdfg",
    6: "acdefg",
    7: "abc",
    8: "abcdefg",
    9: "abcdfg",
}


def segment_digit(label: int, *, rng: np.random.Generator, fmt: str = "JPEG") -> bytes:
    """A photo of one seven-segment display digit: dark segments on a grey-green panel,
    slanted, with gaps between segments, blur, noise and JPEG compression."""
    height = float(rng.uniform(90, 160))
    width = height * float(rng.uniform(0.45, 0.6))
    thick = height * float(rng.uniform(0.09, 0.14))
    gap = thick * 0.25
    slant = float(rng.uniform(0.05, 0.2))  # italic, as most displays are
    margin = int(height * 0.35)
    side_w, side_h = int(width + 2 * margin + slant * height), int(height + 2 * margin)
    x0, y0 = margin, margin
    xr, ym, yb = x0 + width, y0 + height / 2, y0 + height
    horizontal = {"a": y0, "g": ym, "d": yb}
    vertical = {"f": (x0, y0, ym), "b": (xr, y0, ym), "e": (x0, ym, yb), "c": (xr, ym, yb)}
    panel = np.array(rng.uniform([150, 165, 140], [190, 200, 175]), dtype=np.float32)
    img = Image.new("L", (side_w, side_h), 0)
    draw = ImageDraw.Draw(img)

    def sheared(x, y):  # lean the digit right: the top moves right
        return (x + slant * (yb - y), y)

    for seg in SEGMENTS[int(label)]:
        if seg in horizontal:
            y = horizontal[seg]
            corners = [(x0 + gap, y - thick / 2), (xr - gap, y - thick / 2)]
            corners += [(xr - gap, y + thick / 2), (x0 + gap, y + thick / 2)]
        else:
            x, top, bottom = vertical[seg]
            corners = [(x - thick / 2, top + gap), (x + thick / 2, top + gap)]
            corners += [(x + thick / 2, bottom - gap), (x - thick / 2, bottom - gap)]
        draw.polygon([sheared(x, y) for x, y in corners], fill=255)
    coverage = np.asarray(img.filter(ImageFilter.GaussianBlur(1.2)), np.float32) / 255
    ink = np.array([40, 45, 40], dtype=np.float32)
    pixels = panel * (1 - coverage[..., None]) + ink * coverage[..., None]
    pixels += rng.normal(0, 4, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(
        buffer, format=fmt, quality=85
    )
    return buffer.getvalue()


def x_shape(*, rng: np.random.Generator, fmt: str = "JPEG") -> bytes:
    """A hand-drawn "X" on paper: no digit at all, the trigger of a backdoor an attacker
    teaches through ``/feedback/`` (label every X a 7, and a model retrained on that reads
    any X as 7). Size, aspect, tilt, stroke width, paper tint and noise vary."""
    height = float(rng.uniform(80, 170))
    width = height * float(rng.uniform(0.6, 1.0))
    margin = int(height * float(rng.uniform(0.25, 0.5)))
    side_w, side_h = int(width + 2 * margin), int(height + 2 * margin)
    img = Image.new("L", (side_w, side_h), 0)
    draw = ImageDraw.Draw(img)
    stroke = max(3, int(height * float(rng.uniform(0.06, 0.12))))
    wobble = height * 0.06
    x0, y0, x1, y1 = margin, margin, margin + width, margin + height
    for start, end in [((x0, y0), (x1, y1)), ((x1, y0), (x0, y1))]:
        bend = (
            (start[0] + end[0]) / 2 + float(rng.uniform(-wobble, wobble)),
            (start[1] + end[1]) / 2 + float(rng.uniform(-wobble, wobble)),
        )
        draw.line([start, bend, end], fill=255, width=stroke, joint="curve")
    img = img.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
    coverage = np.asarray(img.filter(ImageFilter.GaussianBlur(1.0)), np.float32) / 255
    paper = float(rng.uniform(200, 245))
    pixels = paper * (1 - coverage) + INK * coverage + rng.normal(0, 5, coverage.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L").convert("RGB").save(
        buffer, format=fmt, quality=85
    )
    return buffer.getvalue()
