"""Optional access control for the public endpoints: API keys and a rate limit (both off by
default; README "Security" says how to turn them on and what each one does not do)."""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import threading
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from rest_framework import status
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from .exceptions import PrediccionesError

API_KEY_HEADER = "X-API-Key"


class ApiKeyError(PrediccionesError):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_message = f"Missing or wrong API key: send the header '{API_KEY_HEADER}: <key>'."


def api_key_of(request) -> str:
    return request.META.get("HTTP_X_API_KEY", "").strip()


def api_key_valid(key: str, keys: list[str]) -> bool:
    """Constant-time check against every configured key (no early exit on a match)."""
    supplied = key.encode()
    matched = False
    for expected in keys:
        matched |= hmac.compare_digest(supplied, expected.encode())
    return matched and bool(key)


class ApiKeyPermission(BasePermission):
    """When ``DIGITS_API_KEYS`` is set, require one of them in ``X-API-Key``; else allow all."""

    def has_permission(self, request, view) -> bool:
        keys = settings.DIGITS_API_KEYS
        if keys and not api_key_valid(api_key_of(request), keys):
            raise ApiKeyError()
        return True


class PredictRateThrottle(SimpleRateThrottle):
    """``DIGITS_PREDICT_RATE`` requests per API key (when keys are on) or per client address.

    Counters live in Django's default cache (``DIGITS_CACHE``), so every worker sees the same
    count when that cache is shared. DRF reads the count, then writes it: with the file
    cache (the default, one host) that step holds a lock shared by the host's workers, so
    the limit is exact; with the database cache, concurrent requests on several hosts can
    still let a few through beyond it.
    """

    scope = "predict"

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        with _counter_lock():
            return super().allow_request(request, view)

    def get_rate(self) -> str | None:
        # Read at request time (DRF's THROTTLE_RATES is frozen when DRF is imported).
        return settings.DIGITS_PREDICT_RATE

    def get_cache_key(self, request, view) -> str:
        key = api_key_of(request) if settings.DIGITS_API_KEYS else ""
        if key:
            ident = "key-" + hashlib.sha256(key.encode()).hexdigest()[:32]
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


_THREAD_LOCK = threading.Lock()


@contextmanager
def _counter_lock():
    """Serialise the throttle's read-then-write: across this worker's threads always, and
    across the host's workers when the counters are files (an ``flock`` on a file beside
    them, which the file cache ignores: it only lists ``*.djcache``)."""
    cache = settings.CACHES["default"]
    with _THREAD_LOCK:
        if not cache["BACKEND"].endswith("FileBasedCache"):
            yield
            return
        folder = Path(cache["LOCATION"])
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "throttle.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file is closed
            yield


def csp_allowing_inline_styles() -> str:
    """The configured Content-Security-Policy, relaxed for inline styles only (no scripts).

    For server-rendered pages that colour elements with ``style`` attributes (the dashboard,
    the Swagger UI page). Empty when the policy is switched off.
    """
    if not settings.DIGITS_CSP:
        return ""
    return settings.DIGITS_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
