"""The heap: keeps full garbage collections short while thousands of connections stay open.

Every open connection is a few hundred long-lived objects (the request, the WebSocket, its reader
and writer, the transport, the handler's frames). CPython's full collection walks all of them, and
starts one each time the long-lived objects have grown by a quarter: during a wave of 10,000 joins
on one node that was 12 full collections of up to 540 ms (2.1 s of a 5 s join phase), and one of
560 ms in the middle of a broadcast (docs/performance.md). Freezing moves the objects alive now
out of the collector's sight (``gc.freeze``, constant time), so later collections walk only what
came since.

The cost: reference cycles among frozen objects are not freed while frozen. When half of the
connections alive at the last freeze have gone, the heap is thawed, so that the next full
collection frees what they left; it is frozen again once it has grown back.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("podium.heap")

GROWTH = 500
"""Connections opened since the last freeze that call for the next one (or a tenth, if more)."""


class Step(enum.Enum):
    """What the keeper does on one check."""

    NOTHING = "nothing"
    FREEZE = "freeze"
    THAW = "thaw"


class HeapPolicy:
    """When to freeze and thaw, from the number of open connections alone (no gc calls here)."""

    def __init__(self, growth: int = GROWTH) -> None:
        self.growth = growth
        self.frozen_at = 0

    def step(self, connections: int) -> Step:
        """The step for ``connections`` open now; remembers a freeze or thaw as done."""
        if connections >= self.frozen_at + max(self.growth, self.frozen_at // 10):
            self.frozen_at = connections
            return Step.FREEZE
        if self.frozen_at and connections <= self.frozen_at // 2:
            self.frozen_at = 0
            return Step.THAW
        return Step.NOTHING


class PauseMetrics(Protocol):
    """What the keeper reports."""

    def gc_pause(self, generation: int, seconds: float) -> None:
        """One garbage collection of ``generation`` paused the node for ``seconds``."""


class HeapKeeper:
    """Applies the policy four times a second, and times every collection for the metrics."""

    def __init__(
        self,
        connections: Callable[[], int],
        metrics: PauseMetrics | None = None,
        *,
        policy: HeapPolicy | None = None,
    ) -> None:
        self._connections = connections
        self._metrics = metrics
        self.policy = policy or HeapPolicy()
        self._started = 0.0

    def check(self) -> Step:
        """One check now; freezes or thaws the heap when the policy says so."""
        step = self.policy.step(self._connections())
        if step is Step.FREEZE:
            gc.freeze()
        elif step is Step.THAW:
            gc.unfreeze()
            log.info("heap thawed: half of the connections frozen with it have closed")
        return step

    def _timed(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._metrics is not None and self._started:
            self._metrics.gc_pause(int(info["generation"]), time.perf_counter() - self._started)

    async def run(self, every: float = 0.25) -> None:
        """Checks every ``every`` seconds until cancelled; thaws the heap when it stops."""
        gc.callbacks.append(self._timed)
        try:
            while True:
                await asyncio.sleep(every)
                self.check()
        finally:
            gc.callbacks.remove(self._timed)
            if self.policy.frozen_at:
                gc.unfreeze()
