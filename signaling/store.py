"""The session store edge: event history with (epoch, seq), lifecycle state, snapshots — on Redis.

Every write that clients see is one Lua script on the session's hash-tagged keys: it changes state,
numbers the event, appends it to the history stream and publishes it, atomically. The frame is assembled
in the script so that the bytes stored, published and written to sockets are the same.

Session channels are sharded pub/sub channels (SPUBLISH/SSUBSCRIBE, Redis 7+ and Valkey): a channel
carries its session's hash tag, so on a Redis Cluster it lives on the shard that owns the session's
slot and a message never crosses the cluster bus; on one server the same commands behave like
PUBLISH/SUBSCRIBE, so there is one code path.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
import redis.exceptions

from signaling.breaker import Breaker
from signaling.errors import StoreUnavailable
from signaling.keys import SessionKeys
from signaling.lifecycle import Lifecycle, State, Transition
from signaling.messages import encode, event_body

T = TypeVar("T")

AUDIENCE_ALL = "a"
AUDIENCE_STAFF = "s"

# The seq of a transient message (presence, relayed signalling): published, never stored.
TRANSIENT_SEQ = 0


def audience_of(*parts: str) -> str:
    """An audience naming several groups (``s|u:<sub>``): staff and one person, say."""
    return "|".join(dict.fromkeys(parts))


def person(sub: str) -> str:
    """The audience of one person's connections."""
    return "u:" + sub


# Shared by every script that emits an event. Returns {epoch, seq}.
APPEND_LUA = r"""
local function podium_append(meta, hist, chan, session_json, body, audience, maxlen, new_epoch)
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = new_epoch
    redis.call('HSET', meta, 'epoch', epoch)
    redis.call('DEL', hist)
  end
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  local t = redis.call('TIME')
  local ms = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
  local frame = '{"type":"event","session":' .. session_json .. ',"epoch":"' .. epoch
    .. '","seq":' .. seq .. ',"ts":' .. ms .. ',' .. body
  redis.call('XADD', hist, 'MAXLEN', maxlen, seq .. '-0', 'a', audience, 'f', frame)
  redis.call('SPUBLISH', chan, seq .. ' ' .. audience .. ' ' .. ms .. '\n' .. frame)
  return {epoch, seq}
end
"""

_APPEND = (
    APPEND_LUA
    + r"""
local r = podium_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return r
"""
)

_SET_STATE = (
    APPEND_LUA
    + r"""
local cur = redis.call('HGET', KEYS[1], 'state') or 'scheduled'
if cur ~= ARGV[6] then return {0, cur} end
redis.call('HSET', KEYS[1], 'state', ARGV[7], 'held', ARGV[8])
local r = podium_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return {1, r[1], r[2]}
"""
)

# Shared by the snapshot script and the join script (presence join and snapshot in one round trip).
# Returns {epoch, seq, state, held, counts (flat hash), unique}; starts the epoch on first read.
SNAPSHOT_LUA = r"""
local function podium_snapshot(meta, hist, counts, unique, new_epoch)
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = new_epoch
    redis.call('HSET', meta, 'epoch', epoch)
    redis.call('DEL', hist)
  end
  local m = redis.call('HMGET', meta, 'seq', 'state', 'held')
  return {epoch, m[1] or '0', m[2] or 'scheduled', m[3] or '0',
          redis.call('HGETALL', counts), redis.call('SCARD', unique)}
end
"""

_SNAPSHOT = (
    SNAPSHOT_LUA
    + r"""
return podium_snapshot(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1])
"""
)

ErrorHook = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A session's state at one stream position."""

    epoch: str
    seq: int
    lifecycle: Lifecycle
    counts: dict[str, int]
    unique: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One stored event frame."""

    seq: int
    audience: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class Missed:
    """What a resuming client missed, or why it must resync."""

    epoch: str
    seq: int
    entries: tuple[HistoryEntry, ...]
    resync: str | None = None


def new_epoch() -> str:
    """A fresh stream epoch: a new one means the history before it is gone."""
    return secrets.token_hex(8)


class SessionStore:
    """Reads and writes one deployment's session state; every call is atomic on one session's keys."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        history_size: int,
        on_error: ErrorHook | None = None,
        breaker: Breaker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.history_size = history_size
        self.breaker = breaker or Breaker()
        self._clock = clock
        self._on_error = on_error or (lambda operation: None)
        self._append = client.register_script(_APPEND)
        self._set_state = client.register_script(_SET_STATE)
        self._snapshot = client.register_script(_SNAPSHOT)

    def keys(self, session: str) -> SessionKeys:
        """The keys of one session."""
        return SessionKeys(self.prefix, session)

    async def guard(self, operation: str, call: Awaitable[T]) -> T:
        """Awaits a store call, turning connection failures into StoreUnavailable.

        Args:
            operation: a name from a fixed set, used as the store-errors metric label.
            call: the awaitable store call.

        While the store is known to be down (``self.breaker``), the call is refused at once
        without being sent, so an outage costs callers no socket timeout and holds no connection.

        Raises:
            StoreUnavailable: the store did not answer, or is known to be down. Refused at once,
                nothing was sent; after a timeout or a connection lost mid-call, the command may
                have run (the reply was lost), so a retry must be safe to apply twice.
        """
        if not self.breaker.allow():
            if inspect.iscoroutine(call):
                call.close()  # never sent
            self._on_error(operation)
            raise StoreUnavailable("the store is unavailable, try again", retry_after=1.0)
        try:
            result = await call
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            # A pool with every connection busy for its whole timeout is this node's overload, not
            # the store's absence: refused (retryable) without marking the store down for all.
            if not _pool_exhausted(exc):
                self.breaker.failed(self._clock())
            self._on_error(operation)
            raise StoreUnavailable("the store is unavailable, try again", retry_after=1.0) from exc
        except redis.exceptions.RedisError:
            self.breaker.succeeded()  # the store answered, if only with an error
            raise
        self.breaker.succeeded()
        return result

    async def ping(self, timeout: float = 2.0) -> bool:
        """True when the store answers within ``timeout`` seconds (readiness: never hangs).

        While the store is known to be down, this is the breaker's probe (at most one a period;
        the others answer False at once): its success brings the node back. A ping that is only
        slow while the breaker is closed makes the node not ready without refusing writes: slow
        is not down (a command's own timeout says that).
        """
        if not self.breaker.trial(self._clock()):
            return False
        try:
            answered = bool(await asyncio.wait_for(self.client.ping(), timeout))
        except TimeoutError:
            if self.breaker.down:
                self.breaker.failed(self._clock())  # the probe found no store
            self._on_error("ping")
            return False
        except (redis.exceptions.RedisError, OSError):
            self.breaker.failed(self._clock())
            self._on_error("ping")
            return False
        except BaseException:
            self.breaker.abandoned()
            raise
        self.breaker.succeeded()
        return answered

    async def append(
        self, session: str, name: str, data: dict[str, Any], *, audience: str = AUDIENCE_ALL
    ) -> tuple[str, int]:
        """Appends an event to a session's stream and publishes it.

        Returns:
            The event's (epoch, seq).
        """
        k = self.keys(session)
        result = await self.guard(
            "append",
            self._append(
                keys=[k.meta, k.history, k.channel],
                args=self._append_args(session, name, data, audience),
            ),
        )
        return _text(result[0]), int(result[1])

    async def publish(
        self, session: str, frame: bytes, *, audience: str = AUDIENCE_ALL, operation: str
    ) -> None:
        """Publishes a transient message to every node's sinks of a session (not kept in history).

        Args:
            session: the session id.
            frame: the message, as written to sockets.
            audience: who receives it (``a``, ``s``, ``u:<sub>`` or a union).
            operation: the store-errors metric label of the caller.

        Raises:
            StoreUnavailable: the store did not answer; the message may not have been sent.
        """
        payload = f"{TRANSIENT_SEQ} {audience} 0\n".encode() + frame
        channel = self.keys(session).channel
        await self.guard(operation, self.client.spublish(channel, payload))

    async def lifecycle(self, session: str) -> Lifecycle:
        """A session's current lifecycle state."""
        state, held = await self.guard(
            "read", self.client.hmget(self.keys(session).meta, ["state", "held"])
        )
        return Lifecycle(State(_text(state or b"scheduled")), held == b"1")

    async def lifecycles(self, sessions: list[str]) -> dict[str, Lifecycle]:
        """Every listed session's lifecycle, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for session in sessions:
            pipe.hmget(self.keys(session).meta, ["state", "held"])
        rows = await self.guard("read", pipe.execute())
        return {
            s: Lifecycle(State(_text(state or b"scheduled")), held == b"1")
            for s, (state, held) in zip(sessions, rows, strict=True)
        }

    async def transition(
        self, session: str, transition: Transition, at: str
    ) -> tuple[str, int] | None:
        """Applies a lifecycle transition if the session is still in ``transition.previous``.

        Returns:
            The event's (epoch, seq), or None when another writer changed the state first.
        """
        k = self.keys(session)
        data = {
            "state": transition.state.value,
            "previous": transition.previous.value,
            "by": transition.by,
            "held": transition.held,
            "at": at,
        }
        args = [
            *self._append_args(session, "session.state", data, AUDIENCE_ALL),
            transition.previous.value,
            transition.state.value,
            "1" if transition.held else "0",
        ]
        result = await self.guard(
            "transition", self._set_state(keys=[k.meta, k.history, k.channel], args=args)
        )
        if int(result[0]) != 1:
            return None
        return _text(result[1]), int(result[2])

    async def snapshot(self, session: str) -> Snapshot:
        """The session's lifecycle, presence counts and stream position, read atomically."""
        k = self.keys(session)
        raw = await self.guard(
            "snapshot",
            self._snapshot(keys=[k.meta, k.history, k.counts, k.unique], args=[new_epoch()]),
        )
        return snapshot_of(raw)

    async def position(self, session: str) -> tuple[str | None, int]:
        """The session's current (epoch, seq); epoch is None before the first snapshot or event."""
        epoch, seq = await self.guard(
            "read", self.client.hmget(self.keys(session).meta, ["epoch", "seq"])
        )
        return (_text(epoch) if epoch else None), int(seq or 0)

    async def missed(self, session: str, epoch: str, after: int, limit: int) -> Missed:
        """What a client at ``(epoch, after)`` missed, read atomically with the current position.

        Args:
            session: the session id.
            epoch: the client's epoch.
            after: the last seq the client has.
            limit: the most entries to return; a longer gap is a resync.
        """
        k = self.keys(session)
        pipe = self.client.pipeline(transaction=True)
        pipe.hmget(k.meta, ["epoch", "seq"])
        pipe.xrange(k.history, min=f"{after + 1}-0", max="+", count=limit + 1)
        (cur_epoch, cur_seq), rows = await self.guard("history", pipe.execute())
        current_epoch = _text(cur_epoch) if cur_epoch else ""
        current = int(cur_seq or 0)
        if current_epoch != epoch:
            return Missed(current_epoch, current, (), resync="epoch_changed")
        if after > current:
            return Missed(current_epoch, current, (), resync="ahead_of_stream")
        entries = tuple(_entry(row) for row in rows)
        if after < current and (not entries or entries[0].seq != after + 1):
            return Missed(current_epoch, current, (), resync="history_gone")
        if len(entries) > limit:
            return Missed(current_epoch, current, (), resync="history_gone")
        return Missed(current_epoch, current, entries)

    async def range(self, session: str, after: int, upto: int) -> list[HistoryEntry]:
        """The stored events with ``after < seq <= upto``, in order (the fan-out's gap filler)."""
        rows = await self.guard(
            "history",
            self.client.xrange(self.keys(session).history, min=f"{after + 1}-0", max=f"{upto}-0"),
        )
        return [_entry(row) for row in cast(list[tuple[bytes, dict[bytes, bytes]]], rows)]

    def _append_args(
        self, session: str, name: str, data: dict[str, Any], audience: str
    ) -> list[str | bytes | int]:
        return [
            encode(session),
            event_body(name, data),
            audience,
            self.history_size,
            new_epoch(),
        ]


def hash_of(flat: list[Any]) -> dict[str, str]:
    """A hash from the flat ``[field, value, ...]`` list that ``HGETALL`` returns inside a script."""
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


def snapshot_of(raw: list[Any]) -> Snapshot:
    """A :class:`Snapshot` from the first six items ``podium_snapshot`` returns."""
    epoch, seq, state, held, flat, unique = raw[:6]
    counts = {kind: int(n) for kind, n in hash_of(flat).items()}
    return Snapshot(
        epoch=_text(epoch),
        seq=int(seq),
        lifecycle=Lifecycle(State(_text(state)), _text(held) == "1"),
        counts=counts,
        unique=int(unique),
    )


def _entry(row: tuple[bytes, dict[bytes, bytes]]) -> HistoryEntry:
    ident, fields = row
    return HistoryEntry(
        seq=int(ident.split(b"-", 1)[0]),
        audience=_text(fields[b"a"]),
        frame=fields[b"f"],
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pool_exhausted(exc: BaseException) -> bool:
    """True for the connection pool's own "every connection busy" timeout (redis-py's message)."""
    return (
        isinstance(exc, redis.exceptions.ConnectionError) and str(exc) == "No connection available."
    )
