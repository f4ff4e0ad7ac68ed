"""Presence: who is online in a session, counted once per person however many tabs they open.

The store keeps, per session, each person's open connections across nodes and per node (so the
connections of a node that died can be subtracted by any survivor once its lease lapses), the number
of people online per ``mode|role``, and the set of everyone who ever joined; for the participation
report, who each person was when they first joined and the peak of people online at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from signaling.keys import SessionKeys
from signaling.store import SNAPSHOT_LUA, Snapshot, new_epoch, snapshot_of

_LEAVE_LUA = r"""
local function podium_leave(tabs, kinds, counts, node_hash, sub, n)
  local left = redis.call('HINCRBY', node_hash, sub, -n)
  if left <= 0 then redis.call('HDEL', node_hash, sub) end
  local total = redis.call('HINCRBY', tabs, sub, -n)
  if total <= 0 then
    redis.call('HDEL', tabs, sub)
    local kind = redis.call('HGET', kinds, sub)
    if kind then
      redis.call('HDEL', kinds, sub)
      if redis.call('HINCRBY', counts, kind, -1) <= 0 then redis.call('HDEL', counts, kind) end
    end
    return 1
  end
  return 0
end
"""

# KEYS: tabs, kinds, counts, node_hash, nodes, unique, people, peak
# ARGV: sub, kind, node, lease expiry (ms), person (JSON), now (ms)
# The participation report's figures are kept here, once cluster-wide: who each person was when they
# first joined (first join wins) and the most people online at once, with when it was first reached.
_JOIN_LUA = r"""
local function podium_join()
  local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
  redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[3])
  redis.call('SADD', KEYS[6], ARGV[1])
  if n == 1 then
    redis.call('HSETNX', KEYS[7], ARGV[1], ARGV[5])
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
    redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
    local online = 0
    for _, v in ipairs(redis.call('HVALS', KEYS[3])) do online = online + tonumber(v) end
    if online > tonumber(redis.call('HGET', KEYS[8], 'online') or '0') then
      redis.call('HSET', KEYS[8], 'online', online, 'at', ARGV[6])
    end
    return 1
  end
  return 0
end
"""

_JOIN = _JOIN_LUA + "return podium_join()\n"


def join_snapshot_lua(reads: tuple[str, ...]) -> str:
    """The join of a fresh (not resuming) connection and its welcome in one round trip.

    Read after the join, so the counts include this person. KEYS: as _JOIN, then meta, hist;
    ARGV: as _JOIN, then a new epoch and the session's hash tag. Returns the snapshot's six items,
    1 when the person was not online before, then each of ``reads`` (Lua function bodies of
    ``(tag, sub)``, see ``signaling.service.JoinRead``) in order.
    """
    parts = "".join(
        f"s[{8 + i}] = (function(tag, sub)\n{lua}\nend)(ARGV[8], ARGV[1])\n"
        for i, lua in enumerate(reads)
    )
    return (
        _JOIN_LUA
        + SNAPSHOT_LUA
        + "local joined = podium_join()\n"
        + "local s = podium_snapshot(KEYS[9], KEYS[10], KEYS[3], KEYS[6], ARGV[7])\n"
        + "s[7] = joined\n"
        + parts
        + "return s\n"
    )


# KEYS: tabs, kinds, counts, node_hash; ARGV: sub
_LEAVE = (
    _LEAVE_LUA
    + r"""
if (tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')) <= 0 then return 0 end
return podium_leave(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], 1)
"""
)

# KEYS: tabs, kinds, counts, node_hash, nodes; ARGV: node. Subtracts everything a node held.
_REAP = (
    _LEAVE_LUA
    + r"""
local flat = redis.call('HGETALL', KEYS[4])
local changed = 0
for i = 1, #flat, 2 do
  changed = changed + podium_leave(KEYS[1], KEYS[2], KEYS[3], KEYS[4], flat[i], tonumber(flat[i + 1]))
end
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
return changed
"""
)


@dataclass(frozen=True, slots=True)
class Counts:
    """Online people in one session, split by mode and by role."""

    online: int
    venue: int
    remote: int
    roles: dict[str, int]
    unique: int
    kinds: dict[str, int]


def summarise(counts: dict[str, int], unique: int) -> Counts:
    """Turns the store's ``mode|role → people`` hash into the figures clients and metrics show."""
    venue = remote = 0
    roles: dict[str, int] = {}
    for kind, n in counts.items():
        if n <= 0:
            continue
        mode, _, role = kind.partition("|")
        if mode == "venue":
            venue += n
        else:
            remote += n
        roles[role] = roles.get(role, 0) + n
    return Counts(
        online=venue + remote, venue=venue, remote=remote, roles=roles, unique=unique, kinds=counts
    )


def presence_view(counts: Counts) -> dict[str, Any]:
    """Presence figures as clients and the HTTP API show them."""
    return {
        "online": counts.online,
        "venue": counts.venue,
        "remote": counts.remote,
        "roles": counts.roles,
        "unique": counts.unique,
    }


class PresenceStore:
    """Presence writes for one node."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, node: str) -> None:
        self.client = client
        self.prefix = prefix
        self.node = node
        self._join = client.register_script(_JOIN)
        self._join_snapshots: dict[tuple[str, ...], AsyncScript] = {}
        self._leave = client.register_script(_LEAVE)
        self._reap = client.register_script(_REAP)

    def keys(self, session: str) -> SessionKeys:
        """The keys of one session."""
        return SessionKeys(self.prefix, session)

    async def join(
        self,
        session: str,
        sub: str,
        kind: str,
        lease_until_ms: int,
        *,
        now_ms: int,
        group: str = "",
        country: str = "",
    ) -> bool:
        """Counts one more connection of ``sub``; True when the person was not online before.

        Args:
            session: the session.
            sub: the person.
            kind: ``mode|role`` of this connection.
            lease_until_ms: this node's presence lease expiry.
            now_ms: the time of the join (when a new peak of people online was reached).
            group: the person's stakeholder group, for the participation report.
            country: the person's country, for the participation report.
        """
        keys, args = self._join_call(session, sub, kind, lease_until_ms, now_ms, group, country)
        return bool(await self._join(keys=keys, args=args))

    async def join_snapshot(
        self,
        session: str,
        sub: str,
        kind: str,
        lease_until_ms: int,
        *,
        now_ms: int,
        group: str = "",
        country: str = "",
        reads: tuple[str, ...] = (),
    ) -> tuple[bool, Snapshot, list[Any]]:
        """:meth:`join`, then the session's snapshot and ``reads`` right after it, in one round trip.

        The welcome of a fresh join needs them all; one script instead of one call each saves the
        node a store round trip per read per join (most of a join's CPU is store client work).

        Args:
            reads: Lua function bodies of ``(tag, sub)``, see ``signaling.service.JoinRead``.

        Returns:
            Whether the person was not online before, the snapshot (its counts include them), and
            each read's reply in order.
        """
        keys, args = self._join_call(session, sub, kind, lease_until_ms, now_ms, group, country)
        k = self.keys(session)
        keys += [k.meta, k.history]
        args += [new_epoch(), k.tag]
        script = self._join_snapshots.get(reads)
        if script is None:
            script = self._join_snapshots[reads] = self.client.register_script(
                join_snapshot_lua(reads)
            )
        raw = await script(keys=keys, args=args)
        return bool(raw[6]), snapshot_of(raw), list(raw[7:])

    def _join_call(
        self,
        session: str,
        sub: str,
        kind: str,
        lease_until_ms: int,
        now_ms: int,
        group: str,
        country: str,
    ) -> tuple[list[str], list[str | int]]:
        k = self.keys(session)
        keys = [k.tabs, k.kinds, k.counts, k.node_tabs(self.node), k.nodes, k.unique,
                k.people, k.peak]  # fmt: skip
        mode, _, role = kind.partition("|")
        person = json.dumps(
            {"mode": mode, "role": role, "group": group, "country": country},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return keys, [sub, kind, self.node, lease_until_ms, person, now_ms]

    async def leave(self, session: str, sub: str) -> bool:
        """Counts one connection of ``sub`` fewer; True when the person is no longer online."""
        k = self.keys(session)
        keys = [k.tabs, k.kinds, k.counts, k.node_tabs(self.node)]
        return bool(await self._leave(keys=keys, args=[sub]))

    async def renew(self, sessions: list[str], lease_until_ms: int) -> None:
        """Extends this node's presence lease in each session where it holds connections."""
        pipe = self.client.pipeline(transaction=False)
        for session in sessions:
            pipe.zadd(self.keys(session).nodes, {self.node: lease_until_ms})
        await pipe.execute()

    async def reap(self, session: str, now_ms: int, *, node: str | None = None) -> int:
        """Subtracts the connections of nodes whose lease lapsed (or of ``node``, whatever its lease).

        Returns:
            How many people went offline as a result.
        """
        k = self.keys(session)
        if node is None:
            lapsed = [
                n.decode() if isinstance(n, bytes) else str(n)
                for n in await self.client.zrangebyscore(k.nodes, "-inf", now_ms)
            ]
        else:
            lapsed = [node]
        changed = 0
        for dead in lapsed:
            keys = [k.tabs, k.kinds, k.counts, k.node_tabs(dead), k.nodes]
            changed += int(await self._reap(keys=keys, args=[dead]))
        return changed

    async def claim_broadcast(self, session: str, window_ms: int) -> bool:
        """True for the one node, cluster-wide, that broadcasts the next presence update."""
        return bool(
            await self.client.set(self.keys(session).presence_due, self.node, nx=True, px=window_ms)
        )
