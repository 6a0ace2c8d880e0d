"""Who gave a label: the source recorded with every piece of feedback, and which are trusted.

A source is ``key:<id>`` when a configured API key came with the label (the id is the first
16 hex digits of the key's sha256: the key itself is never stored), else ``addr:<address>``,
the client address as the access log has it (an IPv6 address by its /64, since one host
usually holds the whole /64). Retraining caps how many labels one untrusted source
contributes, and the validation gate only believes labels from the trusted keys
(``DIGITS_TRUSTED_API_KEYS``): the operator's own labellers.
"""

from __future__ import annotations

import hashlib
import ipaddress

from django.conf import settings


def api_key_id(key: str) -> str:
    """A short, stable id of an API key that does not reveal it (16 hex digits of sha256)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def key_source(key: str) -> str:
    return f"key:{api_key_id(key)}"


def address_source(address: str) -> str:
    """``addr:<address>``; an IPv6 address as its /64 network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "addr:unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"addr:{ip}"


def trusted_sources() -> frozenset[str]:
    """The sources whose labels the validation gate may rely on."""
    return frozenset(key_source(key) for key in settings.DIGITS_TRUSTED_API_KEYS)
