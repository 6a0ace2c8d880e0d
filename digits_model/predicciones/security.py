"""Access control: optional API keys, the rate limits of ``/predict/`` (off by default) and
``/feedback/`` (on), the count of failed authentications per address, and the one
bearer-token check the admin API and ``/metrics`` share (docs/operations.md, "Security",
says how to turn each on and what it does not do). Every 401 carries a ``WWW-Authenticate``
challenge; every label's source is read here (``provenance``)."""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import ipaddress
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .exceptions import AdminDisabledError
from .provenance import address_source, key_source, trusted_sources

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


def configured_key(request) -> str | None:
    """The request's ``X-API-Key`` when it is one of the configured keys (``DIGITS_API_KEYS``
    or ``DIGITS_TRUSTED_API_KEYS``), else None."""
    request = getattr(request, "_request", request)
    if not hasattr(request, "configured_key"):
        key = api_key_of(request)
        keys = settings.DIGITS_API_KEYS + settings.DIGITS_TRUSTED_API_KEYS
        request.configured_key = key if keys and api_key_valid(key, keys) else None
    return request.configured_key


def label_source(request) -> str:
    """Who is giving a label (see ``provenance``): the API key's id, else the address."""
    key = configured_key(request)
    return key_source(key) if key else address_source(client_address(request))


class ApiKeyAuthentication(BaseAuthentication):
    """When ``DIGITS_API_KEYS`` is set, require one of the keys in ``X-API-Key``; else let all
    in (a configured key that comes along still identifies its holder).

    A missing or wrong key is a 401 whose ``WWW-Authenticate`` names the scheme and header;
    an address with too many of those gets 429 (:func:`check_auth_failures`).
    """

    def key_required(self) -> bool:
        return bool(settings.DIGITS_API_KEYS)

    def authenticate(self, request):
        if not self.key_required():
            key = configured_key(request)
            return (None, key) if key else None
        check_auth_failures(request)
        key = configured_key(request)
        if key is None:
            record_auth_failure(request)
            raise AuthenticationFailed(API_KEY_MESSAGE)
        return (None, key)

    def authenticate_header(self, request) -> str:
        return f'ApiKey realm="predicciones", header="{API_KEY_HEADER}"'


class FeedbackKeyAuthentication(ApiKeyAuthentication):
    """As :class:`ApiKeyAuthentication`, and also required with ``DIGITS_FEEDBACK_REQUIRE_KEY``
    (labels train models: a deployment may want them from key holders only)."""

    def key_required(self) -> bool:
        return bool(settings.DIGITS_API_KEYS) or settings.DIGITS_FEEDBACK_REQUIRE_KEY


class AdminTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer $DIGITS_ADMIN_TOKEN`` for the admin API; 403 when it is off."""

    def authenticate(self, request):
        expected = settings.DIGITS_ADMIN_TOKEN
        if not expected:
            raise AdminDisabledError()
        check_auth_failures(request)
        if not bearer_token_valid(request, expected):
            record_auth_failure(request)
            raise AuthenticationFailed(ADMIN_AUTH_MESSAGE)
        return (None, "admin")

    def authenticate_header(self, request) -> str:
        return bearer_challenge("admin")


# --- Failed authentications per client address ---------------------------------------------------
# Every 401 (API key, admin token, metrics token) is counted against the client's address in
# the cache; from DIGITS_AUTH_FAILURE_RATE on, that address gets 429 for whatever needs a key,
# right or wrong, until the window has passed: a client cannot learn that a guess was right
# while it is being refused, and a client that keeps failing costs one cache read a request.


def parse_rate(rate: str) -> tuple[int, int]:
    """``"20/min"`` -> (20, 60): requests, seconds."""
    count, period = rate.split("/")
    return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def _failures_key(request) -> str:
    return f"auth-failures:{client_address(request)}"


def _recent(history: list[float], now: float, duration: int) -> list[float]:
    return [moment for moment in history if moment > now - duration]


def check_auth_failures(request) -> None:
    """Raise Throttled (429, with ``Retry-After``) when this address failed too often."""
    wait = auth_failure_wait(request)
    if wait is not None:
        raise Throttled(wait)


def auth_failure_wait(request) -> float | None:
    """Seconds until this address may try again, or None when it may now."""
    if settings.DIGITS_AUTH_FAILURE_RATE is None:
        return None
    count, duration = parse_rate(settings.DIGITS_AUTH_FAILURE_RATE)
    now = time.time()
    history = _recent(cache.get(_failures_key(request), []), now, duration)
    if len(history) < count:
        return None
    return max(0.0, min(history) + duration - now)


def record_auth_failure(request) -> None:
    if settings.DIGITS_AUTH_FAILURE_RATE is None:
        return
    _, duration = parse_rate(settings.DIGITS_AUTH_FAILURE_RATE)
    now = time.time()
    key = _failures_key(request)
    with _counter_lock():
        history = _recent(cache.get(key, []), now, duration)
        cache.set(key, [*history, now][-1000:], duration)


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
        key = configured_key(request) if settings.DIGITS_API_KEYS else None
        if key:
            ident = "key-" + hashlib.sha256(key.encode()).hexdigest()[:32]
        else:
            ident = client_address(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class FeedbackRateThrottle(PredictRateThrottle):
    """``DIGITS_FEEDBACK_RATE`` labels per label source (API key, else client address);
    trusted keys are not limited."""

    scope = "feedback"

    def allow_request(self, request, view) -> bool:
        if label_source(request) in trusted_sources():
            return True
        return super().allow_request(request, view)

    def get_rate(self) -> str | None:
        return settings.DIGITS_FEEDBACK_RATE

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": label_source(request)}


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
