"""Registry and log reads, in the shapes the API and the commands print."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import Avg, Count, Max, Min, OuterRef, Q, Subquery
from django.utils import timezone

from .exceptions import DriftCheckError, UnknownModelError
from .ml import drift
from .models import (
    Deployment,
    DeploymentEvent,
    DriftReport,
    ModelVersion,
    Prediction,
    RegisteredModel,
    Stage,
)

logger = logging.getLogger(__name__)

#: Logged predictions fetched per round trip when aggregating a drift window.
WINDOW_CHUNK_ROWS = 20_000


def model_get(*, name: str) -> RegisteredModel:
    """The registered model called ``name``; UnknownModelError (exit 2, 404) if there is none."""
    model = RegisteredModel.objects.filter(name=name).first()
    if model is None:
        known = ", ".join(RegisteredModel.objects.order_by("name").values_list("name", flat=True))
        raise UnknownModelError(
            f"no model named {name!r} is registered; registered models: {known or 'none'}"
        )
    return model


def model_version_list(*, name: str | None = None) -> list[dict]:
    """Every registered version with its rollout state, ordered by model and version.

    ``live`` is true for the version answering routed traffic; ``stage`` is one of
    :class:`~predicciones.models.Stage` (``archived`` only for a version that was live and
    was replaced, ``registered`` for one never live); ``candidate_percent`` is the share a
    candidate gets (0 for everything else, and for a blue/green standby);
    ``traffic_percent`` is the share of routed requests each version answers.

    ``holdout`` is the version's accuracy on the fixed validation holdout (the base digits
    no model trains on: the same rows for every version, so these figures compare), or None
    when it was not measured there. ``gate`` is, for a retrained version, what the
    validation gate measured: its accuracy and its parent's on the same rows.
    """
    deployments = {d.model_id: d for d in Deployment.objects.all()}
    versions = ModelVersion.objects.select_related("model", "parent").order_by(
        "model__name", "version"
    )
    if name is not None:
        versions = versions.filter(model__name=name)
    ever_live = _versions_ever_live()
    rows = []
    for v in versions:
        dep = deployments.get(v.model_id)
        live = dep is not None and dep.live_id == v.pk
        candidate = dep is not None and dep.candidate_id == v.pk
        candidate_percent = dep.candidate_percent if candidate else 0
        traffic = 0
        if live:
            stage = Stage.LIVE
            traffic = 100 - (dep.candidate_percent if dep.candidate_id else 0)
        elif candidate:
            stage, traffic = Stage.CANDIDATE, candidate_percent
        elif dep is not None and dep.previous_live_id == v.pk:
            stage = Stage.PREVIOUS
        elif v.pk in ever_live:
            stage = Stage.ARCHIVED
        else:
            stage = Stage.REGISTERED
        rows.append(
            {
                "model": v.model.name,
                "version": v.version,
                "live": live,
                "stage": str(stage),
                "candidate_percent": candidate_percent,
                "traffic_percent": traffic,
                "sha256": v.sha256,
                "holdout": holdout_score(v.metrics),
                "gate": gate_score(v.metrics, v.parent),
                "metrics": v.metrics,
                "sklearn_version": v.sklearn_version,
                "training_data": v.training_data,
                "parent_version": v.parent.version if v.parent else None,
                "created_by": v.created_by,
                "created_at": v.created_at.isoformat(),
            }
        )
    return rows


def _versions_ever_live() -> set[int]:
    """Ids of versions that were live at some point: every promote names the version made
    live and the one it replaced; a rollback to the previous version (no ``percent``, unlike
    stopping a candidate) names two versions that were both live."""
    events = DeploymentEvent.objects.filter(
        Q(action=DeploymentEvent.Action.PROMOTE)
        | Q(action=DeploymentEvent.Action.ROLLBACK, percent__isnull=True)
    ).values_list("version_id", "previous_version_id")
    ids = {pk for pair in events for pk in pair if pk is not None}
    for dep in Deployment.objects.values_list("live_id", "previous_live_id"):
        ids.update(pk for pk in dep if pk is not None)
    return ids


def holdout_score(metrics: dict) -> dict | None:
    """``{"accuracy", "n"}`` on the fixed validation holdout, if the version was scored there.

    Retrained versions record it as ``base_holdout`` (their ``validation`` figure also
    counts the feedback rows held out when they were trained, a set that grows from one
    retrain to the next); versions trained by ``train_model`` were validated on the holdout
    alone, and their ``validation`` figure is that one.
    """
    score = metrics.get("base_holdout")
    if score is None:
        validation = metrics.get("validation") or {}
        score = validation if "set" not in validation else None
    if not score or score.get("accuracy") is None:
        return None
    return {"accuracy": score["accuracy"], "n": score.get("n")}


def gate_score(metrics: dict, parent: ModelVersion | None) -> dict | None:
    """For a version the validation gate let through: its accuracy and the live version's,
    measured on the same rows (``n``, validation set ``set``)."""
    validation = metrics.get("validation") or {}
    if "set" not in validation or validation.get("live_accuracy") is None:
        return None
    return {
        "set": validation["set"],
        "n": validation.get("n"),
        "accuracy": validation["accuracy"],
        "against_version": parent.version if parent else None,
        "against_accuracy": validation["live_accuracy"],
    }


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
    *,
    version: ModelVersion,
    last: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
):
    """A version's logged predictions: the ``last`` N (newest first) and/or ``since`` a time,
    logged no later than ``until``."""
    qs = Prediction.objects.filter(model_version=version)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lte=until)
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
    # Bounds first, then the rows, both up to the same instant: rows logged during the scan
    # do not shift the window. Timestamps are not streamed (converting a million of them
    # would cost more than the rest of the check on PostgreSQL).
    qs = prediction_window_queryset(version=version, last=last, since=since, until=timezone.now())
    bounds = qs.aggregate(start=Min("created_at"), end=Max("created_at"))
    sql, params = qs.values_list("features", "prediction", "confidence").query.sql_with_params()
    counts = np.zeros((drift.N_FEATURES, drift.N_VALUES), dtype=np.int64)
    classes = np.zeros(drift.N_CLASSES, dtype=np.int64)
    n = 0
    confidence_sum = 0.0
    # SQLite: no transaction, because this project's SQLite transactions take the write
    # lock up front (IMMEDIATE) and would stall the web workers' inserts during the scan;
    # WAL gives the long SELECT its own snapshot anyway. PostgreSQL: a transaction, so the
    # server-side cursor streams instead of materialising its result (WITH HOLD).
    postgres = connection.vendor == "postgresql"
    atomic = transaction.atomic() if postgres else contextlib.nullcontext()
    server_side = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    open_cursor = connection.chunked_cursor if server_side else connection.cursor
    with atomic, open_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_rows):
            features, predicted, confidence = zip(*rows, strict=True)
            block = np.frombuffer(b"".join(features), dtype=np.uint8)
            if block.size != drift.N_FEATURES * len(rows):
                raise DriftCheckError(
                    f"a logged prediction of {version} does not hold {drift.N_FEATURES} feature "
                    "bytes; the prediction log is corrupt"
                )
            counts += drift.value_counts(block.reshape(len(rows), drift.N_FEATURES))
            predicted = np.array(predicted, dtype=np.int64)
            if predicted.max() >= drift.N_CLASSES:
                raise DriftCheckError(f"a logged prediction of {version} is not a digit 0..9")
            classes += np.bincount(predicted, minlength=drift.N_CLASSES)
            confidence_sum += float(np.sum(confidence, dtype=np.float64))
            n += len(rows)
    return WindowAggregate(
        value_counts=counts,
        class_counts=classes,
        n=n,
        confidence_mean=confidence_sum / n if n else None,
        start=bounds["start"] if n else None,
        end=bounds["end"] if n else None,
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
    feature_scores: list[float | None]  # normalised score per pixel, row-major 8x8


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
                feature_scores=[f.get("normalised") for f in r.document.get("features", [])],
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
