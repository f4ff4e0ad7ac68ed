"""ICE servers for a speaker or a desk: STUN as configured, TURN with short-lived REST credentials.

TURN REST credentials (coturn ``use-auth-secret``, draft-uberti-behave-turn-rest): the username is
``<expiry>:<sub>`` and the credential ``base64(HMAC-SHA1(secret, username))``; the TURN server checks
both with the same shared secret, so podium never stores a TURN password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

SCHEMES = ("stun:", "turn:", "turns:")


@dataclass(frozen=True, slots=True)
class IceConfig:
    """The node's ICE settings."""

    urls: tuple[str, ...] = ()
    secret: str = ""
    ttl: int = 600


def valid_ice_url(url: str) -> bool:
    """True for a ``stun:``, ``turn:`` or ``turns:`` URL with a host (RFC 7064, RFC 7065)."""
    scheme = next((s for s in SCHEMES if url.startswith(s)), None)
    rest = url[len(scheme) :] if scheme else ""
    return bool(rest) and not any(c.isspace() or c in "/@" for c in rest)


def turn_credentials(secret: str, sub: str, now: float, ttl: int) -> tuple[str, str]:
    """The (username, credential) pair a TURN server with this shared secret accepts until now + ttl."""
    username = f"{int(now) + ttl}:{sub}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(config: IceConfig, sub: str, now: float) -> dict[str, Any]:
    """The ``rtc.ice`` answer: STUN URLs without credentials, TURN URLs with this person's own.

    TURN URLs are left out when no secret is configured (a TURN server would refuse them anyway).
    """
    stun = [u for u in config.urls if u.startswith("stun:")]
    turn = [u for u in config.urls if not u.startswith("stun:")]
    servers: list[dict[str, Any]] = []
    if stun:
        servers.append({"urls": stun})
    if turn and config.secret:
        username, credential = turn_credentials(config.secret, sub, now, config.ttl)
        servers.append({"urls": turn, "username": username, "credential": credential})
    return {"ice_servers": servers, "ttl": config.ttl}
