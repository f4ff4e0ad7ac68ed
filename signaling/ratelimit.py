"""Token buckets: the per-connection and per-person rate limits, pure (time is an argument)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """Allows ``rate`` actions a second on average and bursts of up to ``burst``."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> float:
        """Takes ``cost`` tokens if it can.

        Returns:
            0.0 when allowed, else the seconds to wait before the same action would be allowed.
        """
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class KeyedBuckets:
    """One token bucket per key (a person, an address), in a bounded table.

    A flood of distinct keys clears the table rather than growing memory: the limit then restarts
    from full buckets, which is the safe side for the people it protects.
    """

    __slots__ = ("_buckets", "burst", "max_keys", "rate")

    def __init__(self, rate: float, burst: float, *, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now: float) -> float:
        """Takes one token from ``key``'s bucket; 0.0 when allowed, else the seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)
