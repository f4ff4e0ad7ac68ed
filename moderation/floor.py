"""The speakers' list as pure rules: who may ask for the floor, who gets it, and when a turn ends.

Nothing here touches the store or the clock: callers pass the list as read, the actor and the time,
and get back the list as it should be (or a typed refusal). The store (``moderation.floor_store``)
applies each change atomically, only if what the decision was based on still holds, and mirrors these
rules in its scripts; the tests check that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from moderation.errors import FloorClosed, FloorConflict, NotAllowed, TextRefused
from moderation.questions import Actor
from moderation.text import clean
from signaling.identity import Mode, Role
from signaling.programme import FloorSettings

REQUESTERS: frozenset[Role] = frozenset({Role.PARTICIPANT, Role.SPEAKER})
MAX_ENTRIES = 200
MAX_NAME = 80


class EndReason(StrEnum):
    """Why a speaker's turn ended."""

    REVOKED = "revoked"
    REPLACED = "replaced"
    YIELDED = "yielded"
    EXPIRED = "expired"
    LEFT = "left"


@dataclass(frozen=True, slots=True)
class Entry:
    """One request for the floor (or a person in the room a moderator put on the list)."""

    id: str
    sub: str
    name: str
    group: str
    mode: Mode
    requested: float
    by_moderator: bool = False

    def view(self) -> dict[str, Any]:
        """What everyone sees of the entry (never who is behind it)."""
        return {
            "entry": self.id,
            "name": self.name,
            "group": self.group,
            "mode": self.mode,
            "requested": self.requested,
        }


@dataclass(frozen=True, slots=True)
class Turn:
    """The current speaker: their entry, when they got the floor and for how long."""

    entry: Entry
    granted: float
    seconds: int

    @property
    def ends(self) -> float:
        """When the speaking time runs out (epoch seconds)."""
        return self.granted + self.seconds

    def view(self) -> dict[str, Any]:
        """The entry's view with the timer."""
        return {
            **self.entry.view(),
            "granted": self.granted,
            "seconds": self.seconds,
            "ends": self.ends,
        }


@dataclass(frozen=True, slots=True)
class Floor:
    """A session's speakers' list: open or closed, the queue in order, the speaker."""

    open: bool = True
    queue: tuple[Entry, ...] = ()
    speaker: Turn | None = None
    expired: bool = False
    version: int = 0

    def view(self) -> dict[str, Any]:
        """The public view (the ``floor.list`` event's data)."""
        view: dict[str, Any] = {"open": self.open, "queue": [e.view() for e in self.queue]}
        if self.speaker is not None:
            view["speaker"] = self.speaker.view()
        view["expired"] = self.expired
        return view

    def view_for(self, sub: str) -> dict[str, Any]:
        """The public view plus ``mine``: the person's own entry, when they have one."""
        view = self.view()
        own = self.entry_of(sub)
        if own is not None:
            view["mine"] = own.id
        return view

    def entry_of(self, sub: str) -> Entry | None:
        """The person's entry, queued or speaking."""
        if self.speaker is not None and self.speaker.entry.sub == sub:
            return self.speaker.entry
        return next((e for e in self.queue if e.sub == sub), None)

    def queued(self, entry_id: str) -> Entry:
        """A queued entry.

        Raises:
            FloorConflict: no such entry waits in the queue.
        """
        found = next((e for e in self.queue if e.id == entry_id), None)
        if found is None:
            raise FloorConflict("no such request waits in the speakers' list")
        return found

    def without(self, entry_id: str) -> tuple[Entry, ...]:
        """The queue without one entry."""
        return tuple(e for e in self.queue if e.id != entry_id)


@dataclass(frozen=True, slots=True)
class Ended:
    """A turn that ended, why, and how long the person spoke."""

    turn: Turn
    reason: EndReason
    spoken: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one action did: the list after it, and the turn it ended or started, if any."""

    floor: Floor
    entry: Entry | None = None
    ended: Ended | None = None
    granted: Turn | None = None
    expired: bool = False


def check_moderator(actor: Actor) -> None:
    """Moderators and operators run the list.

    Raises:
        NotAllowed: the actor is neither.
    """
    if not actor.moderates:
        raise NotAllowed("only moderators can do this")


def check_enabled(settings: FloorSettings) -> None:
    """Raises NotAllowed when the session has no speakers' list."""
    if not settings.enabled:
        raise NotAllowed("this session has no speakers' list")


def _changed(floor: Floor, **changes: Any) -> Floor:
    return replace(floor, version=floor.version + 1, **changes)


def _end(turn: Turn, reason: EndReason, now: float) -> Ended:
    return Ended(turn, reason, max(0.0, min(now, turn.ends) - turn.granted))


def check_requester(actor: Actor, mode: Mode, settings: FloorSettings) -> None:
    """What a request needs that the list's state does not decide.

    Raises:
        NotAllowed: the floor is off in this session, the role may not ask for it, or a remote
            person asks where only people in the room may speak.
    """
    check_enabled(settings)
    if actor.role not in REQUESTERS:
        raise NotAllowed(f"a {actor.role} cannot ask for the floor")
    if mode == "remote" and not settings.remote_speakers:
        raise NotAllowed("only people in the room may ask for the floor in this session")


def _room_for(floor: Floor) -> None:
    if len(floor.queue) >= MAX_ENTRIES:
        raise FloorConflict(f"the speakers' list is full ({MAX_ENTRIES} requests)")


def request(
    floor: Floor,
    actor: Actor,
    mode: Mode,
    entry_id: str,
    *,
    settings: FloorSettings,
    now: float,
) -> Outcome:
    """A participant or speaker asks for the floor: their entry joins the end of the queue.

    Raises:
        NotAllowed: see ``check_requester``.
        FloorClosed: the moderators closed the list.
        FloorConflict: the person is already on the list or speaking, or the list is full.
    """
    check_requester(actor, mode, settings)
    if not floor.open:
        raise FloorClosed("the speakers' list is closed")
    if floor.entry_of(actor.sub) is not None:
        raise FloorConflict("you are already on the speakers' list")
    _room_for(floor)
    entry = Entry(entry_id, actor.sub, actor.name, actor.group, mode, now)
    return Outcome(_changed(floor, queue=(*floor.queue, entry)), entry=entry)


def withdraw(floor: Floor, actor: Actor, now: float) -> Outcome:
    """The person takes their request back; if they are speaking, their turn ends (``yielded``).

    Raises:
        FloorConflict: the person has nothing on the list.
    """
    own = floor.entry_of(actor.sub)
    if own is None:
        raise FloorConflict("you have no request on the speakers' list")
    if floor.speaker is not None and floor.speaker.entry.id == own.id:
        ended = _end(floor.speaker, EndReason.YIELDED, now)
        return Outcome(_changed(floor, speaker=None, expired=False), entry=own, ended=ended)
    return Outcome(_changed(floor, queue=floor.without(own.id)), entry=own)


def add(
    floor: Floor,
    actor: Actor,
    name: str,
    group: str,
    entry_id: str,
    *,
    groups: tuple[str, ...],
    now: float,
) -> Outcome:
    """A moderator puts a person in the room (with no device) on the list, closed or not.

    Raises:
        NotAllowed: the actor is not a moderator.
        TextRefused: the name fails the text rules, or the group is not one of the event's.
        FloorConflict: the list is full.
    """
    check_moderator(actor)
    clean_name = clean(name, max_chars=MAX_NAME, max_lines=1)
    if group and group not in groups:
        raise TextRefused(f"group must be one of {', '.join(groups)}")
    _room_for(floor)
    entry = Entry(entry_id, "venue:" + entry_id, clean_name, group, "venue", now, by_moderator=True)
    return Outcome(_changed(floor, queue=(*floor.queue, entry)), entry=entry)


def grant(
    floor: Floor, actor: Actor, entry_id: str, *, settings: FloorSettings, now: float
) -> Outcome:
    """A moderator gives the floor: the entry leaves the queue; a current speaker is ``replaced``.

    Raises:
        NotAllowed: the actor is not a moderator.
        FloorConflict: the entry does not wait in the queue.
    """
    check_moderator(actor)
    entry = floor.queued(entry_id)
    turn = Turn(entry, now, settings.speaking_seconds)
    ended = None if floor.speaker is None else _end(floor.speaker, EndReason.REPLACED, now)
    after = _changed(floor, queue=floor.without(entry_id), speaker=turn, expired=False)
    return Outcome(after, entry=entry, ended=ended, granted=turn)


def skip(floor: Floor, actor: Actor, entry_id: str) -> Outcome:
    """A moderator passes over an entry: it stays on the list, at the end of the queue.

    Raises:
        NotAllowed: the actor is not a moderator.
        FloorConflict: the entry does not wait in the queue.
    """
    check_moderator(actor)
    entry = floor.queued(entry_id)
    return Outcome(_changed(floor, queue=(*floor.without(entry_id), entry)), entry=entry)


def move(floor: Floor, actor: Actor, entry_id: str, position: int) -> Outcome:
    """A moderator puts an entry at a 0-based place in the queue (clamped to the queue).

    Raises:
        NotAllowed: the actor is not a moderator.
        FloorConflict: the entry does not wait in the queue.
    """
    check_moderator(actor)
    entry = floor.queued(entry_id)
    rest = list(floor.without(entry_id))
    rest.insert(max(0, min(position, len(rest))), entry)
    return Outcome(_changed(floor, queue=tuple(rest)), entry=entry)


def revoke(floor: Floor, actor: Actor, entry_id: str | None, now: float) -> Outcome:
    """A moderator ends the current turn (no entry named, ``revoked``) or removes a queued request.

    Raises:
        NotAllowed: the actor is not a moderator.
        FloorConflict: nobody is speaking, or the entry does not wait in the queue.
    """
    check_moderator(actor)
    if entry_id is None or (floor.speaker is not None and floor.speaker.entry.id == entry_id):
        if floor.speaker is None:
            raise FloorConflict("nobody has the floor")
        ended = _end(floor.speaker, EndReason.REVOKED, now)
        after = _changed(floor, speaker=None, expired=False)
        return Outcome(after, entry=floor.speaker.entry, ended=ended)
    entry = floor.queued(entry_id)
    return Outcome(_changed(floor, queue=floor.without(entry_id)), entry=entry)


def close(floor: Floor, actor: Actor, closed: bool) -> Outcome:
    """A moderator closes the list to new requests (or reopens it); the queue and speaker stay.

    Raises:
        NotAllowed: the actor is not a moderator.
    """
    check_moderator(actor)
    return Outcome(_changed(floor, open=not closed))


def expire(floor: Floor, *, settings: FloorSettings, now: float) -> Outcome | None:
    """The speaker's time ran out: said once per turn; the turn ends if the session says so.

    Returns:
        None when nobody speaks, the time has not run out, or its end was already announced.
    """
    turn = floor.speaker
    if turn is None or floor.expired or now < turn.ends:
        return None
    if settings.revoke_on_expiry:
        ended = _end(turn, EndReason.EXPIRED, now)
        after = _changed(floor, speaker=None, expired=False)
        return Outcome(after, entry=turn.entry, ended=ended, expired=True)
    return Outcome(_changed(floor, expired=True), entry=turn.entry, expired=True)


def leave(floor: Floor, sub: str, now: float) -> Outcome | None:
    """The person left the session: their request goes, their turn ends (``left``).

    Returns:
        None when the person has nothing on the list.
    """
    own = floor.entry_of(sub)
    if own is None:
        return None
    if floor.speaker is not None and floor.speaker.entry.id == own.id:
        ended = _end(floor.speaker, EndReason.LEFT, now)
        return Outcome(_changed(floor, speaker=None, expired=False), entry=own, ended=ended)
    return Outcome(_changed(floor, queue=floor.without(own.id)), entry=own)
