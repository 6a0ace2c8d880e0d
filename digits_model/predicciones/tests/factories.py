"""Rows for tests: logged predictions with chosen features, times and confidences."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import numpy as np
from django.utils import timezone

from predicciones.models import ModelVersion, Prediction


def predictions_log(
    version: ModelVersion,
    features: np.ndarray,
    *,
    predictions=None,
    confidences=None,
    start: dt.datetime | None = None,
    step: dt.timedelta = dt.timedelta(seconds=1),
) -> list[Prediction]:
    """Log one prediction per feature row, ``step`` apart from ``start`` (default: ending now)."""
    features = np.asarray(features, dtype=np.uint8).reshape(-1, 64)
    n = len(features)
    if start is None:
        start = timezone.now() - step * n
    predictions = np.zeros(n, dtype=int) if predictions is None else np.asarray(predictions)
    confidences = np.full(n, 0.9) if confidences is None else np.broadcast_to(confidences, (n,))
    query_ids = [uuid.uuid4() for _ in range(n)]
    rows = [
        Prediction(
            query_id=query_ids[i],
            created_at=start + step * i,
            model_version=version,
            features=features[i].tobytes(),
            prediction=int(predictions[i]),
            confidence=float(confidences[i]),
            latency_ms=1.0,
            image_sha256=hashlib.sha256(query_ids[i].bytes).hexdigest(),  # one upload each
        )
        for i in range(n)
    ]
    return Prediction.objects.bulk_create(rows, batch_size=500)
