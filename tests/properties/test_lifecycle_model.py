"""The session lifecycle as a Hypothesis state machine run against the real store through the service.

Operators ask for any state of any session while the schedule ticks at a clock the test moves
(minutes to days). After every step each session's stored state equals a model kept by this test,
and its event stream shows only allowed transitions, one event per change, each starting where the
last one ended, with seq strictly increasing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from signaling.errors import InvalidTransition
from signaling.lifecycle import State
from tests.conftest import StoreTarget, make_programme
from tests.properties.harness import Clock, Loop, Node, budget

ORDER = ("scheduled", "open", "live", "closed", "archived")
# The only ways back an operator has: pause a live session, reopen a closed one, un-open.
BACK = frozenset({("live", "open"), ("closed", "live"), ("open", "scheduled")})
OPEN_BEFORE = timedelta(minutes=15)
ARCHIVE_AFTER = timedelta(hours=12)
START = 1_800_000_000.0


@dataclass
class Expected:
    """What the model says one session's lifecycle is, and how many changes it has seen."""

    state: str = "scheduled"
    held: bool = False
    changes: int = 0


def by_schedule(start: datetime, end: datetime, now: datetime) -> str:
    """The state the programme alone gives a session at ``now``."""
    if now >= end + ARCHIVE_AFTER:
        return "archived"
    if now >= end:
        return "closed"
    if now >= start:
        return "live"
    return "open" if now >= start - OPEN_BEFORE else "scheduled"


def allowed(previous: str, state: str, by: str, held: bool) -> bool:
    """Whether an event's transition is one the lifecycle permits."""
    forward = ORDER.index(state) > ORDER.index(previous)
    if previous == "archived" or previous == state:
        return False
    if by == "schedule":
        return forward and not held
    return by == "operator" and (forward or (previous, state) in BACK) and held is (not forward)


class LifecycleModel(RuleBasedStateMachine):
    """Every session of the test programme, on a node of its own, against the model."""

    target: StoreTarget

    def __init__(self) -> None:
        super().__init__()
        self.loop = Loop()
        self.clock = Clock(START)
        self.programme = make_programme(datetime.fromtimestamp(START, UTC))
        self.node = Node(self.target, self.programme, self.clock)
        self.expected = {s.id: Expected() for s in self.programme.sessions}

    def teardown(self) -> None:
        self.loop.run(self.node.close())
        self.loop.close()

    @rule(
        session=st.sampled_from(["plenary", "workshop", "open-forum"]),
        wanted=st.sampled_from(ORDER),
    )
    def operator_sets(self, session: str, wanted: str) -> None:
        now = self.expected[session]
        forward = ORDER.index(wanted) > ORDER.index(now.state)
        if (
            now.state == "archived"
            or wanted == now.state
            or (not forward and (now.state, wanted) not in BACK)
        ):
            with pytest.raises(InvalidTransition):
                self.loop.run(self.node.signaling.set_state(session, State(wanted)))
            return
        transition = self.loop.run(self.node.signaling.set_state(session, State(wanted)))
        assert (transition.previous, transition.state) == (now.state, wanted)
        now.state, now.held, now.changes = wanted, not forward, now.changes + 1

    @rule(minutes=st.sampled_from([1, 6, 30, 60 * 3, 60 * 13, 60 * 24]))
    def the_schedule_ticks(self, minutes: int) -> None:
        self.clock.now += minutes * 60
        at = datetime.fromtimestamp(self.clock.now, UTC)
        moves = {}
        for s in self.programme.sessions:
            now = self.expected[s.id]
            goal = by_schedule(s.start, s.end, at)
            if not now.held and ORDER.index(goal) > ORDER.index(now.state):
                moves[s.id] = (now.state, goal)
                now.state, now.changes = goal, now.changes + 1
        moved = self.loop.run(self.node.signaling.tick())
        assert {sid: (t.previous.value, t.state.value) for sid, t in moved} == moves

    @invariant()
    def the_store_and_the_stream_match_the_model(self) -> None:
        for session, want in self.expected.items():
            lifecycle = self.loop.run(self.node.sessions.lifecycle(session))
            assert (lifecycle.state.value, lifecycle.held) == (want.state, want.held), session
            _, seq = self.loop.run(self.node.sessions.position(session))
            frames = [
                json.loads(e.frame)
                for e in self.loop.run(self.node.sessions.range(session, 0, seq))
            ]
            changes = [f for f in frames if f["name"] == "session.state"]
            assert len(changes) == want.changes, session  # each change is one event
            seqs = [f["seq"] for f in frames]
            assert seqs == sorted(set(seqs)), session  # strictly increasing
            state = "scheduled"
            for event in changes:
                data = event["data"]
                assert data["previous"] == state, session  # each starts where the last ended
                assert allowed(data["previous"], data["state"], data["by"], data["held"]), data
                state = data["state"]
            assert state == want.state


def test_the_session_lifecycle_only_ever_makes_allowed_transitions_one_event_each(
    store_target: StoreTarget,
) -> None:
    LifecycleModel.target = store_target
    run_state_machine_as_test(LifecycleModel, settings=budget(80, steps=30))
