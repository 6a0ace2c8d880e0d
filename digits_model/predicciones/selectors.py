"""Registry and log reads, in the shapes the API and the commands print."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import Avg, Count, OuterRef, Subquery
from django.utils.dateparse import parse_datetime

from .exceptions import DriftCheckError
from .ml import drift
from .models import Deployment, DriftReport, ModelVersion, Prediction, RegisteredModel

logger = logging.getLogger(__name__)

#: Logged predictions fetched per round trip when aggregating a drift window.
WINDOW_CHUNK_ROWS = 20_000


def model_version_list(*, name: str | None = None) -> list[dict]:
    """Every registered version with its rollout state, ordered by model and version.

    ``live`` is true for the version answering routed traffic; ``candidate_percent`` is the
    share a candidate gets (0 for everything else, and for a blue/green standby);
    ``traffic_percent`` is the share of routed requests each version answers.
    """
    deployments = {d.model_id: d for d in Deployment.objects.all()}
    versions = ModelVersion.objects.select_related("model", "parent").order_by(
        "model__name", "version"
    )
    if name is not None:
        versions = versions.filter(model__name=name)
    rows = []
    for v in versions:
        dep = deployments.get(v.model_id)
        live = dep is not None and dep.live_id == v.pk
        candidate = dep is not None and dep.candidate_id == v.pk
        candidate_percent = dep.candidate_percent if candidate else 0
        if live:
            stage = "live"
            traffic = 100 - (dep.candidate_percent if dep.candidate_id else 0)
        elif candidate:
            stage, traffic = "candidate", candidate_percent
        elif dep is not None and dep.previous_live_id == v.pk:
            stage, traffic = "previous", 0
        else:
            stage, traffic = "archived", 0
        rows.append(
            {
                "model": v.model.name,
                "version": v.version,
                "live": live,
                "stage": stage,
                "candidate_percent": candidate_percent,
                "traffic_percent": traffic,
                "sha256": v.sha256,
                "metrics": v.metrics,
                "sklearn_version": v.sklearn_version,
                "training_data": v.training_data,
                "parent_version": v.parent.version if v.parent else None,
                "created_by": v.created_by,
                "created_at": v.created_at.isoformat(),
            }
        )
    return rows


# --- Drift ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowAggregate:
    """Histograms of one window of logged predictions.

    ``value_counts`` has shape (64, 17) and ``class_counts`` shape (10,); ``start`` and
    ``end`` are the first and last ``created_at`` in the window (None when it is empty).
    """

    value_counts: np.ndarray
    class_counts: np.ndarray
    n: int
    confidence_mean: float | None
    start: dt.datetime | None
    end: dt.datetime | None


def prediction_window_queryset(
    *, version: ModelVersion, last: int | None = None, since: dt.datetime | None = None
):
    """A version's logged predictions: the ``last`` N (newest first) and/or ``since`` a time."""
    qs = Prediction.objects.filter(model_version=version)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if last is not None:
        return qs.order_by("-created_at")[:last]
    return qs.order_by()


def prediction_window_aggregate(
    *,
    version: ModelVersion,
    last: int | None = None,
    since: dt.datetime | None = None,
    chunk_rows: int = WINDOW_CHUNK_ROWS,
) -> WindowAggregate:
    """Stream a window's features, predictions and confidences into histograms.

    Rows are fetched ``chunk_rows`` at a time and folded into numpy bincounts, so memory
    stays bounded whatever the window's size: a server-side cursor on PostgreSQL (inside a
    transaction, so the result is streamed rather than materialised), SQLite's incremental
    stepping otherwise. Nothing is kept per row.
    """
    qs = prediction_window_queryset(version=version, last=last, since=since)
    sql, params = qs.values_list(
        "features", "prediction", "confidence", "created_at"
    ).query.sql_with_params()
    counts = np.zeros((drift.N_FEATURES, drift.N_VALUES), dtype=np.int64)
    classes = np.zeros(drift.N_CLASSES, dtype=np.int64)
    n = 0
    confidence_sum = 0.0
    start = end = None
    # SQLite: no transaction, because this project's SQLite transactions take the write
    # lock up front (IMMEDIATE) and would stall the web workers' inserts during the scan;
    # WAL gives the long SELECT its own snapshot anyway.
    atomic = transaction.atomic() if connection.vendor == "postgresql" else contextlib.nullcontext()
    server_side = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    with atomic, connection.chunked_cursor() if server_side else connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_rows):
            block = np.frombuffer(b"".join([row[0] for row in rows]), dtype=np.uint8)
            if block.size != drift.N_FEATURES * len(rows):
                raise DriftCheckError(
                    f"a logged prediction of {version} does not hold {drift.N_FEATURES} feature "
                    "bytes; the prediction log is corrupt"
                )
            counts += drift.value_counts(block.reshape(len(rows), drift.N_FEATURES))
            predicted = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
            if predicted.max() >= drift.N_CLASSES:
                raise DriftCheckError(f"a logged prediction of {version} is not a digit 0..9")
            classes += np.bincount(predicted, minlength=drift.N_CLASSES)
            confidence_sum += float(
                np.fromiter((row[2] for row in rows), dtype=np.float64, count=len(rows)).sum()
            )
            # Raw values compare correctly on both backends (ISO text on SQLite).
            lo = min(row[3] for row in rows)
            hi = max(row[3] for row in rows)
            start = lo if start is None else min(start, lo)
            end = hi if end is None else max(end, hi)
            n += len(rows)
    return WindowAggregate(
        value_counts=counts,
        class_counts=classes,
        n=n,
        confidence_mean=confidence_sum / n if n else None,
        start=_as_datetime(start),
        end=_as_datetime(end),
    )


def prediction_confidence_mean(
    *,
    version: ModelVersion,
    before: dt.datetime,
    last: int | None = None,
    since: dt.datetime | None = None,
) -> float | None:
    """Mean confidence of the version's predictions logged before ``before``.

    Only the ``last`` N of them, and/or those ``since`` a time: the window that precedes a
    drift window, against which its confidence shift is measured.
    """
    qs = Prediction.objects.filter(model_version=version, created_at__lt=before)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if last is not None:
        qs = qs.order_by("-created_at")[:last]
    return qs.aggregate(mean=Avg("confidence"))["mean"]


def _as_datetime(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        moment = value
    else:
        moment = parse_datetime(str(value))
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # the database stores UTC (USE_TZ)
    return moment


@dataclass(frozen=True)
class LatestDrift:
    """The latest drift report of one model, as the metrics endpoint exports it."""

    model: str
    version: int
    score: float | None
    severity: str
    severity_code: int  # 0 none, 1 warning, 2 critical
    status: str
    drifted_share: float | None
    n_current: int
    created_at: dt.datetime


def drift_report_latest_per_model() -> list[LatestDrift]:
    """The most recent drift report of every model that has one, ordered by model name."""
    latest = (
        DriftReport.objects.filter(model_version__model=OuterRef("pk"))
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    ids = (
        RegisteredModel.objects.annotate(report_id=Subquery(latest))
        .exclude(report_id=None)
        .values_list("report_id", flat=True)
    )
    reports = DriftReport.objects.filter(pk__in=list(ids)).select_related("model_version__model")
    return sorted(
        (
            LatestDrift(
                model=r.model_version.model.name,
                version=r.model_version.version,
                score=r.score,
                severity=r.severity,
                severity_code=drift.SEVERITY_CODES[r.severity],
                status=r.status,
                drifted_share=r.drifted_share,
                n_current=r.n_current,
                created_at=r.created_at,
            )
            for r in reports
        ),
        key=lambda item: item.model,
    )


def drift_report_latest(*, name: str) -> DriftReport | None:
    """The most recent drift report of a model (any version)."""
    return (
        DriftReport.objects.filter(model_version__model__name=name)
        .select_related("model_version__model")
        .order_by("-created_at", "-id")
        .first()
    )


def drift_report_history(*, name: str, limit: int = 100) -> list[dict]:
    """The model's latest ``limit`` reports, oldest first, without their documents."""
    rows = (
        DriftReport.objects.filter(model_version__model__name=name)
        .order_by("-created_at", "-id")
        .values(
            "pk",
            "created_at",
            "status",
            "severity",
            "score",
            "drifted_share",
            "n_current",
            "model_version__version",
        )[:limit]
    )
    return list(reversed(rows))


def prediction_traffic_by_version(*, name: str, since: dt.datetime) -> list[dict]:
    """Predictions answered per version of a model since a time: version, count, share."""
    rows = (
        Prediction.objects.filter(model_version__model__name=name, created_at__gte=since)
        .values("model_version__version")
        .annotate(n=Count("pk"))
        .order_by("model_version__version")
    )
    total = sum(row["n"] for row in rows)
    return [
        {
            "version": row["model_version__version"],
            "n": row["n"],
            "share": row["n"] / total if total else 0.0,
        }
        for row in rows
    ]
