"""Errors raised while turning an upload into model input.

Each message is safe to show to a client: it never echoes the uploaded bytes.
"""


class ImageError(ValueError):
    """Base class: the upload cannot be turned into a digit."""

    default_message = "The image could not be processed."

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)


class UnsupportedImageError(ImageError):
    """The bytes are not in one of the accepted image formats."""

    default_message = "Unsupported file type: send a JPEG, PNG, BMP, GIF, TIFF or WebP image."


class UnreadableImageError(ImageError):
    """The bytes claim an accepted format but cannot be decoded (truncated, corrupt, empty)."""

    default_message = "The image could not be decoded: the file is empty, truncated or corrupt."


class ImageTooLargeError(ImageError):
    """The image declares more pixels than the service will decode."""

    default_message = "The image is too large to decode."


class NoDigitError(ImageError):
    """The image decodes but holds no ink that could be a digit (blank, uniform)."""

    default_message = "No digit found in the image: it looks blank or uniform."
