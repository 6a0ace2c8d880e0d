"""The upload limits as configured: one 413 wording for the byte limit, whichever check
refuses the upload, and a pixel limit that a setting can raise as well as lower."""

import io

import pytest
from PIL import Image, ImageDraw

from harness.hostile import png_bomb
from predicciones.ml.decoding import open_image
from predicciones.ml.exceptions import ImageTooLargeError

pytestmark = pytest.mark.django_db

LIMIT = 100_000


def post(client, data: bytes):
    upload = io.BytesIO(data)
    upload.name = "digit.png"
    return client.post("/predict/", {"image": upload})


@pytest.fixture
def small_limit(settings):
    settings.DIGITS_MAX_UPLOAD_BYTES = LIMIT
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = LIMIT + 64 * 1024
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = LIMIT + 64 * 1024


def test_both_byte_limit_checks_say_the_same_thing(client, small_limit):
    # Announced above the body limit: refused from Content-Length, before reading...
    announced = post(client, b"\x89PNG\r\n\x1a\n" + bytes(LIMIT + 70_000))
    # ...and a file above the image limit inside a body just under it: refused by the view.
    in_body = post(client, b"\x89PNG\r\n\x1a\n" + bytes(LIMIT + 1_000))
    assert announced.status_code == in_body.status_code == 413
    expected = "The upload is too large: the limit is 0.0954 MiB."
    assert announced.json()["error"] == in_body.json()["error"] == expected


def test_default_limit_wording(client):
    response = client.post("/predict/", b"x", content_type="image/png", CONTENT_LENGTH="99999999")
    assert response.status_code == 413
    assert response.json()["error"] == "The upload is too large: the limit is 10 MiB."


def fifty_megapixel_png() -> bytes:
    img = Image.new("L", (10_000, 5_000), 235)
    ImageDraw.Draw(img).line([(3_000, 800), (7_000, 800), (4_500, 4_200)], fill=20, width=400)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def test_a_raised_pixel_limit_holds_for_the_header_check():
    header_only = png_bomb(10_000, 5_000)  # declares 50 MP
    raised = {"max_pixels": 80_000_000, "max_full_decode_pixels": 80_000_000}
    assert open_image(header_only, **raised).size == (10_000, 5_000)
    with pytest.raises(ImageTooLargeError, match="at most 40 megapixels"):
        open_image(header_only, max_pixels=40_000_000, max_full_decode_pixels=80_000_000)
    with pytest.raises(ImageTooLargeError, match="at most 5 megapixels"):
        open_image(header_only)  # a PNG is decoded at full size: the lower cap


def test_a_raised_pixel_limit_lets_a_50_megapixel_png_through(client, settings):
    settings.DIGITS_MAX_IMAGE_PIXELS = 80_000_000
    settings.DIGITS_MAX_FULL_DECODE_PIXELS = 80_000_000
    response = post(client, fifty_megapixel_png())
    assert response.status_code == 200, response.json()
    settings.DIGITS_MAX_IMAGE_PIXELS = 40_000_000
    refused = post(client, fifty_megapixel_png())
    assert refused.status_code == 413
    assert "at most 40 megapixels" in refused.json()["error"]
