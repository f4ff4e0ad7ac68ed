"""The question queue as a Hypothesis state machine run against the real store through the Q&A service.

People ask (and retry asks), vote and take votes back; two moderators approve, reject, answer,
archive and merge; a participant tries a moderator's action. After every step the stored queue must
equal a model kept by this test: each question in its one state, its votes the number of distinct
voters (the votes set and the count in the record alike, merged votes never counted twice), the
per-state counts right, and the audit trail replaying to the states stored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from moderation import messages as m
from moderation.errors import NotAllowed, QuestionConflict
from moderation.questions import QState
from signaling.identity import Role
from tests.conftest import StoreTarget, make_programme
from tests.properties.harness import Caller, Clock, Loop, Node, as_connection, budget, person

SESSION = "plenary"  # pre-moderated: every question starts pending
PEOPLE = ("ana", "ben", "chen", "dia")
MODERATORS = ("mod-1", "mod-2")
LIVE = frozenset({QState.PENDING, QState.APPROVED, QState.ANSWERED})

# What each moderator action may start from, and where it leaves the question.
DECISIONS: dict[str, tuple[frozenset[QState], QState]] = {
    "approve": (frozenset({QState.PENDING, QState.REJECTED}), QState.APPROVED),
    "reject": (frozenset({QState.PENDING, QState.APPROVED}), QState.REJECTED),
    "answer": (frozenset({QState.APPROVED}), QState.ANSWERED),
    "archive": (frozenset(QState) - {QState.ARCHIVED}, QState.ARCHIVED),
}


@dataclass
class Expected:
    """What the model says one question is."""

    author: str
    state: QState = QState.PENDING
    voters: set[str] = field(default_factory=set)
    merged_into: str = ""


def replay(audit: list[dict[str, Any]]) -> dict[str, QState]:
    """The states the audit trail leads to, from nothing, one recorded action at a time."""
    states: dict[str, QState] = {}
    for entry in audit:
        action, qid, detail = entry["action"], entry["question"], entry["detail"]
        if action == "ask":
            held = bool(detail.get("held"))
            states[qid] = QState.PENDING if held or _premoderated() else QState.APPROVED
        elif action in DECISIONS:
            assert QState(detail["from"]) is states[qid], f"{action} recorded from the wrong state"
            states[qid] = QState(detail["to"])
            assert states[qid] is DECISIONS[action][1]
        elif action == "merge":
            assert states[qid] in LIVE
            assert states[detail["into"]] in LIVE
            states[qid] = QState.ARCHIVED
    return states


def _premoderated() -> bool:
    session = make_programme().session(SESSION)
    assert session is not None
    return session.qna.premoderation


class QuestionQueueModel(RuleBasedStateMachine):
    """The queue of one session, on a node of its own, against the model."""

    target: StoreTarget

    def __init__(self) -> None:
        super().__init__()
        self.loop = Loop()
        self.clock = Clock(1_800_000_000.0)
        self.node = Node(self.target, make_programme(), self.clock)
        self.expected: dict[str, Expected] = {}
        self.keys: dict[str, tuple[str, str]] = {}  # ask key → (author, question)
        self.request = 0

    def teardown(self) -> None:
        self.loop.run(self.node.close())
        self.loop.close()

    # ---- helpers -----------------------------------------------------------------------------

    def _call(self, who: str, role: Role, handler: Any, command: Any) -> dict[str, Any]:
        self.clock.now += 1.0
        caller = as_connection(Caller(person(who, role), SESSION))
        result: dict[str, Any] = self.loop.run(handler(caller, command))
        return result

    def _id(self) -> str:
        self.request += 1
        return f"r{self.request}"

    def _pick(self, data: st.DataObject, fits: Any) -> str:
        # Mostly a question the action fits, so runs go deep; now and then any, for the refusals.
        ids = list(self.expected)  # in asking order: ids are random
        fitting = [qid for qid in ids if fits(self.expected[qid])]
        now_and_then = data.draw(st.integers(0, 4), label="fitting") == 0
        if fitting and not now_and_then:
            ids = fitting
        return data.draw(st.sampled_from(ids), label="question")

    def _moderate(self, who: str, action: str, qid: str, handler: Any, command: Any) -> None:
        starts, ends = DECISIONS[action]
        q = self.expected[qid]
        if q.state in starts:
            result = self._call(who, Role.MODERATOR, handler, command)
            assert result["question"]["state"] == ends.value
            q.state = ends
        else:
            with pytest.raises(QuestionConflict):
                self._call(who, Role.MODERATOR, handler, command)

    @initialize()
    def two_approved_questions(self) -> None:
        # Votes and merges need public questions with votes: every run starts with two, one
        # voter on each and one on both (merged, they must count once), so runs go deep.
        for who in PEOPLE[:2]:
            self.ask(who, anonymous=False, keyed=False)
            qid = list(self.expected)[-1]
            self._moderate(MODERATORS[0], "approve", qid, self.node.qna.approve,
                           m.Approve(id=self._id(), question=qid))  # fmt: skip
        first, second = self.expected
        for who, qid in ((PEOPLE[1], first), (PEOPLE[0], second), (PEOPLE[2], first),
                         (PEOPLE[2], second)):  # fmt: skip
            self._call(
                who, Role.PARTICIPANT, self.node.qna.vote, m.Vote(id=self._id(), question=qid)
            )
            self.expected[qid].voters.add(who)

    # ---- participants ------------------------------------------------------------------------

    @rule(who=st.sampled_from(PEOPLE), anonymous=st.booleans(), keyed=st.booleans())
    def ask(self, who: str, anonymous: bool, keyed: bool) -> None:
        key = f"key-{len(self.keys):04d}" if keyed else None
        text = f"What about item {len(self.expected)}?"
        command = m.Ask(id=self._id(), text=text, anonymous=anonymous, key=key)
        result = self._call(who, Role.PARTICIPANT, self.node.qna.ask, command)
        qid = result["question"]["id"]
        assert qid not in self.expected
        self.expected[qid] = Expected(author=who)
        if key is not None:
            self.keys[key] = (who, qid)

    @precondition(lambda self: self.keys)
    @rule(data=st.data())
    def retry_ask(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.keys)))
        who, qid = self.keys[key]
        command = m.Ask(id=self._id(), text="the same question, sent again", key=key)
        result = self._call(who, Role.PARTICIPANT, self.node.qna.ask, command)
        assert result["question"]["id"] == qid  # the first question back; nothing stored again

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), who=st.sampled_from(PEOPLE), add=st.booleans())
    def vote(self, data: st.DataObject, who: str, add: bool) -> None:
        qid = self._pick(data, lambda q: q.state is QState.APPROVED)
        q = self.expected[qid]
        command: m.Vote | m.Unvote = (m.Vote if add else m.Unvote)(id=self._id(), question=qid)
        open_for = {QState.APPROVED} if add else {QState.APPROVED, QState.ANSWERED}
        if q.state not in open_for:
            with pytest.raises(QuestionConflict):
                self._call(who, Role.PARTICIPANT, self.node.qna.vote, command)
            return
        result = self._call(who, Role.PARTICIPANT, self.node.qna.vote, command)
        if add:
            q.voters.add(who)
        else:
            q.voters.discard(who)
        assert result["votes"] == len(q.voters)

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), who=st.sampled_from(PEOPLE))
    def participant_tries_to_approve(self, data: st.DataObject, who: str) -> None:
        qid = data.draw(st.sampled_from(list(self.expected)))
        with pytest.raises(NotAllowed):
            self._call(
                who, Role.PARTICIPANT, self.node.qna.approve, m.Approve(id="x", question=qid)
            )

    # ---- moderators --------------------------------------------------------------------------

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), who=st.sampled_from(MODERATORS))
    def approve(self, data: st.DataObject, who: str) -> None:
        qid = self._pick(data, lambda q: q.state in DECISIONS["approve"][0])
        command = m.Approve(id=self._id(), question=qid)
        self._moderate(who, "approve", qid, self.node.qna.approve, command)

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), who=st.sampled_from(MODERATORS))
    def reject(self, data: st.DataObject, who: str) -> None:
        qid = self._pick(data, lambda q: q.state in DECISIONS["reject"][0])
        command = m.Reject(id=self._id(), question=qid, reason="off topic")
        self._moderate(who, "reject", qid, self.node.qna.reject, command)

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), who=st.sampled_from(MODERATORS))
    def answer(self, data: st.DataObject, who: str) -> None:
        qid = self._pick(data, lambda q: q.state in DECISIONS["answer"][0])
        command = m.MarkAnswered(id=self._id(), question=qid)
        self._moderate(who, "answer", qid, self.node.qna.mark_answered, command)

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), who=st.sampled_from(MODERATORS))
    def archive(self, data: st.DataObject, who: str) -> None:
        qid = self._pick(data, lambda q: q.state in DECISIONS["archive"][0])
        command = m.Archive(id=self._id(), question=qid)
        self._moderate(who, "archive", qid, self.node.qna.archive, command)

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), who=st.sampled_from(MODERATORS))
    def merge(self, data: st.DataObject, who: str) -> None:
        source = self._pick(data, lambda q: q.state in LIVE and bool(q.voters))
        target = self._pick(data, lambda q: q.state in LIVE)
        command = m.Merge(id=self._id(), source=source, target=target)
        s, t = self.expected[source], self.expected[target]
        if source == target or s.state not in LIVE or t.state not in LIVE:
            with pytest.raises(QuestionConflict):
                self._call(who, Role.MODERATOR, self.node.qna.merge, command)
            return
        result = self._call(who, Role.MODERATOR, self.node.qna.merge, command)
        s.state, s.merged_into = QState.ARCHIVED, target
        t.voters |= s.voters
        assert result["votes"] == len(t.voters)

    # ---- what must always hold ---------------------------------------------------------------

    @invariant()
    def the_store_matches_the_model(self) -> None:
        self.loop.run(self._check())

    async def _check(self) -> None:
        store = self.node.qna.store
        stored = {q.id: q for q in await store.all(SESSION)}
        assert set(stored) == set(self.expected)
        for qid, q in stored.items():
            want = self.expected[qid]
            assert q.state is want.state, qid
            assert q.merged_into == want.merged_into, qid
            voters = set(await store.voters(SESSION, qid))
            assert voters == want.voters, qid  # one vote per person, merged ones once
            assert q.votes == len(voters), qid  # the count in the record agrees with the set
        counts = {s.value: n for s, n in Counter(q.state for q in stored.values()).items()}
        assert await store.counts(SESSION) == counts  # each question counted in exactly one state
        replayed = replay(await store.audit(SESSION))
        assert replayed == {qid: q.state for qid, q in stored.items()}


def test_the_question_queue_always_matches_its_model_and_its_audit_trail(
    store_target: StoreTarget,
) -> None:
    QuestionQueueModel.target = store_target
    run_state_machine_as_test(QuestionQueueModel, settings=budget(50, steps=40))
