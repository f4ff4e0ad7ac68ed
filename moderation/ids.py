"""Ids the server makes for questions and speakers' list entries: time-ordered and unguessable."""

from __future__ import annotations

import secrets

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def time_ordered_id(prefix: str, now: float) -> str:
    """``prefix`` + base-36 milliseconds + 10 random hex digits (ids sort by creation time)."""
    return prefix + base36(int(now * 1000)) + secrets.token_hex(5)


def base36(n: int) -> str:
    """A non-negative integer in base 36, lower case."""
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = DIGITS[r] + out
    return out or "0"
