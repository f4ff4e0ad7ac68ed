"""The store's health as this node last saw it: a circuit breaker, pure, with time as an argument.

While the store answers, every call goes through. The first call that fails with a connection
error or a timeout opens the breaker: from then on calls are refused at once (``StoreUnavailable``,
retryable) instead of each waiting for a socket timeout and holding a pooled connection — so an
outage costs clients milliseconds, not seconds, and the node's memory and connections stay bounded.
No client's call is used to find out whether the store is back: a probe (a ping bounded to a short
timeout, from the schedule's tick every second or a readiness check) may try once every
``retry_after`` seconds, and its success closes the breaker — the node carries on without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Breaker:
    """Closed (calls go through) or open (refused; a probe may try once per ``retry_after``)."""

    retry_after: float = 1.0
    down_since: float | None = None
    next_try: float = 0.0
    trying: bool = False

    @property
    def down(self) -> bool:
        """True while the store is known to be unreachable."""
        return self.down_since is not None

    def allow(self) -> bool:
        """Whether a call may go to the store now."""
        return self.down_since is None

    def trial(self, now: float) -> bool:
        """Whether a probe may go to the store now: always while closed; once per period open."""
        if self.down_since is None:
            return True
        if self.trying or now < self.next_try:
            return False
        self.trying = True
        return True

    def succeeded(self) -> None:
        """A call or probe got an answer: the store is back."""
        self.down_since = None
        self.trying = False

    def failed(self, now: float) -> None:
        """A call or probe could not reach the store (or timed out): open until the next trial."""
        if self.down_since is None:
            self.down_since = now
        self.next_try = now + self.retry_after
        self.trying = False

    def abandoned(self) -> None:
        """A probe was cancelled before it learnt anything: another may try."""
        self.trying = False
