"""Uploads that are not safe, real images are refused with the right error, before decoding."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest

from predicciones.ml.decoding import decode_image, decode_upload, sniff_format
from predicciones.ml.exceptions import (
    ImageTooLargeError,
    NoDigitError,
    UnreadableImageError,
    UnsupportedImageError,
)
from predicciones.ml.preprocessing import preprocess

from .conftest import digit_coverage, encode, paint


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with one tiny (invalid) data chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x00" * 16)


def test_empty_upload_is_unreadable():
    with pytest.raises(UnreadableImageError):
        preprocess(b"")


def test_text_is_unsupported():
    with pytest.raises(UnsupportedImageError):
        preprocess(b"hello, this is not an image at all")


def test_pdf_is_unsupported():
    with pytest.raises(UnsupportedImageError):
        preprocess(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_unreadable(fmt):
    data = encode(paint(digit_coverage(2)), fmt)
    with pytest.raises(UnreadableImageError):
        preprocess(data[: len(data) // 3])


def test_decompression_bomb_is_refused_from_the_header():
    data = png_header_only(60_000, 60_000)  # 3.6 gigapixels declared in 60 bytes
    started = time.perf_counter()
    with pytest.raises(ImageTooLargeError):
        preprocess(data)
    assert time.perf_counter() - started < 1.0  # nothing was decoded


def test_pixel_ceiling_is_configurable():
    data = encode(paint(digit_coverage(2, canvas=(300, 300))))
    with pytest.raises(ImageTooLargeError):
        preprocess(data, max_pixels=200 * 200)


def test_blank_image_has_no_digit():
    with pytest.raises(NoDigitError):
        preprocess(encode(np.full((100, 100), 0.9)))


def test_noise_only_image_has_no_digit():
    noise = 0.9 + np.random.default_rng(0).normal(0, 0.01, (120, 120))
    with pytest.raises(NoDigitError):
        preprocess(encode(noise))


def test_formats_are_sniffed_from_bytes_not_names():
    gray = paint(digit_coverage(2))
    assert sniff_format(encode(gray, "PNG")) == "PNG"
    assert sniff_format(encode(gray, "JPEG")) == "JPEG"
    assert sniff_format(encode(gray, "WEBP")) == "WEBP"
    assert sniff_format(b"GIF89a....") == "GIF"
    assert sniff_format(b"<svg></svg>") is None


def test_large_images_are_decoded_small():
    data = encode(paint(digit_coverage(2, canvas=(3000, 4000), height=2000)), "JPEG")
    gray = decode_image(data)
    assert max(gray.shape) <= 400
    assert gray.dtype == np.float32 and 0.0 <= gray.min() <= gray.max() <= 1.0


def test_large_jpeg_keeps_a_finer_copy_for_a_small_digit():
    data = encode(paint(digit_coverage(2, canvas=(3000, 4000), height=100)), "JPEG")
    decoded = decode_upload(data)
    assert max(decoded.gray.shape) <= 400
    assert 700 <= max(decoded.detail.size) <= 1536
    assert decoded.scale * decoded.gray.shape[1] == pytest.approx(decoded.detail.size[0], rel=0.02)
    region = decoded.detail_gray((0, 0, 100, 80), reduce=2)
    assert region.shape == (40, 50) and region.dtype == np.float32


def test_small_picture_has_no_finer_copy():
    decoded = decode_upload(encode(paint(digit_coverage(2)), "JPEG"))
    assert decoded.detail is None and decoded.scale == 1.0


def test_colour_jpeg_whose_luminance_hides_the_ink_is_read_in_colour():
    # Green ink on mauve paper of the same luminance: invisible in grey, plain in red.
    rgb = paint(digit_coverage(3), ink=(0.2, 0.7, 0.2), paper=(0.75, 0.45, 0.6))
    data = encode(rgb, "JPEG", quality=92)
    luminance = decode_image(encode(rgb, "JPEG", quality=92, mode="L"))
    with pytest.raises(NoDigitError):
        preprocess(luminance)
    gray = decode_image(data)
    assert np.ptp(gray) > 3 * np.ptp(luminance)
    assert preprocess(data).features.sum() > 100
