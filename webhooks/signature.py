"""Signing and checking webhook bodies: ``X-Podium-Signature: sha256=<hex HMAC-SHA256(secret, body)>``.

The signature covers the raw body bytes exactly as sent; a receiver checks it on the bytes it read,
before parsing them (``verify`` does, in constant time).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Podium-Signature"
EVENT_HEADER = "X-Podium-Event"
DELIVERY_HEADER = "X-Podium-Delivery"
ATTEMPT_HEADER = "X-Podium-Attempt"
SCHEME = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The signature header value of ``body``."""
    return SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body`` under ``secret`` (constant-time compare)."""
    if not header or not header.startswith(SCHEME):
        return False
    return hmac.compare_digest(sign(secret, body), header.strip())


def headers(secret: str, body: bytes, *, event: str, delivery: str, attempt: int) -> dict[str, str]:
    """Every header of one delivery attempt.

    Args:
        secret: the shared secret (never sent, never logged).
        body: the exact bytes sent.
        event: the payload's ``type``.
        delivery: the payload's ``id`` (stable across attempts and nodes: receivers dedupe on it).
        attempt: 1 for the first try.
    """
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery,
        ATTEMPT_HEADER: str(attempt),
    }
