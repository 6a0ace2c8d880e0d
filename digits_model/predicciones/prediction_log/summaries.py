"""Hourly summaries of the log: one :class:`~predicciones.models.PredictionHour` row per closed
hour of each version (histograms, counts, exact confidence sum, latency buckets, labels; see
``ml.summary``) and its JSON in the artifact store; the first step of ``maintain``.

Hours in which labels arrived get their labelled and correct counts recounted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import numpy as np
from django.db import transaction
from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone

from .. import storage
from ..ml import summary as log_summary
from ..models import LabelHour, ModelVersion, Prediction, PredictionHour
from .layout import (
    CHUNK_ROWS,
    HOUR,
    features_matrix,
    hour_floor,
    hour_rows,
    stream_values,
)

logger = logging.getLogger(__name__)

#: Format of the JSON documents of the log's lifecycle (summaries, capture lines, manifests).
DOCUMENT_SCHEMA = 1
#: The columns a summary counts, in the order :func:`summary_add` takes them.
SUMMARY_COLUMNS = ("features", "prediction", "confidence", "latency_ms", "label")


# --- Summaries of rows ------------------------------------------------------------------------
def summary_add(
    total: log_summary.LogSummary,
    rows: list[tuple],
    *,
    first: dt.datetime | None = None,
    last: dt.datetime | None = None,
) -> None:
    """Add rows of :data:`SUMMARY_COLUMNS` to ``total`` (``first`` and ``last``: their times)."""
    features, predicted, confidence, latency_ms, labels = zip(*rows, strict=True)
    total.add_block(
        features_matrix(features, len(rows)),
        predicted,
        confidence,
        latency_ms=latency_ms,
        labels=labels,
        first=first,
        last=last,
    )


def hour_summary_compute(version_id: int, hour: dt.datetime) -> log_summary.LogSummary:
    """The summary of one hour of a version's log, from its rows."""
    total = log_summary.LogSummary()
    qs = hour_rows(version_id, hour)
    bounds = qs.aggregate(first=Min("created_at"), last=Max("created_at"))
    for rows in stream_values(qs, SUMMARY_COLUMNS, CHUNK_ROWS):
        summary_add(total, rows)
    if total.n:
        total.first, total.last = bounds["first"], bounds["last"]
    return total


def hour_summary_read(hour: PredictionHour, *, drift_only: bool = False) -> log_summary.LogSummary:
    """A summary row as a :class:`~predicciones.ml.summary.LogSummary` (with ``drift_only``,
    what a drift window needs: no latency or label counts, which need not be loaded)."""
    result = log_summary.LogSummary(
        n=hour.n,
        value_counts=np.asarray(hour.value_counts, dtype=np.int64),
        class_counts=np.asarray(hour.class_counts, dtype=np.int64),
        confidence_units=int(hour.confidence_units),
        first=hour.first_created_at,
        last=hour.last_created_at,
    )
    if not drift_only:
        result.latency_counts = np.asarray(hour.latency_counts, dtype=np.int64)
        result.labelled, result.correct = hour.labelled, hour.correct
    return result


def summary_fields(total: log_summary.LogSummary) -> dict:
    """A summary as the fields of its :class:`~predicciones.models.PredictionHour` row."""
    return {
        "n": total.n,
        "value_counts": total.value_counts.tolist(),
        "class_counts": total.class_counts.tolist(),
        "confidence_units": str(total.confidence_units),
        "latency_counts": total.latency_counts.tolist(),
        "labelled": total.labelled,
        "correct": total.correct,
        "first_created_at": total.first,
        "last_created_at": total.last,
    }


def summary_document(row: PredictionHour) -> dict:
    """The JSON kept in the store beside the summary row."""
    version = row.model_version
    return {
        "schema": DOCUMENT_SCHEMA,
        "model": version.model.name,
        "version": version.version,
        "hour": row.hour.isoformat(),
        "summarised_at": row.summarised_at.isoformat(),
        "captured_rows": row.captured_rows,
        **hour_summary_read(row).to_dict(),
    }


def summary_store(store, row: PredictionHour) -> None:
    """Put the row's JSON in the store; the row is marked stored unless it changed meanwhile."""
    storage.put_json(store, row.summary_key, summary_document(row))
    PredictionHour.objects.filter(pk=row.pk, summarised_at=row.summarised_at).update(
        summary_stored=True
    )


# --- Step 1 of maintain: summarise -------------------------------------------------------------
def hours_with_rows(rows, field: str, *, before: dt.datetime) -> Iterator[dt.datetime]:
    """Each hour (start) before ``before`` in which ``rows`` have a ``field`` time, oldest
    first: one index seek per hour, whatever the table's size."""
    cursor = None
    while True:
        after = rows if cursor is None else rows.filter(**{f"{field}__gte": cursor})
        first = after.filter(**{f"{field}__lt": before}).aggregate(first=Min(field))["first"]
        if first is None:
            return
        hour = hour_floor(first)
        yield hour
        cursor = hour + HOUR


def hours_to_summarise(closed_before: dt.datetime) -> Iterator[tuple[ModelVersion, dt.datetime]]:
    """(version, hour) of every closed hour with rows and no summary yet, oldest first."""
    for version in ModelVersion.objects.select_related("model").order_by("pk"):
        done = set(
            PredictionHour.objects.filter(model_version=version).values_list("hour", flat=True)
        )
        rows = Prediction.objects.filter(model_version_id=version.pk)
        for hour in hours_with_rows(rows, "created_at", before=closed_before + HOUR):
            if hour not in done:
                yield version, hour


def step_summarise(report, closed_before: dt.datetime, config, dry_run: bool) -> None:
    """Summarise every closed hour not summarised yet, recount the hours that got labels, and
    store every summary the store does not hold as it is now."""
    info = report.summarise = {"hours": 0, "rows": 0, "label_hours": 0, "stored": 0, "more": False}
    for version, hour in hours_to_summarise(closed_before):
        if config.reached(info["hours"]):
            info["more"] = True
            break
        info["hours"] += 1
        if not dry_run:
            info["rows"] += _summarise_hour(version, hour)
    info["label_hours"] = _count_label_hours(closed_before, config, dry_run)
    if dry_run:
        return
    store = storage.get_store()
    for row in PredictionHour.objects.filter(summary_stored=False).select_related(
        "model_version__model"
    ):
        summary_store(store, row)
        info["stored"] += 1


def _summarise_hour(version: ModelVersion, hour: dt.datetime) -> int:
    """Record the hour's summary row (unless another run did); the rows it counts."""
    total = hour_summary_compute(version.pk, hour)
    if total.n == 0:  # the rows went between the seek and the scan
        return 0
    row = PredictionHour(
        model_version=version,
        hour=hour,
        summarised_at=timezone.now(),
        summary_key=storage.summary_key(version.model.name, version.version, hour),
        **summary_fields(total),
    )
    with transaction.atomic():
        if PredictionHour.objects.filter(model_version=version, hour=hour).exists():
            return 0
        row.save()
    logger.info("summarised %s hour %s: %d rows", version, hour.isoformat(), total.n)
    return total.n


def _label_hours(closed_before: dt.datetime) -> Iterator[dt.datetime]:
    """Closed labelling hours not counted yet, after the last one counted."""
    latest = LabelHour.objects.filter(counted_at__isnull=False).aggregate(h=Max("hour"))["h"]
    labelled = Prediction.objects.filter(labelled_at__isnull=False)
    if latest is not None:
        labelled = labelled.filter(labelled_at__gte=latest + HOUR)
    yield from hours_with_rows(labelled, "labelled_at", before=closed_before + HOUR)


def _count_label_hours(closed_before: dt.datetime, config, dry_run: bool) -> int:
    """Recount labelled/correct in the summaries of the hours whose rows got labels."""
    counted = 0
    for label_hour in _label_hours(closed_before):
        if config.reached(counted):
            break
        counted += 1
        if not dry_run:
            _recount_labels(label_hour)
    return counted


def _recount_labels(label_hour: dt.datetime) -> None:
    """Recount the summaries of every hour whose rows were labelled in ``label_hour``."""
    labelled = Prediction.objects.filter(
        labelled_at__gte=label_hour, labelled_at__lt=label_hour + HOUR
    ).values_list("model_version_id", "created_at")
    touched = {(version_id, hour_floor(created)) for version_id, created in labelled}
    correct = Count("pk", filter=Q(label=F("prediction")))
    with transaction.atomic():
        for version_id, hour in sorted(touched):
            counts = (
                hour_rows(version_id, hour)
                .filter(label__isnull=False)
                .aggregate(labelled=Count("pk"), correct=correct)
            )
            PredictionHour.objects.filter(model_version_id=version_id, hour=hour).exclude(
                labelled=counts["labelled"], correct=counts["correct"]
            ).update(summary_stored=False, **counts)
        LabelHour.objects.update_or_create(hour=label_hour, defaults={"counted_at": timezone.now()})
