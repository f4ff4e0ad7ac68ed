"""Floods from one identity — questions, votes, floor requests, joins, guest tokens — are
rate-limited with a typed error and ``retry_after``; opening more sockets or nodes does not lift a
per-person limit; other people are served all along.

One socket's frame flood (refused, then cut off with 4506): ``tests/test_bad_input.py::
test_flood_over_the_rate_limit_is_refused_then_cut_off``; one socket asking too often:
``tests/test_qa.py::test_a_flood_of_questions_is_refused_over_the_per_person_limit``; floor requests:
``tests/test_floor.py::test_asking_too_often_is_refused_with_retry_after``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from config.appkeys import FLOOR, QNA
from signaling.client import ClientError, PodiumClient
from signaling.identity import Role
from tests.conftest import ClientFactory, NodeFactory, app_of, token
from tests.security.wire import auth, exchange, online, still_served


async def _outcomes(client: PodiumClient, kind: str, n: int, **fields: Any) -> list[str]:
    async def one() -> str:
        try:
            await client.request(kind, **fields)
        except ClientError as exc:
            return exc.code
        return "ok"

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def test_questions_from_one_person_over_many_tabs_and_two_nodes_stop_at_the_limit(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    tok = token(sub="flooder")
    tabs = [await connect(server, tok) for server in (first, second) for _ in range(3)]
    bystander = await connect(second, token(sub="bystander"))
    results = await asyncio.gather(
        *(_outcomes(tab, "qa.ask", 4, text=f"Question from tab {i}") for i, tab in enumerate(tabs))
    )
    flat = [r for tab in results for r in tab]
    assert flat.count("ok") == 5  # the per-person limit, whatever the sockets and nodes
    assert set(flat) <= {"ok", "too_many_questions", "rate_limited"}
    mine = [q for q in await app_of(first)[QNA].store.all("plenary") if q.author == "flooder"]
    assert len(mine) == 5
    await bystander.request("qa.ask", text="May I still ask?")


async def test_a_vote_flood_is_rate_limited_then_cut_off_and_counts_once(
    node: TestServer, connect: ClientFactory
) -> None:
    chair = await connect(node, token(Role.MODERATOR, sub="chair"))
    qid = (await chair.request("qa.ask", text="Vote for me?"))["question"]["id"]
    await chair.request("qa.approve", question=qid)
    flooder = await connect(node, token(sub="flooder"))
    bystander = await connect(node, token(sub="bystander"))
    for i in range(120):
        await flooder.send_raw(json.dumps({"type": "qa.vote", "id": f"v{i}", "question": qid}))
    closed = await flooder.wait_closed()
    assert closed.code == 4506
    refusals = []
    while not flooder.events.empty():
        message = flooder.events.get_nowait()
        if message.get("code") == "rate_limited":
            refusals.append(message)
    assert refusals
    assert all(0 < m["retry_after"] <= 1 for m in refusals)
    store = app_of(node)[QNA].store
    assert await store.voters("plenary", qid) == ["flooder"]
    assert (await store.get("plenary", qid)).votes == 1
    assert (await bystander.request("qa.vote", question=qid))["votes"] == 2


async def test_floor_requests_from_one_person_on_two_nodes_stop_at_the_limit(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    tok = token(sub="eager")
    tabs = (await connect(first, tok), await connect(second, tok))
    codes = []
    for i in range(8):
        tab = tabs[i % 2]
        try:
            await tab.request("floor.request")
            await tab.request("floor.withdraw")
            codes.append("ok")
        except ClientError as exc:
            codes.append(exc.code)
    assert codes.count("ok") == 5
    assert set(codes[5:]) == {"too_many_floor_requests"}
    assert (await app_of(first)[FLOOR].store.read("plenary")).queue == ()
    other = await connect(second, token(sub="patient"))
    assert "entry" in await other.request("floor.request")


async def test_joins_by_one_person_are_rate_limited_others_still_join(
    node: TestServer, connect: ClientFactory
) -> None:
    tok = token(sub="joiner")
    start = time.monotonic()
    outcomes = await asyncio.gather(*(exchange(node, auth(tok), wait=0.5) for _ in range(30)))
    refills = int(time.monotonic() - start)  # one join a second comes back (a busy machine is slow)
    welcomed = [r for r, _ in outcomes if r and r[0]["type"] == "welcome"]
    refused = [(r, code) for r, code in outcomes if r and r[0]["type"] == "error"]
    assert 20 <= len(welcomed) <= 20 + refills  # the burst: a person's tabs and reconnects pass
    assert len(welcomed) + len(refused) == 30
    assert refused
    for received, code in refused:
        assert received[0]["code"] == "rate_limited"
        assert 0 < received[0]["retry_after"] <= 10
        assert code == 4506
    newcomer = await connect(node, token(sub="newcomer"))
    await still_served(newcomer)
    await asyncio.sleep(1.1)  # one join a second refills
    received, _ = await exchange(node, auth(tok), wait=0.5)
    assert received[0]["type"] == "welcome"
    assert await online(node) == 1  # the newcomer; every joiner socket has closed


async def test_guest_tokens_from_one_address_are_rate_limited_with_retry_after(
    node: TestServer,
) -> None:
    url = node.make_url("/api/v1/sessions/open-forum/guest")
    statuses = []
    start = time.monotonic()
    async with aiohttp.ClientSession() as http:
        for i in range(25):
            async with http.post(url, json={"name": f"Guest {i}"}) as resp:
                statuses.append(resp.status)
                if resp.status == 429:
                    assert (await resp.json())["code"] == "rate_limited"
                    assert int(resp.headers["Retry-After"]) >= 1
    refills = int(time.monotonic() - start)  # one token a second comes back
    assert statuses[:20] == [200] * 20
    assert set(statuses[20:]) <= {200, 429}
    assert statuses.count(429) >= 5 - refills
    assert statuses.count(429) >= 1 or refills >= 5


@pytest.mark.parametrize("kind", ["qa.ask", "floor.request", "ping"])
async def test_a_burst_over_the_frame_rate_is_answered_with_retry_after_not_dropped(
    node: TestServer, connect: ClientFactory, kind: str
) -> None:
    client = await connect(node, token(sub="bursty"))
    fields = {"text": "Same question"} if kind == "qa.ask" else {}
    codes = await _outcomes(client, kind, 25, **fields)
    assert len(codes) == 25  # every frame answered: an ack, a refusal, never silence
    assert "rate_limited" in codes
