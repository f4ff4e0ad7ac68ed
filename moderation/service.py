"""The Q&A service: the protocol commands, the snapshot part and coalesced vote broadcasts.

Every moderator decision is optimistic: read the question, decide with the pure rules, write only if
the question is still at the version read. If it changed meanwhile and its state is no longer the one
the moderator acted on, the action is refused (another moderator decided first) — so approve and
reject raced from two nodes end in exactly one state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from moderation import messages as m
from moderation import questions as rules
from moderation.errors import NotAllowed, QuestionConflict
from moderation.ids import time_ordered_id
from moderation.metrics import QnaMetrics
from moderation.questions import PUBLIC, Actor, QState, Question
from moderation.store import Event, QaSettings, QuestionStore, parse_snapshot, snapshot_lua
from moderation.text import WordFilter
from signaling.service import Handler, JoinRead, SignalingService
from signaling.store import AUDIENCE_ALL, AUDIENCE_STAFF, audience_of, person

if TYPE_CHECKING:
    from signaling.connection import Connection

log = logging.getLogger("podium.qa")

RETRIES = 5


@dataclass(frozen=True, slots=True)
class QnaLimits:
    """Per-person question rate and the vote-broadcast window."""

    questions_per_window: int = 5
    window_ms: int = 60_000
    votes_window_ms: int = 250
    ask_key_ms: int = 24 * 3600 * 1000


def new_question_id(now: float) -> str:
    """A time-ordered, unguessable question id (``q`` + base-36 ms + random)."""
    return time_ordered_id("q", now)


def actor_of(conn: Connection) -> Actor:
    """The acting person, from the connection's verified token."""
    identity = conn.identity
    return Actor(sub=identity.sub, name=identity.name, role=identity.role, group=identity.group)


def question_events(after: Question, before: Question | None = None) -> list[Event]:
    """The events one question change emits, by audience.

    Public questions go to everyone (staff get the full view after it); others only to staff and
    the asker. A question that leaves the public lanes is withdrawn from everyone's view.
    """
    name = "qa.question"
    if after.state in PUBLIC:
        return [
            (AUDIENCE_ALL, name, {"question": after.public_view()}),
            (AUDIENCE_STAFF, name, {"question": after.staff_view()}),
        ]
    events: list[Event] = []
    if before is not None and before.state in PUBLIC:
        events.append((AUDIENCE_ALL, "qa.withdrawn", {"id": after.id, "state": after.state.value}))
    events.append((AUDIENCE_STAFF, name, {"question": after.staff_view()}))
    events.append((person(after.author), name, {"question": after.author_view()}))
    return events


class QnaService:
    """One node's Q&A: command handlers bound to the store and the signaling service."""

    def __init__(
        self,
        signaling: SignalingService,
        store: QuestionStore,
        metrics: QnaMetrics,
        *,
        words: WordFilter | None = None,
        limits: QnaLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signaling = signaling
        self.store = store
        self.metrics = metrics
        self.words = words or WordFilter()
        self.limits = limits or QnaLimits()
        self.clock = clock

    def register(self) -> None:
        """Adds the Q&A handlers and snapshot part to the signaling service."""
        handlers: dict[type[Any], Handler] = {
            m.Ask: self.ask,
            m.Vote: self.vote,
            m.Unvote: self.vote,
            m.Approve: self.approve,
            m.Reject: self.reject,
            m.MarkAnswered: self.mark_answered,
            m.Archive: self.archive,
            m.Edit: self.edit,
            m.Label: self.label,
            m.Reply: self.reply,
            m.Move: self.move,
            m.Pin: self.pin,
            m.Merge: self.merge,
            m.Lock: self.lock,
        }
        self.signaling.handlers.update(handlers)
        # Read by the join's own script (no round trip of its own); self.snapshot on a resync.
        self.signaling.snapshot_parts["qa"] = JoinRead(
            lua=snapshot_lua(), build=self._snapshot_of, read=self.snapshot
        )

    # ---- reading -----------------------------------------------------------------------------------

    async def snapshot(self, conn: Connection) -> dict[str, Any]:
        """What this connection may see of the queue now."""
        # One atomic read (a store round trip per join, not three or four).
        return self._view(conn, *await self.store.snapshot(conn.session, conn.identity.sub))

    def _snapshot_of(self, conn: Connection, raw: list[Any]) -> dict[str, Any]:
        """The snapshot part from the join script's reply (``snapshot_lua``)."""
        return self._view(conn, *parse_snapshot(raw))

    def _view(
        self,
        conn: Connection,
        everything: list[Question],
        settings: QaSettings,
        voted: frozenset[str],
    ) -> dict[str, Any]:
        """What this connection may see of the queue read."""
        actor = actor_of(conn)
        session = self.signaling.session(conn.session)
        visible = [q for q in everything if rules.visible_to(q, actor)]
        return {
            "questions": [self.view_for(q, actor) for q in visible],
            "pinned": settings.pinned or None,
            "locked": settings.locked,
            "voted": [q.id for q in visible if q.state in PUBLIC and q.id in voted],
            "order": session.qna.order,
            "enabled": session.qna.enabled,
        }

    @staticmethod
    def view_for(q: Question, actor: Actor) -> dict[str, Any]:
        """The view of a question this actor gets."""
        if actor.moderates:
            return q.staff_view()
        if q.author == actor.sub:
            return q.author_view()
        return q.public_view()

    # ---- participants ------------------------------------------------------------------------------

    async def ask(self, conn: Connection, cmd: m.Ask) -> dict[str, Any]:
        """A participant asks."""
        actor = actor_of(conn)
        session = self.signaling.session(conn.session)
        settings = await self.store.settings(conn.session)
        now = self.clock()
        question = rules.ask(
            new_question_id(now),
            actor,
            cmd.text,
            cmd.lang,
            cmd.anonymous,
            settings=session.qna,
            locked=settings.locked,
            words=self.words,
            now=now,
        )
        audit = self._audit(actor, "ask", question.id, {"text": question.text, "lang": question.lang,
                            "anonymous": question.anonymous, "held": list(question.held)})  # fmt: skip
        prior = await self.store.add(
            conn.session,
            question,
            audit,
            question_events(question),
            limit=self.limits.questions_per_window,
            window_ms=self.limits.window_ms,
            key=cmd.key or question.id,
            key_ttl_ms=self.limits.ask_key_ms,
        )
        if prior is not None:
            # A retry of an ask that did run (its reply was lost): the same question, once.
            return {"question": (await self.store.get(conn.session, prior)).author_view()}
        self.metrics.action("ask")
        return {"question": question.author_view()}

    async def vote(self, conn: Connection, cmd: m.Vote | m.Unvote) -> dict[str, Any]:
        """Adds or takes back the caller's vote; counts are broadcast coalesced."""
        actor = actor_of(conn)
        rules.check_vote(actor)
        add = isinstance(cmd, m.Vote)
        changed, votes, broadcast = await self.store.vote(
            conn.session,
            cmd.question,
            actor.sub,
            add,
            node=self.signaling.presence.node,
            window_ms=self.limits.votes_window_ms,
        )
        if changed:
            self.metrics.vote(conn.session)
            self.metrics.action("vote" if add else "unvote")
        if broadcast:
            self.signaling.spawn(self._broadcast_votes(conn.session))
        return {"question": cmd.question, "votes": votes, "voted": add}

    async def _broadcast_votes(self, session: str) -> None:
        await asyncio.sleep(self.limits.votes_window_ms / 1000)
        await self.flush_votes(session)

    async def flush_votes(self, session: str) -> None:
        """Emits one event with every vote count that changed (at most a few a second)."""
        counts = await self.store.take_dirty(session)
        if counts:
            await self.store.emit(session, [(AUDIENCE_ALL, "qa.votes", {"votes": counts})])

    # ---- moderators --------------------------------------------------------------------------------

    async def approve(self, conn: Connection, cmd: m.Approve) -> dict[str, Any]:
        """Pending → approved."""
        now = self.clock()
        return await self._decide(
            conn, cmd.question, "approve", lambda q, a: rules.approve(q, a, now)
        )

    async def reject(self, conn: Connection, cmd: m.Reject) -> dict[str, Any]:
        """→ rejected, with a reason."""
        now = self.clock()
        return await self._decide(
            conn, cmd.question, "reject", lambda q, a: rules.reject(q, a, cmd.reason, now)
        )

    async def mark_answered(self, conn: Connection, cmd: m.MarkAnswered) -> dict[str, Any]:
        """Approved → answered."""
        now = self.clock()
        return await self._decide(
            conn, cmd.question, "answer", lambda q, a: rules.answer(q, a, now)
        )

    async def archive(self, conn: Connection, cmd: m.Archive) -> dict[str, Any]:
        """→ archived."""
        now = self.clock()
        return await self._decide(
            conn, cmd.question, "archive", lambda q, a: rules.archive(q, a, now)
        )

    async def edit(self, conn: Connection, cmd: m.Edit) -> dict[str, Any]:
        """Corrects the text; the audit keeps the original."""
        limit = self.signaling.session(conn.session).qna.max_chars
        return await self._decide(
            conn,
            cmd.question,
            "edit",
            lambda q, a: rules.edit(q, a, cmd.text, limit),
            same_state=False,
        )

    async def label(self, conn: Connection, cmd: m.Label) -> dict[str, Any]:
        """Sets labels."""
        return await self._decide(
            conn,
            cmd.question,
            "label",
            lambda q, a: rules.label(q, a, cmd.labels),
            same_state=False,
        )

    async def reply(self, conn: Connection, cmd: m.Reply) -> dict[str, Any]:
        """A written answer."""
        return await self._decide(
            conn, cmd.question, "reply", lambda q, a: rules.reply(q, a, cmd.text), same_state=False
        )

    async def move(self, conn: Connection, cmd: m.Move) -> dict[str, Any]:
        """Moderator order."""
        return await self._decide(
            conn, cmd.question, "move", lambda q, a: rules.move(q, a, cmd.rank), same_state=False
        )

    async def _decide(
        self,
        conn: Connection,
        qid: str,
        action: str,
        decide: Callable[[Question, Actor], Question],
        *,
        same_state: bool = True,
    ) -> dict[str, Any]:
        actor = actor_of(conn)
        if not actor.moderates:  # before any read: a participant learns nothing about the queue
            raise NotAllowed("only moderators can do this")
        seen: QState | None = None
        for _ in range(RETRIES):
            before = await self.store.get(conn.session, qid)
            if seen is not None and same_state and before.state is not seen:
                raise QuestionConflict(f"another moderator made it {before.state} first")
            seen = before.state
            after = decide(before, actor)
            detail = _detail(action, before, after)
            audit = self._audit(actor, action, qid, detail)
            events = question_events(after, before)
            if await self.store.update(conn.session, before, after, audit, events) is not None:
                await self._off_screen_unless_public(conn.session, actor, after)
                self.metrics.action(action)
                if before.state is QState.PENDING and after.state is not QState.PENDING:
                    self.metrics.decision.observe(max(0.0, after.decided - before.created))
                return {"question": after.staff_view()}
        raise QuestionConflict("the question kept changing; try again")

    async def pin(self, conn: Connection, cmd: m.Pin) -> dict[str, Any]:
        """Puts one question on screen (or none)."""
        actor = actor_of(conn)
        if not actor.moderates:
            raise NotAllowed("only moderators can do this")
        if cmd.question is None:
            unpinned: Event = (AUDIENCE_ALL, "qa.pinned", {"question": None})
            await self.store.set_setting(
                conn.session, "pinned", "", self._audit(actor, "unpin", "", {}), [unpinned]
            )
            self.metrics.action("unpin")
            return {"pinned": None}
        question = await self.store.get(conn.session, cmd.question)
        rules.check_pin(question, actor)
        event: Event = (AUDIENCE_ALL, "qa.pinned", {"question": question.id})
        await self.store.set_setting(
            conn.session,
            "pinned",
            question.id,
            self._audit(actor, "pin", question.id, {}),
            [event],
            public_question=question.id,
        )
        self.metrics.action("pin")
        return {"pinned": question.id}

    async def lock(self, conn: Connection, cmd: m.Lock) -> dict[str, Any]:
        """Stops or resumes new questions."""
        actor = actor_of(conn)
        if not actor.moderates:
            raise NotAllowed("only moderators can do this")
        action = "lock" if cmd.locked else "unlock"
        event = (AUDIENCE_ALL, "qa.locked", {"locked": cmd.locked})
        await self.store.set_setting(
            conn.session, "locked", "1" if cmd.locked else "0",
            self._audit(actor, action, "", {}), [event],
        )  # fmt: skip
        self.metrics.action(action)
        return {"locked": cmd.locked}

    async def merge(self, conn: Connection, cmd: m.Merge) -> dict[str, Any]:
        """Merges a duplicate into another question: voters united, the asker told."""
        actor = actor_of(conn)
        if not actor.moderates:
            raise NotAllowed("only moderators can do this")
        now = self.clock()
        for _ in range(RETRIES):
            source = await self.store.get(conn.session, cmd.source)
            target = await self.store.get(conn.session, cmd.target)
            rules.check_merge(source, target, actor)
            merged = replace(source, state=QState.ARCHIVED, merged_into=target.id, decided=now)
            told = audience_of(AUDIENCE_STAFF, person(source.author))
            events = [
                *question_events(merged, source),
                (told, "qa.merged", {"source": source.id, "target": target.id}),
            ]
            audit = self._audit(actor, "merge", source.id, {"into": target.id})
            votes = await self.store.merge(conn.session, source, merged, target, audit, events)
            if votes is not None:
                await self._off_screen_unless_public(conn.session, actor, merged)
                self.metrics.action("merge")
                await self.flush_votes(conn.session)
                return {"source": source.id, "target": target.id, "votes": votes}
        raise QuestionConflict("the questions kept changing; try again")

    async def _off_screen_unless_public(self, session: str, actor: Actor, q: Question) -> None:
        # A question that leaves the public lanes cannot stay on the room's screen.
        if q.state in PUBLIC:
            return
        event: Event = (AUDIENCE_ALL, "qa.pinned", {"question": None})
        if await self.store.unpin_if(session, q.id, self._audit(actor, "unpin", q.id, {}), [event]):
            self.metrics.action("unpin")

    def _audit(self, actor: Actor, action: str, qid: str, detail: dict[str, Any]) -> dict[str, Any]:
        return {
            "at": self.clock(),
            "actor": actor.sub,
            "name": actor.name,
            "role": actor.role.value,
            "action": action,
            "question": qid,
            "detail": detail,
        }

    async def refresh_metrics(self) -> None:
        """Sets the per-state gauges for every session (called by the maintenance loop)."""
        for session in self.signaling.programme.sessions:
            self.metrics.export_counts(session.id, await self.store.counts(session.id))

    async def run_metrics(self, period: float = 5.0) -> None:
        """Refreshes the gauges forever."""
        while True:
            try:
                await self.refresh_metrics()
            except Exception:
                log.warning("Q&A metrics refresh failed", exc_info=True)
            await asyncio.sleep(period)


def _detail(action: str, before: Question, after: Question) -> dict[str, Any]:
    detail: dict[str, Any] = {"from": before.state.value, "to": after.state.value}
    if action == "edit":
        detail.update(original=before.text, text=after.text)
    elif action == "reject":
        detail["reason"] = after.reason
    elif action == "label":
        detail["labels"] = list(after.labels)
    elif action == "reply":
        detail["reply"] = after.reply
    elif action == "move":
        detail["rank"] = after.rank
    return detail


__all__ = ["QnaLimits", "QnaService", "new_question_id", "question_events"]
