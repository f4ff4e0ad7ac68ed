"""The node's signaling service: sessions' lifecycle, presence bookkeeping and the periodic loops.

It ties the pure cores (lifecycle, presence summaries) to the store and the fan-out; the connection
handler and the HTTP routes call it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from signaling.errors import InvalidTransition, SignalingError, UnknownSession
from signaling.fanout import Hub
from signaling.identity import Identity, TokenKeys
from signaling.lifecycle import (
    Lifecycle,
    State,
    Timing,
    Transition,
    operator_transition,
    schedule_transition,
)
from signaling.messages import Command, Presence, encode
from signaling.metrics import MODES, ROLES, SignalingMetrics
from signaling.presence import Counts, PresenceStore, presence_view, summarise
from signaling.programme import Programme, Session
from signaling.store import SessionStore, Snapshot

if TYPE_CHECKING:
    from signaling.connection import Connection

log = logging.getLogger("podium.signaling")

Handler = Callable[["Connection", Any], Awaitable[dict[str, Any]]]
# A part of the welcome snapshot another package adds (the Q&A queue, say), read for one connection.
SnapshotPart = Callable[["Connection"], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class JoinRead:
    """A welcome part read inside the join's own store script: no round trip of its own.

    Attributes:
        lua: the body of a Lua function of ``(tag, sub)`` (the session's key hash tag, the joining
            person) that reads the part with ``redis.call`` on keys under ``tag`` only (one slot,
            so the script works on a Redis Cluster) and returns a non-nil value.
        build: turns that reply into the part's value for the connection.
        read: reads the part on its own, for a welcome without the join script (a resync).
    """

    lua: str
    build: Callable[[Connection, Any], Any]
    read: SnapshotPart


@dataclass(frozen=True, slots=True)
class JoinSnapshot:
    """What a fresh join read in its one round trip: the snapshot and the raw join-read parts."""

    snapshot: Snapshot
    parts: dict[str, Any]


# Called once when an authenticated connection closes (the media relay ends its media sessions).
ClosedHook = Callable[["Connection"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits and loop periods (from settings)."""

    auth_timeout: float = 5.0
    max_frame_bytes: int = 64 * 1024
    send_buffer_bytes: int = 256 * 1024
    heartbeat: float = 20.0
    rate: float = 10.0
    burst: float = 20.0
    flood_strikes: int = 30  # refusals past the rate before a 4506 close; forgiven at `rate`/s
    bad_frame_limit: int = 10
    resume_limit: int = 5000
    presence_window_ms: int = 1000
    lease_ms: int = 15_000
    tick: float = 1.0
    maintain_every: float = 5.0


@dataclass
class SignalingService:
    """One node's signaling: what connections and routes share."""

    programme: Programme
    store: SessionStore
    presence: PresenceStore
    hub: Hub
    metrics: SignalingMetrics
    token_keys: TokenKeys
    limits: Limits = field(default_factory=Limits)
    timing: Timing = field(default_factory=Timing)
    clock: Callable[[], float] = time.time
    handlers: dict[type[Command], Handler] = field(default_factory=dict)
    # Welcome parts by name, in the welcome's order: read by their own call, or (a JoinRead) by
    # the join script.
    snapshot_parts: dict[str, SnapshotPart | JoinRead] = field(default_factory=dict)
    closed_hooks: list[ClosedHook] = field(default_factory=list)
    connections: set[Connection] = field(default_factory=set)
    draining: bool = False
    _stopping: bool = False
    _presence_quiet: dict[str, float] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _loops: list[asyncio.Task[None]] = field(default_factory=list)

    def session(self, session_id: str) -> Session:
        """The programme session with that id.

        Raises:
            UnknownSession: the programme has no such session.
        """
        session = self.programme.session(session_id)
        if session is None:
            raise UnknownSession(f"no session {session_id!r} in the programme")
        return session

    def now(self) -> datetime:
        """The injected clock as an aware datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # ---- lifecycle -------------------------------------------------------------------------------

    async def set_state(self, session_id: str, target: State) -> Transition:
        """An operator's change of a session's state, applied atomically.

        Raises:
            UnknownSession: no such session.
            InvalidTransition: the lifecycle refuses it, or a concurrent change won.
            StoreUnavailable: the store did not answer.
        """
        self.session(session_id)
        current = await self.store.lifecycle(session_id)
        transition = operator_transition(current, target)
        if await self.store.transition(session_id, transition, self.now().isoformat()) is None:
            raise InvalidTransition("the session's state changed meanwhile; read it and retry")
        self.metrics.set_state(session_id, transition.state)
        return transition

    async def tick(self) -> list[tuple[str, Transition]]:
        """Moves every session the schedule says should move; returns what moved.

        While the store is known to be down, the tick probes it instead (a bounded ping): the node
        finds the store back within a second of its return, with no client waiting on the probe.
        """
        if self.store.breaker.down and not await self.store.ping():
            return []
        now = self.now()
        ids = [s.id for s in self.programme.sessions]
        current = await self.store.lifecycles(ids)
        moved: list[tuple[str, Transition]] = []
        for session in self.programme.sessions:
            lifecycle = current[session.id]
            self.metrics.set_state(session.id, lifecycle.state)
            transition = schedule_transition(
                lifecycle, session.start, session.end, now, self.timing
            )
            if transition is None:
                continue
            # Every node runs the schedule; the compare-and-set lets exactly one of them win.
            if await self.store.transition(session.id, transition, now.isoformat()) is not None:
                self.metrics.set_state(session.id, transition.state)
                moved.append((session.id, transition))
        return moved

    # ---- presence ---------------------------------------------------------------------------------

    def lease_until(self) -> int:
        """This node's presence lease expiry (ms), from now."""
        return int(self.clock() * 1000) + self.limits.lease_ms

    async def joined(
        self, session_id: str, identity: Identity, *, snapshot: bool = False
    ) -> JoinSnapshot | None:
        """Counts a new connection and schedules a coalesced presence broadcast.

        With ``snapshot``, the session's snapshot and the ``JoinRead`` welcome parts are read in
        the same store round trip, right after the join, and returned (a fresh join's welcome
        needs them); otherwise None.
        """
        kind = f"{identity.mode}|{identity.role.value}"
        now_ms = int(self.clock() * 1000)
        args = (session_id, identity.sub, kind, self.lease_until())
        read: JoinSnapshot | None = None
        if snapshot:
            reads = {n: p for n, p in self.snapshot_parts.items() if isinstance(p, JoinRead)}
            _, snap, raw = await self.store.guard(
                "presence",
                self.presence.join_snapshot(
                    *args,
                    now_ms=now_ms,
                    group=identity.group,
                    country=identity.country,
                    reads=tuple(p.lua for p in reads.values()),
                ),
            )
            read = JoinSnapshot(snap, dict(zip(reads, raw, strict=True)))
        else:
            await self.store.guard(
                "presence",
                self.presence.join(
                    *args, now_ms=now_ms, group=identity.group, country=identity.country
                ),
            )
        self.touch_presence(session_id)
        return read

    async def left(self, session_id: str, identity: Identity) -> None:
        """Counts a closed connection and schedules a coalesced presence broadcast."""
        await self.store.guard("presence", self.presence.leave(session_id, identity.sub))
        self.touch_presence(session_id)

    async def counts(self, session_id: str) -> Counts:
        """The session's presence figures now."""
        k = self.store.keys(session_id)
        pipe = self.store.client.pipeline(transaction=True)
        pipe.hgetall(k.counts)
        pipe.scard(k.unique)
        flat, unique = await self.store.guard("presence", pipe.execute())
        return summarise({key.decode(): int(v) for key, v in flat.items()}, int(unique))

    def touch_presence(self, session_id: str) -> None:
        """Presence changed: make sure one broadcast, cluster-wide, follows within the window.

        A node asks the store for the claim at most once a window per session: while it holds the
        claim, or another node does, the broadcast already scheduled will carry this change too.
        """
        if self.clock() < self._presence_quiet.get(session_id, 0.0):
            return
        self._presence_quiet[session_id] = self.clock() + self.limits.presence_window_ms / 1000
        self.spawn(self._claim_presence(session_id))

    async def _claim_presence(self, session_id: str) -> None:
        window = self.limits.presence_window_ms
        if not await self.store.guard(
            "presence", self.presence.claim_broadcast(session_id, window)
        ):
            # Another node's broadcast may have read the counts just before this change: claim
            # once more when its window ends, so the change is never left unannounced.
            await asyncio.sleep(window / 1000)
            if not await self.store.guard(
                "presence", self.presence.claim_broadcast(session_id, window)
            ):
                return
        # Broadcast at the end of the window so it carries every change made during it.
        await asyncio.sleep(window / 1000 + 0.02)
        await self.publish_presence(session_id)

    async def publish_presence(self, session_id: str) -> Counts:
        """Publishes the session's presence to every node (a transient message, not in history)."""
        counts = await self.counts(session_id)
        frame = encode(Presence(session=session_id, **presence_view(counts)))
        await self.store.publish(session_id, frame, operation="presence")
        return counts

    async def maintain(self) -> None:
        """Renews this node's leases, reaps lapsed nodes' presence, refreshes the presence gauges."""
        now_ms = int(self.clock() * 1000)
        held = [s for s, feed in self.hub.feeds.items() if feed.size]
        if held:
            await self.presence.renew(held, self.lease_until())
        for session in self.programme.sessions:
            if await self.presence.reap(session.id, now_ms):
                self.touch_presence(session.id)
            counts = await self.counts(session.id)
            self._export_counts(session.id, counts)

    async def reap_own(self) -> None:
        """At start: subtracts presence this node id left behind in an earlier life."""
        for session in self.programme.sessions:
            await self.presence.reap(session.id, 0, node=self.presence.node)

    def _export_counts(self, session_id: str, counts: Counts) -> None:
        label = self.metrics.session_label(session_id)
        for mode in MODES:
            for role in ROLES:
                n = counts.kinds.get(f"{mode}|{role}", 0)
                self.metrics.online.labels(label, mode, role).set(n)
        self.metrics.unique.labels(label).set(counts.unique)

    # ---- loops ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts the schedule and maintenance loops."""
        try:
            await self.reap_own()
        except Exception:  # a node may start while the store is down; the maintain loop catches up
            log.warning("could not reap this node's earlier presence", exc_info=True)
        self._loops = [
            asyncio.create_task(self._every(self.limits.tick, self.tick), name="podium-schedule"),
            asyncio.create_task(
                self._every(self.limits.maintain_every, self.maintain), name="podium-maintain"
            ),
        ]

    async def stop(self) -> None:
        """Stops the loops and any pending presence broadcasts, within a bounded time."""
        self._stopping = True
        await cancel_all([*self._loops, *self._tasks])

    async def _every(self, period: float, work: Callable[[], Awaitable[object]]) -> None:
        # The flag, not only cancellation, ends the loop: a library that swallows one
        # CancelledError must not keep a stopping node alive.
        while not self._stopping:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except SignalingError as exc:
                log.warning("periodic %s failed: %s", work.__name__, exc)
            except Exception:
                log.exception("periodic %s failed", work.__name__)
            await asyncio.sleep(period)

    def spawn(self, coro: Awaitable[None]) -> None:
        """Runs background work the node keeps track of (cancelled when the node stops)."""

        async def run() -> None:
            try:
                await coro
            except SignalingError as exc:
                log.warning("background work failed: %s", exc)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def cancel_all(tasks: list[asyncio.Task[None]], timeout: float = 5.0) -> None:
    """Cancels tasks and waits for them, cancelling again any that ignored the first request."""
    deadline = asyncio.get_running_loop().time() + timeout
    pending = {t for t in tasks if not t.done()}
    while pending and asyncio.get_running_loop().time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not warn about it


def lifecycle_view(lifecycle: Lifecycle) -> dict[str, Any]:
    """A lifecycle as clients see it."""
    return {"state": lifecycle.state.value, "held": lifecycle.held}


def session_view(session: Session) -> dict[str, Any]:
    """A programme session as every role may see it."""
    return {
        "id": session.id,
        "title": session.title,
        "room": session.room,
        "track": session.track,
        "start": session.start.isoformat(),
        "end": session.end.isoformat(),
        "languages": list(session.languages),
        "guest_access": session.guest_access,
        "description": session.description,
        "qna": {
            "enabled": session.qna.enabled,
            "premoderation": session.qna.premoderation,
            "anonymous_allowed": session.qna.anonymous_allowed,
            "max_chars": session.qna.max_chars,
            "order": session.qna.order,
        },
        "floor": {
            "enabled": session.floor.enabled,
            "speaking_seconds": session.floor.speaking_seconds,
            "remote_speakers": session.floor.remote_speakers,
        },
    }
