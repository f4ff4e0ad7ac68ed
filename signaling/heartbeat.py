"""Heartbeat: one sweep for every socket of the node, instead of timers and a task per socket.

A socket that has been silent for a period gets a ping: the same two-byte frame for everyone, one
transport write. A socket still silent half a period later (no pong, nothing else) is cut off, as
aiohttp's own heartbeat does. aiohttp's heartbeat keeps two timers per socket, re-arms them on every
frame received and, on Python 3.11, starts a task per ping: about 120–150 µs of node CPU per socket
per ping at 10k sockets, 6 % of a core while idle and bursts of a third of a core after a join wave
(docs/performance.md). Here the sweep walks the node's connections a few times a second and a ping
costs one write plus reading the pong.

Each socket's first ping is spread over the last quarter of its first period (by its identity), so
that a join wave does not become a ping wave a period later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

log = logging.getLogger("podium.heartbeat")

PING = b"\x89\x00"
"""An unmasked, final ping frame with no payload (RFC 6455 §5.5.2)."""

SPREAD = 0.25
"""Share of a period over which the pings of sockets that were heard at the same time are spread."""


class Beating(Protocol):
    """A socket the heartbeat watches."""

    @property
    def seen(self) -> float:
        """When anything last arrived from the peer (monotonic seconds)."""
        ...

    @property
    def pinged(self) -> float:
        """When the heartbeat last pinged it (monotonic seconds; 0.0 never)."""
        ...

    @pinged.setter
    def pinged(self, value: float) -> None: ...

    def write(self, frame: bytes) -> bool:
        """Writes a ready frame without waiting; False when the socket is gone or cut off."""
        ...

    def cut(self) -> None:
        """Drops the socket at once."""
        ...


class HeartbeatMetrics(Protocol):
    """What the heartbeat reports."""

    def heartbeat(self, pinged: int, timed_out: int) -> None:
        """One sweep pinged ``pinged`` sockets and cut off ``timed_out`` silent ones."""


def sweep(members: Iterable[Beating], now: float, period: float) -> tuple[int, list[Beating]]:
    """Pings the sockets that are due and returns ``(pinged, silent)``; the caller cuts the silent.

    A socket is due when it has been silent for ``period`` less its spread (a fraction of
    ``SPREAD × period`` fixed by its identity) and has not been pinged since it was last heard. It is
    silent when it was pinged, and nothing has arrived for half a period since.
    """
    pinged = 0
    silent: list[Beating] = []
    grace = period / 2
    for member in members:
        heard = member.seen
        if member.pinged > heard:
            if now - member.pinged >= grace:
                silent.append(member)
            continue
        offset = (hash(member) % 1024) / 1024 * SPREAD * period
        if now - heard >= period - offset:
            member.pinged = now
            if member.write(PING):
                pinged += 1
    return pinged, silent


class Heartbeat:
    """Sweeps the node's connections every ``tick`` seconds (a quarter period, at most one second)."""

    def __init__(
        self,
        members: Callable[[], Iterable[Beating]],
        period: float,
        metrics: HeartbeatMetrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._members = members
        self._period = period
        self._metrics = metrics
        self._clock = clock
        self.tick = min(1.0, period / 4)

    def beat(self) -> tuple[int, int]:
        """One sweep now: pings who is due, cuts off who is silent; returns the two counts."""
        pinged, silent = sweep(list(self._members()), self._clock(), self._period)
        for member in silent:
            member.cut()
        if self._metrics is not None and (pinged or silent):
            self._metrics.heartbeat(pinged, len(silent))
        if silent:
            log.info("cut off %d sockets that answered no ping", len(silent))
        return pinged, len(silent)

    async def run(self) -> None:
        """Sweeps until cancelled."""
        while True:
            await asyncio.sleep(self.tick)
            try:
                self.beat()
            except Exception:  # a bug in one sweep must not stop the heartbeat for good
                log.exception("heartbeat sweep failed")
