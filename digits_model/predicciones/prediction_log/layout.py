"""The prediction log's physical layout, and the only module that knows it.

A row (:class:`~predicciones.models.Prediction`) holds a query id, its time, the model version,
the 64 features as ``N_FEATURES`` bytes (values 0..16), the prediction, its confidence, the
model-side latency, the upload's sha256 and, once given, a label. Time is cut in UTC hours,
the unit of summaries, capture and retention. Here are the columns in their order, the hour
arithmetic, the features' bytes, and what differs between the two databases (SQLite and
PostgreSQL): how rows are streamed, and the statement that aggregates a chunk in the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator

import numpy as np
from django.db import connection, transaction

from ..ml.features import N_FEATURES
from ..models import ModelVersion, Prediction

HOUR = dt.timedelta(hours=1)
#: Timestamps are stored to the microsecond on SQLite and PostgreSQL alike.
MICROSECOND = dt.timedelta(microseconds=1)

#: Columns of a new row, in the order they are written (attribute names); label,
#: labelled_at and label_source start out NULL.
INSERT_FIELDS = (
    "query_id",
    "created_at",
    "model_version_id",
    "features",
    "prediction",
    "confidence",
    "latency_ms",
    "image_sha256",
)
#: Columns of a row as :func:`hour_row_chunks` yields it, in this order (a captured line's,
#: but for the model and version it names).
ROW_COLUMNS = (
    "query_id",
    "created_at",
    "prediction",
    "confidence",
    "latency_ms",
    "image_sha256",
    "label",
    "labelled_at",
    "features",
)
#: Rows fetched per round trip while summarising or capturing an hour.
CHUNK_ROWS = 10_000


# --- Hours ----------------------------------------------------------------------------------
def hour_floor(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC hour holding ``moment``."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: dt.datetime) -> dt.datetime:
    """The first UTC hour boundary at or after ``moment``."""
    floor = hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def interval_rows(version: ModelVersion | int, start: dt.datetime, end: dt.datetime):
    """A version's rows logged in ``[start, end)`` (unordered)."""
    version_id = version if isinstance(version, int) else version.pk
    return Prediction.objects.filter(
        model_version_id=version_id, created_at__gte=start, created_at__lt=end
    ).order_by()


def hour_rows(version_id: int, hour: dt.datetime):
    """A version's rows of the hour starting at ``hour``."""
    return interval_rows(version_id, hour, hour + HOUR)


# --- Features ---------------------------------------------------------------------------------
def features_bytes(features: np.ndarray) -> bytes:
    """One row's features (``N_FEATURES`` integers 0..16) as the log stores them."""
    return np.asarray(features, dtype=np.uint8).reshape(N_FEATURES).tobytes()


def features_matrix(blobs: Iterable[bytes], n: int) -> np.ndarray:
    """``n`` rows' stored features as an array of shape (n, ``N_FEATURES``), uint8.

    ValueError when they do not hold ``N_FEATURES`` bytes a row (a corrupt log).
    """
    block = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    if block.size != N_FEATURES * n:
        raise ValueError(f"a row does not hold {N_FEATURES} feature bytes")
    return block.reshape(n, N_FEATURES)


def features_list(blob: bytes) -> list[int]:
    """One row's stored features as a list of ``N_FEATURES`` ints."""
    return list(bytes(blob))


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    block = []
    for item in items:
        block.append(item)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


# --- Streaming rows ----------------------------------------------------------------------------
def stream_values(qs, columns: tuple[str, ...], chunk_rows: int) -> Iterator[list[tuple]]:
    """The ``columns`` of a queryset's rows, ``chunk_rows`` at a time, from a raw cursor.

    One SELECT, so on SQLite (WAL) and PostgreSQL alike it reads one snapshot. Without
    Django's per-row converters (a third of a capture's time): query ids and times come as
    the driver gives them (see :func:`query_id_text`, :func:`aware`). On PostgreSQL a
    server-side cursor inside a transaction streams instead of materialising the result; on
    SQLite there is no transaction, because this project's SQLite transactions take the
    write lock up front (IMMEDIATE) and would stall the web workers' inserts during the scan.
    """
    sql, params = qs.values_list(*columns).query.sql_with_params()
    postgres = connection.vendor == "postgresql"
    atomic = transaction.atomic() if postgres else contextlib.nullcontext()
    server_side = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    open_cursor = connection.chunked_cursor if server_side else connection.cursor
    with atomic, open_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_rows):
            yield rows


def hour_row_chunks(version_id: int, hour: dt.datetime) -> Iterator[list[tuple]]:
    """Every row of the hour, every logged field (:data:`ROW_COLUMNS`), in (created_at,
    query_id) order; query ids as ``str(uuid)`` gives them."""
    qs = hour_rows(version_id, hour).order_by("created_at", "query_id")
    for rows in stream_values(qs, ROW_COLUMNS, CHUNK_ROWS):
        yield [(query_id_text(r[0]), *r[1:]) for r in rows]


def query_id_text(value) -> str:
    """A query id as ``str(uuid)`` gives it, from a UUID or SQLite's 32 hex digits."""
    if isinstance(value, str) and len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value)


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    """A time from a raw cursor as an aware UTC datetime (SQLite's are naive UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


# --- A chunk aggregated by the database --------------------------------------------------------
#: Per chunk, the database concatenates the features and predictions and sums the confidence
#: units (``ml.summary``), so rows never become Python objects; these are the statements.
CHUNK_SQL = {
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


def chunk_sql() -> str | None:
    """This database's :data:`CHUNK_SQL`, with the log's table and columns; None for another."""
    template = CHUNK_SQL.get(connection.vendor)
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


def chunk_fetch(sql: str, version_id: int, start: dt.datetime, end: dt.datetime) -> tuple:
    """The one row of a chunk's statement (:func:`chunk_sql`) over ``[start, end)``:
    count, features, predictions as digits, confidence units (high, low).

    On PostgreSQL it comes in binary format, from a psycopg cursor of its own: Django's
    cursors bind parameters on the client, which psycopg allows only with text results, and
    in text the chunk's features travel as hex, twice their size, for the server to encode
    and psycopg to decode. Errors are still Django's.
    """
    adapt = connection.ops.adapt_datetimefield_value
    params = [version_id, adapt(start), adapt(end)]
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


def parallel_reads_possible() -> bool:
    """Other connections see the same rows: not inside a transaction (uncommitted rows),
    not on an in-memory SQLite database (private to its connection)."""
    if connection.in_atomic_block or connection.vendor not in CHUNK_SQL:
        return False
    return not (connection.vendor == "sqlite" and connection.is_in_memory_db())
