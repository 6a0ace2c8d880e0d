"""The second peer: the short FastAPI app a user would write from scratch, with naive
preprocessing (crop to the ink, resize to 32x32, count 4x4 blocks like ``load_digits``) and
an SVC trained on scikit-learn's digits at start-up. No registry, no log, none of the
service's preprocessing for real uploads: the floor of what a prediction can cost.

Run (bench/run.py does this)::

    uvicorn bench.naive_peer:app --workers 2 --no-access-log --port 8002
"""

from __future__ import annotations

import io
import time
import uuid
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError
from sklearn.datasets import load_digits
from sklearn.svm import SVC

_digits = load_digits()
CLF = SVC(gamma=0.001).fit(_digits.data, _digits.target)

app = FastAPI(title="digits naive peer", docs_url=None, redoc_url=None, openapi_url=None)


def features(data: bytes) -> np.ndarray:
    """Upload -> 64 counts 0..16: grey, ink as dark pixels, crop, 32x32, 4x4 block counts."""
    with Image.open(io.BytesIO(data)) as img:
        img.draft("L", (img.width // 4 or 1, img.height // 4 or 1))
        gray = np.asarray(img.convert("L"), dtype=np.uint8)
    ink = gray < (int(gray.mean()) - 40)
    rows, cols = np.nonzero(ink)
    if rows.size == 0:
        raise ValueError("no ink")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    bitmap = Image.fromarray(crop.astype(np.uint8) * 255).resize((32, 32), Image.BILINEAR)
    on = np.asarray(bitmap) > 127
    return on.reshape(8, 4, 8, 4).sum(axis=(1, 3)).reshape(1, 64).astype(np.float64)


@app.post("/predict/")
async def predict_digit(
    image: Annotated[UploadFile, File()], model: Annotated[str | None, Form()] = None
):
    query_id = uuid.uuid4()
    data = await image.read()
    started = time.perf_counter()
    try:
        X = features(data)
    except (UnidentifiedImageError, OSError, ValueError):
        body = {"status_code": 400, "query_id": str(query_id), "error": "Unreadable image."}
        return JSONResponse(body, status_code=400)
    prediction = int(CLF.predict(X)[0])
    return {
        "status_code": 200,
        "query_id": str(query_id),
        "prediction": prediction,
        "execution_time": f"{time.perf_counter() - started:.6f} seg",
        "model": "svc",
    }
