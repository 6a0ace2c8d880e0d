"""Reads: the registry, drift reports, traffic per version and retraining's inputs, in the
shapes the API and the commands print (the prediction log's rows through ``prediction_log``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.utils import timezone

from .exceptions import UnknownModelError
from .ml import drift
from .ml import gate as gate_rules
from .ml.features import N_FEATURES
from .models import (
    Deployment,
    DeploymentEvent,
    DriftReport,
    ModelVersion,
    Prediction,
    RegisteredModel,
    RetrainRun,
    Stage,
)
from .prediction_log import windows
from .prediction_log.export import labelled_rows


def model_get(*, name: str) -> RegisteredModel:
    """The registered model called ``name``; UnknownModelError (exit 2, 404) if there is none."""
    model = RegisteredModel.objects.filter(name=name).first()
    if model is None:
        known = ", ".join(RegisteredModel.objects.order_by("name").values_list("name", flat=True))
        raise UnknownModelError(
            f"no model named {name!r} is registered; registered models: {known or 'none'}"
        )
    return model


def model_name_list() -> list[str]:
    """Every registered model's name, in order."""
    return list(RegisteredModel.objects.order_by("name").values_list("name", flat=True))


def deployment_list() -> list[Deployment]:
    """Every model's deployment, with its model, live and candidate versions loaded."""
    return list(Deployment.objects.select_related("model", "live", "candidate"))


def deployment_get(*, name: str) -> Deployment:
    """The deployment of model ``name`` (live, candidate, share); UnknownModelError if none."""
    deployment = (
        Deployment.objects.select_related("model", "live", "candidate")
        .filter(model__name=name)
        .first()
    )
    if deployment is None:
        raise UnknownModelError(f"No deployed model named {name!r}.")
    return deployment


def feedback_count_per_version() -> list[dict]:
    """Labelled and correctly predicted requests per model version that has labels:
    ``{"model", "version", "labelled", "correct"}``."""
    rows = (
        Prediction.objects.filter(label__isnull=False)
        .values("model_version__model__name", "model_version__version")
        .annotate(labelled=Count("pk"), correct=Count("pk", filter=Q(label=F("prediction"))))
        .order_by()
    )
    return [
        {
            "model": row["model_version__model__name"],
            "version": row["model_version__version"],
            "labelled": row["labelled"],
            "correct": row["correct"],
        }
        for row in rows
    ]


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


# --- Drift reports -------------------------------------------------------------------------------
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


def prediction_traffic_by_version(
    *, name: str, since: dt.datetime, until: dt.datetime | None = None
) -> list[dict]:
    """Predictions answered per version of a model since a time: version, count, share.

    Whole hours are counted from their summaries, the rest from the log, so a day of
    traffic costs about 24 summary rows and an hour or two of rows whatever the load.
    """
    until = timezone.now() if until is None else until
    rows = []
    for version in ModelVersion.objects.filter(model__name=name).order_by("version"):
        n = windows.prediction_count(version=version, since=since, until=until)
        if n:
            rows.append({"version": version.version, "n": n})
    total = sum(row["n"] for row in rows)
    return [{**row, "share": row["n"] / total if total else 0.0} for row in rows]


# --- Retraining's inputs: labelled feedback since the last retrain -------------------------------
@dataclass
class FeedbackSet:
    """Labelled predictions of one model, split into training rows and validation rows."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_validation: np.ndarray
    y_validation: np.ndarray
    validation_ids: list[str] = field(default_factory=list)
    #: Who gave each row's label (``provenance``; None: unknown), row for row.
    train_sources: list[str | None] = field(default_factory=list)
    validation_sources: list[str | None] = field(default_factory=list)

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_validation(self) -> int:
        return len(self.y_validation)


def last_retrain(model_name: str) -> RetrainRun | None:
    """The last run that actually trained a candidate (what the cooldown counts from)."""
    return (
        RetrainRun.objects.filter(
            model__name=model_name,
            status__in=[RetrainRun.Status.REGISTERED, RetrainRun.Status.REFUSED],
        )
        .order_by("-started_at")
        .first()
    )


def new_label_count(model_name: str) -> int:
    """Labels recorded since the last retrain (all labels if there was none)."""
    rows = Prediction.objects.filter(model_version__model__name=model_name, label__isnull=False)
    previous = last_retrain(model_name)
    if previous is not None:
        rows = rows.filter(labelled_at__gt=previous.started_at)
    return rows.count()


def cooldown_remaining(model_name: str, hours: float) -> dt.timedelta | None:
    """Time left before another retrain is allowed, or None when it is allowed now."""
    previous = last_retrain(model_name)
    if previous is None or hours <= 0:
        return None
    ready_at = previous.started_at + dt.timedelta(hours=hours)
    now = timezone.now()
    return ready_at - now if ready_at > now else None


def feedback_set(model_name: str, holdout_percent: int) -> FeedbackSet:
    """All labelled predictions of a model, split by the fixed feedback holdout."""
    train_X, train_y, val_X, val_y, val_ids = [], [], [], [], []
    train_sources, val_sources = [], []
    for query_id, image_sha256, vector, label, source in labelled_rows(model_name):
        if gate_rules.in_feedback_holdout(image_sha256, holdout_percent):
            val_X.append(vector)
            val_y.append(label)
            val_ids.append(str(query_id))
            val_sources.append(source)
        else:
            train_X.append(vector)
            train_y.append(label)
            train_sources.append(source)

    def stack(vectors):
        return np.asarray(vectors, dtype=np.float64).reshape(-1, N_FEATURES)

    return FeedbackSet(
        X_train=stack(train_X),
        y_train=np.asarray(train_y, dtype=int),
        X_validation=stack(val_X),
        y_validation=np.asarray(val_y, dtype=int),
        validation_ids=val_ids,
        train_sources=train_sources,
        validation_sources=val_sources,
    )
