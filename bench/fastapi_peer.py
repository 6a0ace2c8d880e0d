"""The peer a user would otherwise write: the smallest FastAPI app serving the same model.

It does exactly the model work the Django service does per request (the same
``preprocess`` and ``predict`` functions, the same shipped ``clf.pickle`` loaded after the
same sha256 check, the same JSON fields) and nothing else: no registry, no canary routing,
and **no prediction log**. That is the point of the comparison: the service must keep up
with this while also writing every prediction durably to its database.

Run (bench/run.py does this)::

    uvicorn bench.fastapi_peer:app --workers 2 --no-access-log --port 8001
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse

from harness.paths import MODEL_DIR
from predicciones.ml.classifier import load_classifier, predict
from predicciones.ml.decoding import MAX_PIXELS
from predicciones.ml.exceptions import (
    ImageError,
    ImageTooLargeError,
    NoDigitError,
    UnsupportedImageError,
)
from predicciones.ml.preprocessing import preprocess

MODEL_NAME = "clf.pickle"
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # the service's default DIGITS_MAX_UPLOAD_BYTES

_manifest = json.loads((MODEL_DIR / "clf.manifest.json").read_text())
CLF = load_classifier((MODEL_DIR / MODEL_NAME).read_bytes(), sha256=_manifest["sha256"])

app = FastAPI(title="digits FastAPI peer", docs_url=None, redoc_url=None, openapi_url=None)


def _error(status_code: int, message: str, query_id: uuid.UUID) -> JSONResponse:
    body = {"status_code": status_code, "query_id": str(query_id), "error": message}
    return JSONResponse(body, status_code=status_code)


# ``async def`` with the CPU work inline, the way FastAPI's tutorial writes an upload
# endpoint. A plain ``def`` (run in FastAPI's thread pool) used more CPU per request here
# (a thread hop per request, for work that holds the GIL anyway): the peer gets the faster form.
@app.post("/predict/")
async def predict_digit(
    image: Annotated[UploadFile, File()], model: Annotated[str | None, Form()] = None
):
    query_id = uuid.uuid4()
    if model not in (None, "", MODEL_NAME):
        return _error(404, f"Unknown model {model[:100]!r}.", query_id)
    data = await image.read()
    if len(data) > MAX_UPLOAD_BYTES:
        return _error(413, "Image too large.", query_id)
    started = time.perf_counter()
    try:
        pre = preprocess(data, max_pixels=MAX_PIXELS)
    except ImageError as exc:
        code = 400
        if isinstance(exc, UnsupportedImageError):
            code = 415
        elif isinstance(exc, ImageTooLargeError):
            code = 413
        elif isinstance(exc, NoDigitError):
            code = 422
        return _error(code, exc.message, query_id)
    labels, confidences = predict(CLF, pre.features)
    seconds = time.perf_counter() - started
    return {
        "status_code": 200,
        "query_id": str(query_id),
        "prediction": int(labels[0]),
        "execution_time": f"{seconds:.6f} seg",
        "model": MODEL_NAME,
        "model_version": 1,
        "confidence": round(float(confidences[0]), 4),
        "input_8x8": pre.grid,
    }
