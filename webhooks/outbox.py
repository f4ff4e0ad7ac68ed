"""The webhooks' store edge: the dispatch lease, the outbox of derived webhooks and each target's cursor.

Keys of session ``S`` (all under its hash tag, so every script touches one slot):

| key | type | holds |
|---|---|---|
| ``{P:S}:hook:lease`` | string (PX) | the node dispatching the session's webhooks |
| ``{P:S}:hook:state`` | hash | ``pos`` (``<epoch>:<seq>``, the history derived so far), ``n`` (outbox entries ever written), ``speaker``, ``q:<id>``, ``c:<channel>`` (what earlier events said) |
| ``{P:S}:hook:out`` | stream | webhooks to send, id ``<seq>-0``: ``n``, ``e`` epoch, ``t`` type, ``ts``, ``p`` the body |
| ``{P:S}:hook:cur`` | hash | target key → ``<epoch>:<seq>:<n>``, the last event delivered (or given up) |

Every write is fenced by the lease (the script checks the node still holds it) and the outbox write
is a compare-and-set on ``pos``, so a node that lost the lease never writes a duplicate entry or moves
a cursor back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from moderation.floor_store import FloorKeys
from moderation.keys import QaKeys
from signaling.store import SessionStore
from streaming.store import streams_key
from webhooks.delivery import Cursor
from webhooks.errors import LeaseLost

_ACQUIRE = r"""
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RELEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: lease state meta out qa_ids floor streams; ARGV: node, the question keys' prefix.
# The first time a session is dispatched, start at its current position, knowing what the events
# before it said (the speaker, each question's and channel's state): the next change is told as one.
_START = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('HEXISTS', KEYS[2], 'pos') == 1 then return 0 end
local m = redis.call('HMGET', KEYS[3], 'epoch', 'seq')
redis.call('DEL', KEYS[4])
if not m[1] then
  redis.call('HSET', KEYS[2], 'pos', ':0', 'n', 0)
  return 1
end
redis.call('HSET', KEYS[2], 'pos', m[1] .. ':' .. (m[2] or '0'), 'n', 0)
local turn = redis.call('HGET', KEYS[6], 'turn')
if turn and turn ~= '' then redis.call('HSET', KEYS[2], 'speaker', turn) end
for _, id in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
  local s = redis.call('HGET', ARGV[2] .. id, 'state')
  if s then redis.call('HSET', KEYS[2], 'q:' .. id, s) end
end
local records = redis.call('HGETALL', KEYS[7])
for i = 1, #records, 2 do
  local ok, record = pcall(cjson.decode, records[i + 1])
  if ok and type(record) == 'table' and type(record.state) == 'string' then
    redis.call('HSET', KEYS[2], 'c:' .. records[i], record.state)
  end
end
return 1
"""

# KEYS: lease state out; ARGV: node, expected pos, new pos, outbox maxlen, reset (1|0), count, then
# per entry seq type ts body, then the number of state fields and their pairs.
_APPEND = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if (redis.call('HGET', KEYS[2], 'pos') or '') ~= ARGV[2] then return 0 end
if ARGV[5] == '1' then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[2], 'n', 0)
end
local epoch = string.match(ARGV[3], '^([^:]*):')
local i = 7
for _ = 1, tonumber(ARGV[6]) do
  local n = redis.call('HINCRBY', KEYS[2], 'n', 1)
  redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[4], ARGV[i] .. '-0',
             'n', n, 'e', epoch, 't', ARGV[i + 1], 'ts', ARGV[i + 2], 'p', ARGV[i + 3])
  i = i + 4
end
local fields = tonumber(ARGV[i])
i = i + 1
for _ = 1, fields do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('HSET', KEYS[2], 'pos', ARGV[3])
return 1
"""

# KEYS: lease state cur; ARGV: node, target key. A new target starts where the outbox ends now.
_CURSOR = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local c = redis.call('HGET', KEYS[3], ARGV[2])
if c then return c end
local s = redis.call('HMGET', KEYS[2], 'pos', 'n')
c = (s[1] or ':0') .. ':' .. (s[2] or '0')
redis.call('HSET', KEYS[3], ARGV[2], c)
return c
"""

# KEYS: lease cur; ARGV: node, target key, cursor.
_ADVANCE = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


@dataclass(frozen=True, slots=True)
class HookKeys:
    """The webhook keys of one session."""

    tag: str

    @property
    def lease(self) -> str:
        """String with a TTL: the node dispatching the session."""
        return self.tag + ":hook:lease"

    @property
    def state(self) -> str:
        """Hash: the derived position, the outbox count and what earlier events said."""
        return self.tag + ":hook:state"

    @property
    def out(self) -> str:
        """Stream: the webhooks to send, by seq."""
        return self.tag + ":hook:out"

    @property
    def cursors(self) -> str:
        """Hash: target key → its cursor."""
        return self.tag + ":hook:cur"


@dataclass(frozen=True, slots=True)
class Position:
    """Where derivation stands (``pos``) and where the session's history ends."""

    derived_epoch: str
    derived_seq: int
    raw: str
    epoch: str | None
    seq: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One outbox entry: a webhook body ready to sign and send."""

    seq: int
    n: int
    epoch: str
    type: str
    ts: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Row:
    """One history entry, as read."""

    seq: int
    audience: str
    frame: bytes


class HookStore:
    """Reads and fenced writes of the webhook keys; store failures raise ``StoreUnavailable``."""

    def __init__(self, sessions: SessionStore) -> None:
        self.sessions = sessions
        client = sessions.client
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._start = client.register_script(_START)
        self._append = client.register_script(_APPEND)
        self._cursor = client.register_script(_CURSOR)
        self._advance = client.register_script(_ADVANCE)

    def keys(self, session: str) -> HookKeys:
        """The webhook keys of a session."""
        return HookKeys(self.sessions.keys(session).tag)

    async def acquire(self, session: str, node: str, lease_ms: int) -> bool:
        """Takes or renews the session's dispatch lease; False when another node holds it."""
        k = self.keys(session)
        result = await self.sessions.guard(
            "webhook", self._acquire(keys=[k.lease], args=[node, lease_ms])
        )
        return int(result) == 1

    async def release(self, session: str, node: str) -> None:
        """Gives the lease up (only if this node holds it), so another node continues at once."""
        k = self.keys(session)
        await self.sessions.guard("webhook", self._release(keys=[k.lease], args=[node]))

    async def start(self, session: str, node: str) -> None:
        """Sets the derivation's starting point the first time the session is dispatched.

        Raises:
            LeaseLost: the node does not hold the lease.
        """
        k = self.keys(session)
        s = self.sessions.keys(session)
        floor = FloorKeys(k.tag).state
        keys = [
            k.lease,
            k.state,
            s.meta,
            k.out,
            QaKeys(s).ids,
            floor,
            streams_key(self.sessions, session),
        ]
        result = await self.sessions.guard(
            "webhook", self._start(keys=keys, args=[node, QaKeys(s).question("")])
        )
        if int(result) == -1:
            raise LeaseLost(session)

    async def position(self, session: str) -> Position:
        """Derived position and the history's end, in one round trip."""
        k = self.keys(session)
        pipe = self.sessions.client.pipeline(transaction=True)
        pipe.hget(k.state, "pos")
        pipe.hmget(self.sessions.keys(session).meta, ["epoch", "seq"])
        pos, (epoch, seq) = await self.sessions.guard("webhook", pipe.execute())
        raw = _text(pos) if pos is not None else ""
        derived = Cursor.decode(raw + ":0")
        return Position(
            derived.epoch, derived.seq, raw, _text(epoch) if epoch else None, int(seq or 0)
        )

    async def history(self, session: str, after: int, count: int) -> tuple[str | None, list[Row]]:
        """Up to ``count`` history entries after ``after``, with the epoch they belong to."""
        s = self.sessions.keys(session)
        pipe = self.sessions.client.pipeline(transaction=True)
        pipe.hget(s.meta, "epoch")
        pipe.xrange(s.history, min=f"{after + 1}-0", max="+", count=count)
        epoch, rows = await self.sessions.guard("webhook", pipe.execute())
        read = cast(list[tuple[bytes, dict[bytes, bytes]]], rows)
        return (_text(epoch) if epoch else None), [
            Row(int(ident.split(b"-", 1)[0]), _text(f[b"a"]), f[b"f"]) for ident, f in read
        ]

    async def tracked(self, session: str, fields: Sequence[str]) -> dict[str, str]:
        """The derivation state's fields named (absent ones left out)."""
        if not fields:
            return {}
        values = await self.sessions.guard(
            "webhook", self.sessions.client.hmget(self.keys(session).state, list(fields))
        )
        return {f: _text(v) for f, v in zip(fields, values, strict=True) if v is not None}

    async def append(
        self,
        session: str,
        node: str,
        *,
        expected: str,
        position: str,
        reset: bool,
        entries: Sequence[tuple[int, str, int, bytes]],
        changed: dict[str, str],
    ) -> bool:
        """Writes derived webhooks and the new position, if derivation is still at ``expected``.

        Args:
            session: the session id.
            node: this node (the lease holder).
            expected: the ``pos`` read before deriving.
            position: the new ``pos`` (``<epoch>:<last seq read>``).
            reset: a new epoch: the old outbox and state go first.
            entries: (seq, type, ts, body) per webhook, in seq order.
            changed: the derivation state fields to write.

        Returns:
            False when another write came first (read again).

        Raises:
            LeaseLost: the node does not hold the lease.
        """
        k = self.keys(session)
        args: list[str | bytes | int] = [
            node, expected, position, self.sessions.history_size, "1" if reset else "0", len(entries)
        ]  # fmt: skip
        for seq, kind, ts, body in entries:
            args += [seq, kind, ts, body]
        args.append(len(changed))
        for name, value in changed.items():
            args += [name, value]
        result = int(
            await self.sessions.guard(
                "webhook", self._append(keys=[k.lease, k.state, k.out], args=args)
            )
        )
        if result == -1:
            raise LeaseLost(session)
        return result == 1

    async def cursor(self, session: str, node: str, target: str) -> Cursor:
        """A target's cursor; a new target's starts where the outbox ends now.

        Raises:
            LeaseLost: the node does not hold the lease.
        """
        k = self.keys(session)
        raw = await self.sessions.guard(
            "webhook", self._cursor(keys=[k.lease, k.state, k.cursors], args=[node, target])
        )
        if raw is None:
            raise LeaseLost(session)
        return Cursor.decode(_text(raw))

    async def advance(self, session: str, node: str, target: str, cursor: Cursor) -> None:
        """Moves a target's cursor past a delivered (or given-up) event.

        Raises:
            LeaseLost: the node does not hold the lease.
        """
        k = self.keys(session)
        result = await self.sessions.guard(
            "webhook",
            self._advance(keys=[k.lease, k.cursors], args=[node, target, cursor.encode()]),
        )
        if int(result) != 1:
            raise LeaseLost(session)

    async def outbox(self, session: str, after: int, count: int) -> tuple[str, list[Entry]]:
        """The derived epoch and up to ``count`` outbox entries after seq ``after``."""
        k = self.keys(session)
        pipe = self.sessions.client.pipeline(transaction=True)
        pipe.hget(k.state, "pos")
        pipe.xrange(k.out, min=f"{after + 1}-0", max="+", count=count)
        pos, rows = await self.sessions.guard("webhook", pipe.execute())
        epoch = Cursor.decode(_text(pos) + ":0").epoch if pos is not None else ""
        read = cast(list[tuple[bytes, dict[bytes, bytes]]], rows)
        return epoch, [
            Entry(
                seq=int(ident.split(b"-", 1)[0]),
                n=int(f[b"n"]),
                epoch=_text(f[b"e"]),
                type=_text(f[b"t"]),
                ts=int(f[b"ts"]),
                body=f[b"p"],
            )
            for ident, f in read
        ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
