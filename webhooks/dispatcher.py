"""The webhook dispatcher: one per session cluster-wide, chosen by a lease in the store.

Every node runs a ``Dispatcher``. Each round it takes or renews the lease of every session it can
(``SET NX PX`` in a script); for each session it holds, a ``SessionDispatch`` derives webhooks from the
session's history into the outbox (``webhooks.events``) and runs one lane per target that sends the
outbox in seq order, one event at a time: a receiver sees a session's events in order. A target's
cursor moves only after a 2xx (or when an event is given up after the last attempt), so a node that
dies mid-delivery means the next holder sends that event again: delivery is at least once, and every
body carries a stable ``id`` to deduplicate on. A node stopping releases its leases, so another
continues at once; a killed node's leases lapse after ``lease_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from signaling.errors import StoreUnavailable
from signaling.service import cancel_all
from webhooks import signature
from webhooks.delivery import Cursor, Policy, Target, backoff, delivered
from webhooks.errors import DeliveryFailed, LeaseLost
from webhooks.events import Tracker, delivery_id, derive, fields_needed, parse, payload
from webhooks.metrics import DELIVERED, DROPPED, FAILED, MISSED, WebhookMetrics
from webhooks.outbox import Entry, HookStore

log = logging.getLogger("podium.webhooks")


@dataclass(frozen=True, slots=True)
class DispatchLimits:
    """The lease's length and how often it is renewed (and free ones taken), how often the history
    is polled, how far a target reads ahead, how much history one derivation step reads."""

    lease_ms: int = 10_000
    renew: float = 1.0
    poll: float = 0.25
    read_ahead: int = 100
    batch: int = 500


class SessionDispatch:
    """One session's webhooks on the node holding its lease: derivation and one lane per target."""

    def __init__(self, owner: Dispatcher, session: str) -> None:
        self.owner = owner
        self.session = session
        self.cursors: dict[str, Cursor] = {}
        self.wakes = {target.key: asyncio.Event() for target in owner.targets}

    async def prepare(self) -> None:
        """Sets where derivation and each target start (the first time; then read as stored)."""
        store, node = self.owner.store, self.owner.node
        await store.start(self.session, node)
        for target in self.owner.targets:
            self.cursors[target.key] = await store.cursor(self.session, node, target.key)

    async def run(self, prepared: bool = False) -> None:
        """Derives and delivers until cancelled or the lease is lost."""
        if not prepared:
            await self.prepare()
        lanes = [self._derive_loop(), *(self._lane(target) for target in self.owner.targets)]
        tasks = [asyncio.ensure_future(lane) for lane in lanes]
        try:
            # The first lane to fail (the lease lost, the store gone) stops them all; the
            # dispatcher's next round starts the session again if this node still may.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            # cancel_all cancels again a task whose store call swallowed the first request.
            await cancel_all(tasks)

    # ---- derivation ------------------------------------------------------------------------------

    async def _derive_loop(self) -> None:
        while True:
            more = await self.derive_once()
            if not more:
                await asyncio.sleep(self.owner.limits.poll)

    async def derive_once(self) -> bool:
        """Derives the next batch of history into the outbox; True when more is waiting."""
        store, limits = self.owner.store, self.owner.limits
        position = await store.position(self.session)
        if position.epoch is None:
            return False
        reset = position.epoch != position.derived_epoch
        after = 0 if reset else position.derived_seq
        if position.seq <= after:
            return False
        epoch, rows = await store.history(self.session, after, limits.batch)
        if epoch != position.epoch:
            return True  # a new epoch began between the two reads: read again
        frames = [f for row in rows if (f := parse(row.seq, row.audience, row.frame)) is not None]
        missed = (rows[0].seq if rows else position.seq + 1) - after - 1
        last = rows[-1].seq if rows else position.seq
        tracker = Tracker({} if reset else await store.tracked(self.session, fields_needed(frames)))
        hooks = [h for frame in frames if (h := derive(frame, tracker)) is not None]
        entries = [(h.seq, h.type, h.ts, payload(self.session, epoch, h)) for h in hooks]
        written = await store.append(
            self.session,
            self.owner.node,
            expected=position.raw,
            position=f"{epoch}:{last}",
            reset=reset,
            entries=entries,
            changed=tracker.changed,
        )
        if not written:
            return True
        if missed > 0:
            self.owner.metrics.count(MISSED, missed)
            log.warning("webhooks: history trimmed before it was read", extra={"missed": missed})
        if entries:
            for wake in self.wakes.values():
                wake.set()
        return len(rows) >= limits.batch

    # ---- delivery --------------------------------------------------------------------------------

    async def _lane(self, target: Target) -> None:
        store, limits = self.owner.store, self.owner.limits
        cursor = self.cursors[target.key]
        wake = self.wakes[target.key]
        while True:
            wake.clear()
            epoch, entries = await store.outbox(self.session, cursor.seq, limits.read_ahead)
            if epoch != cursor.epoch:
                cursor = Cursor(epoch, 0, 0)  # a new epoch: its outbox starts again
                continue
            if not entries:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await wake.wait()
                continue
            for entry in entries:
                if entry.epoch != cursor.epoch:
                    break
                if entry.n > cursor.n + 1:
                    # The outbox was trimmed past this target (it lagged by a whole outbox).
                    self.owner.metrics.count(DROPPED, entry.n - cursor.n - 1)
                await self.owner.deliver(target, self.session, entry)
                cursor = Cursor(entry.epoch, entry.seq, entry.n)
                await store.advance(self.session, self.owner.node, target.key, cursor)
                self.cursors[target.key] = cursor


class Dispatcher:
    """This node's part of webhook delivery: the leases it holds and their sessions' dispatch."""

    def __init__(
        self,
        store: HookStore,
        sessions: tuple[str, ...],
        targets: tuple[Target, ...],
        *,
        secret: str,
        policy: Policy,
        metrics: WebhookMetrics,
        node: str,
        limits: DispatchLimits | None = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.targets = targets
        self._secret = secret
        self.policy = policy
        self.metrics = metrics
        self.node = node
        self.limits = limits or DispatchLimits()
        self.clock = clock
        self.rand = rand
        self.running: dict[str, asyncio.Task[None]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Opens the HTTP client, takes the leases it can (ready before the node serves), loops."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.policy.timeout))
        try:
            await self.round(prepare=True)
        except StoreUnavailable:
            log.warning("webhooks: the store is unavailable; dispatch starts when it answers")
        self._loop = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stops every session's dispatch, releases the leases and closes the HTTP client."""
        if self._loop is not None:
            await cancel_all([self._loop])
        await cancel_all(list(self.running.values()))
        for session in list(self.running):
            with contextlib.suppress(StoreUnavailable):
                await self.store.release(session, self.node)
        self.running.clear()
        self.metrics.sessions.set(0)
        if self._http is not None:
            await self._http.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.limits.renew)
            try:
                await self.round()
            except StoreUnavailable:
                log.warning("webhooks: the store is unavailable; leases not renewed")
            except Exception:
                log.exception("webhooks: lease round failed")

    async def round(self, *, prepare: bool = False) -> None:
        """Takes or renews each session's lease; starts and stops sessions' dispatch to match.

        Args:
            prepare: set starting points before returning (at startup, so that events committed
                once the node serves are dispatched).
        """
        held = await asyncio.gather(
            *(self.store.acquire(s, self.node, self.limits.lease_ms) for s in self.sessions)
        )
        for session, mine in zip(self.sessions, held, strict=True):
            task = self.running.get(session)
            if not mine:
                if task is not None:
                    if task.done():
                        _report(session, task)
                    await cancel_all([task])
                    del self.running[session]
                continue
            if task is not None and not task.done():
                continue
            if task is not None:
                _report(session, task)
            dispatch = SessionDispatch(self, session)
            if prepare:
                try:
                    await dispatch.prepare()
                except LeaseLost:
                    continue  # another node took it between the two calls: it dispatches
            self.running[session] = asyncio.ensure_future(dispatch.run(prepared=prepare))
        self.metrics.sessions.set(len(self.running))

    async def deliver(self, target: Target, session: str, entry: Entry) -> bool:
        """Sends one event to one target, retrying with backoff; False when it was given up."""
        delivery = delivery_id(session, entry.epoch, entry.seq)
        for attempt in range(1, self.policy.attempts + 1):
            try:
                await self.send(target, entry, delivery, attempt)
            except DeliveryFailed as exc:
                self.metrics.count(FAILED)
                log.warning(
                    "webhooks: attempt failed",
                    extra={"target": target.key, "attempt": attempt, "reason": exc.reason,
                           "status": exc.status, "delivery": delivery},
                )  # fmt: skip
                if attempt < self.policy.attempts:
                    await asyncio.sleep(backoff(self.policy, attempt, self.rand))
                continue
            self.metrics.count(DELIVERED)
            self.metrics.latency.observe(max(0.0, self.clock() - entry.ts / 1000))
            return True
        self.metrics.count(DROPPED)
        log.error(
            "webhooks: event dropped after the last attempt",
            extra={"target": target.key, "delivery": delivery, "attempts": self.policy.attempts},
        )
        return False

    async def send(self, target: Target, entry: Entry, delivery: str, attempt: int) -> None:
        """One attempt.

        Raises:
            DeliveryFailed: not a 2xx answer, a timeout or a connection failure.
        """
        assert self._http is not None, "start() opens the HTTP client"
        headers = signature.headers(
            self._secret, entry.body, event=entry.type, delivery=delivery, attempt=attempt
        )
        try:
            async with self._http.post(
                target.url, data=entry.body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except TimeoutError:
            raise DeliveryFailed("timeout") from None
        except (aiohttp.ClientError, OSError):
            raise DeliveryFailed("connection") from None
        if not delivered(status):
            raise DeliveryFailed("status", status)


def _report(session: str, task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if isinstance(exc, LeaseLost):
        log.info("webhooks: lease lost", extra={"session": session})
    elif isinstance(exc, StoreUnavailable):
        log.warning("webhooks: store unavailable", extra={"session": session})
    elif exc is not None:
        log.error("webhooks: dispatch failed", exc_info=exc, extra={"session": session})
