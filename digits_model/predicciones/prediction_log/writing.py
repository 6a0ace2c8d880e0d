"""Writing the prediction log: one row, durable when :func:`log_row_write` returns, and many
rows at once for benchmarks (:func:`log_rows_load`).

Every row goes in through the same INSERT, its values prepared by the model's own fields, so
SQLite and PostgreSQL get exactly what the ORM would send. A failed write is reported to
``readiness`` (a full disk fails readiness until a row commits again).
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.db import DatabaseError, connection, transaction

from .. import readiness
from ..exceptions import PredictionLogError
from ..models import Prediction
from .layout import INSERT_FIELDS, chunks, features_bytes

logger = logging.getLogger(__name__)

#: Rows per transaction (and per COPY) when loading many.
LOAD_BATCH = 50_000


@dataclass(frozen=True, slots=True)
class LogRow:
    """One answered prediction, as it is logged (fields in :data:`~.layout.INSERT_FIELDS`
    order). ``label`` and ``labelled_at`` are written only by :func:`log_rows_load` (a log
    filled as if feedback had come); the service's rows get them later, from feedback."""

    query_id: uuid.UUID
    created_at: dt.datetime
    model_version_id: int
    features: bytes
    prediction: int
    confidence: float
    latency_ms: float
    image_sha256: str
    label: int | None = None
    labelled_at: dt.datetime | None = None

    @classmethod
    def of(cls, *, features: np.ndarray, **values) -> LogRow:
        """A row from the model's input (``N_FEATURES`` integers 0..16) and the other values."""
        return cls(features=features_bytes(features), **values)


#: The columns :func:`log_rows_load` writes: a new row's, and its label.
LOAD_FIELDS = (*INSERT_FIELDS, "label", "labelled_at")
_insert_statements: dict[tuple[str, tuple[str, ...]], tuple[str, list]] = {}


def _insert_statement(names: tuple[str, ...] = INSERT_FIELDS) -> tuple[str, list]:
    """The INSERT of one row's ``names`` on this database, and the fields that prepare its
    values."""
    statement = _insert_statements.get((connection.vendor, names))
    if statement is None:
        fields = [Prediction._meta.get_field(name) for name in names]
        quote = connection.ops.quote_name
        # Only identifiers from the model's metadata go into the text; values are parameters.
        sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
            quote(Prediction._meta.db_table),
            ", ".join(quote(field.column) for field in fields),
            ", ".join(["%s"] * len(fields)),
        )
        statement = _insert_statements[(connection.vendor, names)] = (sql, fields)
    return statement


def _params(row: LogRow, fields: list) -> list:
    """The row's values of ``fields``, prepared as the ORM would send them."""
    return [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]


def log_row_write(row: LogRow) -> None:
    """Insert one row; it is committed when this returns (autocommit).

    The row ``Prediction.objects.create(...)`` would write, without building a model
    instance and compiling the INSERT on every request: that is 40 % of the ORM's cost and
    about 80 µs of the /predict/ hot path.

    Raises
    ------
    PredictionLogError
        The row could not be written (readiness is told why).
    """
    sql, fields = _insert_statement()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, _params(row, fields))
    except DatabaseError as exc:
        logger.exception("could not log prediction %s", row.query_id)
        readiness.write_failed(exc)
        raise PredictionLogError() from exc
    readiness.write_succeeded()


def log_rows_load(rows: Iterable[LogRow]) -> int:
    """Insert many rows, labels included, :data:`LOAD_BATCH` per transaction (COPY on
    PostgreSQL); how many. For filling a log fast (benchmarks)."""
    sql, fields = _insert_statement(LOAD_FIELDS)
    quote = connection.ops.quote_name
    copy_sql = "COPY {} ({}) FROM STDIN".format(
        quote(Prediction._meta.db_table), ", ".join(quote(field.column) for field in fields)
    )
    values = operator.attrgetter(*LOAD_FIELDS)
    written = 0
    for batch in chunks(rows, LOAD_BATCH):
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(copy_sql) as copy:
                    for row in batch:
                        copy.write_row(values(row))
            else:
                cursor.executemany(sql, [_params(row, fields) for row in batch])
        written += len(batch)
    return written
