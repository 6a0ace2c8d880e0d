"""Uploads that are not safe, real images are refused with the right error, before decoding."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest

from predicciones.ml.decoding import decode_upload, sniff_format
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
    gray = decode_upload(data).gray
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
    luminance = decode_upload(encode(rgb, "JPEG", quality=92, mode="L")).gray
    with pytest.raises(NoDigitError):
        preprocess(luminance)
    gray = decode_upload(data).gray
    assert np.ptp(gray) > 3 * np.ptp(luminance)
    assert preprocess(data).features.sum() > 100


# --- What a decode may cost, by format --------------------------------------------------------
def _flat(mode: str, size: tuple[int, int], fmt: str, **params) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, 250 if mode in {"L", "P"} else (250,) * len(mode)).save(
        buffer, format=fmt, **params
    )
    return buffer.getvalue()


def test_images_decoded_at_full_size_have_the_lower_cap():
    from predicciones.ml.decoding import MAX_FULL_DECODE_PIXELS, open_image

    assert MAX_FULL_DECODE_PIXELS == 4_000_000
    for fmt in ["PNG", "GIF", "TIFF", "BMP", "WEBP"]:
        open_image(_flat("L", (2560, 1440), fmt)).close()  # a screenshot: accepted
        open_image(_flat("L", (2000, 2000), fmt)).close()  # 4.0 MP: accepted
        with pytest.raises(ImageTooLargeError, match=r"at most 4 megapixels .* PNG, GIF"):
            open_image(_flat("L", (2001, 2000), fmt))
    with pytest.raises(ImageTooLargeError):
        open_image(_flat("L", (2001, 2000), "JPEG", progressive=True))


def test_pictures_with_alpha_decoded_at_full_size_have_three_quarters_of_the_cap():
    from predicciones.ml.decoding import open_image

    for fmt in ["PNG", "TIFF", "WEBP"]:
        open_image(_flat("RGBA", (2000, 1500), fmt)).close()  # 3.0 MP: accepted
        open_image(_flat("RGB", (2000, 2000), fmt)).close()  # no alpha: the whole cap
        with pytest.raises(ImageTooLargeError, match=r"at most 3 megapixels .* transparency"):
            open_image(_flat("RGBA", (2001, 1500), fmt))
    with pytest.raises(ImageTooLargeError, match=r"at most 2\.25 megapixels"):
        open_image(_flat("LA", (2000, 1500), "PNG"), max_full_decode_pixels=3_000_000)


def test_a_baseline_jpeg_keeps_the_higher_cap_and_is_decoded_small():
    from predicciones.ml.decoding import MAX_PIXELS, open_image

    assert MAX_PIXELS == 16_000_000
    data = _flat("L", (4000, 4000), "JPEG")  # 16 MP
    open_image(data).close()
    open_image(_flat("L", (4608, 3456), "JPEG")).close()  # a 16 MP phone photo
    with pytest.raises(ImageTooLargeError, match="16 for other JPEGs"):
        open_image(_flat("L", (4001, 4000), "JPEG"))
    with pytest.raises(NoDigitError):  # decoded (at 1/4 scale), blank
        preprocess(data)


def test_both_caps_can_be_set():
    from predicciones.ml.decoding import open_image

    png = _flat("L", (2000, 2000), "PNG")
    with pytest.raises(ImageTooLargeError):
        open_image(png, max_full_decode_pixels=3_000_000)
    jpeg = _flat("L", (2000, 2000), "JPEG")
    open_image(jpeg, max_full_decode_pixels=1_000_000).close()  # baseline: the other cap
    with pytest.raises(ImageTooLargeError):
        open_image(jpeg, max_pixels=3_000_000)


def test_a_progressive_jpeg_of_more_than_32_scans_is_refused_before_decoding():
    from harness.hostile import jpeg_scans

    with pytest.raises(UnreadableImageError, match="more than 32 scans"):
        preprocess(jpeg_scans(23))  # 10 of its own + 23
    with pytest.raises(NoDigitError):
        preprocess(jpeg_scans(22))  # 32 scans: decoded (blank)
    started = time.process_time()
    with pytest.raises(UnreadableImageError):
        preprocess(jpeg_scans(80_000))  # unbounded, this would take about 15 s of CPU
    assert time.process_time() - started < 1


def test_a_one_bit_png_is_decoded_not_refused():
    """Image.reduce() refuses mode "1": a large black-and-white scan was a 400."""
    from PIL import Image, ImageDraw

    img = Image.new("1", (1200, 1600), 1)
    ImageDraw.Draw(img).line([(400, 400), (800, 400), (550, 1200)], fill=0, width=60)
    import io

    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    assert preprocess(buffer.getvalue()).features.sum() > 0


def test_large_decodes_are_recognised_from_the_header():
    from predicciones.ml.decoding import Header, is_large

    assert not is_large(Header("PNG", 900, 1000, True, 10_000))
    assert is_large(Header("PNG", 1000, 1000, True, 10_000))
    assert not is_large(Header("JPEG", 4000, 3000, False, 1_500_000))  # a phone photo
    assert is_large(Header("JPEG", 4000, 3000, False, 3_000_000))  # 2 MiB or more
    assert is_large(Header("JPEG", 5000, 4000, False, 500_000))  # 20 MP


def test_the_admission_sees_the_header_and_its_refusal_goes_through():
    from predicciones.ml.decoding import decode_upload

    class Refused(Exception):
        pass

    seen = []

    def refuse(header):
        seen.append(header)
        raise Refused()

    with pytest.raises(Refused):
        decode_upload(_flat("RGB", (1500, 1000), "PNG"), admit=refuse)
    assert (seen[0].format, seen[0].width, seen[0].height, seen[0].full_decode) == (
        "PNG",
        1500,
        1000,
        True,
    )
