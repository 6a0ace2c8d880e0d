"""Drift reports: compare a window of logged inputs with a version's training statistics.

The training statistics come from the artifact store (S3 when configured); the live
histograms are aggregated in a streaming pass over the prediction log
(:func:`predicciones.selectors.prediction_window_aggregate`); the maths is
:mod:`predicciones.ml.drift`. A report is recorded only whole: its JSON is written to the
store first and the database row second, so a store outage leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from .. import selectors, storage
from ..exceptions import (
    DriftCheckError,
    OperatorError,
    TrainingStatsUnavailableError,
    UnknownModelError,
)
from ..ml import drift, drift_document
from ..models import Deployment, DriftReport, ModelVersion
from .registry import shipped_model_read, shipped_model_store_sync

logger = logging.getLogger(__name__)


def drift_thresholds_from_settings(
    *,
    feature: float | None = None,
    warning_share: float | None = None,
    critical_share: float | None = None,
    min_samples: int | None = None,
) -> drift.DriftThresholds:
    """The ``DIGITS_DRIFT_*`` thresholds, with any given value taking precedence.

    Raises OperatorError when the combination is inconsistent (e.g. warning above critical).
    """
    try:
        return drift.DriftThresholds(
            feature=settings.DIGITS_DRIFT_FEATURE_THRESHOLD if feature is None else feature,
            warning_share=(
                settings.DIGITS_DRIFT_WARNING_SHARE if warning_share is None else warning_share
            ),
            critical_share=(
                settings.DIGITS_DRIFT_CRITICAL_SHARE if critical_share is None else critical_share
            ),
            min_samples=settings.DIGITS_DRIFT_MIN_SAMPLES if min_samples is None else min_samples,
        )
    except ValueError as exc:
        raise OperatorError(str(exc)) from exc


def drift_version_resolve(*, name: str | None = None, version: int | None = None) -> ModelVersion:
    """The version to check: the given one, else the model's live version."""
    name = name or settings.DIGITS_DEFAULT_MODEL
    if version is not None:
        try:
            return ModelVersion.objects.select_related("model").get(
                model__name=name, version=version
            )
        except ModelVersion.DoesNotExist:
            raise UnknownModelError(f"{name} has no version {version}.") from None
    deployment = Deployment.objects.select_related("live__model").filter(model__name=name).first()
    if deployment is not None:
        return deployment.live
    if ModelVersion.objects.of_model(name).exists():
        raise DriftCheckError(f"{name} has no live version; name one with --model-version")
    known = ", ".join(sorted(set(Deployment.objects.values_list("model__name", flat=True))))
    hint = (
        " (the server registers it on its first start, or run manage.py bootstrap_model)"
        if name == settings.DIGITS_DEFAULT_MODEL
        else f"; registered models: {known or 'none'}"
    )
    raise UnknownModelError(f"no model named {name!r} is registered{hint}")


def training_reference_get(
    version: ModelVersion, *, repair: bool = True
) -> drift.TrainingReference:
    """Read and validate a version's training statistics from the artifact store.

    When they are missing and the version is the shipped pickle (same sha256), they are
    first uploaded from ``model/`` (a registry bootstrapped on the local folder and pointed
    at S3 later); without ``repair`` they are read from ``model/`` and nothing is written.

    Raises
    ------
    TrainingStatsUnavailableError
        Missing (and not restorable) or malformed statistics.
    StoreError
        The store cannot be reached.
    """
    store = storage.get_store()
    if not version.stats_key:
        raise TrainingStatsUnavailableError(f"{version} was registered without training statistics")
    try:
        document = storage.get_json(store, version.stats_key)
    except storage.ObjectMissingError:
        if version.sha256 != shipped_model_read().sha256:
            raise TrainingStatsUnavailableError(
                f"training statistics of {version} are missing from {store.describe()} "
                f"({version.stats_key}); was it registered against another artifact store?"
            ) from None
        if not repair:
            document = shipped_model_read().statistics
        else:
            shipped_model_store_sync()
            document = storage.get_json(store, version.stats_key)
    except ValueError as exc:  # not JSON
        raise TrainingStatsUnavailableError(
            f"training statistics of {version} ({version.stats_key}) are not valid JSON"
        ) from exc
    try:
        return drift_document.training_reference(document)
    except ValueError as exc:
        raise TrainingStatsUnavailableError(
            f"training statistics of {version} ({version.stats_key}) are malformed: {exc}"
        ) from exc


def drift_report_create(
    *,
    name: str | None = None,
    version: int | None = None,
    last: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    thresholds: drift.DriftThresholds | None = None,
    save: bool = True,
    use_summaries: bool = True,
) -> DriftReport:
    """Check a version's recent inputs for drift and record the report.

    The window is the ``last`` N predictions of the version, or those ``since`` a time
    (``DIGITS_DRIFT_WINDOW`` last ones when neither is given), logged up to ``until``
    (default now). A ``since`` window reads whole hours from their hourly summaries and
    the rest from the log; the report is the same as from the rows alone
    (``use_summaries=False``), only its ``sources`` differ. With ``save`` the report's
    JSON goes to the artifact store and then a row to the database; without, the returned
    report is unsaved and nothing at all is written. Raises DriftCheckError (and
    subclasses), UnknownModelError or StoreError when the check cannot run; nothing is
    recorded then.
    """
    if last is not None and since is not None:
        raise DriftCheckError("give either a --last count or a --since time, not both")
    if last is None and since is None:
        last = settings.DIGITS_DRIFT_WINDOW
    if last is not None and last < 1:
        raise DriftCheckError(
            f"the window (--last or DIGITS_DRIFT_WINDOW) must be a positive count, got {last}"
        )
    thresholds = thresholds or drift_thresholds_from_settings()
    model_version = drift_version_resolve(name=name, version=version)
    reference = training_reference_get(model_version, repair=save)
    now = timezone.now()
    end = now if until is None else until
    if since is not None and until is not None and since > until:
        raise DriftCheckError(
            f"--since {since.isoformat()} is after --until {until.isoformat()}: empty window"
        )

    window = selectors.prediction_window_aggregate(
        version=model_version, last=last, since=since, until=end, use_summaries=use_summaries
    )
    reference_confidence = None
    if window.n:
        if last is not None:
            reference_confidence = selectors.prediction_confidence_mean(
                version=model_version, before=window.start, last=last
            )
        else:
            reference_confidence = selectors.prediction_confidence_mean(
                version=model_version,
                before=since,
                since=since - (end - since),
                use_summaries=use_summaries,
            )
    result = drift.compare(
        reference,
        window.value_counts,
        window.class_counts,
        current_confidence_mean=window.confidence_mean,
        reference_confidence_mean=reference_confidence,
        thresholds=thresholds,
    )

    report_uid = uuid.uuid4().hex
    model_name = model_version.model.name
    store_key = storage.drift_report_key(
        model_name, model_version.version, f"{now:%Y%m%dT%H%M%S%fZ}-{report_uid[:8]}"
    )
    document = {
        "report_uid": report_uid,
        "created_at": now.isoformat(),
        "model": model_name,
        "version": model_version.version,
        "model_sha256": model_version.sha256,
        "window": {
            "kind": "last" if last is not None else "since",
            "last": last,
            "since": since.isoformat() if since is not None else None,
            "until": until.isoformat() if until is not None else None,
            "start": window.start.isoformat() if window.start else None,
            "end": window.end.isoformat() if window.end else None,
            "confidence_reference": (
                f"the {last} predictions before the window"
                if last is not None
                else "the same duration before --since"
            ),
        },
        "store_key": store_key if save else None,
        **drift_document.result_document(result),
        "sources": {"summary_hours": window.summary_hours, "raw_rows": window.raw_rows},
    }
    report = DriftReport(
        model_version=model_version,
        created_at=now,
        status=result.status,
        severity=result.severity,
        score=result.score,
        drifted_share=result.drifted_share,
        n_reference=result.n_reference,
        n_current=result.n_current,
        window_start=window.start,
        window_end=window.end,
        store_key=store_key if save else "",
        document=document,
    )
    if save:
        _record(report)
    return report


def _record(report: DriftReport) -> None:
    """Store first, database second; undo the stored object if the row cannot be written."""
    store = storage.get_store()
    storage.put_json(store, report.store_key, report.document)
    try:
        with transaction.atomic():
            report.save()
    except DatabaseError:
        try:
            store.delete(report.store_key)
        except storage.StoreError:
            logger.warning("could not remove %s after a failed insert", report.store_key)
        raise
    logger.info(
        "drift report %s for %s: %s/%s",
        report.pk,
        report.model_version,
        report.status,
        report.severity,
    )
