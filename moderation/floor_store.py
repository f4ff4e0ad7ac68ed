"""The speakers' list's store edge: every acknowledged change is one atomic script on the session's keys.

The list lives in three keys so that a request never contends with another on one blob: the queue
(a sorted set by position), the entries (a hash of their public views and owners) and the state
(open, the speaker and their timer, a version). Each script checks what the decision was based on
(the entry still queued, the speaker still the one read, the list open, the person not listed yet,
the rate limit), writes the change, appends the audit entry and emits the events — ``floor.ended``
or ``floor.expired`` when a turn ends or runs out, and always ``floor.list``, the whole public view
built from the store inside the script — through signaling's shared append, so history and state
never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import msgspec

from moderation.errors import TooManyFloorRequests
from moderation.floor import Entry, Floor, Turn
from signaling.messages import encode
from signaling.store import APPEND_LUA, SessionStore, hash_of, new_epoch

# KEYS: 1 meta 2 hist 3 chan 4 state 5 queue 6 entries 7 subs 8 audit 9 due [10 rate]
# ARGV: 1 session_json 2 maxlen 3 epoch 4 audit_json 5 coalesce_ms (0: show the list now), then
# each script's own from 6. Every script returns {status, seq of the list event or 0, flush due}.
_COMMON = (
    APPEND_LUA
    + r"""
local function emit(body)
  return podium_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], body, 'a', ARGV[2], ARGV[3])[2]
end
local function view()
  local ids = redis.call('ZRANGE', KEYS[5], 0, -1)
  local entries = {}
  if #ids > 0 then entries = redis.call('HMGET', KEYS[6], unpack(ids)) end
  local s = redis.call('HMGET', KEYS[4], 'open', 'turn', 'expired')
  local v = '{"open":' .. (s[1] == '0' and 'false' or 'true')
    .. ',"queue":[' .. table.concat(entries, ',') .. ']'
  if s[2] and s[2] ~= '' then v = v .. ',"speaker":' .. s[2] end
  return v .. ',"expired":' .. (s[3] == '1' and 'true' or 'false') .. '}'
end
local function forget(id)
  local sub = redis.call('HGET', KEYS[6], id .. '|sub')
  if sub then redis.call('HDEL', KEYS[7], sub) end
  redis.call('HDEL', KEYS[6], id, id .. '|sub', id .. '|by')
end
local function end_turn(id, reason)
  forget(id)
  redis.call('HDEL', KEYS[4], 'speaker', 'sub', 'turn', 'ends')
  redis.call('HSET', KEYS[4], 'expired', '0')
  emit('"name":"floor.ended","data":{"entry":"' .. id .. '","reason":"' .. reason .. '"}}')
end
local function speaker()
  return redis.call('HGET', KEYS[4], 'speaker') or ''
end
local function queued(id)
  return redis.call('ZSCORE', KEYS[5], id) ~= false
end
local function show()
  redis.call('HSET', KEYS[4], 'shown', redis.call('HGET', KEYS[4], 'ver') or '0')
  return emit('"name":"floor.list","data":' .. view() .. '}')
end
local function done()
  redis.call('HINCRBY', KEYS[4], 'ver', 1)
  redis.call('XADD', KEYS[8], '*', 'e', ARGV[4])
  if ARGV[5] == '0' then return {1, show(), 0} end
  -- A storm of requests must not send the whole list to everyone once per request: the first
  -- change of a window claims the broadcast, which then carries every change of the window.
  local claimed = redis.call('SET', KEYS[9], '1', 'NX', 'PX', ARGV[5])
  return {1, 0, claimed and 1 or 0}
end
"""
)

# ARGV 6 id 7 sub 8 view_json 9 by(1|0) 10 limit(0 = none) 11 window_ms 12 max_entries 13 need_open
_ENQUEUE = (
    _COMMON
    + r"""
local limit = tonumber(ARGV[10])
if limit > 0 then
  local used = redis.call('INCR', KEYS[10])
  if used == 1 then redis.call('PEXPIRE', KEYS[10], ARGV[11]) end
  if used > limit then
    redis.call('DECR', KEYS[10])
    return {-1, redis.call('PTTL', KEYS[10]), 0}
  end
end
local refused = 0
if ARGV[13] == '1' and redis.call('HGET', KEYS[4], 'open') == '0' then refused = -2
elseif redis.call('HEXISTS', KEYS[7], ARGV[7]) == 1 then refused = -3
elseif redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[12]) then refused = -4 end
if refused ~= 0 then
  if limit > 0 then redis.call('DECR', KEYS[10]) end
  return {refused, 0, 0}
end
redis.call('ZADD', KEYS[5], redis.call('HINCRBY', KEYS[4], 'next', 1), ARGV[6])
redis.call('HSET', KEYS[6], ARGV[6], ARGV[8], ARGV[6] .. '|sub', ARGV[7], ARGV[6] .. '|by', ARGV[9])
redis.call('HSET', KEYS[7], ARGV[7], ARGV[6])
return done()
"""
)

# ARGV 6 id
_REMOVE = (
    _COMMON
    + r"""
if not queued(ARGV[6]) then return {0, 0, 0} end
redis.call('ZREM', KEYS[5], ARGV[6])
forget(ARGV[6])
return done()
"""
)

# ARGV 6 id 7 reason
_END = (
    _COMMON
    + r"""
if speaker() ~= ARGV[6] then return {0, 0, 0} end
end_turn(ARGV[6], ARGV[7])
return done()
"""
)

# ARGV 6 id 7 expected speaker ('' = none) 8 turn_json 9 ends
_GRANT = (
    _COMMON
    + r"""
if not queued(ARGV[6]) or speaker() ~= ARGV[7] then return {0, 0, 0} end
if ARGV[7] ~= '' then end_turn(ARGV[7], 'replaced') end
redis.call('ZREM', KEYS[5], ARGV[6])
local sub = redis.call('HGET', KEYS[6], ARGV[6] .. '|sub')
redis.call('HSET', KEYS[4], 'speaker', ARGV[6], 'sub', sub, 'turn', ARGV[8], 'ends', ARGV[9],
           'expired', '0')
return done()
"""
)

# ARGV 6 id 7 position (-1 = the end of the queue)
_MOVE = (
    _COMMON
    + r"""
if not queued(ARGV[6]) then return {0, 0, 0} end
local position = tonumber(ARGV[7])
if position < 0 then
  redis.call('ZADD', KEYS[5], redis.call('HINCRBY', KEYS[4], 'next', 1), ARGV[6])
else
  local ids = redis.call('ZRANGE', KEYS[5], 0, -1)
  local order = {}
  for _, id in ipairs(ids) do
    if id ~= ARGV[6] then order[#order + 1] = id end
  end
  table.insert(order, math.min(position, #order) + 1, ARGV[6])
  -- Scores 1..n stay below the next position handed out: it counts every entry ever queued.
  for i, id in ipairs(order) do redis.call('ZADD', KEYS[5], i, id) end
end
return done()
"""
)

# ARGV 6 open(1|0)
_OPEN = (
    _COMMON
    + r"""
redis.call('HSET', KEYS[4], 'open', ARGV[6])
return done()
"""
)

# ARGV 6 id 7 now 8 revoke(1|0)
_EXPIRE = (
    _COMMON
    + r"""
local s = redis.call('HMGET', KEYS[4], 'speaker', 'ends', 'expired')
if s[1] ~= ARGV[6] or s[3] == '1' or tonumber(s[2]) > tonumber(ARGV[7]) then return {0, 0, 0} end
emit('"name":"floor.expired","data":{"entry":"' .. ARGV[6] .. '"}}')
if ARGV[8] == '1' then end_turn(ARGV[6], 'expired')
else redis.call('HSET', KEYS[4], 'expired', '1') end
return done()
"""
)

# ARGV 6 only when no broadcast is due (1|0): the timer loop's catch-up after a lost broadcast.
_FLUSH = (
    _COMMON
    + r"""
local s = redis.call('HMGET', KEYS[4], 'ver', 'shown')
if tonumber(s[1] or '0') <= tonumber(s[2] or '0') then return {0, 0, 0} end
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[9]) == 1 then return {0, 0, 0} end
return {1, show(), 0}
"""
)


@dataclass(frozen=True, slots=True)
class FloorKeys:
    """The speakers' list keys of one session (same hash tag, so same slot, as its stream)."""

    tag: str

    @property
    def state(self) -> str:
        """Hash: ``open``, ``speaker`` (entry id), ``sub``, ``turn`` (speaking view), ``ends``,
        ``expired``, ``ver``, ``shown`` (the last ``ver`` broadcast), ``next`` (the last queue
        position handed out)."""
        return self.tag + ":floor"

    @property
    def queue(self) -> str:
        """Sorted set: entry id → position."""
        return self.tag + ":floor:queue"

    @property
    def entries(self) -> str:
        """Hash: ``<id>`` → public view (JSON), ``<id>|sub`` → owner, ``<id>|by`` → added by staff."""
        return self.tag + ":floor:entries"

    @property
    def subs(self) -> str:
        """Hash: person → their entry id (queued or speaking): one entry per person."""
        return self.tag + ":floor:subs"

    @property
    def audit(self) -> str:
        """Stream: every change of the list, in order, with its actor."""
        return self.tag + ":floor:audit"

    @property
    def due(self) -> str:
        """Short-lived flag: a coalesced ``floor.list`` broadcast is scheduled."""
        return self.tag + ":floor:due"

    def rate(self, sub: str) -> str:
        """Counter: floor requests a person made in the current window."""
        return self.tag + ":floor:rl:" + sub


@dataclass(frozen=True, slots=True)
class Watch:
    """What the timer loop reads of a session's list: the speaker's timer, an unshown change."""

    entry: str
    ends: float
    expired: bool
    unshown: bool


@dataclass(frozen=True, slots=True)
class Written:
    """A stored change: its ``floor.list`` event's seq (0 when coalesced), and whether this node
    claimed the coalesced broadcast (it must flush the list when the window ends)."""

    seq: int
    flush: bool


class FloorStore:
    """Reads and atomic writes of one deployment's speakers' lists.

    Every write returns what it wrote, or None when what the decision was based on no longer holds
    (the caller reads again and decides again). ``coalesce_ms`` > 0 defers the ``floor.list``
    broadcast to the end of a window shared by every change made in it.
    """

    def __init__(self, sessions: SessionStore) -> None:
        self.sessions = sessions
        client = sessions.client
        self._enqueue = client.register_script(_ENQUEUE)
        self._remove = client.register_script(_REMOVE)
        self._end = client.register_script(_END)
        self._grant = client.register_script(_GRANT)
        self._move = client.register_script(_MOVE)
        self._open = client.register_script(_OPEN)
        self._expire = client.register_script(_EXPIRE)
        self._flush = client.register_script(_FLUSH)

    def keys(self, session: str) -> FloorKeys:
        """The speakers' list keys of a session."""
        return FloorKeys(self.sessions.keys(session).tag)

    def _keys(self, session: str) -> list[str]:
        s, f = self.sessions.keys(session), self.keys(session)
        return [s.meta, s.history, s.channel, f.state, f.queue, f.entries, f.subs, f.audit, f.due]

    def _head(
        self, session: str, audit: dict[str, Any], coalesce_ms: int = 0
    ) -> list[str | bytes | int]:
        return [encode(session), self.sessions.history_size, new_epoch(), _json(audit), coalesce_ms]

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Written | None:
        status, seq, flush = await self.sessions.guard("append", script(keys=keys, args=args))
        return Written(int(seq), int(flush) == 1) if int(status) == 1 else None

    async def enqueue(
        self,
        session: str,
        entry: Entry,
        audit: dict[str, Any],
        *,
        limit: int = 0,
        window_ms: int = 60_000,
        max_entries: int,
        need_open: bool,
        coalesce_ms: int = 0,
    ) -> Written | None:
        """Queues a new entry at the end, if the list is open (when asked), the person is not
        listed yet and the list has room.

        Raises:
            TooManyFloorRequests: the person is over ``limit`` requests a window (nothing stored).
        """
        keys = [*self._keys(session), self.keys(session).rate(entry.sub)]
        args = [*self._head(session, audit, coalesce_ms), entry.id, entry.sub,
                encode(entry.view()), "1" if entry.by_moderator else "0", limit, window_ms,
                max_entries, "1" if need_open else "0"]  # fmt: skip
        status, value, flush = await self.sessions.guard(
            "append", self._enqueue(keys=keys, args=args)
        )
        if int(status) == -1:
            raise TooManyFloorRequests(
                "you are asking for the floor too often", retry_after=max(0.1, int(value) / 1000)
            )
        return Written(int(value), int(flush) == 1) if int(status) == 1 else None

    async def remove(
        self, session: str, entry_id: str, audit: dict[str, Any], *, coalesce_ms: int = 0
    ) -> Written | None:
        """Takes a queued entry off the list, if it is still queued."""
        args = [*self._head(session, audit, coalesce_ms), entry_id]
        return await self._run(self._remove, self._keys(session), args)

    async def end(
        self, session: str, entry_id: str, reason: str, audit: dict[str, Any]
    ) -> Written | None:
        """Ends the turn of the speaker ``entry_id``, if they still have the floor."""
        args = [*self._head(session, audit), entry_id, reason]
        return await self._run(self._end, self._keys(session), args)

    async def grant(
        self, session: str, turn: Turn, expected: str, audit: dict[str, Any]
    ) -> Written | None:
        """Gives the floor to a queued entry, if it is still queued and the speaker is still
        ``expected`` (an entry id, or "" for nobody), whose turn ends (``replaced``)."""
        args = [*self._head(session, audit), turn.entry.id, expected, encode(turn.view()),
                repr(turn.ends)]  # fmt: skip
        return await self._run(self._grant, self._keys(session), args)

    async def move(
        self, session: str, entry_id: str, position: int, audit: dict[str, Any]
    ) -> Written | None:
        """Puts a queued entry at a 0-based position (clamped), or at the end when negative."""
        args = [*self._head(session, audit), entry_id, position]
        return await self._run(self._move, self._keys(session), args)

    async def set_open(self, session: str, is_open: bool, audit: dict[str, Any]) -> Written:
        """Opens or closes the list to requests."""
        args = [*self._head(session, audit), "1" if is_open else "0"]
        written = await self._run(self._open, self._keys(session), args)
        assert written is not None  # the script has no condition
        return written

    async def expire(
        self, session: str, entry_id: str, now: float, revoke: bool, audit: dict[str, Any]
    ) -> Written | None:
        """Says the speaker's time ran out (ending the turn when ``revoke``), once: only if
        ``entry_id`` still speaks, their time is up at ``now`` and nobody said so yet."""
        args = [*self._head(session, audit), entry_id, repr(now), "1" if revoke else "0"]
        return await self._run(self._expire, self._keys(session), args)

    async def flush(self, session: str, *, overdue_only: bool = False) -> bool:
        """Broadcasts the list if a change has not been shown yet; True when this call did.

        Args:
            session: the session.
            overdue_only: only when no coalesced broadcast is still scheduled (the catch-up of a
                broadcast whose node died before it was due).
        """
        args = [*self._head(session, {}), "1" if overdue_only else "0"]
        return await self._run(self._flush, self._keys(session), args) is not None

    async def read(self, session: str) -> Floor:
        """The session's list as it is now, read atomically."""
        f = self.keys(session)
        pipe = self.sessions.client.pipeline(transaction=True)
        pipe.hgetall(f.state)
        pipe.zrange(f.queue, 0, -1)
        pipe.hgetall(f.entries)
        state_raw, ids, entries_raw = await self.sessions.guard("read", pipe.execute())
        return floor_of(
            {_text(k): _text(v) for k, v in cast(dict[Any, Any], state_raw).items()},
            [_text(i) for i in ids],
            {_text(k): _text(v) for k, v in cast(dict[Any, Any], entries_raw).items()},
        )

    async def holder(self, session: str) -> str | None:
        """The person who has the floor now, or None."""
        sub = await self.sessions.guard(
            "read", self.sessions.client.hget(self.keys(session).state, "sub")
        )
        return _text(sub) if sub else None

    async def watch(self, sessions: list[str]) -> dict[str, Watch]:
        """Every listed session's timer and unshown change, in one round trip (sessions with
        neither a speaker nor an unshown change are left out)."""
        pipe = self.sessions.client.pipeline(transaction=False)
        for session in sessions:
            pipe.hmget(self.keys(session).state, ["speaker", "ends", "expired", "ver", "shown"])
        rows = await self.sessions.guard("read", pipe.execute())
        found: dict[str, Watch] = {}
        for session, (entry, ends, expired, ver, shown) in zip(sessions, rows, strict=True):
            unshown = int(ver or 0) > int(shown or 0)
            if (entry and ends) or unshown:
                found[session] = Watch(
                    _text(entry or b""), float(ends or 0), expired == b"1", unshown
                )
        return found

    async def queue_lengths(self, sessions: list[str]) -> dict[str, int]:
        """How many requests wait in each listed session's queue."""
        pipe = self.sessions.client.pipeline(transaction=False)
        for session in sessions:
            pipe.zcard(self.keys(session).queue)
        counts = await self.sessions.guard("read", pipe.execute())
        return {s: int(n) for s, n in zip(sessions, counts, strict=True)}

    async def audit(self, session: str) -> list[dict[str, Any]]:
        """The whole audit trail of the list, in order."""
        rows = await self.sessions.guard(
            "read", self.sessions.client.xrange(self.keys(session).audit)
        )
        return [json.loads(fields[b"e"]) for _, fields in cast(list[Any], rows)]


def read_lua() -> str:
    """Lua, the body of a function of ``(tag, sub)``, reading what :meth:`FloorStore.read` reads
    (for the join script, ``signaling.service.JoinRead``); :func:`floor_from_reply` reads its reply."""
    f = FloorKeys("")
    return (
        f"return {{redis.call('HGETALL', tag .. {json.dumps(f.state)}), "
        f"redis.call('ZRANGE', tag .. {json.dumps(f.queue)}, 0, -1), "
        f"redis.call('HGETALL', tag .. {json.dumps(f.entries)})}}"
    )


def floor_from_reply(raw: list[Any]) -> Floor:
    """The list from the reply of :func:`read_lua`."""
    state_flat, ids, entries_flat = raw
    return floor_of(hash_of(state_flat), [_text(i) for i in ids], hash_of(entries_flat))


def floor_of(state: dict[str, str], ids: list[str], entries: dict[str, str]) -> Floor:
    """The list from its state hash, queue ids and entries hash."""
    queue = tuple(_entry(entries, i) for i in ids)
    speaker: Turn | None = None
    if state.get("turn"):
        data = json.loads(state["turn"])
        entry = _entry(entries, data["entry"])
        speaker = Turn(entry, float(data["granted"]), int(data["seconds"]))
    return Floor(
        open=state.get("open") != "0",
        queue=queue,
        speaker=speaker,
        expired=state.get("expired") == "1",
        version=int(state.get("ver", "0")),
    )


def _entry(entries: dict[str, str], entry_id: str) -> Entry:
    view = msgspec.json.decode(entries[entry_id])
    return Entry(
        id=view["entry"],
        sub=entries[entry_id + "|sub"],
        name=view["name"],
        group=view["group"],
        mode=view["mode"],
        requested=float(view["requested"]),
        by_moderator=entries.get(entry_id + "|by") == "1",
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
