"""The channels' store edge: a channel's record and its ``stream.channel`` event, written atomically.

Records live in one hash per session (``{P:S}:stream``, field = channel id), under the session's
hash tag; every change clients must see is one script that writes the record and appends the event
through signaling's shared append, so the history and the record never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from signaling.errors import StoreUnavailable
from signaling.messages import encode, event_body
from signaling.store import APPEND_LUA, AUDIENCE_ALL, SessionStore, hash_of, new_epoch
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


# The same, only if the record is still the one read (a reaper must not undo a new publisher); the
# dead node's lapsed claim goes with it. ARGV as _WRITE, plus the expected record and now (ms);
# KEYS as _WRITE, plus the claims.
_REPLACE = (
    APPEND_LUA
    + r"""
if redis.call('HGET', KEYS[4], ARGV[6]) ~= ARGV[8] then return 0 end
redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
local held = redis.call('HGET', KEYS[5], ARGV[6])
if held and tonumber(string.match(held, '^(%d+) ')) < tonumber(ARGV[9]) then
  redis.call('HDEL', KEYS[5], ARGV[6])
end
local r = podium_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return r[2]
"""
)

# The same, only if the stored record is still the one read ('' for none): a change of one field (an
# operator's external URL) never undoes a write that came between. ARGV as _WRITE, plus the expected.
_SWAP = (
    APPEND_LUA
    + r"""
if (redis.call('HGET', KEYS[4], ARGV[6]) or '') ~= ARGV[8] then return 0 end
redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
local r = podium_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return r[2]
"""
)

# Who holds a channel: ``{P:S}:stream:claims``, field = channel, ``<expiry ms> <claim> <node>``.
# A claim is taken before a node answers a publisher (first publisher, a replacement, a takeover)
# and kept while the node carries the channel; it is free once released or lapsed. Held by another
# claim, or announced live by another node holding no claim, the channel is refused: {0, holder}.
# KEYS: streams claims; ARGV: channel node claim expected now_ms expiry_ms
_CLAIM = r"""
local now = tonumber(ARGV[5])
local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then
  local expiry, claim, node = string.match(held, '^(%d+) (%S+) (.*)$')
  if claim ~= ARGV[4] and tonumber(expiry) >= now then return {0, node} end
end
if not held or string.match(held, '^%d+ (%S+) ') ~= ARGV[4] then
  local raw = redis.call('HGET', KEYS[1], ARGV[1])
  if raw then
    local record = cjson.decode(raw)
    if record.state == 'live' and tonumber(record.lease) >= now and record.node ~= ARGV[2] then
      return {0, record.node}
    end
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[6] .. ' ' .. ARGV[3] .. ' ' .. ARGV[2])
return {1, ARGV[2]}
"""

# Writes by the claim's holder only: the claim renewed to ``expiry`` (0 releases it), then the record
# (if any) and its event (if a body); nothing at all when another claim holds the channel (-1), or,
# given the record read ('' for none), when the stored one is no longer it (-2).
# KEYS: meta hist chan streams claims; ARGV: session_json body audience maxlen epoch channel record
# claim expiry [expected]
_HELD = (
    APPEND_LUA
    + r"""
local held = redis.call('HGET', KEYS[5], ARGV[6])
if not held or string.match(held, '^%d+ (%S+) ') ~= ARGV[8] then return -1 end
if ARGV[10] and (redis.call('HGET', KEYS[4], ARGV[6]) or '') ~= ARGV[10] then return -2 end
if ARGV[9] == '0' then
  redis.call('HDEL', KEYS[5], ARGV[6])
else
  redis.call('HSET', KEYS[5], ARGV[6], ARGV[9] .. string.match(held, '^%d+( .*)$'))
end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[4], ARGV[6], ARGV[7]) end
if ARGV[2] == '' then return 0 end
local r = podium_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return r[2]
"""
)

# An operator's release (a forced takeover): the channel's claim is dropped and, if the record is
# still the one read, it is written offline with its event; a live record read but changed meanwhile
# is refused (-2) so the caller reads again; with no record ('') only the claim goes: 0 when there
# was one, -1 when not. KEYS: meta hist chan streams claims; ARGV: session_json body audience maxlen
# epoch channel record expected.
_RELEASE = (
    APPEND_LUA
    + r"""
if (redis.call('HGET', KEYS[4], ARGV[6]) or '') ~= ARGV[8] then return -2 end
local held = redis.call('HDEL', KEYS[5], ARGV[6])
if ARGV[7] == '' then return held - 1 end
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
    return streams_key_of(store.keys(session).tag)


def streams_key_of(tag: str) -> str:
    """The hash of the channel records of the session with that key hash tag."""
    return tag + ":stream"


def claims_key(store: SessionStore, session: str) -> str:
    """The hash of a session's channel claims (which node's publisher holds each channel)."""
    return store.keys(session).tag + ":stream:claims"


def listeners_key(store: SessionStore, session: str) -> str:
    """The hash of a session's listener counts per node and channel."""
    return listeners_key_of(store.keys(session).tag)


def listeners_key_of(tag: str) -> str:
    """The listener counts hash of the session with that key hash tag."""
    return tag + ":stream:listeners"


class ChannelStore:
    """Reads and writes channel records on the session store."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self._write = store.client.register_script(_WRITE)
        self._listeners = store.client.register_script(_LISTENERS)
        self._replace = store.client.register_script(_REPLACE)
        self._swap = store.client.register_script(_SWAP)
        self._claim = store.client.register_script(_CLAIM)
        self._held = store.client.register_script(_HELD)
        self._release = store.client.register_script(_RELEASE)

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

    async def update(
        self,
        session: str,
        channel: str,
        change: Callable[[ChannelRecord], tuple[ChannelRecord, dict[str, Any]]],
    ) -> ChannelRecord:
        """Rewrites a channel's record as ``change`` makes it of the stored one (with the view to
        emit), atomically: written only if no other write came between, else read and made again.

        Raises:
            StoreUnavailable: other writes kept coming between (the client may retry).
        """
        k = self.store.keys(session)
        keys = [k.meta, k.history, k.channel, streams_key(self.store, session)]
        for _ in range(10):
            raw = await self.store.guard(
                "read", self.store.client.hget(streams_key(self.store, session), channel)
            )
            stored = ChannelRecord() if raw is None else ChannelRecord.from_json(json.loads(raw))
            record, view = change(stored)
            args: list[str | bytes | int] = [encode(session), event_body(EVENT, {"channel": view}),
                                             AUDIENCE_ALL, self.store.history_size, new_epoch(),
                                             channel, json.dumps(record.to_json()), raw or b""]  # fmt: skip
            if int(await self.store.guard("append", self._swap(keys=keys, args=args))):
                return record
        raise StoreUnavailable("the channel kept changing, try again", retry_after=1.0)

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
        now_ms: int,
    ) -> int:
        """Like ``write``, only if the stored record is still ``expected``; 0 when it was not.

        A claim on the channel that lapsed before ``now_ms`` is dropped with it (a reaped node's).
        """
        k = self.store.keys(session)
        body = event_body(EVENT, {"channel": view})
        args: list[str | bytes | int] = [encode(session), body, AUDIENCE_ALL, self.store.history_size,
                                         new_epoch(), channel, json.dumps(record.to_json()),
                                         expected, now_ms]  # fmt: skip
        keys = [k.meta, k.history, k.channel, streams_key(self.store, session),
                claims_key(self.store, session)]  # fmt: skip
        return int(await self.store.guard("append", self._replace(keys=keys, args=args)))

    async def claim(
        self, session: str, channel: str, node: str, claim: str, expected: str,
        now_ms: int, expiry_ms: int,
    ) -> tuple[bool, str]:  # fmt: skip
        """Claims a channel for ``node`` until ``expiry_ms``, atomically (compare-and-set).

        ``expected`` is the claim the caller holds already ("" for none): held by it, or free (never
        claimed, released, lapsed), the channel is claimed; held by another claim, or live on another
        node with no claim, it is not.

        Returns:
            Whether the claim was taken, and the holding node.
        """
        keys = [streams_key(self.store, session), claims_key(self.store, session)]
        args: list[str | int] = [channel, node, claim, expected, now_ms, expiry_ms]
        taken, holder = await self.store.guard("append", self._claim(keys=keys, args=args))
        return bool(taken), _text(holder)

    async def held(
        self,
        session: str,
        channel: str,
        claim: str,
        expiry_ms: int,
        record: ChannelRecord | None = None,
        view: dict[str, Any] | None = None,
    ) -> int:
        """As the holder of ``claim``: renews it to ``expiry_ms`` (0 releases it), writes the record
        (if given) and emits ``stream.channel`` with ``view`` (if given), in one script.

        Returns:
            The event's seq; 0 without an event; -1 when the claim is not held (nothing written).
        """
        k = self.store.keys(session)
        body = event_body(EVENT, {"channel": view}) if view is not None else ""
        stored = json.dumps(record.to_json()) if record is not None else ""
        args: list[str | bytes | int] = [encode(session), body, AUDIENCE_ALL, self.store.history_size,
                                         new_epoch(), channel, stored, claim, expiry_ms]  # fmt: skip
        keys = [k.meta, k.history, k.channel, streams_key(self.store, session),
                claims_key(self.store, session)]  # fmt: skip
        return int(await self.store.guard("append", self._held(keys=keys, args=args)))

    async def held_update(
        self,
        session: str,
        channel: str,
        claim: str,
        expiry_ms: int,
        change: Callable[[ChannelRecord], tuple[ChannelRecord, dict[str, Any] | None] | None],
    ) -> int:
        """Like ``held``, the record as ``change`` makes it of the stored one (with the view to emit,
        if any), atomically: written only if no other write came between (an operator's external
        URL), else read and made again. ``change`` returning None writes nothing.

        Returns:
            The event's seq; 0 without an event (or nothing written); -1 when the claim is not held.

        Raises:
            StoreUnavailable: other writes kept coming between (the client may retry).
        """
        k = self.store.keys(session)
        keys = [k.meta, k.history, k.channel, streams_key(self.store, session),
                claims_key(self.store, session)]  # fmt: skip
        for _ in range(10):
            raw = await self.store.guard(
                "read", self.store.client.hget(streams_key(self.store, session), channel)
            )
            stored = ChannelRecord() if raw is None else ChannelRecord.from_json(json.loads(raw))
            made = change(stored)
            if made is None:
                return 0
            record, view = made
            body = event_body(EVENT, {"channel": view}) if view is not None else ""
            args: list[str | bytes | int] = [encode(session), body, AUDIENCE_ALL,
                                             self.store.history_size, new_epoch(), channel,
                                             json.dumps(record.to_json()), claim, expiry_ms,
                                             raw or b""]  # fmt: skip
            seq = int(await self.store.guard("append", self._held(keys=keys, args=args)))
            if seq != -2:
                return seq
        raise StoreUnavailable("the channel kept changing, try again", retry_after=1.0)

    async def release(
        self,
        session: str,
        channel: str,
        change: Callable[[ChannelRecord], tuple[ChannelRecord, dict[str, Any]] | None],
    ) -> tuple[ChannelRecord, int]:
        """Drops the channel's claim (whoever holds it) and writes the record as ``change`` makes it
        of the stored one (None: the claim only), atomically; read and made again if another write
        came between.

        Returns:
            The record now, and the event's seq; 0 when nothing was written but the claim;
            -1 when there was neither a claim nor a record to change (nothing to release).

        Raises:
            StoreUnavailable: other writes kept coming between (the client may retry).
        """
        k = self.store.keys(session)
        keys = [k.meta, k.history, k.channel, streams_key(self.store, session),
                claims_key(self.store, session)]  # fmt: skip
        for _ in range(10):
            raw = await self.store.guard(
                "read", self.store.client.hget(streams_key(self.store, session), channel)
            )
            stored = ChannelRecord() if raw is None else ChannelRecord.from_json(json.loads(raw))
            made = change(stored)
            record, value = stored, ""
            body: str | bytes = ""
            if made is not None:
                record, view = made
                body, value = event_body(EVENT, {"channel": view}), json.dumps(record.to_json())
            args: list[str | bytes | int] = [encode(session), body, AUDIENCE_ALL,
                                             self.store.history_size, new_epoch(), channel, value,
                                             raw or b""]  # fmt: skip
            seq = int(await self.store.guard("append", self._release(keys=keys, args=args)))
            if seq != -2:
                return record, seq
        raise StoreUnavailable("the channel kept changing, try again", retry_after=1.0)

    async def snapshot(self, session: str) -> tuple[dict[str, ChannelRecord], dict[str, int]]:
        """A session's channel records and announced listener totals, in one round trip."""
        pipe = self.store.client.pipeline(transaction=False)
        pipe.hgetall(streams_key(self.store, session))
        pipe.hget(listeners_key(self.store, session), "_last")
        raw, last = await self.store.guard("read", pipe.execute())
        return _channels({_text(k): _text(v) for k, v in raw.items()}, last)

    @staticmethod
    def snapshot_lua() -> str:
        """Lua, the body of a function of ``(tag, sub)``, reading what :meth:`snapshot` reads (for
        the join script, ``signaling.service.JoinRead``); :meth:`snapshot_from_reply` reads it."""
        tag = "{}"
        streams = json.dumps(streams_key_of(tag)[len(tag) :])
        listeners = json.dumps(listeners_key_of(tag)[len(tag) :])
        return (
            f"return {{redis.call('HGETALL', tag .. {streams}), "
            f"redis.call('HGET', tag .. {listeners}, '_last') or ''}}"
        )

    @staticmethod
    def snapshot_from_reply(raw: list[Any]) -> tuple[dict[str, ChannelRecord], dict[str, int]]:
        """The channel records and listener totals from the reply of :meth:`snapshot_lua`."""
        flat, last = raw
        return _channels(hash_of(flat), last or None)

    async def listener_totals(self, session: str) -> dict[str, int]:
        """The listener totals last announced (``stream.listeners``), by channel."""
        raw = await self.store.guard(
            "read", self.store.client.hget(listeners_key(self.store, session), "_last")
        )
        return {} if raw is None else {str(k): int(v) for k, v in json.loads(raw).items()}

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


def _channels(
    records: dict[str, str], last: bytes | str | None
) -> tuple[dict[str, ChannelRecord], dict[str, int]]:
    """The channel records and the listener totals last announced (``_last``, JSON), parsed."""
    channels = {name: ChannelRecord.from_json(json.loads(raw)) for name, raw in records.items()}
    totals = {} if not last else {str(k): int(v) for k, v in json.loads(last).items()}
    return channels, totals


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
