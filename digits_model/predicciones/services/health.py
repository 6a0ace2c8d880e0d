"""Readiness: can this process answer ``POST /predict/`` now, and how are its dependencies?

Ready means a model is loaded and the database takes writes (no prediction is answered
without its log row). The artifact store is reported but never fails readiness: loaded
versions keep answering while it is down, and a load balancer that pulled every host for a
storage outage would turn it into a full outage. Its state is probed at most every
``STORE_CHECK_SECONDS`` per process, with short timeouts, so probes stay fast either way.
"""

from __future__ import annotations

import threading
import time

from django.db import DatabaseError, transaction
from django.db.models import F

from .. import storage
from ..models import Deployment

#: How long a process trusts its last probe of the artifact store.
STORE_CHECK_SECONDS = 10.0

_store_states: dict[str, tuple[float, str]] = {}
_store_lock = threading.Lock()


def database_state() -> str:
    """``"ok"`` when the database takes a write (made, then rolled back), else
    ``"error: <kind>"``."""
    try:
        with transaction.atomic():
            # One row of a tiny table rewritten unchanged, then rolled back: a database that is
            # down, read-only or full fails here as the prediction log would.
            first = Deployment.objects.order_by("pk").values_list("pk", flat=True)[:1]
            Deployment.objects.filter(pk__in=list(first)).update(
                candidate_percent=F("candidate_percent")
            )
            transaction.set_rollback(True)
    except DatabaseError as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def store_state(*, max_age: float = STORE_CHECK_SECONDS) -> str:
    """``"ok"`` or ``"unreachable: <why>"`` for the configured artifact store.

    The last probe's answer is reused for ``max_age`` seconds; while one thread probes, the
    others answer with the previous result instead of waiting.
    """
    store = storage.get_store()
    key = store.describe()
    now = time.monotonic()
    previous = _store_states.get(key)
    if previous is not None and now - previous[0] < max_age:
        return previous[1]
    if not _store_lock.acquire(blocking=previous is None):
        return previous[1]
    try:
        try:
            store.ping()
            state = "ok"
        except storage.StoreError as exc:
            state = f"unreachable: {str(exc).splitlines()[0]}"
        _store_states[key] = (time.monotonic(), state)
        return state
    finally:
        _store_lock.release()


def store_state_forget() -> None:
    """Probe again on the next call (tests, and after the configuration changes)."""
    _store_states.clear()
