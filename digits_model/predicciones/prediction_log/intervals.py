"""Summaries of a span of a version's rows, read in chunks: what a drift window needs of the
rows no hourly summary covers.

:func:`prediction_interval_summary` has the database aggregate each chunk (features and
predictions concatenated, confidence units summed), so no row becomes a Python object;
:func:`rows_summary` streams any queryset's rows (a ``--last N`` window). Both give exactly
what :meth:`~predicciones.ml.summary.LogSummary.add_block` gives over the same rows.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from django.db import connection
from django.db.models import Max, Min

from ..exceptions import DriftCheckError
from ..ml import drift, summary
from ..ml.features import N_CLASSES, N_FEATURES
from ..models import ModelVersion, Prediction
from .layout import (
    chunk_fetch,
    chunk_sql,
    features_matrix,
    interval_rows,
    parallel_reads_possible,
    stream_values,
)

#: Logged predictions fetched per round trip when aggregating a drift window.
WINDOW_CHUNK_ROWS = 20_000
#: Bounds on the time span one chunk covers while it adapts to the log's density.
MIN_CHUNK_SPAN = dt.timedelta(milliseconds=1)
MAX_CHUNK_SPAN = dt.timedelta(days=1)
#: A long interval is read by this many connections at once, one thread each: the database
#: drivers release the GIL while the database works, and that work is most of the time.
RAW_READERS = 2
#: ... when its rows span at least this long (a thread and a connection cost milliseconds).
PARALLEL_MIN_SPAN = dt.timedelta(minutes=10)


def corrupt(version: ModelVersion, what: str) -> DriftCheckError:
    return DriftCheckError(
        f"a logged prediction of {version} {what}; the prediction log is corrupt"
    )


def rows_summary(qs, version: ModelVersion, chunk_rows: int) -> summary.LogSummary:
    """Stream a queryset's features, predictions and confidences into a summary.

    Nothing is kept per row. The first and last ``created_at`` come from aggregate queries
    on the same rows (converting every timestamp would cost more than the rest of the scan).
    """
    # Two queries: SQLite answers a lone min() or max() from the index, both at once by a scan.
    start = qs.aggregate(start=Min("created_at"))["start"]
    end = qs.aggregate(end=Max("created_at"))["end"]
    result = summary.LogSummary()
    for rows in stream_values(qs, ("features", "prediction", "confidence"), chunk_rows):
        features, predicted, confidence = zip(*rows, strict=True)
        try:
            block = features_matrix(features, len(rows))
        except ValueError:
            raise corrupt(version, f"does not hold {N_FEATURES} feature bytes") from None
        try:
            result.add_block(block, predicted, confidence)
        except ValueError as exc:
            raise corrupt(version, f"is out of range ({exc})") from exc
    if result.n:
        result.first, result.last = start, end
    return result


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
    if readers > 1 and parallel_reads_possible():
        rows = interval_rows(version, start, end)
        first = rows.aggregate(first=Min("created_at"))["first"]
        last = rows.aggregate(last=Max("created_at"))["last"]
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
    return interval_summary(version, start, end, chunk_rows=chunk_rows)


def _interval_summary_in_thread(version, start, end, chunk_rows) -> summary.LogSummary:
    try:
        return interval_summary(version, start, end, chunk_rows=chunk_rows)
    finally:
        connection.close()  # this thread's own connection


def interval_summary(
    version: ModelVersion,
    start: dt.datetime,
    end: dt.datetime,
    *,
    chunk_rows: int = WINDOW_CHUNK_ROWS,
) -> summary.LogSummary:
    """:func:`prediction_interval_summary` in this thread, on this connection.

    The interval is read in consecutive time chunks sized to hold about ``chunk_rows`` rows
    each (the span adapts to the log's density, and empty stretches are skipped with an
    index seek), each aggregated by the database in one statement: memory stays bounded.
    """
    sql = chunk_sql()
    if sql is None:  # another database: stream the rows
        return rows_summary(interval_rows(version, start, end), version, chunk_rows)
    result = summary.LogSummary()
    base = Prediction.objects.filter(model_version=version)

    def seek(after: dt.datetime) -> dt.datetime | None:
        rows = base.filter(created_at__gte=after, created_at__lt=end)
        return rows.aggregate(first=Min("created_at"))["first"]

    cursor = first = seek(start)
    span = dt.timedelta(minutes=1)
    while cursor is not None and cursor < end:
        upper = min(cursor + span, end)
        n, features, predicted, units_high, units_low = chunk_fetch(sql, version.pk, cursor, upper)
        if n:
            _add_chunk(result, version, n, features, predicted, units_high, units_low)
            scale = chunk_rows / n
            span = min(max(span * min(scale, 4.0), MIN_CHUNK_SPAN), MAX_CHUNK_SPAN)
            cursor = upper
        else:
            span = min(span * 4, MAX_CHUNK_SPAN)
            cursor = seek(upper)
    if result.n:
        last = interval_rows(version, start, end).aggregate(last=Max("created_at"))["last"]
        result.first, result.last = first, last
    return result


def _add_chunk(result, version, n, features, predicted, units_high, units_low) -> None:
    """Add one chunk's aggregate (:func:`~.layout.chunk_fetch`) to ``result``."""
    digits = np.frombuffer(predicted.encode("ascii"), dtype=np.uint8) - ord("0")
    try:
        block = features_matrix([features], n)
        if digits.size != n or digits.max() > 9:
            raise ValueError("not a digit")
    except ValueError:
        raise corrupt(version, f"does not hold {N_FEATURES} feature bytes and a digit") from None
    result.value_counts += drift.value_counts(block)
    result.class_counts += np.bincount(digits, minlength=N_CLASSES)
    result.confidence_units += summary.units_from_halves(units_high, units_low)
    result.n += n
