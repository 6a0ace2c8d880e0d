"""The /predict/ core every server path calls: its form parser against Django's on the same
bodies, and its answers against the serializers that document them in the OpenAPI schema."""

import io
import uuid

import pytest
from django.conf import settings
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.utils.http import parse_header_parameters
from urllib3 import encode_multipart_formdata

from harness.rendering import draw_digit_image
from predicciones import predict_endpoint
from predicciones.apis import PredictApi
from predicciones.exceptions import FormLimitError, MalformedBodyError
from predicciones.multipart import boundary_of, header_parameters, parse_form
from predicciones.services.predictions import prediction_create

SEVEN = draw_digit_image("7")


def ours(body: bytes, content_type: str):
    """(fields, files as {name: [(filename, bytes)]}) or the error's class."""
    try:
        form = parse_form(
            body,
            boundary_of(content_type),
            max_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
            max_files=settings.DATA_UPLOAD_MAX_NUMBER_FILES,
        )
    except (MalformedBodyError, FormLimitError) as exc:
        return type(exc)
    files = {k: [(f.filename, f.data) for f in v] for k, v in form.files.items()}
    return form.fields, files


def djangos(body: bytes, content_type: str):
    """What Django's own parser makes of the same body, in the same shape (or "refused")."""
    meta = {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body))}
    handlers = [MemoryFileUploadHandler()]
    try:
        post, files = MultiPartParser(meta, io.BytesIO(body), handlers).parse()
    except Exception as exc:  # MultiPartParserError, TooManyFieldsSent, TooManyFilesSent
        return "refused", type(exc)
    fields = {k: post.getlist(k) for k in post}
    return fields, {k: [(f.name, f.read()) for f in files.getlist(k)] for k in files}


def client_bodies():
    """The form as three clients encode it: Django's test client, urllib3 (requests), curl."""
    fields = {"image": ("seven.png", SEVEN, "image/png"), "model": "clf.pickle"}
    body, content_type = encode_multipart_formdata(fields)
    yield "urllib3", body, content_type
    upload = io.BytesIO(SEVEN)
    upload.name = "seven.png"
    django_body = encode_multipart(BOUNDARY, {"image": upload, "model": "clf.pickle"})
    yield "django", django_body, MULTIPART_CONTENT
    boundary = "------------------------a1b2c3d4e5f6"
    curl = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="image"; filename="seven.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + SEVEN
        + (
            f"\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="model"\r\n\r\n'
            f"clf.pickle\r\n--{boundary}--\r\n"
        ).encode()
    )
    yield "curl", curl, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("client_name,body,content_type", list(client_bodies()))
def test_every_clients_form_parses_as_django_parses_it(client_name, body, content_type):
    fields, files = ours(body, content_type)
    assert (fields, files) == djangos(body, content_type)
    assert files["image"] == [("seven.png", SEVEN)]
    assert fields["model"] == ["clf.pickle"]


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--x\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


WELL_FORMED = {
    "preamble before the first delimiter": b"hello\r\n" + _part("model", b"a") + b"--x--\r\n",
    "a part without a name": b"--x\r\nContent-Type: text/plain\r\n\r\nq\r\n"
    + _part("model", b"a")
    + b"--x--",
    "a path in the filename": _part("image", b"abc", "../../etc/passwd") + b"--x--\r\n",
    "an empty filename": _part("image", b"abc", "") + b"--x--\r\n",
    "utf-8 in a field": _part("model", "números".encode()) + b"--x--\r\n",
    "two values of one name": _part("model", b"a") + _part("model", b"b") + b"--x--\r\n",
    "an empty file": _part("image", b"", "a.png") + b"--x--\r\n",
}
REFUSED = {
    "no delimiter at all": b"just bytes",
    "headers without their blank line": b"--x\r\nContent-Disposition: form-data; name=a\r\n",
    "a part never closed": b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue",
    "a header line without a colon": b"--x\r\nnot a header\r\n\r\nv\r\n--x--",
}


@pytest.mark.parametrize("case", sorted(WELL_FORMED))
def test_well_formed_bodies_parse_as_django_parses_them(case):
    body = WELL_FORMED[case]
    assert ours(body, "multipart/form-data; boundary=x") == djangos(
        body, "multipart/form-data; boundary=x"
    )


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_malformed_bodies_are_refused(case):
    assert ours(REFUSED[case], "multipart/form-data; boundary=x") is MalformedBodyError


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary="])
def test_a_missing_boundary_is_refused_like_django(content_type):
    body = _part("model", b"a") + b"--x--"
    with pytest.raises(MalformedBodyError):
        boundary_of(content_type)
    with pytest.raises(MultiPartParserError):
        MultiPartParser(
            {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body))},
            io.BytesIO(body),
            [MemoryFileUploadHandler()],
        )


def test_field_and_file_limits_are_the_settings_limits():
    n_fields = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1
    n_files = settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1
    fields = b"".join(_part(f"f{i}", b"x") for i in range(n_fields)) + b"--x--"
    files = b"".join(_part(f"f{i}", b"x", f"{i}.png") for i in range(n_files)) + b"--x--"
    content_type = "multipart/form-data; boundary=x"
    assert ours(fields, content_type) is FormLimitError
    assert ours(files, content_type) is FormLimitError
    assert djangos(fields, content_type)[0] == djangos(files, content_type)[0] == "refused"


def test_the_415_lists_the_views_parsers():
    assert tuple(p.media_type for p in PredictApi().get_parsers()) == predict_endpoint.MEDIA_TYPES


@pytest.mark.django_db
def test_the_answer_is_what_the_documented_serializer_renders():
    result = prediction_create(image=SEVEN, model_ref=None, query_id=uuid.uuid4())
    documented = PredictApi.OutputSerializer().to_representation(result)
    assert predict_endpoint.answer_body(result) == documented
    assert list(predict_endpoint.answer_body(result)) == list(documented)


@pytest.mark.django_db
def test_the_view_answers_through_the_core(client, monkeypatch):
    calls = []
    original = predict_endpoint.predict

    def counting(**kwargs):
        calls.append(kwargs["content_type"])
        return original(**kwargs)

    monkeypatch.setattr(predict_endpoint, "predict", counting)
    upload = io.BytesIO(SEVEN)
    upload.name = "seven.png"
    response = client.post("/predict/", {"image": upload})
    assert response.status_code == 200
    assert calls == [MULTIPART_CONTENT]


HEADER_LINES = [
    'form-data; name="image"; filename="seven.png"',
    "form-data; name=image; filename=seven.png",
    'Form-Data; NAME="image"',
    'form-data; name="a;b"; filename="x y.png"',
    'form-data; name="image"; filename="números.png"',
    'form-data; name="image"; filename="a\\"b.png"',
    "form-data; name=\"image\"; filename*=UTF-8''%e2%82%ac.png",
    'form-data; name="image";',
    'form-data;name="image";filename=""',
    "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
    'multipart/form-data; boundary="quoted boundary"',
    "multipart/form-data",
    '  form-data ;  name = "image" ',
]


@pytest.mark.parametrize("line", HEADER_LINES)
def test_header_parameters_read_as_djangos_parser_reads_them(line):
    assert header_parameters(line) == parse_header_parameters(line)
