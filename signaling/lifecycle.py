"""The session lifecycle as a pure state machine: scheduled → open → live → closed → archived."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from signaling.errors import InvalidTransition

Actor = Literal["schedule", "operator"]


class State(StrEnum):
    """A session's lifecycle state, in order."""

    SCHEDULED = "scheduled"
    OPEN = "open"
    LIVE = "live"
    CLOSED = "closed"
    ARCHIVED = "archived"

    @property
    def rank(self) -> int:
        """Position in the lifecycle (scheduled = 0)."""
        return _ORDER.index(self)


_ORDER: tuple[State, ...] = tuple(State)

# Operators may move forward any number of steps, and back in the few ways a real event needs:
# pause a live session (live → open), reopen a closed one (closed → live), or un-open (open → scheduled).
_OPERATOR_BACKWARD: frozenset[tuple[State, State]] = frozenset(
    {(State.LIVE, State.OPEN), (State.CLOSED, State.LIVE), (State.OPEN, State.SCHEDULED)}
)


@dataclass(frozen=True, slots=True)
class Timing:
    """When the schedule moves a session: doors open before the start, archive after the end."""

    open_before: timedelta = timedelta(minutes=15)
    archive_after: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A session's current lifecycle: its state and whether an operator holds it against the schedule."""

    state: State = State.SCHEDULED
    held: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state, the event every client sees."""

    previous: State
    state: State
    by: Actor
    held: bool


def scheduled_state(start: datetime, end: datetime, now: datetime, timing: Timing) -> State:
    """Returns the state the schedule alone gives a session at ``now``."""
    if now >= end + timing.archive_after:
        return State.ARCHIVED
    if now >= end:
        return State.CLOSED
    if now >= start:
        return State.LIVE
    if now >= start - timing.open_before:
        return State.OPEN
    return State.SCHEDULED


def operator_transition(current: Lifecycle, target: State) -> Transition:
    """Decides an operator's change of state.

    Args:
        current: the session's lifecycle now.
        target: the state the operator asks for.

    Returns:
        The transition; a backward move holds the session so the schedule does not undo it.

    Raises:
        InvalidTransition: the target is the current state, the session is archived, or the move
            goes backward in a way the lifecycle does not allow.
    """
    if target == current.state:
        raise InvalidTransition(f"the session is already {target}")
    if current.state is State.ARCHIVED:
        raise InvalidTransition("an archived session cannot change state")
    backward = target.rank < current.state.rank
    if backward and (current.state, target) not in _OPERATOR_BACKWARD:
        raise InvalidTransition(f"cannot go from {current.state} back to {target}")
    return Transition(previous=current.state, state=target, by="operator", held=backward)


def schedule_transition(
    current: Lifecycle, start: datetime, end: datetime, now: datetime, timing: Timing
) -> Transition | None:
    """Decides what the schedule does to a session at ``now``: it only ever moves forward.

    Returns:
        The transition, or None when the schedule leaves the session as it is (it is already at or past
        the scheduled state, or an operator holds it).
    """
    if current.held:
        return None
    target = scheduled_state(start, end, now, timing)
    if target.rank <= current.state.rank:
        return None
    return Transition(previous=current.state, state=target, by="schedule", held=False)
