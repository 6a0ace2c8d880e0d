"""Reading a window of a version's log: the ``last`` N predictions, or those in a time span.

A time window is read from the hourly summaries for its whole hours and from the rows for
the rest (:func:`prediction_window_plan`); the counts are integers and the confidence sum
exact, so the result is identical to reading every row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.db.models import Avg
from django.utils import timezone

from ..exceptions import WindowRowsDeletedError
from ..ml import summary
from ..models import ModelVersion, Prediction, PredictionHour
from .intervals import WINDOW_CHUNK_ROWS, prediction_interval_summary, rows_summary
from .layout import HOUR, MICROSECOND, hour_ceil, hour_floor, interval_rows
from .summaries import hour_summary_read

#: What a drift window reads of a summary row.
DRIFT_FIELDS = (
    "hour",
    "n",
    "value_counts",
    "class_counts",
    "confidence_units",
    "first_created_at",
    "last_created_at",
)


@dataclass(frozen=True)
class WindowAggregate:
    """Histograms of one window of logged predictions.

    ``value_counts`` has shape (64, 17) and ``class_counts`` shape (10,); ``start`` and
    ``end`` are the first and last ``created_at`` in the window (None when it is empty).
    ``summary_hours`` whole hours were read from their summaries and ``raw_rows`` rows from
    the log (the two never overlap).
    """

    value_counts: np.ndarray
    class_counts: np.ndarray
    n: int
    confidence_mean: float | None
    start: dt.datetime | None
    end: dt.datetime | None
    summary_hours: int = 0
    raw_rows: int = 0


@dataclass(frozen=True)
class WindowPlan:
    """How a time window is read: whole hours from their summaries, the rest from rows.

    ``raw`` holds half-open ``[start, end)`` intervals, in order, that no summary covers.
    """

    hours: list[PredictionHour]
    raw: list[tuple[dt.datetime, dt.datetime]]


def prediction_window_plan(
    *,
    version: ModelVersion,
    since: dt.datetime,
    until: dt.datetime,
    use_summaries: bool = True,
    strict: bool = True,
    fields: tuple[str, ...] | None = None,
) -> WindowPlan:
    """Split the half-open window ``[since, until)`` into summarised hours and raw intervals.

    An hour is read from its summary when it lies wholly inside the window; everything else
    (the window's partial first and last hours, hours not summarised yet) from the rows.
    With ``strict``, a raw interval that reaches into an hour whose rows retention has
    started deleting raises :class:`WindowRowsDeletedError`: those rows are only in the
    hour's summary and capture, and the summary cannot be split.
    """
    if not use_summaries:
        return WindowPlan(hours=[], raw=[(since, until)] if since < until else [])
    first_full, end_full = hour_ceil(since), hour_floor(until)
    hours: list[PredictionHour] = []
    if first_full < end_full:
        hours = list(
            PredictionHour.objects.filter(
                model_version=version, hour__gte=first_full, hour__lt=end_full
            )
            .order_by("hour")
            .only(*(fields or [f.name for f in PredictionHour._meta.concrete_fields]))
        )
    raw, cursor = [], since
    for hour in hours:
        if hour.hour > cursor:
            raw.append((cursor, hour.hour))
        cursor = hour.hour + HOUR
    if cursor < until:
        raw.append((cursor, until))
    if strict and raw:
        _refuse_pruned_hours(version, raw)
    return WindowPlan(hours=hours, raw=raw)


def _refuse_pruned_hours(version: ModelVersion, raw: list[tuple[dt.datetime, dt.datetime]]):
    """WindowRowsDeletedError when a raw interval reaches into an hour retention pruned."""
    pruned = PredictionHour.objects.filter(
        model_version=version,
        deleted_rows__gt=0,
        hour__gte=hour_floor(raw[0][0]),
        hour__lt=raw[-1][1],
    ).values_list("hour", flat=True)
    for hour in pruned:
        if any(hour < end and hour + HOUR > start for start, end in raw):
            raise WindowRowsDeletedError(
                f"the window cuts the hour from {hour.isoformat()}, whose rows of {version} "
                "retention has deleted (only its whole-hour summary and capture remain); "
                f"start and end the window on whole hours, e.g. {hour.isoformat()} "
                f"or {(hour + HOUR).isoformat()}"
            )


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
    until: dt.datetime | None = None,
    chunk_rows: int = WINDOW_CHUNK_ROWS,
    use_summaries: bool = True,
) -> WindowAggregate:
    """Histograms of a window: the ``last`` N predictions, or those ``since`` a time.

    Both end at ``until`` (inclusive; default now, so rows logged during the scan do not
    shift the window). A ``since`` window reads each whole hour that has a summary from it
    and everything else from the rows (:func:`prediction_window_plan`), the result
    identical to reading every row (``use_summaries=False``). Rows are streamed
    ``chunk_rows`` at a time, so memory stays bounded whatever the window's size.
    """
    until = timezone.now() if until is None else until
    total, hours = summary.LogSummary(), summary.LogSummary()
    n_hours = 0
    if last is not None or since is None:
        qs = prediction_window_queryset(version=version, last=last, since=since, until=until)
        total.add(rows_summary(qs, version, chunk_rows))
    else:
        plan = prediction_window_plan(
            version=version,
            since=since,
            until=until + MICROSECOND,
            use_summaries=use_summaries,
            fields=DRIFT_FIELDS,
        )
        for hour in plan.hours:
            hours.add(hour_summary_read(hour, drift_only=True))
        total.add(hours)
        n_hours = len(plan.hours)
        for start, end in plan.raw:
            total.add(prediction_interval_summary(version, start, end, chunk_rows=chunk_rows))
    return WindowAggregate(
        value_counts=total.value_counts,
        class_counts=total.class_counts,
        n=total.n,
        confidence_mean=total.confidence_mean,
        start=total.first,
        end=total.last,
        summary_hours=n_hours,
        raw_rows=total.n - hours.n,
    )


def prediction_confidence_mean(
    *,
    version: ModelVersion,
    before: dt.datetime,
    last: int | None = None,
    since: dt.datetime | None = None,
    use_summaries: bool = True,
) -> float | None:
    """Mean confidence of the version's predictions logged before ``before``.

    Only the ``last`` N of them, or those ``since`` a time: the window that precedes a
    drift window, against which its confidence shift is measured. A ``since`` window reads
    whole hours from their summaries (exactly, like :func:`prediction_window_aggregate`);
    when it cuts an hour whose rows retention has deleted, there is no exact mean: None.
    """
    if last is not None or since is None:
        qs = Prediction.objects.filter(model_version=version, created_at__lt=before)
        if since is not None:
            qs = qs.filter(created_at__gte=since)
        if last is not None:
            qs = qs.order_by("-created_at")[:last]
        return qs.aggregate(mean=Avg("confidence"))["mean"]
    try:
        plan = prediction_window_plan(
            version=version,
            since=since,
            until=before,
            use_summaries=use_summaries,
            fields=("hour", "n", "confidence_units"),
        )
    except WindowRowsDeletedError:
        return None
    units = sum(int(hour.confidence_units) for hour in plan.hours)
    n = sum(hour.n for hour in plan.hours)
    for start, end in plan.raw:
        raw = prediction_interval_summary(version, start, end)
        units += raw.confidence_units
        n += raw.n
    return summary.confidence_mean(units, n)


def prediction_count(*, version: ModelVersion, since: dt.datetime, until: dt.datetime) -> int:
    """How many predictions the version answered in ``[since, until)``: whole hours from
    their summaries (a pruned hour still counts every row it had), the rest from the rows."""
    plan = prediction_window_plan(
        version=version, since=since, until=until, strict=False, fields=("hour", "n")
    )
    n = sum(hour.n for hour in plan.hours)
    for start, end in plan.raw:
        n += interval_rows(version, start, end).count()
    return n
