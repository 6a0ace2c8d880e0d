"""Hostile uploads and abusive requests, in process: the hostile corpus against the view.

Each answer is one the contract allows (a JSON 4xx in the error shape, or a 200 where the
file really is a digit), never a 5xx or a traceback; nothing is written to disk or read
from a name the client chose; a good request is answered right after. The same corpus
runs against a real gunicorn server in ``e2e/test_hostile_server.py``.
"""

import base64
import contextlib
import io
import os
import tempfile
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework import status

from harness.hostile import (
    HOSTILE_MODEL_REFS,
    PICKLE_EXPLOIT_MARKER,
    Upload,
    corpus_params,
    hostile_feedback_bodies,
    hostile_uploads,
)
from harness.rendering import draw_digit_image
from predicciones.ml.exceptions import ImageError
from predicciones.ml.preprocessing import preprocess

pytestmark = pytest.mark.django_db

CORPUS = hostile_uploads()

#: Found by fuzzing: a 261-byte TIFF whose StripOffsets tag has type RATIONAL.
#: Pillow raises TypeError ("'IFDRational' object cannot be interpreted as an integer")
#: while loading it; it once escaped ml/decoding.py as a 500.
TIFF_RATIONAL_STRIP_OFFSETS = base64.b64decode(
    "SUkqAAgAAAAKAAABBAABAAAAeAAAAAEBBAABAAAAeAAAAAIBAwADAAAAhgAAAAMBAwABAAAAAQAAAAYBAwABAAAA"
    "AgAAABEBBQABAAAAjAAAABUBAwABAAAAAwAAABYBBAABAAAAeAAAABcBBAABAAAAwKgAABwBAwABAAAAAQAAAAAA"
    "AAAIAAgACADr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+tr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr"
    "6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr"
)


def assert_allowed_answer(response, allowed) -> dict:
    """The answer is allowed, JSON, in the contract's shape, with no traceback in it."""
    assert response.status_code < 500, response.content[:300]
    assert response.status_code in allowed, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status_code"] == response.status_code
    uuid.UUID(body["query_id"])
    if response.status_code >= 400:
        assert set(body) == {"status_code", "query_id", "error", "code"}
        assert isinstance(body["error"], str) and 10 < len(body["error"]) < 500
    assert b"Traceback" not in response.content
    return body


def post_file(client, upload: Upload, filename: str | None = None, **fields):
    image = io.BytesIO(upload.data)
    image.name = filename or upload.filename
    return client.post("/predict/", {"image": image, **fields})


def assert_still_answers(client):
    image = io.BytesIO(draw_digit_image("7"))
    image.name = "seven.png"
    response = client.post("/predict/", {"image": image})
    assert response.status_code == status.HTTP_200_OK, response.content[:300]


def names_containing(marker: str) -> list[Path]:
    """Files or folders named after an upload, wherever the service could have put them."""
    roots = {Path(settings.VAR_DIR), Path(tempfile.gettempdir()), Path.cwd()}
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            found += [Path(dirpath, n) for n in dirnames + filenames if marker in n]
    return found


@pytest.mark.parametrize("upload", corpus_params(CORPUS))
def test_hostile_file_gets_an_allowed_json_answer(client, upload):
    marker = f"hostile-{uuid.uuid4().hex}"
    response = post_file(client, upload, filename=f"../../{marker}-{upload.filename}")
    assert_allowed_answer(response, upload.allowed)
    assert not names_containing(marker), "a file was written under the upload's name"
    assert_still_answers(client)


def test_pickle_upload_is_never_unpickled(client):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(PICKLE_EXPLOIT_MARKER)
    upload = next(u for u in CORPUS if u.name == "pickle-named-jpg")
    assert_allowed_answer(post_file(client, upload), {415})
    assert not os.path.exists(PICKLE_EXPLOIT_MARKER)


def test_tiff_with_rational_strip_offsets_is_400(client):
    response = post_file(client, Upload("tiff", TIFF_RATIONAL_STRIP_OFFSETS, "x.tif"))
    assert_allowed_answer(response, {400})


def test_preprocess_raises_only_image_errors_on_the_malformed_tiff():
    with pytest.raises(ImageError):
        preprocess(TIFF_RATIONAL_STRIP_OFFSETS)


@pytest.mark.parametrize("model", HOSTILE_MODEL_REFS.values(), ids=HOSTILE_MODEL_REFS.keys())
def test_hostile_model_name_is_a_4xx_and_never_a_path(client, model):
    upload = Upload("seven", draw_digit_image("7"), "seven.png")
    body = assert_allowed_answer(post_file(client, upload, model=model), {400, 404})
    assert "root:" not in body["error"]
    assert len(body["error"]) < 300, "the error echoes the whole model name"
    assert_still_answers(client)


def test_a_pinned_version_in_ascii_digits_answers(client):
    upload = Upload("seven", draw_digit_image("7"), "seven.png")
    body = assert_allowed_answer(post_file(client, upload, model="clf.pickle:1"), {200})
    assert body["model_version"] == 1


@pytest.mark.parametrize("body", hostile_feedback_bodies(), ids=lambda body: body.name)
def test_hostile_feedback_body_is_a_4xx(client, body):
    response = client.post("/feedback/", body.data, body.content_type)
    assert_allowed_answer(response, body.allowed)


@pytest.mark.parametrize(
    "filename",
    [
        "../../../../etc/passwd",
        "/etc/passwd",
        "..\\..\\windows\\win.ini",
        "seven\x00.png",
        "seven\x1b[31m\x07.png",
        "a" * 5000 + ".png",
        "",
    ],
    ids=["dotdot", "absolute", "backslashes", "nul", "control-chars", "5000-chars", "empty"],
)
def test_hostile_filename_is_ignored(client, filename):
    upload = Upload("seven", draw_digit_image("7"), filename)
    assert_allowed_answer(post_file(client, upload, filename=filename), {200, 400})
    assert_still_answers(client)


def test_missing_fields_are_400(client):
    assert_allowed_answer(client.post("/predict/", {}), {400})
    assert_allowed_answer(client.post("/predict/", {"model": "clf.pickle"}), {400})
    other = io.BytesIO(draw_digit_image("7"))
    other.name = "seven.png"
    assert_allowed_answer(client.post("/predict/", {"picture": other}), {400})


def test_urlencoded_body_is_400(client):
    response = client.post(
        "/predict/", "image=seven.png&model=clf.pickle", "application/x-www-form-urlencoded"
    )
    assert_allowed_answer(response, {400})


def test_json_body_is_415(client):
    response = client.post("/predict/", {"image": "aGVsbG8="}, "application/json")
    assert_allowed_answer(response, {415})


def test_multipart_without_boundary_is_400(client):
    response = client.post("/predict/", b"--x\r\n\r\n--x--\r\n", "multipart/form-data")
    assert_allowed_answer(response, {400})


def test_multipart_with_garbage_body_is_400(client):
    response = client.post("/predict/", os.urandom(4096), "multipart/form-data; boundary=zzz")
    assert_allowed_answer(response, {400})


def test_ten_thousand_form_fields_are_400(client):
    fields = {f"field{i}": "x" for i in range(10_000)}
    image = io.BytesIO(draw_digit_image("7"))
    image.name = "seven.png"
    assert_allowed_answer(client.post("/predict/", {"image": image, **fields}), {400})
    assert_still_answers(client)


def test_too_many_files_are_400(client):
    files = {}
    for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1):
        files[f"image{i}" if i else "image"] = io.BytesIO(draw_digit_image("7"))
        files[f"image{i}" if i else "image"].name = f"{i}.png"
    assert_allowed_answer(client.post("/predict/", files), {400})


def test_two_image_fields_get_an_allowed_answer(client):
    first, second = io.BytesIO(draw_digit_image("1")), io.BytesIO(draw_digit_image("7"))
    first.name, second.name = "1.png", "7.png"
    assert_allowed_answer(client.post("/predict/", {"image": [first, second]}), {200, 400})


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head", "trace"])
def test_wrong_methods_are_405(client, method):
    response = getattr(client, method)("/predict/")
    assert response.status_code == status.HTTP_405_METHOD_NOT_ALLOWED
    if method != "head":
        assert_allowed_answer(response, {405})


def test_options_is_answered_without_error(client):
    response = client.options("/predict/")
    assert response.status_code == status.HTTP_200_OK
    assert response["Content-Type"].startswith("application/json")


def test_no_trailing_slash_is_the_same_endpoint(client):
    image = io.BytesIO(draw_digit_image("7"))
    image.name = "seven.png"
    assert_allowed_answer(client.post("/predict", {"image": image}), {200})
