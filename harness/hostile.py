"""Hostile uploads, generated: files that are not images, lie about their size, or are real
images of no digit, each with the answers the API may give.

Used by the in-process and the real-server hostile-input tests and by the fuzz test's seeds.
Nothing here is read from disk: every file is made from a few bytes in memory.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass

from PIL import Image

from .rendering import draw_digit_image

#: Declared size of the decompression bombs: 4.29 gigapixels, far beyond any limit.
BOMB_SIDE = 65_500
#: The file the pickle upload would create if anything ever unpickled it.
PICKLE_EXPLOIT_MARKER = os.path.join(tempfile.gettempdir(), "digits-pwned-by-pickle")


@dataclass(frozen=True)
class Upload:
    """One hostile file: what to send and which answers are acceptable."""

    name: str
    data: bytes
    filename: str = "upload.jpg"
    allowed: frozenset[int] = frozenset({400})
    content_type: str = "application/octet-stream"

    def __post_init__(self):
        object.__setattr__(self, "allowed", frozenset(self.allowed))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bomb(width: int = BOMB_SIDE, height: int = BOMB_SIDE) -> bytes:
    """A valid PNG header declaring ``width`` x ``height`` greyscale, with a few KB of zeros.

    Fully inflated it would be width*height bytes; only the header may ever be read.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = compressor.compress(row * 64) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def gif_bomb(width: int = 65_535, height: int = 65_535) -> bytes:
    """A GIF whose screen and only frame declare ``width`` x ``height``, with a tiny raster."""
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
    palette = b"\x00\x00\x00\xff\xff\xff"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    # LZW minimum code size 2, one sub-block: clear code then end-of-information.
    raster = b"\x02\x02\x4c\x01\x00"
    return header + palette + descriptor + raster + b"\x3b"


def jpeg_bomb(width: int = BOMB_SIDE, height: int = BOMB_SIDE) -> bytes:
    """A small real JPEG whose SOF0 frame header is rewritten to declare ``width`` x ``height``."""
    data = bytearray(draw_digit_image("7", size=64, fmt="JPEG"))
    sof = data.find(b"\xff\xc0")
    assert sof > 0, "baseline JPEG expected"
    # SOF0: marker(2) length(2) precision(1) height(2) width(2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_bomb(width: int = 6300, height: int = 6300) -> bytes:
    """A lossless WebP whose VP8L header declares ``width`` x ``height`` (the security
    review's 10 KB upload of 40 megapixels that took 0.8 s and 500 MB), with a 1x1 bitstream."""
    data = bytearray(
        encoded(Image.new("RGBA", (1, 1), (250, 250, 250, 255)), "WEBP", lossless=True)
    )
    start = data.find(b"VP8L") + 8  # chunk tag, chunk size, then the 0x2f signature
    assert data[start] == 0x2F, "lossless WebP expected"
    bits = int.from_bytes(data[start + 1 : start + 5], "little")
    bits = (bits & ~0xFFFFFFF) | (width - 1) | ((height - 1) << 14)
    data[start + 1 : start + 5] = bits.to_bytes(4, "little")
    return bytes(data)


def bmp_rle8(width: int, height: int) -> bytes:
    """A valid run-length encoded 8-bit BMP of one grey: 2 bytes per 255 pixels, so a 6300 x
    6300 picture (40 megapixels) fits in 320 KB."""
    row = b"\xff\x01" * (width // 255) + (bytes([width % 255, 1]) if width % 255 else b"")
    pixels = (row + b"\x00\x00") * height + b"\x00\x01"
    palette = b"\x00\x00\x00\x00" + b"\xfa\xfa\xfa\x00" + b"\x00" * 4 * 254
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return head + info + palette + pixels


def jpeg_scans(extra_scans: int, side: int = 64) -> bytes:
    """A progressive JPEG with its smallest scan repeated ``extra_scans`` times more.

    Every scan is a decoding pass over every block, and one that codes nothing but a run of
    empty blocks is 12 bytes: 10 MB of them held a 5-megapixel picture's decoder for over two
    minutes of CPU. libjpeg warns about the odd progression and decodes on.
    """
    data = encoded(Image.new("RGB", (side, side), (240, 240, 240)), "JPEG", progressive=True)
    scans, i = [], 2
    while data[i + 1] != 0xD9:
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if data[i + 1] != 0xDA:
            i += 2 + length
            continue
        end = i + 2 + length
        while not (data[end] == 0xFF and data[end + 1] != 0 and not 0xD0 <= data[end + 1] <= 0xD7):
            end += 1
        scans.append((i, end))
        i = end
    start, end = min(scans, key=lambda scan: scan[1] - scan[0])
    return data[:end] + data[start:end] * extra_scans + data[end:]


def huge_real_png(side: int = 12_000) -> bytes:
    """A real, fully valid ``side`` x ``side`` PNG (white, so it compresses to a few KB)."""
    buffer = io.BytesIO()
    Image.new("1", (side, side), 1).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def encoded(img: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def animated_gif() -> bytes:
    frames = [Image.open(io.BytesIO(draw_digit_image(d, size=120))).convert("P") for d in "170"]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def polyglot_jpeg_zip() -> bytes:
    """A real digit JPEG with a zip archive appended (valid as both), holding a script."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../evil.sh", "#!/bin/sh\necho owned\n")
    return draw_digit_image("7", fmt="JPEG") + archive.getvalue()


def corrupt_jpeg() -> bytes:
    """A real JPEG with a run of its entropy-coded data overwritten by garbage."""
    data = bytearray(draw_digit_image("7", fmt="JPEG"))
    start = data.find(b"\xff\xda") + 20
    for i in range(start, min(len(data) - 4, start + 400), 3):
        data[i] = (data[i] * 31 + 7) % 256
    return bytes(data)


class _Exploit:
    """Unpickling this would run a command; the service must never unpickle an upload."""

    def __reduce__(self):
        return (os.system, (f"touch {PICKLE_EXPLOIT_MARKER}",))


def corpus_params(uploads: list[Upload]) -> list:
    """pytest parameters, one per upload, named after it."""
    import pytest

    return [pytest.param(upload, id=upload.name) for upload in uploads]


def hostile_uploads() -> list[Upload]:
    """The issue's corpus of hostile files, generated."""
    seven_png = draw_digit_image("7")
    seven_jpeg = draw_digit_image("7", fmt="JPEG")
    blank = Image.new("L", (200, 200), 255)
    no_digit = {400, 422}
    bad_or_digit = {200, 400, 422}
    return [
        Upload("zero-byte", b"", "empty.jpg", {400}),
        Upload("text-named-jpg", b"Just some text, not an image.\n" * 20, "notes.jpg", {415}),
        Upload("pickle-named-jpg", pickle.dumps(_Exploit()), "model.jpg", {415}),
        Upload("truncated-jpeg", seven_jpeg[: len(seven_jpeg) // 2], "cut.jpg", {400}),
        Upload("header-only-jpeg", seven_jpeg[:200], "header.jpg", {400}),
        Upload("corrupt-jpeg", corrupt_jpeg(), "corrupt.jpg", bad_or_digit),
        Upload("png-bomb", png_bomb(), "bomb.png", {413}),
        Upload("gif-bomb", gif_bomb(), "bomb.gif", {413}),
        Upload("jpeg-bomb", jpeg_bomb(), "bomb.jpg", {413}),
        Upload("png-12000x12000", huge_real_png(), "huge.png", {413}),
        Upload("random-20MB", os.urandom(20 * 1024 * 1024), "noise.jpg", {413}),
        Upload("random-1MB", os.urandom(1024 * 1024), "noise.jpg", {415}),
        Upload(
            "svg",
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" '
            b'height="100"><text x="10" y="80" font-size="80">7</text>'
            b'<image href="file:///etc/passwd"/></svg>',
            "digit.svg",
            {415},
        ),
        Upload(
            "pdf",
            b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
            "digit.pdf",
            {415},
        ),
        Upload("animated-gif", animated_gif(), "anim.gif", {200}),
        Upload("1x1-png", encoded(Image.new("L", (1, 1), 0), "PNG"), "dot.png", no_digit),
        Upload(
            "10000x10-png",
            encoded(Image.new("L", (10_000, 10), 200), "PNG"),
            "w.png",
            no_digit,
        ),
        Upload(
            "10000x10-with-ink",
            encoded(_streak(10_000, 10), "PNG"),
            "streak.png",
            bad_or_digit,
        ),
        Upload("all-white", encoded(blank, "PNG"), "white.png", no_digit),
        Upload("all-black", encoded(Image.new("L", (200, 200), 0), "JPEG"), "black.jpg", no_digit),
        Upload("polyglot-jpeg-zip", polyglot_jpeg_zip(), "poly.jpg", {200}),
        Upload("bmp-header-only", b"BM" + b"\x00" * 60, "x.bmp", {400}),
        Upload("tiff-header-only", b"II*\x00" + b"\xff" * 60, "x.tiff", {400}),
        Upload("webp-header-only", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8, "x.webp", {400}),
        Upload("png-named-exe", seven_png, "setup.exe", {200}),
        # Decode cost: pixels decoded at full size are capped lower than a JPEG's.
        Upload("webp-lossless-6300x6300", webp_bomb(), "bomb.webp", {413}),
        Upload("bmp-rle8-6300x6300", bmp_rle8(6300, 6300), "runs.bmp", {413}),
        Upload("png-2300x2300", _flat("L", 2300, "PNG", compress_level=1), "big.png", {413}),
        Upload("gif-2300x2300", _flat("P", 2300, "GIF"), "big.gif", {413}),
        Upload(
            "tiff-float-2300x2300",
            _flat("F", 2300, "TIFF", compression="tiff_adobe_deflate"),
            "big.tif",
            {413},
        ),
        Upload(
            "progressive-jpeg-2300x2300",
            _flat("RGB", 2300, "JPEG", progressive=True),
            "big.jpg",
            {413},
        ),
        Upload("jpeg-80000-scans", jpeg_scans(80_000), "scans.jpg", {400}),
        Upload("jpeg-33-scans", jpeg_scans(33 - 10), "scans.jpg", {400}),
        Upload("jpeg-32-scans", jpeg_scans(32 - 10), "scans.jpg", no_digit),
        Upload("png-1bit-2000x2000", _flat("1", 2000, "PNG"), "bits.png", no_digit),
        Upload(
            "png-rgba-1732x1732",
            _flat("RGBA", 1732, "PNG", compress_level=1),
            "large.png",
            no_digit,
        ),
        Upload("png-rgba-1800x1800", _flat("RGBA", 1800, "PNG"), "large.png", {413}),
        Upload("png-rgb-2000x2000", _flat("RGB", 2000, "PNG"), "large.png", no_digit),
        Upload("jpeg-4000x4000", _flat("L", 4000, "JPEG"), "large.jpg", no_digit),
        Upload("jpeg-6000x6000", _flat("L", 6000, "JPEG"), "large.jpg", {413}),
    ]


#: ``model`` values that name no registered version, each a 404 (a 400 for a malformed form):
#: paths, control characters, and version numbers that are not plain ASCII digits
#: (``str.isdigit()`` accepts superscripts, which ``int()`` refuses, and other scripts'
#: digits, which ``int()`` reads).
HOSTILE_MODEL_REFS = {
    "dotdot": "../clf.pickle",
    "dotdot-real-path": "../../digits_model/model/clf.pickle",
    "etc-passwd": "/etc/passwd",
    "nul": "clf.pickle\x00.jpg",
    "version-dotdot": "clf.pickle:../../1",
    "urlencoded": "..%2F..%2Fetc%2Fpasswd",
    "crlf": "clf.pickle\r\nX-Injected: 1",
    "5000-chars": "x" * 5000,
    "unicode-name": "\u2102\U0001d55d\U0001d557.pickle",
    "slashes": "clf.pickle/../../x",
    "superscript-two": "clf.pickle:\u00b2",
    "superscript-one": "clf.pickle:\u00b9",
    "arabic-indic-one": "clf.pickle:\u0661",
    "fullwidth-one": "clf.pickle:\uff11",
    "devanagari-one": "clf.pickle:\u0967",
    "circled-one": "clf.pickle:\u2460",
    "version-plus": "clf.pickle:+1",
    "version-minus": "clf.pickle:-1",
    "version-underscore": "clf.pickle:1_0",
    "version-space": "clf.pickle: 1",
    "version-exponent": "clf.pickle:1e3",
    "version-hex": "clf.pickle:0x1",
    "version-10-digits": "clf.pickle:1234567890",
    "version-empty": "clf.pickle:",
    "version-twice": "clf.pickle:1:1",
    "version-only": ":1",
}


FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Body:
    """One hostile request body for a JSON or form endpoint, and the answers allowed."""

    name: str
    data: bytes
    content_type: str = "application/json"
    allowed: frozenset[int] = frozenset({400})

    def __post_init__(self):
        object.__setattr__(self, "allowed", frozenset(self.allowed))


def hostile_feedback_bodies() -> list[Body]:
    """Bodies for ``POST /feedback/``: deep nesting (Python's JSON decoder recursed into a
    500), numbers and digits that are not what they look like, wrong shapes, broken
    encodings. None names a logged prediction, so none may be a 200."""
    unknown = "00000000-0000-4000-8000-000000000000"

    def doc(**fields) -> bytes:
        return json.dumps({"query_id": unknown, "label": 7, **fields}).encode()

    return [
        Body("deep-list-100000", b"[" * 100_000 + b"]" * 100_000),
        Body("deep-list-unclosed", b"[" * 100_000),
        Body("deep-object-50000", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        Body("deep-in-a-field", b'{"query_id": ' + b"[" * 5_000 + b"]" * 5_000 + b', "label": 7}'),
        Body("nested-9-levels", b'{"query_id": ' + b"[" * 8 + b"]" * 8 + b', "label": 7}'),
        Body("top-level-list", b"[1, 2, 3]"),
        Body("top-level-string", b'"hello"'),
        Body("top-level-null", b"null"),
        Body("label-superscript", doc(label="\u00b2")),
        Body("label-arabic-indic", doc(label="\u0667"), allowed={400, 404}),
        Body("label-float", doc(label=7.5)),
        Body("label-huge-exponent", doc(query_id=unknown).replace(b"7}", b"1e999}")),
        Body("label-nan", doc(query_id=unknown).replace(b"7}", b"NaN}")),
        Body("label-5000-digits", doc(query_id=unknown).replace(b"7}", b"9" * 5000 + b"}")),
        Body("label-list", doc(label=[7])),
        Body("label-object", doc(label={"value": 7})),
        Body("label-negative", doc(label=-1)),
        Body("label-bool", doc(label=True)),
        Body("query-id-superscript", doc(query_id="\u00b2" * 36)),
        Body("query-id-number", doc(query_id=12345678901234567890), allowed={400, 404}),
        Body("query-id-object", doc(query_id={"id": unknown})),
        Body("unknown-query-id", doc(), allowed={404}),
        Body("invalid-utf8", b'{"query_id": "\xff\xfe", "label": 7}'),
        Body("utf16-with-bom", doc().decode().encode("utf-16")),
        Body("duplicate-keys", b'{"label": 7, "label": 70, "query_id": "x"}'),
        Body("truncated", doc()[:-5]),
        Body("empty", b""),
        Body("form-label-superscript", b"query_id=x&label=%C2%B2", FORM),
        Body("form-deep-brackets", b"query_id" + b"[" * 5000 + b"=1&label=7", FORM),
    ]


def _flat(mode: str, side: int, fmt: str, **params) -> bytes:
    """A ``side`` x ``side`` picture of one pale colour: a few KB, however many pixels."""
    colour = {"RGBA": (250, 250, 250, 255), "RGB": (250, 250, 250), "F": 0.98, "1": 1}
    return encoded(Image.new(mode, (side, side), colour.get(mode, 250)), fmt, **params)


def _streak(width: int, height: int) -> Image.Image:
    img = Image.new("L", (width, height), 230)
    img.paste(20, (width // 2 - 3, 0, width // 2 + 3, height))
    return img
