"""JSON-only content negotiation: JSON whatever Accept says, parsers picked by exact type."""

import io

import pytest
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from harness.rendering import draw_digit_image
from predicciones.negotiation import JSONOnlyContentNegotiation

pytestmark = pytest.mark.django_db

PARSERS = [JSONParser(), FormParser(), MultiPartParser()]


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "image/png", "*/*", ""])
def test_every_accept_header_gets_json(client, accept):
    image = io.BytesIO(draw_digit_image("7"))
    image.name = "seven.png"
    response = client.post("/predict/", {"image": image}, HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")


def test_errors_are_json_whatever_accept_says(client):
    response = client.get("/predict/", HTTP_ACCEPT="text/html")
    assert response.status_code == 405
    assert response.json()["status_code"] == 405


@pytest.mark.parametrize(
    "content_type, expected",
    [
        ("application/json", JSONParser),
        ("Application/JSON; charset=utf-8", JSONParser),
        ("application/x-www-form-urlencoded", FormParser),
        ("multipart/form-data; boundary=abc", MultiPartParser),
        ("text/plain", None),
        ("application/json-patch+json", None),
        ("", None),
        ("multipart/" + "x" * 300, None),
    ],
)
def test_parser_is_chosen_by_exact_base_type(content_type, expected):
    request = APIRequestFactory().post("/", b"", content_type="application/octet-stream")
    request.META["CONTENT_TYPE"] = content_type
    chosen = JSONOnlyContentNegotiation().select_parser(Request(request), PARSERS)
    assert (type(chosen) if chosen else None) is expected


def test_a_view_with_several_renderers_still_negotiates():
    request = Request(APIRequestFactory().get("/", HTTP_ACCEPT="text/html"))
    renderers = [JSONRenderer(), BrowsableAPIRenderer()]
    renderer, media_type = JSONOnlyContentNegotiation().select_renderer(request, renderers)
    assert isinstance(renderer, BrowsableAPIRenderer) and media_type == "text/html"
