"""The OpenAPI schema: valid, complete, and true to what the API really answers."""

import io
import re
import shutil
import subprocess

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

from harness.rendering import draw_digit_image
from predicciones.tests.conftest import require

pytestmark = pytest.mark.django_db

SEED_EXAMPLE_RESPONSE = {
    "status_code": 200,
    "query_id": "70cd7b2a-dd66-4fce-b13a-cede33c80422",
    "prediction": 2,
    "execution_time": "2.08 seg",
}


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return response.json()


def validator(spec: dict, schema: dict) -> OAS30Validator:
    """A validator for ``schema`` whose ``#/components/...`` references resolve in ``spec``."""
    return OAS30Validator({**schema, "components": spec["components"]})


def response_schema(spec: dict, path: str, method: str, code: int) -> dict:
    responses = spec["paths"][path][method]["responses"]
    assert str(code) in responses, f"{method.upper()} {path} does not document {code}"
    return responses[str(code)]["content"]["application/json"]["schema"]


def assert_documented(spec: dict, path: str, method: str, response) -> None:
    """The response's body validates against the schema documented for its status code."""
    schema = response_schema(spec, path, method, response.status_code)
    errors = list(validator(spec, schema).iter_errors(response.json()))
    assert not errors, [e.message for e in errors]


def test_schema_is_valid_openapi(spec):
    validate_spec(spec)
    assert spec["openapi"].startswith("3.")


def test_every_api_endpoint_is_documented(spec):
    assert set(spec["paths"]) >= {
        "/predict/",
        "/feedback/",
        "/models/",
        "/health/",
        "/health/live/",
        "/admin/models/{name}/canary/",
        "/admin/models/{name}/promote/",
        "/admin/models/{name}/rollback/",
    }


def test_predict_documents_the_multipart_upload_and_every_field(spec):
    body = spec["paths"]["/predict/"]["post"]["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"multipart/form-data"}
    form = spec["components"]["schemas"]["PredictInputRequest"]
    assert form["properties"]["image"] == {
        "type": "string",
        "format": "binary",
        "description": form["properties"]["image"]["description"],
    }
    assert form["properties"]["model"]["type"] == "string"
    assert form["required"] == ["image"]
    output = spec["components"]["schemas"]["PredictOutput"]
    assert set(output["properties"]) == {
        "status_code",
        "query_id",
        "prediction",
        "execution_time",
        "model",
        "model_version",
        "confidence",
        "alternatives",
        "input_8x8",
    }
    assert output["properties"]["query_id"]["format"] == "uuid"


@pytest.mark.parametrize("code", [400, 401, 404, 405, 411, 413, 415, 422, 429, 503])
def test_predict_documents_each_error_with_the_error_shape(spec, code):
    schema = response_schema(spec, "/predict/", "post", code)
    assert schema == {"$ref": "#/components/schemas/Error"}
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"status_code", "query_id", "error", "code"}
    assert spec["paths"]["/predict/"]["post"]["responses"][str(code)]["description"]


def test_seed_example_request_fits_the_documented_form(spec):
    # curl -X POST /predict/ -F 'image=@/path/to/your/image.jpg' -F 'model=clf.pickle'
    form = spec["paths"]["/predict/"]["post"]["requestBody"]["content"]["multipart/form-data"]
    seed_form = {"image": "<the bytes of image.jpg>", "model": "clf.pickle"}
    assert not list(validator(spec, form["schema"]).iter_errors(seed_form))
    assert list(validator(spec, form["schema"]).iter_errors({"model": "clf.pickle"}))


def test_seed_example_response_keeps_its_names_and_types(spec):
    output = spec["components"]["schemas"]["PredictOutput"]
    seed_only = {**output, "required": list(SEED_EXAMPLE_RESPONSE)}
    assert not list(validator(spec, seed_only).iter_errors(SEED_EXAMPLE_RESPONSE))
    assert set(SEED_EXAMPLE_RESPONSE) <= set(output["required"])


def test_seed_example_request_answer_matches_the_schema(client, spec):
    image = io.BytesIO(draw_digit_image("7", fmt="JPEG"))
    image.name = "image.jpg"
    response = client.post("/predict/", {"image": image, "model": "clf.pickle"})
    assert response.status_code == 200
    assert_documented(spec, "/predict/", "post", response)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("missing image", 400),
        ("unknown model", 404),
        ("wrong method", 405),
        ("not an image", 415),
        ("blank image", 422),
        ("not multipart", 415),
    ],
)
def test_real_error_answers_match_the_documented_schema(client, spec, case, code):
    def upload(data: bytes, name="x.png"):
        f = io.BytesIO(data)
        f.name = name
        return f

    if case == "missing image":
        response = client.post("/predict/", {"model": "clf.pickle"})
    elif case == "unknown model":
        response = client.post(
            "/predict/", {"image": upload(draw_digit_image()), "model": "nope.pickle"}
        )
    elif case == "wrong method":
        response = client.get("/predict/")
    elif case == "not an image":
        response = client.post("/predict/", {"image": upload(b"just some text", "x.txt")})
    elif case == "blank image":
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("L", (64, 64), 255).save(buffer, format="PNG")
        response = client.post("/predict/", {"image": upload(buffer.getvalue())})
    else:
        response = client.post("/predict/", '{"model": 1}', content_type="application/json")
    assert response.status_code == code, response.json()
    assert_documented(spec, "/predict/", "post", response)


def test_other_endpoints_answer_what_they_document(client, spec, png_seven):
    assert_documented(spec, "/models/", "get", client.get("/models/"))
    assert_documented(spec, "/health/", "get", client.get("/health/"))
    assert_documented(spec, "/health/live/", "get", client.get("/health/live/"))
    image = io.BytesIO(png_seven)
    image.name = "x.png"
    query_id = client.post("/predict/", {"image": image}).json()["query_id"]
    feedback = client.post(
        "/feedback/", {"query_id": query_id, "label": 7}, content_type="application/json"
    )
    assert_documented(spec, "/feedback/", "post", feedback)
    unknown = client.post(
        "/feedback/",
        {"query_id": "70cd7b2a-dd66-4fce-b13a-cede33c80422", "label": 7},
        content_type="application/json",
    )
    assert unknown.status_code == 404
    assert_documented(spec, "/feedback/", "post", unknown)
    admin = client.post("/admin/models/clf.pickle/rollback/")
    assert admin.status_code == 403
    assert_documented(spec, "/admin/models/{name}/rollback/", "post", admin)


def test_schema_declares_the_optional_api_key_and_the_admin_token(spec):
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "in": "header", "name": "X-API-Key"}
    assert spec["paths"]["/predict/"]["post"]["security"] == [{}, {"apiKey": []}]
    assert spec["paths"]["/admin/models/{name}/promote/"]["post"]["security"] == [
        {"adminToken": []}
    ]


def test_docs_page_works_offline(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    assert not [a for a in assets if re.match(r"(https?:)?//", a)], assets
    for asset in assets:
        if asset.startswith("/static/"):
            assert client.get(asset).status_code == 200, asset
    script = client.get("/api/docs/", {"script": ""})
    assert script.status_code == 200
    assert "/api/schema" in script.content.decode()
    # Scripts only from our origin; the docs page alone may use its inline <style> block.
    policy = page["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self' 'unsafe-inline'" in policy


@pytest.mark.e2e
def test_seed_curl_command_against_a_real_server(server, spec, tmp_path):
    require(shutil.which("curl") is not None, "curl is not installed")
    image = tmp_path / "image.jpg"
    image.write_bytes(draw_digit_image("7", fmt="JPEG"))
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            server.url("/predict/"),
            "-F",
            f"image=@{image}",
            "-F",
            "model=clf.pickle",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    import json

    body = json.loads(result.stdout)
    schema = response_schema(spec, "/predict/", "post", 200)
    assert not list(validator(spec, schema).iter_errors(body))
    assert body["prediction"] == 7
