"""What the property tests share: their budget, a clock they move, and a node's services on the real store.

A state machine owns an event loop and runs each step on it to completion, so a step is one whole
command as a node would handle it: the real service, the real store scripts, the real Redis.

The budget is fixed so ``make test`` stays fast (about 35 s for the package, 60 s under coverage); a
longer run sets ``PODIUM_HYPOTHESIS_EXAMPLES`` for every test of the package (1000: about ten minutes,
most of it in the state machines)::

    PODIUM_HYPOTHESIS_EXAMPLES=1000 .venv/bin/python -m pytest -q --timeout=0 tests/properties
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry

from moderation.floor_service import FloorLimits, FloorService
from moderation.floor_store import FloorStore
from moderation.metrics import FloorMetrics, QnaMetrics
from moderation.service import QnaLimits, QnaService
from moderation.store import QuestionStore
from signaling.fanout import Hub
from signaling.identity import Identity, Mode, Role, TokenKeys
from signaling.metrics import SignalingMetrics
from signaling.presence import PresenceStore
from signaling.programme import Programme
from signaling.service import SignalingService
from signaling.store import SessionStore
from tests.conftest import SECRET, StoreTarget, store_admin

if TYPE_CHECKING:
    from signaling.connection import Connection

T = TypeVar("T")

EXAMPLES_VARIABLE = "PODIUM_HYPOTHESIS_EXAMPLES"


def budget(examples: int, *, steps: int | None = None) -> settings:
    """Hypothesis settings with a fixed number of examples, or ``PODIUM_HYPOTHESIS_EXAMPLES``'s.

    Args:
        examples: the examples ``make test`` runs.
        steps: the most steps of one state machine run.
    """
    longer = int(os.environ.get(EXAMPLES_VARIABLE) or 0)
    return settings(
        max_examples=longer or examples,
        stateful_step_count=steps or 50,
        deadline=None,
        # No example database: the tree stays clean, and a failure prints its example to keep.
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@dataclass
class Clock:
    """Wall-clock seconds that move only when a test moves them."""

    now: float

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True, slots=True)
class Caller:
    """A connection as the command handlers see it: the verified identity and the joined session."""

    identity: Identity
    session: str


def person(sub: str, role: Role, *, name: str = "", mode: Mode = "remote") -> Identity:
    """An identity as a verified token gives it."""
    return Identity(
        sub=sub,
        name=name or sub,
        role=role,
        sessions=("*",),
        mode=mode,
        group="civil-society",
        country="CH",
    )


def as_connection(caller: Caller) -> Connection:
    """The caller where a handler expects a connection (it reads only ``identity`` and ``session``)."""
    return cast("Connection", caller)


class Node:
    """One node's signaling, Q&A and floor services on the test store, under a key prefix of its own.

    Nothing runs in the background but what a command spawns (a coalesced broadcast): the schedule
    tick and the floor's timer run only when a test calls them, at the clock's time.
    """

    def __init__(self, target: StoreTarget, programme: Programme, clock: Clock) -> None:
        self.client = store_admin(target)
        self.prefix = "prop" + uuid.uuid4().hex[:12]
        self.sessions = SessionStore(self.client, prefix=self.prefix, history_size=100_000)
        registry = CollectorRegistry()
        ids = programme.session_ids
        metrics = SignalingMetrics(registry, ids)
        self.signaling = SignalingService(
            programme=programme,
            store=self.sessions,
            presence=PresenceStore(self.client, prefix=self.prefix, node="node-prop"),
            hub=Hub(self.client, self.sessions, metrics, clock=clock),
            metrics=metrics,
            token_keys=TokenKeys(SECRET),
            clock=clock,
        )
        # Rate limits far above what a run asks: the models check the queues, not the limits.
        self.qna = QnaService(
            self.signaling,
            QuestionStore(self.sessions),
            QnaMetrics(registry, ids),
            limits=QnaLimits(questions_per_window=1_000_000),
            clock=clock,
        )
        self.floor = FloorService(
            self.signaling,
            FloorStore(self.sessions),
            FloorMetrics(registry, ids),
            limits=FloorLimits(requests_per_window=1_000_000),
            clock=clock,
        )

    async def close(self) -> None:
        """Stops what commands spawned, deletes the node's keys and closes the client."""
        await self.signaling.stop()
        doomed = [key async for key in self.client.scan_iter(match="{" + self.prefix + ":*")]
        for key in doomed:
            await self.client.delete(key)
        await self.client.aclose()


class Loop:
    """An event loop a state machine owns for one run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs one coroutine to completion."""
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        """Closes the loop (after the node that used it)."""
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
