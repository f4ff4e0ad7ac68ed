"""The speakers' list as a Hypothesis state machine run against the real store through the floor service.

People request the floor, withdraw and leave; two moderators add people in the room, grant, skip,
move, revoke turns and requests, close and reopen the list; time passes and speaking time runs out
(the turn ends or is only announced, as the session says). After every step the stored list must
equal a model kept by this test, nobody is listed twice, there is at most one speaker, the store's
keys hold exactly the listed entries, and the audit trail replays to the list as stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from moderation import floor_messages as m
from moderation.errors import FloorClosed, FloorConflict, NotAllowed
from signaling.identity import Mode, Role
from signaling.programme import FloorSettings, Programme
from tests.conftest import StoreTarget, make_programme
from tests.properties.harness import Caller, Clock, Loop, Node, as_connection, budget, person

SESSION = "plenary"
PEOPLE: dict[str, tuple[Role, Mode]] = {
    "ana": (Role.PARTICIPANT, "remote"),
    "ben": (Role.PARTICIPANT, "remote"),
    "chen": (Role.PARTICIPANT, "venue"),
    "sam": (Role.SPEAKER, "remote"),
}
MODERATORS = ("mod-1", "mod-2")
SPEAKING_SECONDS = 180


@dataclass(frozen=True)
class Listed:
    """One entry the model holds: its id and whose it is."""

    entry: str
    sub: str


@dataclass(frozen=True)
class ListState:
    """The parts of a list that the audit trail must replay to."""

    open: bool
    queue: tuple[str, ...]
    speaker: str | None
    expired: bool


def replay(audit: list[dict[str, Any]]) -> ListState:
    """The list the audit trail leads to, from an empty open list, one recorded action at a time."""
    is_open, queue, speaker, expired = True, [], None, False
    for record in audit:
        action, entry, detail = record["action"], record["entry"], record["detail"]
        if action in ("request", "add"):
            queue.append(entry)
        elif action in ("withdraw", "leave", "revoke"):
            if "reason" in detail:  # the speaker's turn ended
                assert entry == speaker
                speaker, expired = None, False
            else:
                queue.remove(entry)
        elif action == "grant":
            queue.remove(entry)
            speaker, expired = entry, False
        elif action == "skip":
            queue.remove(entry)
            queue.append(entry)
        elif action == "move":
            queue.remove(entry)
            queue.insert(min(detail["position"], len(queue)), entry)
        elif action in ("close", "reopen"):
            is_open = action == "reopen"
        elif action == "expire":
            assert entry == speaker
            speaker, expired = (None, False) if detail["revoke"] else (speaker, True)
        else:
            raise AssertionError(f"an audit action the replay does not know: {action}")
    return ListState(is_open, tuple(queue), speaker, expired)


def programme_with(revoke_on_expiry: bool) -> Programme:
    """The test programme, the plenary's floor ending turns at the time limit or only saying so."""
    programme = make_programme()
    floor = FloorSettings(speaking_seconds=SPEAKING_SECONDS, revoke_on_expiry=revoke_on_expiry)
    sessions = tuple(replace(s, floor=floor) if s.id == SESSION else s for s in programme.sessions)
    return Programme(programme.event, sessions)


class SpeakersListModel(RuleBasedStateMachine):
    """The list of one session, on a node of its own, against the model."""

    target: StoreTarget
    revoke_on_expiry: bool

    def __init__(self) -> None:
        super().__init__()
        self.loop = Loop()
        self.clock = Clock(1_800_000_000.0)
        self.node = Node(self.target, programme_with(self.revoke_on_expiry), self.clock)
        self.open = True
        self.queue: list[Listed] = []
        self.speaker: Listed | None = None
        self.ends = 0.0
        self.expired = False
        self.gone: list[str] = []  # entries that were listed once and are no longer
        self.added = 0

    def teardown(self) -> None:
        self.loop.run(self.node.close())
        self.loop.close()

    # ---- helpers -----------------------------------------------------------------------------

    def _call(self, who: str, handler: Any, command: Any) -> dict[str, Any]:
        self.clock.now += 1.0
        role, mode = PEOPLE.get(who, (Role.MODERATOR, "venue"))
        caller = as_connection(Caller(person(who, role, mode=mode), SESSION))
        result: dict[str, Any] = self.loop.run(handler(caller, command))
        return result

    def _listed(self, sub: str) -> Listed | None:
        if self.speaker is not None and self.speaker.sub == sub:
            return self.speaker
        return next((e for e in self.queue if e.sub == sub), None)

    def _drop(self, entry: Listed) -> None:
        if self.speaker == entry:
            self.speaker, self.expired = None, False
        else:
            self.queue.remove(entry)
        self.gone.append(entry.entry)

    def _pick(self, data: st.DataObject) -> str:
        # Mostly a queued entry; now and then the speaker's or a gone one, for the refusals.
        others = self.gone[-3:] + ([self.speaker.entry] if self.speaker else [])
        if self.queue and (not others or data.draw(st.integers(0, 4), label="queued")):
            return data.draw(st.sampled_from([e.entry for e in self.queue]), label="entry")
        return data.draw(st.sampled_from(others), label="entry")

    def _queued(self, entry: str) -> Listed | None:
        return next((e for e in self.queue if e.entry == entry), None)

    # ---- people ------------------------------------------------------------------------------

    @rule(who=st.sampled_from(sorted(PEOPLE)))
    def request(self, who: str) -> None:
        command = m.RequestFloor(id="r")
        if not self.open:
            with pytest.raises(FloorClosed):
                self._call(who, self.node.floor.request, command)
        elif self._listed(who) is not None:
            with pytest.raises(FloorConflict):
                self._call(who, self.node.floor.request, command)
        else:
            result = self._call(who, self.node.floor.request, command)
            self.queue.append(Listed(result["entry"], who))

    @rule(who=st.sampled_from(sorted(PEOPLE)))
    def withdraw(self, who: str) -> None:
        own = self._listed(who)
        if own is None:
            with pytest.raises(FloorConflict):
                self._call(who, self.node.floor.withdraw, m.WithdrawFloor(id="w"))
            return
        assert (
            self._call(who, self.node.floor.withdraw, m.WithdrawFloor(id="w"))["entry"] == own.entry
        )
        self._drop(own)

    @rule(who=st.sampled_from(sorted(PEOPLE)))
    def leave(self, who: str) -> None:
        own = self._listed(who)
        self.clock.now += 1.0
        assert self.loop.run(self.node.floor.leave(SESSION, who)) is (own is not None)
        if own is not None:
            self._drop(own)

    @rule(who=st.sampled_from(sorted(PEOPLE)))
    def participant_tries_to_grant(self, who: str) -> None:
        with pytest.raises(NotAllowed):
            self._call(who, self.node.floor.grant, m.GrantFloor(id="g", entry="f0000"))

    # ---- moderators --------------------------------------------------------------------------

    @rule(who=st.sampled_from(MODERATORS))
    def add(self, who: str) -> None:
        self.added += 1
        command = m.AddSpeaker(id="a", name=f"Delegate {self.added}")
        entry = self._call(who, self.node.floor.add, command)["entry"]
        self.queue.append(Listed(entry, "venue:" + entry))

    @precondition(lambda self: self.queue or self.gone or self.speaker)
    @rule(who=st.sampled_from(MODERATORS), data=st.data())
    def grant(self, who: str, data: st.DataObject) -> None:
        entry = self._pick(data)
        command = m.GrantFloor(id="g", entry=entry)
        queued = self._queued(entry)
        if queued is None:
            with pytest.raises(FloorConflict):
                self._call(who, self.node.floor.grant, command)
            return
        result = self._call(who, self.node.floor.grant, command)
        if self.speaker is not None:
            self.gone.append(self.speaker.entry)  # replaced
        self.queue.remove(queued)
        self.speaker, self.expired, self.ends = queued, False, self.clock.now + SPEAKING_SECONDS
        assert result["ends"] == self.ends

    @precondition(lambda self: self.queue or self.gone or self.speaker)
    @rule(who=st.sampled_from(MODERATORS), data=st.data())
    def skip(self, who: str, data: st.DataObject) -> None:
        entry = self._pick(data)
        queued = self._queued(entry)
        if queued is None:
            with pytest.raises(FloorConflict):
                self._call(who, self.node.floor.skip, m.SkipEntry(id="s", entry=entry))
            return
        self._call(who, self.node.floor.skip, m.SkipEntry(id="s", entry=entry))
        self.queue.remove(queued)
        self.queue.append(queued)

    @precondition(lambda self: self.queue or self.gone or self.speaker)
    @rule(who=st.sampled_from(MODERATORS), data=st.data(), position=st.integers(0, 6))
    def move(self, who: str, data: st.DataObject, position: int) -> None:
        entry = self._pick(data)
        command = m.MoveEntry(id="m", entry=entry, position=position)
        queued = self._queued(entry)
        if queued is None:
            with pytest.raises(FloorConflict):
                self._call(who, self.node.floor.move, command)
            return
        result = self._call(who, self.node.floor.move, command)
        self.queue.remove(queued)
        self.queue.insert(min(position, len(self.queue)), queued)
        assert result["position"] == self.queue.index(queued)

    @rule(who=st.sampled_from(MODERATORS))
    def revoke_the_turn(self, who: str) -> None:
        if self.speaker is None:
            with pytest.raises(FloorConflict):
                self._call(who, self.node.floor.revoke, m.RevokeFloor(id="v"))
            return
        self._call(who, self.node.floor.revoke, m.RevokeFloor(id="v"))
        self._drop(self.speaker)

    @precondition(lambda self: self.queue or self.gone or self.speaker)
    @rule(who=st.sampled_from(MODERATORS), data=st.data())
    def revoke_an_entry(self, who: str, data: st.DataObject) -> None:
        entry = self._pick(data)
        command = m.RevokeFloor(id="v", entry=entry)
        listed = self._queued(entry) or (
            self.speaker if self.speaker is not None and self.speaker.entry == entry else None
        )
        if listed is None:
            with pytest.raises(FloorConflict):
                self._call(who, self.node.floor.revoke, command)
            return
        self._call(who, self.node.floor.revoke, command)
        self._drop(listed)

    @rule(who=st.sampled_from(MODERATORS), closed=st.booleans())
    def close(self, who: str, closed: bool) -> None:
        self._call(who, self.node.floor.close, m.CloseFloor(id="c", closed=closed))
        self.open = not closed

    # ---- time --------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([5, 60, SPEAKING_SECONDS - 1, SPEAKING_SECONDS + 1, 600]))
    def time_passes(self, seconds: int) -> None:
        self.clock.now += seconds
        announced = self.loop.run(self.node.floor.check_expiry())
        due = self.speaker is not None and not self.expired and self.clock.now >= self.ends
        assert announced == (1 if due else 0)
        if due and self.revoke_on_expiry:
            assert self.speaker is not None
            self._drop(self.speaker)
        elif due:
            self.expired = True

    # ---- what must always hold ---------------------------------------------------------------

    @invariant()
    def the_store_matches_the_model(self) -> None:
        self.loop.run(self._check())

    async def _check(self) -> None:
        store = self.node.floor.store
        floor = await store.read(SESSION)
        expected = ListState(
            self.open,
            tuple(e.entry for e in self.queue),
            None if self.speaker is None else self.speaker.entry,
            self.expired,
        )
        stored = ListState(
            floor.open,
            tuple(e.id for e in floor.queue),
            None if floor.speaker is None else floor.speaker.entry.id,
            floor.expired,
        )
        assert stored == expected
        listed = [*self.queue, *([self.speaker] if self.speaker else [])]
        subs = [e.sub for e in floor.queue] + ([floor.speaker.entry.sub] if floor.speaker else [])
        assert sorted(subs) == sorted(e.sub for e in listed)
        assert len(set(subs)) == len(subs)  # nobody listed twice
        assert await store.holder(SESSION) == (self.speaker.sub if self.speaker else None)
        # The store's keys hold exactly the listed entries: nothing left behind by a change.
        keys, client = store.keys(SESSION), self.node.client
        assert {_text(k): _text(v) for k, v in (await client.hgetall(keys.subs)).items()} == {
            e.sub: e.entry for e in listed
        }
        fields = {_text(k) for k in await client.hkeys(keys.entries)}
        assert fields == {f"{e.entry}{suffix}" for e in listed for suffix in ("", "|sub", "|by")}
        assert await client.zcard(keys.queue) == len(self.queue)
        assert replay(await store.audit(SESSION)) == stored


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.parametrize("revoke_on_expiry", [False, True], ids=["announce", "revoke"])
def test_the_speakers_list_always_matches_its_model_and_its_audit_trail(
    store_target: StoreTarget, revoke_on_expiry: bool
) -> None:
    SpeakersListModel.target = store_target
    SpeakersListModel.revoke_on_expiry = revoke_on_expiry
    run_state_machine_as_test(SpeakersListModel, settings=budget(30, steps=40))
