"""The channels' store edge: a channel's record and its ``stream.channel`` event, written atomically.

Records live in one hash per session (``{P:S}:stream``, field = channel id), under the session's
hash tag; every change clients must see is one script that writes the record and appends the event
through signaling's shared append, so the history and the record never disagree.
"""

from __future__ import annotations

import json
from typing import Any

from signaling.messages import encode, event_body
from signaling.store import APPEND_LUA, AUDIENCE_ALL, SessionStore, new_epoch
from streaming.channels import ChannelRecord

EVENT = "stream.channel"
LISTENERS_EVENT = "stream.listeners"

# KEYS: meta hist chan streams; ARGV: session_json body audience maxlen epoch channel record
_WRITE = (
    APPEND_LUA
    + r"""
redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
local r = podium_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return r[2]
"""
)


# The same, only if the record is still the one read (a reaper must not undo a new publisher).
# ARGV as _WRITE, plus the expected record.
_REPLACE = (
    APPEND_LUA
    + r"""
if redis.call('HGET', KEYS[4], ARGV[6]) ~= ARGV[8] then return 0 end
redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
local r = podium_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return r[2]
"""
)

# One node's listener counts, then the cluster-wide totals; an event only when the totals changed.
# Fields are ``<node>|<channel>`` = ``<count> <lease expiry ms>``: a node that stops renewing its
# counts (it died) drops out of the totals at its lease's end.
# KEYS: meta hist chan listeners; ARGV: session_json maxlen epoch node now_ms expiry n ch1 c1 ...
_LISTENERS = (
    APPEND_LUA
    + r"""
local n = tonumber(ARGV[7])
for i = 1, n do
  local field = ARGV[4] .. '|' .. ARGV[6 + 2 * i]
  local count = tonumber(ARGV[7 + 2 * i])
  if count > 0 then
    redis.call('HSET', KEYS[4], field, count .. ' ' .. ARGV[6])
  else
    redis.call('HDEL', KEYS[4], field)
  end
end
local totals, names = {}, {}
local flat = redis.call('HGETALL', KEYS[4])
local now = tonumber(ARGV[5])
for i = 1, #flat, 2 do
  local field, value = flat[i], flat[i + 1]
  if field ~= '_last' then
    local channel = string.match(field, '|(.*)$')
    local count, expiry = string.match(value, '^(%d+) (%d+)$')
    if tonumber(expiry) < now then
      redis.call('HDEL', KEYS[4], field)
    else
      if not totals[channel] then table.insert(names, channel); totals[channel] = 0 end
      totals[channel] = totals[channel] + tonumber(count)
    end
  end
end
table.sort(names)
local parts = {}
for _, name in ipairs(names) do table.insert(parts, '"' .. name .. '":' .. totals[name]) end
local encoded = '{' .. table.concat(parts, ',') .. '}'
if redis.call('HGET', KEYS[4], '_last') == encoded then return 0 end
redis.call('HSET', KEYS[4], '_last', encoded)
local body = '"name":"stream.listeners","data":{"listeners":' .. encoded .. '}}'
local r = podium_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], body, 'a', ARGV[2], ARGV[3])
return r[2]
"""
)


def streams_key(store: SessionStore, session: str) -> str:
    """The hash of a session's channel records."""
    return store.keys(session).tag + ":stream"


def listeners_key(store: SessionStore, session: str) -> str:
    """The hash of a session's listener counts per node and channel."""
    return store.keys(session).tag + ":stream:listeners"


class ChannelStore:
    """Reads and writes channel records on the session store."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self._write = store.client.register_script(_WRITE)
        self._listeners = store.client.register_script(_LISTENERS)
        self._replace = store.client.register_script(_REPLACE)

    async def records(self, session: str) -> dict[str, ChannelRecord]:
        """Every channel record of a session (channels never written are absent)."""
        raw = await self.store.guard(
            "read", self.store.client.hgetall(streams_key(self.store, session))
        )
        return {_text(k): ChannelRecord.from_json(json.loads(v)) for k, v in raw.items()}

    async def record(self, session: str, channel: str) -> ChannelRecord:
        """One channel's record (offline with no URL when never written)."""
        raw = await self.store.guard(
            "read", self.store.client.hget(streams_key(self.store, session), channel)
        )
        return ChannelRecord() if raw is None else ChannelRecord.from_json(json.loads(raw))

    async def write(
        self, session: str, channel: str, record: ChannelRecord, view: dict[str, Any]
    ) -> int:
        """Stores the record and emits ``stream.channel`` with the channel's view; returns the seq."""
        k = self.store.keys(session)
        body = event_body(EVENT, {"channel": view})
        args: list[str | bytes | int] = [
            encode(session),
            body,
            AUDIENCE_ALL,
            self.store.history_size,
            new_epoch(),
        ]
        seq = await self.store.guard(
            "append",
            self._write(
                keys=[k.meta, k.history, k.channel, streams_key(self.store, session)],
                args=[*args, channel, json.dumps(record.to_json())],
            ),
        )
        return int(seq)

    async def all_records(self, sessions: list[str]) -> dict[str, dict[str, bytes]]:
        """Every stored record of these sessions, raw (one round trip)."""
        pipe = self.store.client.pipeline(transaction=False)
        for session in sessions:
            pipe.hgetall(streams_key(self.store, session))
        rows = await self.store.guard("read", pipe.execute())
        return {
            session: {_text(k): v for k, v in row.items()}
            for session, row in zip(sessions, rows, strict=True)
        }

    async def replace(
        self,
        session: str,
        channel: str,
        expected: bytes,
        record: ChannelRecord,
        view: dict[str, Any],
    ) -> int:
        """Like ``write``, only if the stored record is still ``expected``; 0 when it was not."""
        k = self.store.keys(session)
        body = event_body(EVENT, {"channel": view})
        args: list[str | bytes | int] = [encode(session), body, AUDIENCE_ALL, self.store.history_size,
                                         new_epoch(), channel, json.dumps(record.to_json()),
                                         expected]  # fmt: skip
        keys = [k.meta, k.history, k.channel, streams_key(self.store, session)]
        return int(await self.store.guard("append", self._replace(keys=keys, args=args)))

    async def snapshot(self, session: str) -> tuple[dict[str, ChannelRecord], dict[str, int]]:
        """A session's channel records and announced listener totals, in one round trip."""
        pipe = self.store.client.pipeline(transaction=False)
        pipe.hgetall(streams_key(self.store, session))
        pipe.hget(listeners_key(self.store, session), "_last")
        raw, last = await self.store.guard("read", pipe.execute())
        records = {_text(k): ChannelRecord.from_json(json.loads(v)) for k, v in raw.items()}
        totals = {} if last is None else {str(k): int(v) for k, v in json.loads(last).items()}
        return records, totals

    async def listener_totals(self, session: str) -> dict[str, int]:
        """The listener totals last announced (``stream.listeners``), by channel."""
        raw = await self.store.guard(
            "read", self.store.client.hget(listeners_key(self.store, session), "_last")
        )
        return {} if raw is None else {str(k): int(v) for k, v in json.loads(raw).items()}

    async def renew(self, session: str, channel: str, record: ChannelRecord) -> None:
        """Rewrites a live record with a later lease (no event: nothing changed for clients)."""
        await self.store.guard(
            "append",
            self.store.client.hset(
                streams_key(self.store, session), channel, json.dumps(record.to_json())
            ),
        )

    async def listeners(
        self, session: str, node: str, counts: dict[str, int], now_ms: int, lease_ms: int
    ) -> int:
        """Writes this node's listener counts; emits ``stream.listeners`` if the totals changed.

        Returns:
            The event's seq, or 0 when the totals did not change.
        """
        s = self.store
        k = s.keys(session)
        args: list[str | bytes | int] = [encode(session), s.history_size, new_epoch(), node,
                                         now_ms, now_ms + lease_ms, len(counts)]  # fmt: skip
        for channel, count in counts.items():
            args += [channel, count]
        keys = [k.meta, k.history, k.channel, listeners_key(s, session)]
        seq = await s.guard("append", self._listeners(keys=keys, args=args))
        return int(seq)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
