"""What this process has seen of the prediction log's writes, for readiness.

A readiness probe's own write is rolled back before it reaches the disk, so a full disk or a
read-only database file passes it while every prediction fails to commit. The write path
reports each failure here; ``GET /health/`` fails readiness, with the reason, until a
prediction is logged again or ``WRITE_FAILURE_SECONDS`` pass without another failure.
Per process (each gunicorn worker sees its own writes), in memory, no I/O.
"""

from __future__ import annotations

import threading
import time

#: How long one failed commit of the prediction log keeps this process unready.
WRITE_FAILURE_SECONDS = 30.0

#: SQLSTATEs (PostgreSQL) and message fragments (SQLite) of the failures worth naming.
_SQLSTATE_REASONS = {
    "53100": "disk full",
    "53200": "out of memory",
    "25006": "read-only",
    "57P01": "server shutting down",
    "57P03": "server starting up",
}
_MESSAGE_REASONS = (
    ("disk is full", "disk full"),
    ("no space left", "disk full"),
    ("readonly", "read-only"),
    ("read-only", "read-only"),
    ("database is locked", "locked"),
    ("disk i/o error", "disk I/O error"),
    ("unable to open database", "cannot open the database file"),
)

_lock = threading.Lock()
_failure: tuple[float, str] | None = None


def database_error_reason(exc: BaseException) -> str:
    """A database error in a few words that name no host, file or table ("disk full")."""
    for error in (exc, exc.__cause__):
        sqlstate = getattr(error, "sqlstate", None)
        if sqlstate in _SQLSTATE_REASONS:
            return _SQLSTATE_REASONS[sqlstate]
    text = str(exc).lower()
    for fragment, reason in _MESSAGE_REASONS:
        if fragment in text:
            return reason
    return type(exc).__name__


def write_failed(exc: BaseException) -> None:
    """The prediction log could not commit a row (called by the write path)."""
    global _failure
    with _lock:
        _failure = (time.monotonic(), database_error_reason(exc))


def write_succeeded() -> None:
    """A row was committed: whatever failed before works again."""
    global _failure
    if _failure is not None:
        with _lock:
            _failure = None


def recent_write_failure() -> str | None:
    """The reason of this process's last failed commit, if no commit has worked since and it
    is less than ``WRITE_FAILURE_SECONDS`` old; else None."""
    failure = _failure
    if failure is None or time.monotonic() - failure[0] >= WRITE_FAILURE_SECONDS:
        return None
    return failure[1]


def forget() -> None:
    """Drop what was recorded (tests)."""
    global _failure
    with _lock:
        _failure = None
