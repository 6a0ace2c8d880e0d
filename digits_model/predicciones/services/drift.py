"""Drift reports: compare a window of logged inputs with a version's training statistics.

The training statistics come from the artifact store (S3 when configured); the live
histograms are aggregated in a streaming pass over the prediction log
(:func:`predicciones.prediction_log.windows.prediction_window_aggregate`); the maths is
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

from .. import options, storage
from ..exceptions import DriftCheckError, TrainingStatsUnavailableError, UnknownModelError
from ..ml import drift, drift_document
from ..models import Deployment, DriftReport, ModelVersion
from ..prediction_log import windows
from .registry import shipped_model_read, shipped_model_store_sync

logger = logging.getLogger(__name__)

#: What a report's row keeps of the comparison's result, beside its document.
REPORT_RESULT_FIELDS = (
    "status",
    "severity",
    "score",
    "drifted_share",
    "n_reference",
    "n_current",
)


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
    report is unsaved and nothing at all is written. Raises OperatorError (a bad window),
    DriftCheckError (and subclasses), UnknownModelError or StoreError when the check cannot
    run; nothing is recorded then.
    """
    last = _window_last(last=last, since=since, until=until)
    thresholds = thresholds or options.drift_thresholds()
    model_version = drift_version_resolve(name=name, version=version)
    reference = training_reference_get(model_version, repair=save)
    now = timezone.now()
    end = now if until is None else until
    window = windows.prediction_window_aggregate(
        version=model_version, last=last, since=since, until=end, use_summaries=use_summaries
    )
    result = drift.compare(
        reference,
        window.value_counts,
        window.class_counts,
        current_confidence_mean=window.confidence_mean,
        reference_confidence_mean=_reference_confidence(
            model_version, window, last=last, since=since, end=end, use_summaries=use_summaries
        ),
        thresholds=thresholds,
    )
    report = _report(
        model_version, result, window, now=now, last=last, since=since, until=until, save=save
    )
    if save:
        _record(report)
    return report


def _window_last(
    *, last: int | None, since: dt.datetime | None, until: dt.datetime | None
) -> int | None:
    """The window's ``last`` count (``DIGITS_DRIFT_WINDOW`` when no window is given), or None
    for a ``since`` window; refuses both at once and a span that ends before it starts."""
    if last is not None and since is not None:
        raise DriftCheckError("give either a --last count or a --since time, not both")
    if since is not None and until is not None and since > until:
        raise DriftCheckError(
            f"--since {since.isoformat()} is after --until {until.isoformat()}: empty window"
        )
    return None if since is not None else options.drift_window(last)


def _reference_confidence(
    version: ModelVersion, window, *, last, since, end, use_summaries: bool
) -> float | None:
    """Mean confidence of the window before this one: the ``last`` predictions before it,
    or the same duration before ``since``."""
    if not window.n:
        return None
    if last is not None:
        return windows.prediction_confidence_mean(version=version, before=window.start, last=last)
    return windows.prediction_confidence_mean(
        version=version,
        before=since,
        since=since - (end - since),
        use_summaries=use_summaries,
    )


def _report(
    version: ModelVersion, result, window, *, now, last, since, until, save: bool
) -> DriftReport:
    """The report row (unsaved) and its document."""
    report_uid = uuid.uuid4().hex
    store_key = storage.drift_report_key(
        version.model.name, version.version, f"{now:%Y%m%dT%H%M%S%fZ}-{report_uid[:8]}"
    )
    document = drift_document.report_document(
        report_uid=report_uid,
        created_at=now,
        model=version.model.name,
        version=version.version,
        model_sha256=version.sha256,
        window=drift_document.window_document(
            last=last, since=since, until=until, start=window.start, end=window.end
        ),
        store_key=store_key if save else None,
        result=result,
        sources={"summary_hours": window.summary_hours, "raw_rows": window.raw_rows},
    )
    return DriftReport(
        model_version=version,
        created_at=now,
        window_start=window.start,
        window_end=window.end,
        store_key=store_key if save else "",
        document=document,
        **{name: getattr(result, name) for name in REPORT_RESULT_FIELDS},
    )


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
