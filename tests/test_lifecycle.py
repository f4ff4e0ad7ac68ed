"""The session lifecycle state machine (pure: no loop, time passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signaling.errors import InvalidTransition
from signaling.lifecycle import (
    Lifecycle,
    State,
    Timing,
    operator_transition,
    schedule_transition,
    scheduled_state,
)

START = datetime(2027, 5, 24, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
TIMING = Timing(open_before=timedelta(minutes=15), archive_after=timedelta(hours=12))


@pytest.mark.parametrize(
    ("offset", "state"),
    [
        (timedelta(hours=-1), State.SCHEDULED),
        (timedelta(minutes=-15), State.OPEN),
        (timedelta(0), State.LIVE),
        (timedelta(hours=2), State.CLOSED),
        (timedelta(hours=14), State.ARCHIVED),
    ],
)
def test_schedule_alone_gives_each_state_at_its_time(offset: timedelta, state: State) -> None:
    assert scheduled_state(START, END, START + offset, TIMING) is state


def test_schedule_moves_a_session_forward_to_where_the_clock_says() -> None:
    moved = schedule_transition(Lifecycle(), START, END, START + timedelta(minutes=1), TIMING)
    assert moved is not None
    assert (moved.previous, moved.state, moved.by, moved.held) == (
        State.SCHEDULED,
        State.LIVE,
        "schedule",
        False,
    )


def test_schedule_never_moves_a_session_backward() -> None:
    closed_early = Lifecycle(State.CLOSED)
    assert schedule_transition(closed_early, START, END, START, TIMING) is None


def test_schedule_leaves_a_session_an_operator_holds() -> None:
    held = Lifecycle(State.OPEN, held=True)
    assert schedule_transition(held, START, END, START + timedelta(minutes=5), TIMING) is None


def test_operator_may_skip_forward() -> None:
    moved = operator_transition(Lifecycle(State.SCHEDULED), State.LIVE)
    assert (moved.state, moved.by, moved.held) == (State.LIVE, "operator", False)


@pytest.mark.parametrize(
    ("current", "target"),
    [(State.LIVE, State.OPEN), (State.CLOSED, State.LIVE), (State.OPEN, State.SCHEDULED)],
)
def test_operator_may_step_back_in_the_allowed_ways_and_holds_the_session(
    current: State, target: State
) -> None:
    moved = operator_transition(Lifecycle(current), target)
    assert moved.held is True


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (State.LIVE, State.LIVE),
        (State.ARCHIVED, State.LIVE),
        (State.CLOSED, State.SCHEDULED),
        (State.LIVE, State.SCHEDULED),
    ],
)
def test_operator_transitions_the_lifecycle_refuses(current: State, target: State) -> None:
    with pytest.raises(InvalidTransition):
        operator_transition(Lifecycle(current), target)


def test_states_are_ranked_in_lifecycle_order() -> None:
    assert [s.rank for s in State] == [0, 1, 2, 3, 4]
