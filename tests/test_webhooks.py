"""Webhooks end to end: real nodes and a real store post signed events to a real receiver (an aiohttp
server on loopback) — once each, in sequence order, retried after failures, continued by the node that
takes over a session's lease."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from config.appkeys import SIGNALING, STREAMING
from config.settings import Settings
from signaling.client import PodiumClient
from signaling.identity import Role
from signaling.service import cancel_all
from signaling.store import SessionStore
from streaming.channels import ChannelRecord, ChannelSpec, Kind, channel_view
from tests.conftest import ClientFactory, NodeFactory, app_of, operator_headers, token
from webhooks.delivery import Policy, Target
from webhooks.dispatcher import Dispatcher, DispatchLimits
from webhooks.errors import LeaseLost
from webhooks.metrics import WebhookMetrics
from webhooks.outbox import HookStore
from webhooks.signature import verify

pytestmark = pytest.mark.both_stores

SECRET = "webhook-secret-for-podium-tests-0123456789"


@dataclass
class Receiver:
    """A webhook receiver on loopback: records every request; the first ``failures`` get a 500, the
    first is answered only once ``gate`` opens, and each after ``delay`` seconds. With ``only``, it
    answers other event types at once and records nothing of them (the schedule may move a session
    while a node starts)."""

    failures: int = 0
    requests: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    server: TestServer | None = None
    gate: asyncio.Event | None = None
    delay: float = 0.0
    only: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not request.headers["X-Podium-Event"].startswith(self.only):
            return web.Response(status=204)
        self.requests.append((body, dict(request.headers)))
        if self.gate is not None and len(self.requests) == 1:
            await self.gate.wait()
        await asyncio.sleep(self.delay)
        if len(self.requests) <= self.failures:
            return web.Response(status=500)
        return web.Response(status=204)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hooks/podium"))

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """The bodies of the requests answered 2xx, in arrival order."""
        return [json.loads(body) for body, _ in self.requests[self.failures :]]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The delivered bodies once there are ``count``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while len(self.delivered) < count:
            assert time.monotonic() < deadline, f"got {len(self.delivered)} of {count} webhooks"
            await asyncio.sleep(0.02)
        return self.delivered


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running receiver."""
    hooks = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/podium", hooks.handle)
    hooks.server = TestServer(app, host="127.0.0.1")
    await hooks.server.start_server()
    yield hooks
    await hooks.server.close()


def _hooked(receiver: Receiver, **changes: Any) -> dict[str, Any]:
    return {"webhook_urls": (receiver.url,), "webhook_secret": SECRET,
            "webhook_backoff": 0.05, "webhook_backoff_cap": 0.2, **changes}  # fmt: skip


async def _metric(server: TestServer, result: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/metrics")) as resp:
        text = await resp.text()
    line = f'podium_webhook_deliveries_total{{result="{result}"}} '
    return float(next(x for x in text.splitlines() if x.startswith(line)).rsplit(" ", 1)[1])


async def _event(client: PodiumClient, name: str, test: Callable[[dict[str, Any]], bool]) -> None:
    while True:
        event = await client.next_event(5.0)
        if event.get("name") == name and test(event["data"]):
            return


async def _set_channel(server: TestServer, channel: str, live: bool) -> None:
    """A channel's record and its ``stream.channel`` event, written as the streaming service does
    (no media needed: the event is what webhooks read)."""
    streaming = app_of(server)[STREAMING]
    spec = ChannelSpec(channel, Kind.LANGUAGE)
    now = int(time.time() * 1000)
    record = (
        ChannelRecord().went_live("a-node", now, 60_000)
        if live
        else ChannelRecord().went_offline("deleted", now)
    )
    await streaming.store.write(
        "plenary", channel, record, channel_view("plenary", spec, record, now)
    )


async def test_a_receiver_gets_every_decision_of_a_session_on_two_nodes_once_in_order_and_signed(
    node_factory: NodeFactory, connect: ClientFactory, receiver: Receiver
) -> None:
    first = await node_factory(**_hooked(receiver))
    second = await node_factory(**_hooked(receiver))
    # The schedule may have moved the sessions while the nodes started (those are webhooks too);
    # this test looks at what comes after.
    _, start = await app_of(first)[SIGNALING].store.position("plenary")
    chair = await connect(first, token(Role.MODERATOR, sub="chair", name="Maria"))
    amina = await connect(second, token(sub="amina", name="Amina"))
    li = await connect(second, token(sub="li", name="Li"))

    asked = (await amina.request("qa.ask", text="How is it funded?", lang="en"))["question"]["id"]
    await chair.request("qa.approve", question=asked)  # 1 question.approved
    await li.request("qa.vote", question=asked)  # votes: no webhook
    await chair.request("qa.label", question=asked, labels=["budget"])  # a label: none
    await chair.request("qa.answer", question=asked)  # 2 question.answered
    rude = (await li.request("qa.ask", text="Why so slow?", lang="en"))["question"]["id"]
    await chair.request("qa.reject", question=rude, reason="off topic")  # 3 question.rejected
    entry = (await amina.request("floor.request"))["entry"]  # a request: none
    await chair.request("floor.grant", entry=entry)  # 4 floor.granted
    await chair.request("floor.revoke")  # 5 floor.ended
    await _set_channel(second, "fr", live=True)  # 6 channel.live
    async with aiohttp.ClientSession() as http:
        async with http.put(
            second.make_url("/api/v1/sessions/plenary/channels/fr/external"),
            json={"url": "https://cdn.example.org/fr.m3u8"},
            headers=operator_headers(),
        ) as resp:
            assert resp.status == 200  # an external URL: no webhook
        await _set_channel(first, "fr", live=False)  # 7 channel.offline
        async with http.post(
            second.make_url("/api/v1/sessions/plenary/state"),
            json={"state": "closed"},
            headers=operator_headers(),
        ) as resp:
            assert resp.status == 200  # 8 session.state

    def after_start() -> list[tuple[dict[str, Any], bytes, dict[str, str]]]:
        return [
            (json.loads(raw), raw, headers)
            for raw, headers in receiver.requests
            if json.loads(raw)["session"] == "plenary" and json.loads(raw)["seq"] > start
        ]

    deadline = time.monotonic() + 10
    while len(after_start()) < 8:
        assert time.monotonic() < deadline, f"got {len(after_start())} of 8 webhooks"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # nothing else comes
    received = after_start()
    bodies = [body for body, _, _ in received]
    assert [b["type"] for b in bodies] == [
        "question.approved",
        "question.answered",
        "question.rejected",
        "floor.granted",
        "floor.ended",
        "channel.live",
        "channel.offline",
        "session.state",
    ]
    seqs = [b["seq"] for b in bodies]
    assert seqs == sorted(set(seqs))
    assert len({b["id"] for b in bodies}) == 8
    for body, raw, headers in received:
        assert verify(SECRET, raw, headers["X-Podium-Signature"])
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Podium-Event"] == body["type"]
        assert (
            headers["X-Podium-Delivery"] == body["id"] == f"plenary:{body['epoch']}:{body['seq']}"
        )
        assert body["session"] == "plenary"
        assert body["at"].endswith("Z")
    approved, answered, rejected, granted, ended, live, offline, state = (b["data"] for b in bodies)
    assert approved["question"]["id"] == asked
    assert approved["previous"] == "pending"
    assert "author" not in approved["question"]
    assert answered["question"]["labels"] == ["budget"]
    assert rejected["question"]["reason"] == "off topic"
    assert (granted["speaker"]["entry"], granted["speaker"]["name"]) == (entry, "Amina")
    assert ended == {"entry": entry, "reason": "revoked", "speaker": granted["speaker"]}
    assert (live["channel"]["id"], live["channel"]["state"]) == ("fr", "live")
    assert offline["channel"]["state"] == "offline"
    assert (state["state"], state["previous"]) == ("closed", "live")
    # The first node took every session's lease at start; the second sent nothing.
    assert await _metric(first, "delivered") >= 8
    assert await _metric(second, "delivered") == 0


async def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_try_then_the_next_in_order(
    node_factory: NodeFactory, connect: ClientFactory, receiver: Receiver
) -> None:
    receiver.only = "question."
    receiver.failures = 2
    node = await node_factory(**_hooked(receiver))
    chair = await connect(node, token(Role.MODERATOR, sub="chair", name="Maria"))
    ids = [
        (await chair.request("qa.ask", text=f"Question {n}?", lang="en"))["question"]["id"]
        for n in range(3)
    ]
    for qid in ids:
        await chair.request("qa.approve", question=qid)

    bodies = await receiver.wait_for(3)
    assert [b["data"]["question"]["id"] for b in bodies] == ids
    tries = [(json.loads(raw)["id"], h["X-Podium-Attempt"]) for raw, h in receiver.requests]
    first = bodies[0]["id"]
    assert tries == [(first, "1"), (first, "2"), (first, "3"), (bodies[1]["id"], "1"),
                     (bodies[2]["id"], "1")]  # fmt: skip
    assert len({raw for raw, _ in receiver.requests[:3]}) == 1  # the same bytes each time
    assert await _metric(node, "failed") == 2
    assert await _metric(node, "dropped") == 0


async def test_an_event_the_receiver_keeps_refusing_is_dropped_counted_and_the_next_delivered(
    node_factory: NodeFactory, connect: ClientFactory, receiver: Receiver
) -> None:
    receiver.only = "question."
    receiver.failures = 2
    node = await node_factory(**_hooked(receiver, webhook_attempts=2))
    chair = await connect(node, token(Role.MODERATOR, sub="chair", name="Maria"))
    for text in ("Dropped?", "Delivered?"):
        qid = (await chair.request("qa.ask", text=text, lang="en"))["question"]["id"]
        await chair.request("qa.approve", question=qid)

    (body,) = await receiver.wait_for(1)
    assert body["data"]["question"]["text"] == "Delivered?"
    assert await _metric(node, "dropped") == 1
    assert await _metric(node, "failed") == 2


async def test_a_receiver_that_is_down_is_retried_until_it_answers(
    node_factory: NodeFactory, connect: ClientFactory, receiver: Receiver
) -> None:
    receiver.only = "question."
    assert receiver.server is not None
    port = receiver.server.port
    hooked = _hooked(receiver, webhook_backoff=0.2, webhook_backoff_cap=0.2)
    await receiver.server.close()  # nothing listens on the URL: connection refused
    node = await node_factory(**hooked)
    chair = await connect(node, token(Role.MODERATOR, sub="chair", name="Maria"))
    qid = (await chair.request("qa.ask", text="Anyone there?", lang="en"))["question"]["id"]
    await chair.request("qa.approve", question=qid)
    deadline = time.monotonic() + 5
    while await _metric(node, "failed") < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    app = web.Application()
    app.router.add_post("/hooks/podium", receiver.handle)
    receiver.server = TestServer(app, host="127.0.0.1", port=port)  # back on the same port
    await receiver.server.start_server()

    (body,) = await receiver.wait_for(1)
    assert body["data"]["question"]["id"] == qid
    assert await _metric(node, "dropped") == 0


# ---- the lease: one dispatcher per session, another continuing from the cursor -------------------

FAST = DispatchLimits(lease_ms=600, renew=0.1, poll=0.05)


@pytest.fixture
async def sessions(redis_client: aioredis.Redis, settings: Settings) -> SessionStore:
    """The store of the test's sessions (under the test's own prefix)."""
    return SessionStore(
        redis_client, prefix=settings.key_prefix, history_size=settings.history_size
    )


def _dispatcher(sessions: SessionStore, receiver: Receiver, node: str) -> Dispatcher:
    return Dispatcher(
        HookStore(sessions),
        ("plenary", "open-forum"),
        (Target.of(receiver.url),),
        secret=SECRET,
        policy=Policy(attempts=3, backoff=0.05, backoff_cap=0.1, timeout=2.0),
        metrics=WebhookMetrics(CollectorRegistry()),
        node=node,
        limits=FAST,
    )


async def _states(sessions: SessionStore, *states: str, session: str = "plenary") -> None:
    for state in states:
        await sessions.append(session, "session.state", {"state": state, "previous": "x"})


async def _crash(dispatcher: Dispatcher) -> None:
    """Stops a dispatcher the way a killed node does: no lease released, no goodbye."""
    assert dispatcher._loop is not None
    await cancel_all([dispatcher._loop, *dispatcher.running.values()])
    dispatcher.running.clear()
    dispatcher._loop = None
    await dispatcher.stop()  # closes its HTTP client; holds no task, so releases nothing


async def test_one_node_dispatches_a_session_and_another_takes_over_from_the_cursor_when_it_dies(
    sessions: SessionStore, receiver: Receiver
) -> None:
    one = _dispatcher(sessions, receiver, "node-1")
    two = _dispatcher(sessions, receiver, "node-2")
    await one.start()
    await two.start()
    try:
        assert set(one.running) == {"plenary", "open-forum"}
        assert two.running == {}
        await _states(sessions, "open", "live")
        await receiver.wait_for(2)
        await _crash(one)
        await _states(sessions, "closed", "archived")  # while nobody dispatches

        bodies = await receiver.wait_for(4)
        await asyncio.sleep(0.3)
        assert [b["data"]["state"] for b in receiver.delivered] == [
            "open", "live", "closed", "archived"
        ]  # fmt: skip
        assert [b["seq"] for b in bodies] == [1, 2, 3, 4]
        assert set(two.running) == {"plenary", "open-forum"}
        # The dead node's dispatch can write nothing more: every write is fenced by the lease.
        with pytest.raises(LeaseLost):
            await HookStore(sessions).start("plenary", "node-1")
    finally:
        await two.stop()


async def test_a_node_that_stops_hands_its_sessions_over_at_once_without_duplicates(
    sessions: SessionStore, receiver: Receiver
) -> None:
    one = _dispatcher(sessions, receiver, "node-1")
    two = _dispatcher(sessions, receiver, "node-2")
    await one.start()
    await two.start()
    try:
        await _states(sessions, "open")
        await _states(sessions, "live", session="open-forum")
        await receiver.wait_for(2)
        await one.stop()  # releases its leases
        await _states(sessions, "live", "closed")
        await _states(sessions, "closed", session="open-forum")
        bodies = await receiver.wait_for(5, timeout=2.0)
        await asyncio.sleep(0.3)
        assert len(receiver.delivered) == 5
        assert len({b["id"] for b in bodies}) == 5
        by_session = {
            s: [(b["seq"], b["data"]["state"]) for b in bodies if b["session"] == s]
            for s in ("plenary", "open-forum")
        }
        assert by_session == {
            "plenary": [(1, "open"), (2, "live"), (3, "closed")],
            "open-forum": [(1, "live"), (2, "closed")],
        }
    finally:
        await two.stop()


async def test_history_trimmed_before_dispatch_read_it_is_counted_missed_and_the_rest_delivered(
    sessions: SessionStore, receiver: Receiver, settings: Settings
) -> None:
    one = _dispatcher(sessions, receiver, "node-1")
    await one.start()  # sets where dispatch starts
    await one.stop()
    await _states(sessions, *(f"s{n}" for n in range(settings.history_size + 10)))
    two = _dispatcher(sessions, receiver, "node-2")
    await two.start()
    try:
        bodies = await receiver.wait_for(settings.history_size)
        assert [b["seq"] for b in bodies] == list(range(11, settings.history_size + 11))
        assert two.metrics.deliveries.labels("missed")._value.get() == 10
    finally:
        await two.stop()


async def test_dispatch_that_starts_mid_session_tells_only_what_happens_next(
    node_factory: NodeFactory, connect: ClientFactory, receiver: Receiver
) -> None:
    receiver.only = "question."
    plain = await node_factory()  # no webhooks configured
    chair = await connect(plain, token(Role.MODERATOR, sub="chair", name="Maria"))
    amina = await connect(plain, token(sub="amina", name="Amina"))
    asked = (await amina.request("qa.ask", text="Before?", lang="en"))["question"]["id"]
    await chair.request("qa.approve", question=asked)
    entry = (await amina.request("floor.request"))["entry"]
    await chair.request("floor.grant", entry=entry)

    hooked = await node_factory(**_hooked(receiver))
    await chair.request("qa.label", question=asked, labels=["later"])  # no decision
    li = await connect(hooked, token(sub="li", name="Li"))
    await li.request("floor.request")  # the list shows the same speaker again
    await _event(chair, "floor.list", lambda d: len(d["queue"]) == 1)
    await chair.request("qa.answer", question=asked)

    (body,) = await receiver.wait_for(1)
    await asyncio.sleep(0.5)
    assert len(receiver.delivered) == 1
    assert body["type"] == "question.answered"
    assert body["data"]["previous"] == "approved"


async def test_a_node_without_webhook_urls_dispatches_nothing(
    node: TestServer, connect: ClientFactory, settings: Settings
) -> None:
    chair = await connect(node, token(Role.MODERATOR, sub="chair", name="Maria"))
    qid = (await chair.request("qa.ask", text="Quiet?", lang="en"))["question"]["id"]
    await chair.request("qa.approve", question=qid)
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        assert await client.keys(f"{{{settings.key_prefix}:plenary}}:hook:*") == []
    finally:
        await client.aclose()
    assert await _metric(node, "delivered") == 0


async def test_a_receiver_too_slow_to_answer_is_retried_as_a_failed_attempt(
    node_factory: NodeFactory, connect: ClientFactory, receiver: Receiver
) -> None:
    receiver.only = "question."
    receiver.delay = 0.5
    node = await node_factory(**_hooked(receiver, webhook_timeout=0.2))
    chair = await connect(node, token(Role.MODERATOR, sub="chair", name="Maria"))
    qid = (await chair.request("qa.ask", text="Slow?", lang="en"))["question"]["id"]
    await chair.request("qa.approve", question=qid)
    deadline = time.monotonic() + 5
    while await _metric(node, "failed") < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    receiver.delay = 0.0

    deadline = time.monotonic() + 5
    while await _metric(node, "delivered") < 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    ids = {json.loads(raw)["id"] for raw, _ in receiver.requests}
    assert len(ids) == 1  # the same event each time: nothing after it went first


async def test_a_target_that_lags_by_a_whole_outbox_counts_the_trimmed_events_dropped(
    sessions: SessionStore, receiver: Receiver, settings: Settings
) -> None:
    receiver.gate = asyncio.Event()
    one = _dispatcher(sessions, receiver, "node-1")
    await one.start()
    try:
        await _states(sessions, "s0")
        while not receiver.requests:  # the first delivery waits at the receiver
            await asyncio.sleep(0.01)
        for batch in range(6):  # 60 more events, in batches dispatch reads as they come
            await _states(sessions, *(f"s{batch}{n}" for n in range(10)))
            await asyncio.sleep(0.15)
        receiver.gate.set()

        bodies = await receiver.wait_for(1 + settings.history_size)
        assert [b["seq"] for b in bodies] == [1, *range(12, 62)]
        assert one.metrics.deliveries.labels("dropped")._value.get() == 10
        assert one.metrics.deliveries.labels("missed")._value.get() == 0
    finally:
        await one.stop()


async def test_a_new_epoch_starts_dispatch_again_from_its_first_event(
    sessions: SessionStore, receiver: Receiver
) -> None:
    one = _dispatcher(sessions, receiver, "node-1")
    await one.start()
    try:
        await _states(sessions, "open", "live")
        first = await receiver.wait_for(2)
        keys = sessions.keys("plenary")
        await sessions.client.delete(keys.meta, keys.history)  # a store that lost the session
        await _states(sessions, "closed")

        bodies = await receiver.wait_for(3)
        assert bodies[2]["seq"] == 1
        assert bodies[2]["epoch"] != first[0]["epoch"]
        assert bodies[2]["data"]["state"] == "closed"
    finally:
        await one.stop()


async def test_a_dispatcher_whose_lease_is_taken_stops_and_sends_nothing_more(
    sessions: SessionStore, receiver: Receiver
) -> None:
    one = _dispatcher(sessions, receiver, "node-1")
    await one.start()
    try:
        await _states(sessions, "open")
        await receiver.wait_for(1)
        lease = HookStore(sessions).keys("plenary").lease
        await sessions.client.set(lease, "node-9", px=60_000)  # another node holds it now
        await _states(sessions, "live")
        deadline = time.monotonic() + 3
        while "plenary" in one.running:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert len(receiver.delivered) == 1
    finally:
        await one.stop()
