"""Group commit: one writer thread a worker process commits the log rows of concurrent
requests together, and each request waits for its own row's commit.

A request hands its row to :func:`log_row_commit` and is answered only once the transaction
holding that row has committed (no 200 without its row). The writer takes the first row
waiting, then every row queued behind it, up to ``DIGITS_LOG_BATCH_ROWS`` rows or
``DIGITS_LOG_BATCH_WAIT_MS`` milliseconds after the first, and commits them in one
transaction: under load, the rows that arrived while the previous batch was committing go
in together, so the database commits (and, with ``synchronous_commit`` or SQLite ``FULL``,
flushes) once for many rows; alone, a row is committed at once. A failed batch fails each
of its requests (``PredictionLogError``: 503) and is recorded for readiness.
``DIGITS_LOG_BATCH_ROWS=1`` turns the writer off: each request commits its own row in its
own thread (the in-process test suite runs so, inside its per-test transactions).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import Future

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from .. import readiness
from ..exceptions import PredictionLogError
from .writing import LogRow, log_row_write, log_rows_write

logger = logging.getLogger(__name__)


class GroupCommitWriter:
    """The writer thread of one process, with its queue of ``(row, future)``."""

    def __init__(self, *, max_rows: int, max_wait: float):
        self.max_rows = max_rows
        self.max_wait = max_wait
        self._queue: queue.SimpleQueue[tuple[LogRow, Future]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def submit(self, row: LogRow) -> Future:
        """Queue ``row``; the future is done once it is committed (or failed)."""
        future: Future = Future()
        self._queue.put((row, future))
        return future

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_rows:
                try:
                    remaining = deadline - time.monotonic()
                    if remaining > 0:
                        batch.append(self._queue.get(timeout=remaining))
                    else:
                        batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    @staticmethod
    def _commit(batch: list[tuple[LogRow, Future]]) -> None:
        # As Django's request signals do: a connection broken by an outage is replaced.
        close_old_connections()
        try:
            log_rows_write([row for row, _ in batch])
        except Exception as exc:
            if isinstance(exc, DatabaseError):
                logger.exception("could not log %d prediction(s)", len(batch))
                readiness.write_failed(exc)
            else:
                logger.exception("log writer failed on %d prediction(s)", len(batch))
            for _, future in batch:
                future.set_exception(PredictionLogError())
            close_old_connections()
            return
        readiness.write_succeeded()
        for _, future in batch:
            future.set_result(None)


_writer: GroupCommitWriter | None = None
_writer_pid: int | None = None
_writer_lock = threading.Lock()


def log_writer() -> GroupCommitWriter | None:
    """This process's writer (started on first use, again in a forked child); None when
    ``DIGITS_LOG_BATCH_ROWS`` is 1."""
    global _writer, _writer_pid
    if settings.DIGITS_LOG_BATCH_ROWS <= 1:
        return None
    if _writer is None or _writer_pid != os.getpid():
        with _writer_lock:
            if _writer is None or _writer_pid != os.getpid():
                _writer = GroupCommitWriter(
                    max_rows=settings.DIGITS_LOG_BATCH_ROWS,
                    max_wait=settings.DIGITS_LOG_BATCH_WAIT_MS / 1000,
                )
                _writer_pid = os.getpid()
    return _writer


def log_row_commit(row: LogRow) -> None:
    """Log ``row``; committed when this returns.

    Raises
    ------
    PredictionLogError
        The row's batch could not be committed (readiness is told why).
    """
    writer = log_writer()
    if writer is None:
        log_row_write(row)
    else:
        writer.submit(row).result()
