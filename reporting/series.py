"""Online over time: one presence sample per period per session, written once cluster-wide.

The series of session ``S`` is the list ``{P:S}:pres:series`` of ``"<ms> <online> <venue> <remote>"``
samples, oldest first. Every node runs the sampler; a sample is one script that reads the presence
counts and appends only when the last sample lies in an earlier period (bucket), so whichever node
comes first in a bucket writes and the others find it done. The list keeps the last 24 hours.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signaling.store import SessionStore

log = logging.getLogger("podium.reporting")

KEEP_MS = 24 * 3600 * 1000

# KEYS: series meta counts; ARGV: now_ms period_ms keep_ms max_len. Returns 1 when it wrote.
# A session nobody is in, before its doors open or once archived, gets no sample (the chart of a
# five-day event is not 27 flat lines); a sample at or before the last one's bucket is not written.
_SAMPLE = r"""
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local last = redis.call('LINDEX', KEYS[1], -1)
if last then
  local at = tonumber(string.match(last, '^(%d+) '))
  if at and math.floor(at / period) >= math.floor(now / period) then return 0 end
end
local venue, remote = 0, 0
local flat = redis.call('HGETALL', KEYS[3])
for i = 1, #flat, 2 do
  local n = tonumber(flat[i + 1]) or 0
  if n > 0 then
    if string.sub(flat[i], 1, 6) == 'venue|' then venue = venue + n else remote = remote + n end
  end
end
local state = redis.call('HGET', KEYS[2], 'state') or 'scheduled'
if venue + remote == 0 and (state == 'scheduled' or state == 'archived') then return 0 end
redis.call('RPUSH', KEYS[1], now .. ' ' .. (venue + remote) .. ' ' .. venue .. ' ' .. remote)
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[4]), -1)
for _ = 1, 100 do
  local first = redis.call('LINDEX', KEYS[1], 0)
  if not first or tonumber(string.match(first, '^(%d+) ')) >= now - tonumber(ARGV[3]) then break end
  redis.call('LPOP', KEYS[1])
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Sample:
    """People online in a session at one instant (ms), split by mode."""

    at: int
    online: int
    venue: int
    remote: int

    def view(self) -> dict[str, int]:
        """The sample as the HTTP API shows it."""
        return {"at": self.at, "online": self.online, "venue": self.venue, "remote": self.remote}


def parse_sample(raw: bytes | str) -> Sample | None:
    """A stored sample, or None when it is not one (skipped, never fatal)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    parts = text.split(" ")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    at, online, venue, remote = (int(p) for p in parts)
    return Sample(at, online, venue, remote)


class SeriesStore:
    """Writes and reads the online series of a deployment's sessions."""

    def __init__(self, store: SessionStore, *, period: float) -> None:
        self.store = store
        self.period_ms = max(1, int(period * 1000))
        self._sample = store.client.register_script(_SAMPLE)

    @property
    def max_len(self) -> int:
        """The most samples a series keeps (a day's worth)."""
        return KEEP_MS // self.period_ms + 1

    async def sample(self, sessions: list[str], now_ms: int) -> list[str]:
        """Takes this period's sample of each session where no node took it yet.

        One script call per session, all at once (a Redis Cluster pipeline refuses scripts, and the
        sessions' keys sit on different shards anyway).

        Returns:
            The sessions this call wrote a sample for.
        """

        async def one(session: str) -> Any:
            k = self.store.keys(session)
            return await self._sample(
                keys=[k.series, k.meta, k.counts],
                args=[now_ms, self.period_ms, KEEP_MS, self.max_len],
            )

        written = await self.store.guard(
            "presence", asyncio.gather(*(one(session) for session in sessions))
        )
        return [s for s, w in zip(sessions, written, strict=True) if int(w) == 1]

    async def read(self, session: str, since_ms: int = 0) -> list[Sample]:
        """A session's samples after ``since_ms``, oldest first."""
        raw = await self.store.guard(
            "read", self.store.client.lrange(self.store.keys(session).series, 0, -1)
        )
        samples = (parse_sample(item) for item in raw)
        return [s for s in samples if s is not None and s.at > since_ms]


class SeriesSampler:
    """A node's sampling loop: once per period, just after the period begins (with a little jitter,
    so nodes do not all reach the store in the same millisecond)."""

    def __init__(
        self, series: SeriesStore, sessions: list[str], clock: Callable[[], float]
    ) -> None:
        self.series = series
        self.sessions = sessions
        self.clock = clock

    async def run(self) -> None:
        """Samples until cancelled; a failed round is logged and the next period tried."""
        period = self.series.period_ms / 1000
        while True:
            now = self.clock()
            await asyncio.sleep(period - now % period + random.uniform(0, period / 10))
            try:
                await self.series.sample(self.sessions, int(self.clock() * 1000))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("series sample failed", exc_info=True)
