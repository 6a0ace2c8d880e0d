"""Optional access control for the public endpoints: API keys and a rate limit (both off by
default; README "Security" says how to turn them on and what each one does not do)."""

from __future__ import annotations

import hashlib
import hmac

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
    count when that cache is shared. The count is read, then written: under heavy
    concurrency a few requests beyond the limit can get through, so treat it as abuse
    protection, not as an exact quota.
    """

    scope = "predict"

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


def csp_allowing_inline_styles() -> str:
    """The configured Content-Security-Policy, relaxed for inline styles only (no scripts).

    For server-rendered pages that colour elements with ``style`` attributes (the dashboard,
    the Swagger UI page). Empty when the policy is switched off.
    """
    if not settings.DIGITS_CSP:
        return ""
    return settings.DIGITS_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
