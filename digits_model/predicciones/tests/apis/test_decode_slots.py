"""Large decodes take turns in each worker process: the excess is told to come back (503 with
Retry-After) instead of holding every thread, and small uploads never wait."""

import io
import threading

import pytest
from PIL import Image

from harness.rendering import draw_digit_image
from predicciones.services.predictions import large_decode_slot
from predicciones.tests.conftest import LARGE_HEADER, decode_slot_held

pytestmark = pytest.mark.django_db


def post(client, data: bytes):
    upload = io.BytesIO(data)
    upload.name = "upload.png"
    return client.post("/predict/", {"image": upload})


def blank_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (245, 245, 245)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def slot_taken(settings):
    """This process's one large-decode slot, held by another thread until the test ends."""
    with decode_slot_held(settings):
        yield


def test_a_large_upload_finding_the_slot_busy_gets_503_with_retry_after(client, slot_taken):
    response = post(client, blank_png(1500))  # 2.25 MP decoded at full size: large
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    body = response.json()
    assert set(body) == {"status_code", "query_id", "error", "code"}
    assert "decoding other large images" in body["error"]


def test_a_small_upload_does_not_wait_for_the_slot(client, slot_taken):
    assert post(client, draw_digit_image("7")).status_code == 200


def test_a_large_upload_is_decoded_once_the_slot_is_free(client, settings):
    settings.DIGITS_DECODE_WAIT = 0.05
    assert post(client, blank_png(1500)).status_code == 422  # decoded: blank


def test_the_wait_lets_a_large_upload_take_the_slot_when_it_frees(client, settings):
    settings.DIGITS_DECODE_CONCURRENCY = 1
    settings.DIGITS_DECODE_WAIT = 30
    taken = threading.Event()

    def hold_briefly():
        with large_decode_slot(LARGE_HEADER):
            taken.set()
            threading.Event().wait(0.3)

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    assert taken.wait(30)
    assert post(client, blank_png(1500)).status_code == 422  # waited, then decoded
    holder.join(30)
