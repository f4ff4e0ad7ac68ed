"""Delivery rules, pure: targets and their keys, cursors, the retry policy and its backoff.

Nothing here touches the network, the store or the clock; the dispatcher feeds it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from webhooks.errors import InvalidTarget

MAX_TARGETS = 16
MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class Target:
    """A receiver: its URL (never logged nor exported: it may carry a token) and its short key."""

    url: str
    key: str

    @classmethod
    def of(cls, url: str) -> Target:
        """The target of a checked URL."""
        return cls(url, target_key(url))


def target_key(url: str) -> str:
    """A short, stable name of a URL: the store's cursor field and what logs may show."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def check_url(url: str) -> str:
    """The URL when podium may send webhooks to it.

    Raises:
        InvalidTarget: not ``http``/``https``, no host, a fragment, spaces, or too long.
    """
    if len(url) > MAX_URL or any(c.isspace() for c in url):
        raise InvalidTarget("must be one URL of at most 2048 characters, without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise InvalidTarget(f"is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidTarget("must start with http:// or https://")
    if not parts.hostname:
        raise InvalidTarget("has no host")
    if parts.fragment or url.endswith("#"):
        raise InvalidTarget("must not have a #fragment (it is never sent)")
    del port
    return url


def targets_of(urls: tuple[str, ...]) -> tuple[Target, ...]:
    """The targets of the configured URLs, each checked, none twice.

    Raises:
        InvalidTarget: a URL is refused, repeated, or there are more than ``MAX_TARGETS``.
    """
    if len(urls) > MAX_TARGETS:
        raise InvalidTarget(f"at most {MAX_TARGETS} URLs")
    if len(set(urls)) != len(urls):
        raise InvalidTarget("a URL is listed twice")
    targets = []
    for number, url in enumerate(urls, 1):
        try:
            targets.append(Target.of(check_url(url)))
        except InvalidTarget as exc:
            # The URL itself is never repeated in the message: it may carry a token.
            raise InvalidTarget(f"URL {number} {exc}") from None
    return tuple(targets)


@dataclass(frozen=True, slots=True)
class Policy:
    """How hard to try: attempts per event, the backoff's base and cap, one attempt's timeout."""

    attempts: int = 8
    backoff: float = 1.0
    backoff_cap: float = 60.0
    timeout: float = 10.0


def backoff(policy: Policy, attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped, jittered.

    Half the delay is fixed and half random ("equal jitter"), so receivers recovering from an outage
    are not hit by every node at the same instant, yet the wait still grows.
    """
    delay: float = min(policy.backoff_cap, policy.backoff * 2.0 ** (attempt - 1))
    return delay / 2 + rand() * delay / 2


def delivered(status: int) -> bool:
    """A 2xx answer delivers the event; anything else is a failed attempt."""
    return 200 <= status < 300


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a target is in a session's outbox: the last event delivered (or given up).

    ``seq`` is the session's event number, ``n`` the outbox entry's ordinal (so entries trimmed from
    the outbox before the target reached them can be counted). Stored as ``<epoch>:<seq>:<n>``.
    """

    epoch: str
    seq: int
    n: int

    def encode(self) -> str:
        """The stored form."""
        return f"{self.epoch}:{self.seq}:{self.n}"

    @classmethod
    def decode(cls, raw: str) -> Cursor:
        """A cursor from its stored form; a malformed one reads as the start of no epoch."""
        epoch, _, rest = raw.partition(":")
        seq, _, n = rest.partition(":")
        try:
            return cls(epoch, int(seq), int(n or 0))
        except ValueError:
            return cls("", 0, 0)
