"""Access control: optional API keys and rate limit for the public endpoints (both off by
default; README "Security" says how to turn them on and what each one does not do), and the
one bearer-token check the admin API and ``/metrics`` share. Every 401 carries a
``WWW-Authenticate`` challenge."""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import ipaddress
import threading
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .exceptions import AdminDisabledError

API_KEY_HEADER = "X-API-Key"
API_KEY_MESSAGE = f"Missing or wrong API key: send the header '{API_KEY_HEADER}: <key>'."
ADMIN_AUTH_MESSAGE = "Missing or wrong admin token: send 'Authorization: Bearer <token>'."


def client_address(request) -> str:
    """The client's address: ``REMOTE_ADDR``, or behind ``DIGITS_TRUSTED_PROXIES`` = N proxies
    the N-th entry from the end of ``X-Forwarded-For`` (the one the outermost trusted proxy
    appended; entries before it are whatever the client wrote). DRF's throttles pick the same
    entry. Normalised, so one address has one spelling; "unknown" if it is not an address.
    """
    request = getattr(request, "_request", request)
    cached = getattr(request, "client_address", None)
    if cached is not None:
        return cached
    address = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    proxies = api_settings.NUM_PROXIES or 0
    if proxies and forwarded:
        entries = forwarded.split(",")
        address = entries[-min(proxies, len(entries))].strip()
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return "unknown"


def api_key_of(request) -> str:
    return request.META.get("HTTP_X_API_KEY", "").strip()


def api_key_valid(key: str, keys: list[str]) -> bool:
    """Constant-time check against every configured key (no early exit on a match)."""
    supplied = key.encode()
    matched = False
    for expected in keys:
        matched |= hmac.compare_digest(supplied, expected.encode())
    return matched and bool(key)


def bearer_token_valid(request, expected: str) -> bool:
    """``Authorization: Bearer <expected>``, compared in constant time (admin API, /metrics)."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = token.strip()
    return (
        scheme.lower() == "bearer"
        and bool(token)
        and hmac.compare_digest(token.encode(), expected.encode())
    )


def bearer_challenge(realm: str) -> str:
    """The ``WWW-Authenticate`` value a 401 for a bearer token carries (RFC 6750)."""
    return f'Bearer realm="{realm}"'


class ApiKeyAuthentication(BaseAuthentication):
    """When ``DIGITS_API_KEYS`` is set, require one of them in ``X-API-Key``; else let all in.

    A missing or wrong key is a 401 whose ``WWW-Authenticate`` names the scheme and header.
    """

    def authenticate(self, request):
        keys = settings.DIGITS_API_KEYS
        if not keys:
            return None
        key = api_key_of(request)
        if not api_key_valid(key, keys):
            raise AuthenticationFailed(API_KEY_MESSAGE)
        return (None, key)

    def authenticate_header(self, request) -> str:
        return f'ApiKey realm="predicciones", header="{API_KEY_HEADER}"'


class AdminTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer $DIGITS_ADMIN_TOKEN`` for the admin API; 403 when it is off."""

    def authenticate(self, request):
        expected = settings.DIGITS_ADMIN_TOKEN
        if not expected:
            raise AdminDisabledError()
        if not bearer_token_valid(request, expected):
            raise AuthenticationFailed(ADMIN_AUTH_MESSAGE)
        return (None, "admin")

    def authenticate_header(self, request) -> str:
        return bearer_challenge("admin")


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
            ident = client_address(request)
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
