"""Upload bytes -> a small greyscale array, refusing anything that is not a safe, real image.

The format is recognised from the file's own magic bytes (never from a name or a
client-sent content type), the pixel count is checked from the header before any
pixel is decoded, and large JPEGs are decoded at reduced scale (draft mode). A finer copy
of a large picture is kept beside the small one (:class:`Decoded`), so that a small digit
in a large photo can be read again at the resolution it needs.

What a decode may cost is bounded by format. A baseline JPEG is decoded at 1/2 or 1/4
scale, so its pixels cost little memory, but its CPU grows with its bytes (the entropy-coded
data is read whole at any scale) and with its pixels (:data:`MAX_PIXELS`). Every other
format, and a progressive JPEG (which holds all its coefficients until the last scan), is
decoded pixel by pixel at full size, at several bytes a pixel, before anything can be
reduced: a 10 KB lossless WebP of 40 megapixels took 0.8 s of CPU and 500 MB. Those get a
much lower cap (:data:`MAX_FULL_DECODE_PIXELS`), and a progressive JPEG at most
:data:`MAX_JPEG_SCANS` scans (each scan is a pass over every block). Together with the
service's byte limit (4 MiB), the caps keep the costliest upload near 120 ms of CPU;
docs/performance.md has the measurements.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from .exceptions import ImageTooLargeError, UnreadableImageError, UnsupportedImageError

#: Default ceiling on declared width x height of a baseline JPEG, decoded at reduced scale
#: (a 12 or 16 MP phone photo, 4608x3456, fits). At 1/4 scale each megapixel still costs
#: about 2 ms of CPU beside what the bytes cost: a flat 40 MP JPEG of 1 MB, about 110 ms.
MAX_PIXELS = 16_000_000

#: Default ceiling for images decoded at full size: PNG, GIF, BMP, TIFF, WebP and progressive
#: JPEG (a 2560x1440 screenshot, an A4 page scanned at 200 dpi fit). An RGBA PNG this large
#: costs about 120 ms of CPU, the most of any format.
MAX_FULL_DECODE_PIXELS = 4_000_000

#: Share of that ceiling for pictures with an alpha channel (RGBA, LA, PA): compositing them
#: on white costs a full-size pass of their four bytes a pixel more. A 4 MP RGBA PNG took
#: 157 ms of CPU (``make bench``, 2026-12-07), over the 150 ms a decode may cost; at 3 MP
#: (a 2048x1536 picture fits), about 120 ms.
ALPHA_FULL_DECODE_SHARE = 0.75
#: Modes that carry an alpha channel as decoded.
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")

#: Most scans a progressive JPEG may have (an encoder's usual progression has about 10).
MAX_JPEG_SCANS = 32

#: From these sizes a decode counts as large (see :func:`is_large`): work worth queueing.
LARGE_FULL_DECODE_PIXELS = 1_000_000
LARGE_JPEG_PIXELS = 16_000_000
LARGE_BYTES = 2 * 1024 * 1024

#: Long side, in pixels, that decoded images are reduced to before preprocessing (to within
#: a factor 1.5). A 640x480 photo is decoded at 1/2 scale (320x240), so a digit 60 px tall
#: in it keeps 30 px; a ball-point digit 300 px tall with 5 px strokes in a 4000x3000 photo
#: still reads (tests pin both). 192 would be ~15 % faster but costs small photo digits.
WORK_SIZE = 256

#: Long side, in pixels, of the finer copy kept for re-reading a small digit (to within a
#: factor 1.5): a digit 100 px tall in a 4000x3000 photo keeps about 25 px in it.
DETAIL_SIZE = 1024

#: JPEGs are decoded at no less than 1/DETAIL_DRAFT scale: below 1/4 the entropy decoding,
#: which every scale pays in full, dominates, so 1/8 saves almost nothing.
DETAIL_DRAFT = 4

# Pillow's own bomb guard is a module global: set it deliberately so that a declared size
# beyond our ceiling is refused by Pillow too (it raises above twice this value). A larger
# ``max_pixels`` raises it (see _pillow_allows), so the configured ceiling is the one that holds.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _pillow_allows(max_pixels: int) -> None:
    """Make Pillow's global guard at least ``max_pixels``: our own check (the declared size
    against ``max_pixels``, right after opening) is the limit; Pillow's stays a backstop for
    the frames it checks while decoding. Only ever raised, so threads never undercut each
    other."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def sniff_format(data: bytes) -> str | None:
    """Return the Pillow format name the bytes start with, or None if not an accepted one."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    return None


@dataclass(frozen=True)
class Header:
    """What an upload's header says, before any pixel is decoded."""

    format: str
    width: int
    height: int
    #: Every pixel is decoded at full size (all but a baseline JPEG).
    full_decode: bool
    n_bytes: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def is_large(header: Header) -> bool:
    """Whether decoding this upload is large work (about 20 ms of CPU or more): a full-size
    decode of a megapixel or more, a JPEG of 16 megapixels or more, or 2 MiB of data."""
    limit = LARGE_FULL_DECODE_PIXELS if header.full_decode else LARGE_JPEG_PIXELS
    return header.pixels >= limit or header.n_bytes >= LARGE_BYTES


def open_image(
    data: bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    max_full_decode_pixels: int = MAX_FULL_DECODE_PIXELS,
) -> Image.Image:
    """Open (but do not yet decode) an upload, checking format and declared size.

    Raises
    ------
    UnreadableImageError
        Empty bytes, a header Pillow cannot parse, or a JPEG of more than
        :data:`MAX_JPEG_SCANS` scans.
    UnsupportedImageError
        Bytes that are not JPEG, PNG, BMP, GIF, TIFF or WebP.
    ImageTooLargeError
        Declared width x height above ``max_pixels``, or above ``max_full_decode_pixels``
        for an image decoded at full size (see :func:`header_of`), :data:`ALPHA_FULL_DECODE_SHARE`
        of it for one with an alpha channel.
    """
    if not data:
        raise UnreadableImageError("The uploaded file is empty.")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedImageError()
    _pillow_allows(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data" and the like
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses above its global guard, never below max_pixels: over every cap.
        raise ImageTooLargeError(_too_large_message(max_pixels, max_full_decode_pixels)) from exc
    except MemoryError:
        raise
    except Exception as exc:  # Pillow on untrusted bytes raises many types; all mean "corrupt"
        raise UnreadableImageError() from exc
    width, height = img.size
    if width < 1 or height < 1:
        img.close()
        raise UnreadableImageError()
    header = header_of(img, data)
    limit = min(max_pixels, max_full_decode_pixels) if header.full_decode else max_pixels
    if header.full_decode and img.mode in ALPHA_MODES:
        limit = min(limit, int(max_full_decode_pixels * ALPHA_FULL_DECODE_SHARE))
        if header.pixels > limit:
            img.close()
            raise ImageTooLargeError(
                f"The image is too large: at most {limit / 1e6:g} megapixels are accepted for "
                "pictures with transparency. Crop or scale it down, or send a JPEG."
            )
    if header.pixels > limit:
        img.close()
        raise ImageTooLargeError(_too_large_message(max_pixels, max_full_decode_pixels))
    if fmt == "JPEG" and _count_scans(data) > MAX_JPEG_SCANS:
        # Each scan is a decoding pass over every block: a crafted file of thousands of them
        # costs seconds.
        img.close()
        raise UnreadableImageError(
            f"The JPEG has more than {MAX_JPEG_SCANS} scans; save it again as an ordinary JPEG."
        )
    return img


def _count_scans(data: bytes) -> int:
    """The JPEG's start-of-scan markers (0xFF 0xDA), and any of an embedded thumbnail.

    Entropy-coded data never holds an 0xFF 0xDA pair, so these are the scans. Counted with
    numpy: four times faster than ``bytes.count`` on a photo, whose data holds many 0xFF.
    """
    octets = np.frombuffer(data, np.uint8)
    count = 0
    for start in range(0, len(octets) - 1, _SCAN_COUNT_CHUNK):  # a bounded temporary
        part = octets[start : start + _SCAN_COUNT_CHUNK + 1]
        count += int(np.count_nonzero((part[:-1] == 0xFF) & (part[1:] == 0xDA)))
    return count


_SCAN_COUNT_CHUNK = 1 << 20


def header_of(img: Image.Image, data: bytes) -> Header:
    """The :class:`Header` of an opened upload."""
    progressive = img.format == "JPEG" and bool(img.info.get("progressive"))
    return Header(
        format=img.format,
        width=img.size[0],
        height=img.size[1],
        full_decode=img.format != "JPEG" or progressive,
        n_bytes=len(data),
    )


@dataclass(frozen=True)
class Decoded:
    """A decoded upload: the picture at working size, and a finer copy of a large one.

    Attributes
    ----------
    gray : ndarray of shape (height, width), float32, values in [0, 1]
        Long side at most about ``work_size``; 0 is black, 1 is white.
    detail : PIL.Image.Image or None
        The same picture as decoded (colour, or a JPEG's luminance), with a long side of
        about :data:`DETAIL_SIZE` px (or its own, if smaller); None when ``gray`` is the
        picture at its own size.
    scale : float
        Pixels of ``detail`` per pixel of ``gray``, along each axis.
    """

    gray: np.ndarray
    detail: Image.Image | None = None
    scale: float = 1.0

    def detail_gray(self, box: tuple[int, int, int, int], reduce: int = 1) -> np.ndarray:
        """The greyscale of a region of ``detail``, as :func:`decode_upload` makes ``gray``.

        Parameters
        ----------
        box : (left, top, right, bottom)
            In pixels of ``detail``.
        reduce : int
            Box-filter reduction applied to the region first.

        Returns
        -------
        gray : ndarray of shape ((bottom - top) // reduce, (right - left) // reduce), float32
            Values in [0, 1].
        """
        region = self.detail.crop(box)
        return _gray_array(region.reduce(reduce) if reduce > 1 else region)


def decode_upload(
    data: bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    max_full_decode_pixels: int = MAX_FULL_DECODE_PIXELS,
    work_size: int = WORK_SIZE,
    admit: Callable[[Header], AbstractContextManager] | None = None,
) -> Decoded:
    """Decode an upload into a greyscale image on the 0..1 scale, and a finer copy if large.

    EXIF orientation is applied, transparency is composited on white (or, when the
    picture lives only in the alpha channel, the alpha channel is used), palette,
    16-bit, CMYK and other modes are converted, and the result is reduced so that
    its long side is at most ``work_size`` pixels.

    Parameters
    ----------
    data : bytes
        The uploaded file's bytes.
    max_pixels, max_full_decode_pixels : int
        Ceilings on the declared width x height (see :func:`open_image`).
    work_size : int
        Long side of ``gray``, at most (within a factor 1.5).
    admit : callable, optional
        Given the :class:`Header` once it is checked, returns a context manager the pixels
        are decoded inside: a service bounds how many large decodes run at once with it
        (and may raise instead of admitting).

    Returns
    -------
    Decoded
        ``detail`` has a long side of about :data:`DETAIL_SIZE` px, or the picture's own
        when that is smaller.

    Raises
    ------
    UnreadableImageError, UnsupportedImageError, ImageTooLargeError
        As :func:`open_image`, and for pixel data that cannot be decoded.
    """
    limits = {"max_pixels": max_pixels, "max_full_decode_pixels": max_full_decode_pixels}
    img = open_image(data, **limits)
    try:
        # What ``admit`` raises (a service's refusal) goes through untouched.
        with admit(header_of(img, data)) if admit is not None else nullcontext():
            return _decode_pixels(img, work_size, lambda: open_image(data, **limits))
    finally:
        img.close()


def _decode_pixels(img: Image.Image, work_size: int, reopen) -> Decoded:
    """:func:`_load` and :func:`_decode`, every failure of Pillow's an ImageError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data" and the like
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _load(img, work_size, reopen)
            return _decode(img, work_size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError() from exc
    except MemoryError:
        raise
    except Exception as exc:
        # Pillow reports truncated or corrupt data through many exception types (OSError,
        # ValueError, struct.error, TypeError from malformed TIFF tags...): all are "corrupt".
        raise UnreadableImageError() from exc
    finally:
        img.close()


def _load(img: Image.Image, work_size: int, reopen) -> Image.Image:
    """Decode the pixels; a colour JPEG as its luminance unless the ink needs its colours.

    A large JPEG is decoded at 1/2 or 1/4 scale (draft mode). A colour JPEG of moderate size
    (:data:`LUMINANCE_FIRST`) is decoded as luminance first, which spares the decoder its
    colour planes; when the luminance shows less ink contrast than :data:`COLOUR_CONTRAST`
    (red ink on pink paper, faint pencil), it is decoded again in colour (``reopen`` opens
    it anew) for :func:`best_contrast_channel`.
    """
    if img.format != "JPEG":
        img.seek(0)  # first frame of an animated GIF, WebP or multi-page TIFF
        img.load()
        return img
    width, height = img.size
    scale = min(1.0, max(work_size / max(width, height), 1 / DETAIL_DRAFT))
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    # A large photo is decoded in colour at once: its ink may be too small a share of it for
    # the luminance's contrast to show, and at reduced scale colour costs little more.
    if img.mode not in ("RGB", "YCbCr") or min(size) < 64 or max(size) > LUMINANCE_FIRST:
        if scale < 1:
            img.draft(img.mode, size)
        img.load()
        return img
    img.draft("L", size)
    img.load()
    width, height = img.size
    sample = img.resize((width // 2, height // 2), Image.Resampling.NEAREST)
    if _tail_contrast(np.asarray(sample.histogram())) < COLOUR_CONTRAST:
        img.close()
        img = reopen()
        img.draft(img.mode, size)  # colour stays colour: the ink may stand out in one channel
        img.load()
    return img


def _decode(img: Image.Image, work_size: int) -> Decoded:
    if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation: turn the picture upright
        img = ImageOps.exif_transpose(img)
    # Reduce by a whole factor (a fast box filter): the exact size does not matter, only
    # that the long side ends between work_size / 1.5 and 1.5 * work_size.
    factor = int(max(img.size) / work_size + 1 / 3)
    if factor <= 1:
        return Decoded(_gray_array(img))
    if img.mode == "1":
        img = img.convert("L")  # Image.reduce() refuses mode "1"
    elif img.mode not in ("L", "RGB", "RGBA", "I", "F", "CMYK", "LA", "RGBX"):
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    reduce = _reducer(img)
    gray = _gray_array(reduce(factor))
    # The finer copy stays undecoded to grey until a small digit needs it.
    detail_factor = int(max(img.size) / DETAIL_SIZE + 1 / 3)
    detail = reduce(detail_factor) if detail_factor > 1 else img.copy()
    return Decoded(gray, detail, factor / max(1, detail_factor))


def _reducer(img: Image.Image) -> Callable[[int], Image.Image]:
    """``img.reduce``, premultiplying the alpha of an RGBA or LA picture once for both calls.

    ``Image.reduce`` converts RGBA to premultiplied RGBa at full size on every call (and the
    reduced result back): a full pass of four bytes a pixel, a third of a large PNG's
    decoding cost. The same conversions, once: the same pixels.
    """
    if img.mode not in ("RGBA", "LA"):
        return img.reduce
    premultiplied = img.convert({"LA": "La", "RGBA": "RGBa"}[img.mode])
    return lambda factor: premultiplied.reduce(factor).convert(img.mode)


def _gray_array(img: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to float32 luminance on 0..1, compositing alpha on white."""
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if mode.startswith("I;16"):
            lo, hi = 0.0, 65535.0
        elif hi <= lo:
            hi = lo + 1.0
        return np.clip((arr - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        lum = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        composite = lum * alpha + (1.0 - alpha)
        if np.ptp(composite) < 0.05 and np.ptp(alpha) > 0.5:
            # The picture lives in the alpha channel only (e.g. light ink on a transparent
            # canvas): opaque pixels are the ink.
            return (1.0 - alpha).astype(np.float32)
        return composite.astype(np.float32)
    if mode == "L":
        return _unit_scale(img)
    if not mode.startswith(("RGB", "CMYK", "YCbCr", "LAB", "HSV")):  # "1" and other grey modes
        return _unit_scale(img.convert("L"))
    if mode != "RGB":
        img = img.convert("RGB")
    return _unit_scale(best_contrast_channel(img))


def _unit_scale(img: Image.Image) -> np.ndarray:
    """An 8-bit grey picture as float32 on 0..1 (each level times float32(1/255))."""
    return np.multiply(np.asarray(img), np.float32(1 / 255), dtype=np.float32)


#: A colour channel replaces luminance only when its ink contrast is this much larger.
CHANNEL_ADVANTAGE = 1.25

#: Ink contrast (grey levels of 255, see :func:`best_contrast_channel`) at which a colour
#: JPEG's luminance is read as it is: a colour channel could add little to it.
COLOUR_CONTRAST = 96

#: Colour JPEGs decoded to a long side up to this many pixels are tried as luminance first.
LUMINANCE_FIRST = 512


def best_contrast_channel(img: Image.Image) -> Image.Image:
    """The grey view of a colour picture in which the ink stands out most from the paper.

    Luminance is right for dark ink on white paper, but red ink on pink paper or blue ink on
    blue paper can nearly vanish in it while one colour channel still separates them. The
    contrast of a view is how far its 0.2 % or 99.8 % tail lies from its median (the paper).

    Parameters
    ----------
    img : PIL.Image.Image in mode RGB

    Returns
    -------
    PIL.Image.Image in mode L
        Luminance, or the R, G or B channel when it is clearly more contrasted.
    """
    # Statistics from every other pixel of every other row (a stroke keeps its full contrast
    # in every view), a quarter of the work of the full picture and no averaging pass.
    width, height = img.size
    sample = img
    if min(width, height) >= 64:
        sample = img.resize((width // 2, height // 2), Image.Resampling.NEAREST)
    hists = [sample.convert("L").histogram(), *np.reshape(sample.histogram(), (3, 256))]
    scores = [_tail_contrast(np.asarray(h)) for h in hists]
    best = int(np.argmax(scores))
    if best == 0 or scores[best] < CHANNEL_ADVANTAGE * scores[0]:
        return img.convert("L")
    return img.getchannel(best - 1)


def _tail_contrast(hist: np.ndarray) -> int:
    cdf = np.cumsum(hist)
    lo, med, hi = np.searchsorted(cdf, np.array([0.002, 0.5, 0.998]) * cdf[-1])
    return int(max(med - lo, hi - med))


def _too_large_message(max_pixels: int, max_full_decode_pixels: int | None = None) -> str:
    if max_full_decode_pixels is None or max_full_decode_pixels >= max_pixels:
        return (
            f"The image is too large: at most {max_pixels / 1e6:g} megapixels are accepted. "
            "Crop or scale it down."
        )
    return (
        f"The image is too large: at most {max_full_decode_pixels / 1e6:g} megapixels are "
        f"accepted for PNG, GIF, BMP, TIFF, WebP and progressive JPEG images, "
        f"{max_pixels / 1e6:g} for other JPEGs. Crop or scale it down, or send a JPEG."
    )
