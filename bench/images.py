"""Deterministic benchmark images: the same digit at the sizes and formats clients send.

Each image is a dark "7" on light, slightly noisy paper, drawn with a pen width that scales
with the picture, so that every size exercises the full preprocessing path (polarity,
background, threshold, crop), not a shortcut for blank images.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

#: name -> (width, height, format, what it stands for). The keys are the table's row names.
MODEL_SIDE_IMAGES = {
    "28 px PNG": (28, 28, "PNG", "an MNIST-like crop"),
    "280 px PNG scan": (280, 280, "PNG", "a scanned form cell"),
    "640x480 JPEG": (640, 480, "JPEG", "a web-camera photo"),
    "4000x3000 JPEG": (4000, 3000, "JPEG", "a 12 MP phone photo"),
}

#: What the HTTP runs upload: a small JPEG like the test/digit_<n>.jpg samples.
HTTP_IMAGE = (200, 200, "JPEG", "the sample images' size")


def digit_image(width: int, height: int, fmt: str, *, seed: int = 0) -> bytes:
    """A handwritten-looking "7" centred on a ``width`` x ``height`` page, encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    paper = 225 + rng.normal(0, 6, size=(height, width))
    img = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8), mode="L")
    draw = ImageDraw.Draw(img)
    side = min(width, height)
    s = side / 200
    cx, cy = width / 2, height / 2
    pen = max(2, round(14 * s))
    draw.line([(cx - 45 * s, cy - 65 * s), (cx + 45 * s, cy - 65 * s)], fill=25, width=pen)
    draw.line([(cx + 45 * s, cy - 65 * s), (cx - 10 * s, cy + 70 * s)], fill=25, width=pen)
    draw.line([(cx - 20 * s, cy + 2 * s), (cx + 30 * s, cy + 2 * s)], fill=25, width=pen)
    buffer = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(buffer, format="JPEG", quality=90)
    else:
        img.save(buffer, format=fmt)
    return buffer.getvalue()


def model_side_images() -> dict[str, bytes]:
    return {name: digit_image(w, h, fmt) for name, (w, h, fmt, _) in MODEL_SIDE_IMAGES.items()}


def http_image() -> bytes:
    width, height, fmt, _ = HTTP_IMAGE
    return digit_image(width, height, fmt)
