"""Can this process answer ``POST /predict/`` now? What ``GET /health/`` reports.

Ready means a model is loaded and the database takes writes (no prediction is answered
without its log row). Three things say so: a probe write (rolled back), the prediction log's
own writes (a full disk or a read-only database file passes the rolled-back probe while every
prediction fails to commit: the write path reports each failure here, and readiness fails
until a row commits again or ``WRITE_FAILURE_SECONDS`` pass), and the routing snapshot. The
artifact store is reported but never fails readiness (:class:`StoreProbe`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F

from . import storage
from .models import Deployment

logger = logging.getLogger(__name__)

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

# --- The prediction log's writes, as this process saw them (in memory, no I/O) ----------------
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


# --- The artifact store and the database ------------------------------------------------------
# The artifact store is reported but never fails readiness: loaded versions keep answering
# while it is down, and a load balancer that pulled every host for a storage outage would turn
# it into a full outage. Once a process has been asked, its state is kept fresh by a background
# thread that probes again every ``STORE_CHECK_SECONDS``, whether or not traffic arrives (so
# every worker behind one port tells the same story within about that long), and a request
# never waits for a probe longer than ``STORE_PROBE_SECONDS`` (only the first one of a process
# waits at all), so /health/ and /metrics answer at once while the store hangs.

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

    def keep_fresh(self, while_: Callable[[], bool], tick: float = 1.0) -> None:
        """Refresh the answer in a daemon thread whenever it is older than
        ``STORE_CHECK_SECONDS``, for as long as ``while_()`` holds."""

        def run() -> None:
            while while_():
                self.state()
                time.sleep(tick)

        threading.Thread(target=run, name="store-probe-keeper", daemon=True).start()


_store_probes: dict[str, StoreProbe] = {}
_store_probes_lock = threading.Lock()


def database_state() -> str:
    """``"ok"`` when the database takes a write, else ``"error: <reason>"``.

    The probe's write (one row of a tiny table rewritten unchanged) is rolled back, so it
    catches a database that is down or refuses writes but never reaches the disk; a full
    disk or a failing commit is caught by the write path itself (:func:`write_failed`).
    """
    try:
        with transaction.atomic():
            first = Deployment.objects.order_by("pk").values_list("pk", flat=True)[:1]
            Deployment.objects.filter(pk__in=list(first)).update(
                candidate_percent=F("candidate_percent")
            )
            transaction.set_rollback(True)
    except DatabaseError as exc:
        return f"error: {database_error_reason(exc)}"
    failure = recent_write_failure()
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
            probe.keep_fresh(lambda: _store_probes.get(key) is probe)
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
