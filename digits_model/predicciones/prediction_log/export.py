"""The log read back row by row, oldest first: the labelled rows retraining learns from, and
the records ``export_predictions`` writes, from the database or from the capture (where rows
stay after retention has deleted them from the database), in one shape either way.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import storage
from ..models import CapturePart, Prediction
from .capture_files import part_check
from .layout import features_list, features_matrix, hour_floor

#: Rows fetched per round trip from the database.
EXPORT_CHUNK_ROWS = 2_000


def labelled_rows(model_name: str) -> Iterator[tuple[str, str, np.ndarray, int, str | None]]:
    """Every labelled prediction of a model, oldest first: query id, the upload's sha256, its
    features (``N_FEATURES`` uint8), the label and who gave it."""
    rows = (
        Prediction.objects.filter(model_version__model__name=model_name, label__isnull=False)
        .order_by("created_at")
        .values_list("query_id", "image_sha256", "features", "label", "label_source")
    )
    for query_id, image_sha256, features, label, source in rows.iterator(chunk_size=5000):
        yield query_id, image_sha256, features_matrix([features], 1)[0], label, source


def database_records(
    *, since: dt.datetime | None, until: dt.datetime | None, model: str | None
) -> Iterator[dict]:
    """Every logged prediction in ``[since, until]``, oldest first (:func:`record`)."""
    rows = Prediction.objects.select_related("model_version__model").order_by("created_at")
    if since:
        rows = rows.filter(created_at__gte=since)
    if until:
        rows = rows.filter(created_at__lte=until)
    if model:
        rows = rows.filter(model_version__model__name=model)
    for row in rows.iterator(chunk_size=EXPORT_CHUNK_ROWS):
        yield record(
            query_id=str(row.query_id),
            created_at=row.created_at,
            model=row.model_version.model.name,
            version=row.model_version.version,
            prediction=row.prediction,
            confidence=row.confidence,
            latency_ms=row.latency_ms,
            image_sha256=row.image_sha256,
            features=features_list(row.features),
            label=row.label,
        )


def capture_records(
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    model: str | None,
    scratch: Path,
) -> Iterator[dict]:
    """The same from the capture's checked objects (:func:`capture_lines`)."""
    for line in capture_lines(since=since, until=until, model=model, scratch=scratch):
        yield record(
            **{k: v for k, v in line.items() if k not in ("created_at", "labelled_at")},
            created_at=dt.datetime.fromisoformat(line["created_at"]),
        )


def record(*, created_at: dt.datetime, latency_ms: float, **fields) -> dict:
    """One exported prediction: ``query_id``, ``time``, ``model``, ``version``,
    ``prediction``, ``confidence``, ``latency_ms`` (to 4 decimals), ``image_sha256``,
    ``features`` and ``label``."""
    return {
        "query_id": fields["query_id"],
        "time": created_at.isoformat(),
        "model": fields["model"],
        "version": fields["version"],
        "prediction": fields["prediction"],
        "confidence": fields["confidence"],
        "latency_ms": round(latency_ms, 4),
        "image_sha256": fields["image_sha256"],
        "features": fields["features"],
        "label": fields["label"],
    }


def capture_lines(
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    model: str | None = None,
    scratch: Path,
) -> Iterator[dict]:
    """Every captured prediction logged in ``[since, until]`` (oldest hour first), as its
    line's dict, from the checked objects of the store; labels captured later are applied
    (the latest ``labelled_at`` wins)."""
    store = storage.get_store()
    parts = CapturePart.objects.filter(kind=CapturePart.Kind.PREDICTIONS).select_related(
        "model_version__model"
    )
    if since is not None:
        parts = parts.filter(hour__gte=hour_floor(since))
    if until is not None:
        parts = parts.filter(hour__lte=until)
    if model is not None:
        parts = parts.filter(model_version__model__name=model)
    labels = _captured_labels(store, since=since, scratch=scratch)
    for part in parts.order_by(
        "hour", "model_version__model__name", "model_version__version", "part"
    ):
        path = scratch / "export.jsonl.gz"
        part_check(store, part, path, hint=False)
        with gzip.open(path, "rt") as fh:
            for text in fh:
                line = json.loads(text)
                created = dt.datetime.fromisoformat(line["created_at"])
                if (since is not None and created < since) or (
                    until is not None and created > until
                ):
                    continue
                newer = labels.get(line["query_id"])
                if newer is not None and (
                    line["labelled_at"] is None or newer[1] > line["labelled_at"]
                ):
                    line["label"], line["labelled_at"] = newer
                yield line
        path.unlink()


def _captured_labels(store, *, since, scratch: Path) -> dict[str, tuple[int, str]]:
    """query id -> (label, labelled_at) from the captured label hours since ``since``."""
    parts = CapturePart.objects.filter(kind=CapturePart.Kind.LABELS)
    if since is not None:
        parts = parts.filter(hour__gte=hour_floor(since))
    labels: dict[str, tuple[int, str]] = {}
    for part in parts.order_by("hour"):
        path = scratch / "labels.jsonl.gz"
        part_check(store, part, path, hint=False)
        with gzip.open(path, "rt") as fh:
            for text in fh:
                line = json.loads(text)
                previous = labels.get(line["query_id"])
                if previous is None or line["labelled_at"] > previous[1]:
                    labels[line["query_id"]] = (line["label"], line["labelled_at"])
        path.unlink()
    return labels
