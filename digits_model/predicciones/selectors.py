"""Reads: the registry, the prediction log and the process's readiness, in the shapes the API
and the commands print."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Avg, Count, F, Max, Min, OuterRef, Q, Subquery
from django.utils import timezone

from . import log_health, storage
from .exceptions import DriftCheckError, UnknownModelError, WindowRowsDeletedError
from .ml import drift, summary
from .ml import gate as gate_rules
from .ml.features import N_CLASSES, N_FEATURES
from .models import (
    Deployment,
    DeploymentEvent,
    DriftReport,
    ModelVersion,
    Prediction,
    PredictionHour,
    RegisteredModel,
    RetrainRun,
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


# --- Drift ---------------------------------------------------------------------------------------
HOUR = dt.timedelta(hours=1)
#: Timestamps are stored to the microsecond on SQLite and PostgreSQL alike.
MICROSECOND = dt.timedelta(microseconds=1)


def hour_floor(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC hour holding ``moment``."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: dt.datetime) -> dt.datetime:
    """The first UTC hour boundary at or after ``moment``."""
    floor = hour_floor(moment)
    return floor if floor == moment else floor + HOUR


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
    return WindowPlan(hours=hours, raw=raw)


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


def hour_summary_read(hour: PredictionHour, *, drift_only: bool = False) -> summary.LogSummary:
    """A summary row as a :class:`~predicciones.ml.summary.LogSummary` (with ``drift_only``,
    what a drift window needs: no latency or label counts, which need not be loaded)."""
    result = summary.LogSummary(
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
    and everything else from the rows (:func:`prediction_window_plan`); the counts are
    integers and the confidence sum exact, so the result is identical to reading every row
    (``use_summaries=False``). Rows are streamed ``chunk_rows`` at a time, so memory stays
    bounded whatever the window's size.
    """
    until = timezone.now() if until is None else until
    total = summary.LogSummary()
    hours = summary.LogSummary()
    n_hours = 0
    if last is not None or since is None:
        qs = prediction_window_queryset(version=version, last=last, since=since, until=until)
        total.add(_rows_summary(qs, version, chunk_rows))
    else:
        plan = prediction_window_plan(
            version=version,
            since=since,
            until=until + MICROSECOND,
            use_summaries=use_summaries,
            fields=(
                "hour",
                "n",
                "value_counts",
                "class_counts",
                "confidence_units",
                "first_created_at",
                "last_created_at",
            ),
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


def _rows_summary(qs, version: ModelVersion, chunk_rows: int) -> summary.LogSummary:
    """Stream a queryset's features, predictions and confidences into a summary.

    A server-side cursor on PostgreSQL (inside a transaction, so the result is streamed
    rather than materialised), SQLite's incremental stepping otherwise. Nothing is kept
    per row. The first and last ``created_at`` come from one aggregate query on the same
    rows (converting every timestamp would cost more than the rest of the scan).
    """
    # Two queries: SQLite answers a lone min() or max() from the index, both at once by a scan.
    bounds = {
        "start": qs.aggregate(start=Min("created_at"))["start"],
        "end": qs.aggregate(end=Max("created_at"))["end"],
    }
    sql, params = qs.values_list("features", "prediction", "confidence").query.sql_with_params()
    result = summary.LogSummary()
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
            if block.size != N_FEATURES * len(rows):
                raise DriftCheckError(
                    f"a logged prediction of {version} does not hold {N_FEATURES} feature "
                    "bytes; the prediction log is corrupt"
                )
            try:
                result.add_block(block.reshape(len(rows), N_FEATURES), predicted, confidence)
            except ValueError as exc:
                raise DriftCheckError(
                    f"a logged prediction of {version} is out of range ({exc}); "
                    "the prediction log is corrupt"
                ) from exc
    if result.n:
        result.first, result.last = bounds["start"], bounds["end"]
    return result


#: Per chunk, the database concatenates the features and predictions and sums the confidence
#: units (``ml.summary``), so rows never become Python objects; these are the statements.
_CHUNK_SQL = {
    "sqlite": (
        "SELECT count(*), CAST(group_concat({features}, '') AS BLOB), "
        "group_concat({prediction}, ''), "
        "sum(CAST({confidence} * 9007199254740992.0 AS INTEGER) >> 26), "
        "sum(CAST({confidence} * 9007199254740992.0 AS INTEGER) & 67108863) "
        "FROM {table} WHERE {version} = %s AND {created} >= %s AND {created} < %s"
    ),
    "postgresql": (
        "SELECT count(*), string_agg({features}, ''::bytea), "
        "string_agg({prediction}::text, ''), "
        "sum(floor({confidence} * 9007199254740992::float8)::bigint >> 26), "
        "sum(floor({confidence} * 9007199254740992::float8)::bigint & 67108863) "
        "FROM {table} WHERE {version} = %s AND {created} >= %s AND {created} < %s"
    ),
}
#: Bounds on the time span one chunk covers while it adapts to the log's density.
_MIN_CHUNK_SPAN = dt.timedelta(milliseconds=1)
_MAX_CHUNK_SPAN = dt.timedelta(days=1)
#: A long interval is read by this many connections at once, one thread each: the database
#: drivers release the GIL while the database works, and that work is most of the time.
RAW_READERS = 2
#: ... when its rows span at least this long (a thread and a connection cost milliseconds).
PARALLEL_MIN_SPAN = dt.timedelta(minutes=10)


def _chunk_sql() -> str | None:
    template = _CHUNK_SQL.get(connection.vendor)
    if template is None:
        return None
    quote = connection.ops.quote_name
    column = {f.name: quote(f.column) for f in Prediction._meta.concrete_fields}
    return template.format(
        table=quote(Prediction._meta.db_table),
        features=column["features"],
        prediction=column["prediction"],
        confidence=column["confidence"],
        version=column["model_version"],
        created=column["created_at"],
    )


def _chunk_fetch(sql: str, params: list) -> tuple:
    """The one row of a chunk's statement (:data:`_CHUNK_SQL`).

    On PostgreSQL it comes in binary format, from a psycopg cursor of its own: Django's
    cursors bind parameters on the client, which psycopg allows only with text results, and
    in text the chunk's features travel as hex, twice their size, for the server to encode
    and psycopg to decode. Errors are still Django's.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        # Not prepared, like Django's own statements (no state left on a pooled connection).
        cursor.execute(sql, params, binary=True, prepare=False)
        return cursor.fetchone()


def _parallel_reads_possible() -> bool:
    """Other connections see the same rows: not inside a transaction (uncommitted rows),
    not on an in-memory SQLite database (private to its connection)."""
    if connection.in_atomic_block or connection.vendor not in _CHUNK_SQL:
        return False
    return not (connection.vendor == "sqlite" and connection.is_in_memory_db())


def prediction_interval_summary(
    version: ModelVersion,
    start: dt.datetime,
    end: dt.datetime,
    *,
    chunk_rows: int = WINDOW_CHUNK_ROWS,
    readers: int = RAW_READERS,
) -> summary.LogSummary:
    """The drift inputs of a version's rows logged in ``[start, end)``: feature histogram,
    class counts, exact confidence sum, first and last time (no latency or labels).

    Rows spanning :data:`PARALLEL_MIN_SPAN` or more are split by time into ``readers``
    parts read at once, each by its own thread and connection; the parts' summaries add up
    exactly (:meth:`~predicciones.ml.summary.LogSummary.add`).
    """
    if readers > 1 and _parallel_reads_possible():
        base = Prediction.objects.filter(
            model_version=version, created_at__gte=start, created_at__lt=end
        )
        first = base.aggregate(first=Min("created_at"))["first"]
        last = base.aggregate(last=Max("created_at"))["last"]
        if first is not None and last - first >= PARALLEL_MIN_SPAN:
            step = (last - first) / readers
            cuts = [first + step * i for i in range(1, readers)]
            bounds = list(zip([start, *cuts], [*cuts, end], strict=True))
            with ThreadPoolExecutor(max_workers=readers) as pool:
                parts = list(
                    pool.map(lambda b: _interval_summary_in_thread(version, *b, chunk_rows), bounds)
                )
            total = summary.LogSummary()
            for part in parts:
                total.add(part)
            return total
    return _interval_summary(version, start, end, chunk_rows=chunk_rows)


def _interval_summary_in_thread(version, start, end, chunk_rows) -> summary.LogSummary:
    try:
        return _interval_summary(version, start, end, chunk_rows=chunk_rows)
    finally:
        connection.close()  # this thread's own connection


def _interval_summary(
    version: ModelVersion,
    start: dt.datetime,
    end: dt.datetime,
    *,
    chunk_rows: int = WINDOW_CHUNK_ROWS,
) -> summary.LogSummary:
    """The drift inputs of a version's rows logged in ``[start, end)``: feature histogram,
    class counts, exact confidence sum, first and last time (no latency or labels).

    The interval is read in consecutive time chunks sized to hold about ``chunk_rows`` rows
    each (the span adapts to the log's density, and empty stretches are skipped with an
    index seek), each aggregated by the database in one statement: memory stays bounded
    and no row becomes a Python object. The result equals
    :meth:`~predicciones.ml.summary.LogSummary.add_block` over the same rows.
    """
    sql = _chunk_sql()
    base = Prediction.objects.filter(model_version=version)
    if sql is None:  # another database: stream the rows
        qs = base.filter(created_at__gte=start, created_at__lt=end).order_by()
        return _rows_summary(qs, version, chunk_rows)
    result = summary.LogSummary()

    def seek(after: dt.datetime) -> dt.datetime | None:
        rows = base.filter(created_at__gte=after, created_at__lt=end)
        return rows.aggregate(first=Min("created_at"))["first"]

    cursor = seek(start)
    if cursor is None:
        return result
    first = cursor
    span = dt.timedelta(minutes=1)
    adapt = connection.ops.adapt_datetimefield_value
    while cursor is not None and cursor < end:
        upper = min(cursor + span, end)
        chunk = _chunk_fetch(sql, [version.pk, adapt(cursor), adapt(upper)])
        n, features, predicted, units_high, units_low = chunk
        if n:
            block = np.frombuffer(bytes(features), dtype=np.uint8)
            digits = np.frombuffer(predicted.encode("ascii"), dtype=np.uint8) - ord("0")
            if block.size != N_FEATURES * n or digits.size != n or digits.max() > 9:
                raise DriftCheckError(
                    f"a logged prediction of {version} does not hold {N_FEATURES} "
                    "feature bytes and a digit; the prediction log is corrupt"
                )
            result.value_counts += drift.value_counts(block.reshape(n, N_FEATURES))
            result.class_counts += np.bincount(digits, minlength=N_CLASSES)
            result.confidence_units += summary.units_from_halves(units_high, units_low)
            result.n += n
            scale = chunk_rows / n
            span = min(max(span * min(scale, 4.0), _MIN_CHUNK_SPAN), _MAX_CHUNK_SPAN)
            cursor = upper
        else:
            span = min(span * 4, _MAX_CHUNK_SPAN)
            cursor = seek(upper)
    if result.n:
        last = base.filter(created_at__gte=start, created_at__lt=end).aggregate(
            last=Max("created_at")
        )["last"]
        result.first, result.last = first, last
    return result


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
        plan = prediction_window_plan(
            version=version, since=since, until=until, strict=False, fields=("hour", "n")
        )
        n = sum(hour.n for hour in plan.hours)
        for start, end in plan.raw:
            n += Prediction.objects.filter(
                model_version=version, created_at__gte=start, created_at__lt=end
            ).count()
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
    rows = (
        Prediction.objects.filter(model_version__model__name=model_name, label__isnull=False)
        .order_by("created_at")
        .values_list("query_id", "image_sha256", "features", "label", "label_source")
    )
    train_X, train_y, val_X, val_y, val_ids = [], [], [], [], []
    train_sources, val_sources = [], []
    for query_id, image_sha256, features, label, source in rows.iterator(chunk_size=5000):
        vector = np.frombuffer(bytes(features), dtype=np.uint8)
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
        return np.asarray(vectors, dtype=np.float64).reshape(-1, 64)

    return FeedbackSet(
        X_train=stack(train_X),
        y_train=np.asarray(train_y, dtype=int),
        X_validation=stack(val_X),
        y_validation=np.asarray(val_y, dtype=int),
        validation_ids=val_ids,
        train_sources=train_sources,
        validation_sources=val_sources,
    )


# --- Readiness: can this process answer POST /predict/ now? -------------------------------------
# Ready means a model is loaded and the database takes writes (no prediction is answered
# without its log row). The artifact store is reported but never fails readiness: loaded
# versions keep answering while it is down, and a load balancer that pulled every host for a
# storage outage would turn it into a full outage. Its state is probed in the background at
# most every ``STORE_CHECK_SECONDS`` per process, and a request never waits for a probe longer
# than ``STORE_PROBE_SECONDS`` (only the first one of a process waits at all), so /health/ and
# /metrics answer at once while the store hangs.

#: How long a process trusts its last probe of the artifact store (either answer).
STORE_CHECK_SECONDS = 10.0
#: A probe that has not answered by then counts as a failure.
STORE_PROBE_SECONDS = float(storage.PROBE_CONNECT_SECONDS + storage.PROBE_READ_SECONDS)


class StoreProbe:
    """The last answer of one store's reachability probe, refreshed by a background thread."""

    def __init__(self, store):
        self.store = store
        self._lock = threading.Lock()
        self._state: str | None = None
        self._checked_at = float("-inf")
        self._probing_since: float | None = None
        self._done = threading.Event()

    def state(self, max_age: float = STORE_CHECK_SECONDS) -> str:
        """``"ok"`` or ``"unreachable: <reason>"`` (a reason that names no bucket or path)."""
        with self._lock:
            if self._state is not None and time.monotonic() - self._checked_at < max_age:
                return self._state
            if self._probing_since is None:
                self._probing_since = time.monotonic()
                self._done = threading.Event()
                threading.Thread(
                    target=self._probe, args=(self._done,), name="store-probe", daemon=True
                ).start()
            started, done, previous = self._probing_since, self._done, self._state
        if previous is None:  # nothing to answer with yet: wait, boundedly
            done.wait(max(0.0, started + STORE_PROBE_SECONDS - time.monotonic()))
        with self._lock:
            if self._probing_since != started:  # that probe has answered
                return self._state
            if time.monotonic() - started >= STORE_PROBE_SECONDS:
                return f"unreachable: no answer within {STORE_PROBE_SECONDS:g} s"
            return previous

    def _probe(self, done: threading.Event) -> None:
        try:
            self.store.ping()
            state = "ok"
        except storage.StoreError as exc:
            state = f"unreachable: {exc.reason}"
            detail = str(exc).splitlines()[0]
        except Exception as exc:  # a probe must never take readiness or the metrics down
            state = f"unreachable: {type(exc).__name__}"
            detail = repr(exc)
        with self._lock:
            if state != self._state and state != "ok":
                logger.warning("artifact store unreachable: %s", detail)
            elif state != self._state and self._state is not None:
                logger.warning("artifact store reachable again: %s", self.store.describe())
            self._state, self._checked_at = state, time.monotonic()
            self._probing_since = None
        done.set()


_store_probes: dict[str, StoreProbe] = {}
_store_probes_lock = threading.Lock()


def database_state() -> str:
    """``"ok"`` when the database takes a write, else ``"error: <reason>"``.

    The probe's write (one row of a tiny table rewritten unchanged) is rolled back, so it
    catches a database that is down or refuses writes but never reaches the disk; a full
    disk or a failing commit is caught by the write path itself (``log_health``).
    """
    try:
        with transaction.atomic():
            first = Deployment.objects.order_by("pk").values_list("pk", flat=True)[:1]
            Deployment.objects.filter(pk__in=list(first)).update(
                candidate_percent=F("candidate_percent")
            )
            transaction.set_rollback(True)
    except DatabaseError as exc:
        return f"error: {log_health.database_error_reason(exc)}"
    failure = log_health.recent_write_failure()
    if failure is not None:
        return f"error: {failure} (the prediction log could not commit)"
    return "ok"


def store_state(*, max_age: float = STORE_CHECK_SECONDS) -> str:
    """``"ok"`` or ``"unreachable: <reason>"`` for the configured artifact store, from this
    process's last probe (see :class:`StoreProbe`)."""
    store = storage.get_store()
    key = store.describe()
    with _store_probes_lock:
        probe = _store_probes.get(key)
        if probe is None:
            probe = _store_probes[key] = StoreProbe(store)
    return probe.state(max_age)


def store_state_forget() -> None:
    """Probe again on the next call (tests, and after the configuration changes)."""
    with _store_probes_lock:
        _store_probes.clear()


@dataclass(frozen=True)
class Readiness:
    """What ``GET /health/`` reports: ``ready`` decides 200 or 503."""

    ready: bool
    status: str  # "ok", "degraded" (the artifact store is down) or "unavailable"
    reason: str  # why not "ok", in one sentence; "" when ok
    model_loaded: bool
    models: dict
    checks: dict


def readiness_get(*, routes: dict) -> Readiness:
    """Probe the database and the artifact store, and say what ``routes`` (the process's
    routing snapshot, model name -> live/candidate) can answer."""
    checks = {"database": database_state(), "artifact_store": store_state()}
    models = {
        name: {
            "live_version": route.live.version,
            "candidate_version": route.candidate.version if route.candidate else None,
            "candidate_percent": route.candidate_percent,
        }
        for name, route in routes.items()
    }
    loaded = settings.DIGITS_DEFAULT_MODEL in routes
    ready = loaded and checks["database"] == "ok"
    reasons = []
    if checks["database"] != "ok":
        reasons.append(f"the database cannot log predictions ({checks['database']})")
    if not loaded:
        reasons.append("no version of the default model is loaded")
    if not ready:
        state = "unavailable"
    elif checks["artifact_store"] != "ok":
        state = "degraded"
        reasons.append(
            f"the artifact store is {checks['artifact_store']}; loaded versions keep answering"
        )
    else:
        state = "ok"
    return Readiness(
        ready=ready,
        status=state,
        reason="; ".join(reasons),
        model_loaded=loaded,
        models=models,
        checks=checks,
    )
