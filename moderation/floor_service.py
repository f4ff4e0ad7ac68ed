"""The speakers' list service: the ``floor.*`` commands, the snapshot part, the speaking timer.

Every command reads the list, decides with the pure rules (``moderation.floor``) and writes with one
script that applies the change only if what the decision was based on still holds; otherwise it
reads and decides again. A grant or a revoke whose speaker changed meanwhile is refused (another
moderator acted first), so two moderators granting at once end with one speaker and one refusal.

Other packages follow the floor through ``holder`` (one read, right on every node) and two hook lists
called on the node that made the change, after it is stored: ``granted_hooks`` and ``ended_hooks``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moderation import floor as rules
from moderation import floor_messages as m
from moderation.errors import FloorConflict
from moderation.floor import Floor, Outcome
from moderation.floor_store import FloorStore, Written, floor_from_reply, read_lua
from moderation.ids import time_ordered_id
from moderation.metrics import FloorMetrics
from moderation.questions import Actor
from moderation.service import actor_of
from signaling.programme import FloorSettings
from signaling.service import Handler, JoinRead, SignalingService

if TYPE_CHECKING:
    from signaling.connection import Connection

log = logging.getLogger("podium.floor")

RETRIES = 8
EndedHook = Callable[[str, str, str], Awaitable[None]]  # (session, sub, reason)
GrantedHook = Callable[[str, str, float], Awaitable[None]]  # (session, sub, granted)
Write = Callable[[Floor, Outcome, dict[str, Any]], Awaitable[Written | None]]


@dataclass(frozen=True, slots=True)
class FloorLimits:
    """The per-person request rate, the broadcast window of requests, the timer check's period."""

    requests_per_window: int = 5
    window_ms: int = 60_000
    coalesce_ms: int = 250
    check_every: float = 1.0
    metrics_every: float = 5.0


def new_entry_id(now: float) -> str:
    """A time-ordered, unguessable entry id (``f`` + base-36 ms + random)."""
    return time_ordered_id("f", now)


def _speaker_id(floor: Floor) -> str:
    return "" if floor.speaker is None else floor.speaker.entry.id


class FloorService:
    """One node's speakers' lists: command handlers bound to the store and the signaling service."""

    def __init__(
        self,
        signaling: SignalingService,
        store: FloorStore,
        metrics: FloorMetrics,
        *,
        limits: FloorLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signaling = signaling
        self.store = store
        self.metrics = metrics
        self.limits = limits or FloorLimits()
        self.clock = clock
        self.ended_hooks: list[EndedHook] = []
        self.granted_hooks: list[GrantedHook] = []

    def register(self) -> None:
        """Adds the floor handlers and the ``floor`` snapshot part to the signaling service."""
        handlers: dict[type[Any], Handler] = {
            m.RequestFloor: self.request,
            m.WithdrawFloor: self.withdraw,
            m.AddSpeaker: self.add,
            m.GrantFloor: self.grant,
            m.SkipEntry: self.skip,
            m.MoveEntry: self.move,
            m.RevokeFloor: self.revoke,
            m.CloseFloor: self.close,
        }
        self.signaling.handlers.update(handlers)
        self.signaling.snapshot_parts["floor"] = JoinRead(
            lua=read_lua(),
            build=lambda conn, raw: floor_from_reply(raw).view_for(conn.identity.sub),
            read=self.snapshot,
        )

    # ---- reading -----------------------------------------------------------------------------------

    async def holder(self, session_id: str) -> str | None:
        """The person who has the floor in a session now (their token's ``sub``), or None."""
        return await self.store.holder(session_id)

    async def snapshot(self, conn: Connection) -> dict[str, Any]:
        """The public view of the list, plus ``mine`` when this person is on it."""
        floor = await self.store.read(conn.session)
        return floor.view_for(conn.identity.sub)

    def _settings(self, session: str) -> FloorSettings:
        return self.signaling.session(session).floor

    # ---- participants ------------------------------------------------------------------------------

    async def request(self, conn: Connection, cmd: m.RequestFloor) -> dict[str, Any]:
        """A participant or speaker asks for the floor."""
        actor, mode = actor_of(conn), conn.identity.mode
        settings = self._settings(conn.session)
        rules.check_requester(actor, mode, settings)  # before any read: refusals learn nothing
        now = self.clock()
        entry_id = new_entry_id(now)

        async def write(before: Floor, outcome: Outcome, audit: dict[str, Any]) -> Written | None:
            assert outcome.entry is not None
            return await self.store.enqueue(
                conn.session, outcome.entry, audit,
                limit=self.limits.requests_per_window, window_ms=self.limits.window_ms,
                max_entries=rules.MAX_ENTRIES, need_open=True,
                coalesce_ms=self.limits.coalesce_ms,
            )  # fmt: skip

        outcome = await self._apply(
            conn.session, actor, "request",
            lambda f: rules.request(f, actor, mode, entry_id, settings=settings, now=now), write,
        )  # fmt: skip
        assert outcome.entry is not None
        return {"entry": outcome.entry.id}

    async def withdraw(self, conn: Connection, cmd: m.WithdrawFloor) -> dict[str, Any]:
        """Takes the caller's request back, or ends their turn (``yielded``)."""
        actor = actor_of(conn)
        outcome = await self._apply(
            conn.session, actor, "withdraw",
            lambda f: rules.withdraw(f, actor, self.clock()),
            self._remove_or_end(conn.session, coalesce=True),
        )  # fmt: skip
        assert outcome.entry is not None
        return {"entry": outcome.entry.id}

    # ---- moderators --------------------------------------------------------------------------------

    async def add(self, conn: Connection, cmd: m.AddSpeaker) -> dict[str, Any]:
        """A moderator puts a person in the room on the list."""
        actor = actor_of(conn)
        settings = self._settings(conn.session)
        groups = self.signaling.programme.event.stakeholder_groups
        now = self.clock()
        entry_id = new_entry_id(now)
        rules.check_moderator(actor)
        rules.check_enabled(settings)

        async def write(before: Floor, outcome: Outcome, audit: dict[str, Any]) -> Written | None:
            assert outcome.entry is not None
            return await self.store.enqueue(
                conn.session, outcome.entry, audit, max_entries=rules.MAX_ENTRIES, need_open=False
            )

        outcome = await self._apply(
            conn.session, actor, "add",
            lambda f: rules.add(f, actor, cmd.name, cmd.group, entry_id, groups=groups, now=now),
            write,
        )  # fmt: skip
        assert outcome.entry is not None
        return {"entry": outcome.entry.id}

    async def grant(self, conn: Connection, cmd: m.GrantFloor) -> dict[str, Any]:
        """A moderator gives the floor; the current speaker's turn ends (``replaced``)."""
        actor = actor_of(conn)
        rules.check_moderator(actor)
        settings = self._settings(conn.session)

        async def write(before: Floor, outcome: Outcome, audit: dict[str, Any]) -> Written | None:
            assert outcome.granted is not None
            return await self.store.grant(conn.session, outcome.granted, _speaker_id(before), audit)

        outcome = await self._apply(
            conn.session, actor, "grant",
            lambda f: rules.grant(f, actor, cmd.entry, settings=settings, now=self.clock()),
            write, same_speaker=True,
        )  # fmt: skip
        assert outcome.granted is not None
        return {"entry": cmd.entry, "ends": outcome.granted.ends}

    async def skip(self, conn: Connection, cmd: m.SkipEntry) -> dict[str, Any]:
        """A moderator passes over an entry (to the end of the queue)."""
        actor = actor_of(conn)
        rules.check_moderator(actor)

        async def write(before: Floor, outcome: Outcome, audit: dict[str, Any]) -> Written | None:
            return await self.store.move(conn.session, cmd.entry, -1, audit)

        outcome = await self._apply(
            conn.session, actor, "skip", lambda f: rules.skip(f, actor, cmd.entry), write
        )
        return {"entry": cmd.entry, "position": len(outcome.floor.queue) - 1}

    async def move(self, conn: Connection, cmd: m.MoveEntry) -> dict[str, Any]:
        """A moderator reorders the queue."""
        actor = actor_of(conn)
        rules.check_moderator(actor)

        async def write(before: Floor, outcome: Outcome, audit: dict[str, Any]) -> Written | None:
            return await self.store.move(conn.session, cmd.entry, cmd.position, audit)

        # The audit keeps the position asked for, so the trail replays to the list.
        outcome = await self._apply(
            conn.session, actor, "move",
            lambda f: rules.move(f, actor, cmd.entry, cmd.position), write,
            detail={"position": cmd.position},
        )  # fmt: skip
        position = [e.id for e in outcome.floor.queue].index(cmd.entry)
        return {"entry": cmd.entry, "position": position}

    async def revoke(self, conn: Connection, cmd: m.RevokeFloor) -> dict[str, Any]:
        """A moderator ends the current turn (``revoked``) or removes a queued request."""
        actor = actor_of(conn)
        rules.check_moderator(actor)
        outcome = await self._apply(
            conn.session, actor, "revoke",
            lambda f: rules.revoke(f, actor, cmd.entry, self.clock()),
            self._remove_or_end(conn.session), same_speaker=cmd.entry is None,
        )  # fmt: skip
        assert outcome.entry is not None
        return {"entry": outcome.entry.id}

    async def close(self, conn: Connection, cmd: m.CloseFloor) -> dict[str, Any]:
        """A moderator closes the list to new requests, or reopens it."""
        actor = actor_of(conn)
        rules.check_moderator(actor)

        async def write(before: Floor, outcome: Outcome, audit: dict[str, Any]) -> Written | None:
            return await self.store.set_open(conn.session, not cmd.closed, audit)

        await self._apply(
            conn.session, actor, "close" if cmd.closed else "reopen",
            lambda f: rules.close(f, actor, cmd.closed), write,
        )  # fmt: skip
        return {"closed": cmd.closed}

    async def leave(self, session: str, sub: str) -> bool:
        """The person left the session: their request goes and their turn ends (``left``).

        Returns:
            True when they had something on the list.
        """
        try:
            await self._apply(
                session, None, "leave", lambda f: _left(f, sub, self.clock()),
                self._remove_or_end(session, coalesce=True),
            )  # fmt: skip
        except FloorConflict:
            return False
        return True

    # ---- the timer ---------------------------------------------------------------------------------

    async def check_expiry(self) -> int:
        """Says, once cluster-wide, that a speaker's time ran out (ending the turn when the session
        says so). Every node runs this; the store's compare-and-set lets one of them win.

        Returns:
            How many turns this node found expired and announced.
        """
        sessions = self.signaling.programme.sessions
        now = self.clock()
        watched = await self.store.watch([s.id for s in sessions])
        announced = 0
        for session in sessions:
            watch = watched.get(session.id)
            if watch is None:
                continue
            if watch.unshown:  # a coalesced broadcast whose node died before it was due
                await self.store.flush(session.id, overdue_only=True)
            if watch.entry and not watch.expired and now >= watch.ends:
                announced += await self._expire(session.id, session.floor, now)
        return announced

    async def _flush_later(self, session: str) -> None:
        await asyncio.sleep(self.limits.coalesce_ms / 1000 + 0.02)
        await self.store.flush(session)

    async def _expire(self, session: str, settings: FloorSettings, now: float) -> int:
        before = await self.store.read(session)
        outcome = rules.expire(before, settings=settings, now=now)
        if outcome is None or outcome.entry is None:
            return 0
        audit = self._audit(None, "expire", outcome.entry.id, {"revoke": settings.revoke_on_expiry})
        revoke = settings.revoke_on_expiry
        if await self.store.expire(session, outcome.entry.id, now, revoke, audit) is None:
            return 0  # another node said it first
        await self._after(session, outcome)
        return 1

    async def refresh_metrics(self) -> None:
        """Sets the queue-length gauges for every session."""
        ids = [s.id for s in self.signaling.programme.sessions]
        self.metrics.export_lengths(await self.store.queue_lengths(ids))

    async def run(self) -> None:
        """Checks the timers every ``check_every`` seconds, and the gauges now and then, forever."""
        refreshed = float("-inf")
        while True:
            try:
                await self.check_expiry()
                if time.monotonic() - refreshed >= self.limits.metrics_every:
                    refreshed = time.monotonic()
                    await self.refresh_metrics()
            except Exception:
                log.warning("floor timer check failed", exc_info=True)
            await asyncio.sleep(self.limits.check_every)

    # ---- applying ----------------------------------------------------------------------------------

    def _remove_or_end(self, session: str, *, coalesce: bool = False) -> Write:
        # A person's own withdrawal joins the requests' broadcast window; a turn's end never waits.
        window = self.limits.coalesce_ms if coalesce else 0

        async def write(before: Floor, outcome: Outcome, audit: dict[str, Any]) -> Written | None:
            assert outcome.entry is not None
            if outcome.ended is not None:
                return await self.store.end(
                    session, outcome.entry.id, outcome.ended.reason.value, audit
                )
            return await self.store.remove(session, outcome.entry.id, audit, coalesce_ms=window)

        return write

    async def _apply(
        self,
        session: str,
        actor: Actor | None,
        action: str,
        decide: Callable[[Floor], Outcome],
        write: Write,
        *,
        same_speaker: bool = False,
        detail: dict[str, Any] | None = None,
    ) -> Outcome:
        seen: str | None = None
        for _ in range(RETRIES):
            before = await self.store.read(session)
            if same_speaker and seen is not None and _speaker_id(before) != seen:
                raise FloorConflict("the speaker changed meanwhile (another moderator acted first)")
            seen = _speaker_id(before)
            outcome = decide(before)
            entry = "" if outcome.entry is None else outcome.entry.id
            audit = self._audit(actor, action, entry, {**_detail(outcome), **(detail or {})})
            written = await write(before, outcome, audit)
            if written is not None:
                if written.flush:
                    self.signaling.spawn(self._flush_later(session))
                if action in ("request", "add"):
                    self.metrics.requests.labels(self.metrics.label(session)).inc()
                await self._after(session, outcome)
                return outcome
        raise FloorConflict("the speakers' list kept changing; try again")

    async def _after(self, session: str, outcome: Outcome) -> None:
        label = self.metrics.label(session)
        if outcome.ended is not None:
            self.metrics.speaking.labels(label).inc(outcome.ended.spoken)
            ended = outcome.ended
            for hook in self.ended_hooks:
                await _call(hook(session, ended.turn.entry.sub, ended.reason.value))
        if outcome.granted is not None:
            self.metrics.grants.labels(label).inc()
            granted = outcome.granted
            for granted_hook in self.granted_hooks:
                await _call(granted_hook(session, granted.entry.sub, granted.granted))

    def _audit(
        self, actor: Actor | None, action: str, entry: str, detail: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "at": self.clock(),
            "actor": "" if actor is None else actor.sub,
            "name": "" if actor is None else actor.name,
            "role": "" if actor is None else actor.role.value,
            "action": action,
            "entry": entry,
            "detail": detail,
        }


def _left(floor: Floor, sub: str, now: float) -> Outcome:
    outcome = rules.leave(floor, sub, now)
    if outcome is None:
        raise FloorConflict("nothing on the list")
    return outcome


def _detail(outcome: Outcome) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    if outcome.entry is not None:
        detail.update(name=outcome.entry.name, group=outcome.entry.group, mode=outcome.entry.mode)
    if outcome.ended is not None:
        detail.update(reason=outcome.ended.reason.value, spoken=outcome.ended.spoken)
    if outcome.granted is not None:
        detail.update(seconds=outcome.granted.seconds)
    return detail


async def _call(hook: Awaitable[None]) -> None:
    # The change is stored and acknowledged whatever a follower does with it.
    try:
        await hook
    except Exception:
        log.exception("a floor hook failed")


__all__ = ["EndedHook", "FloorLimits", "FloorService", "GrantedHook", "new_entry_id"]
