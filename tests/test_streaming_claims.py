"""One publisher per channel cluster-wide, whatever the timing: claiming a channel is one
compare-and-set in the store, taken before the node answers 201.

Real aiortc publishers POST at the same moment to two podium nodes on the real store.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from config.appkeys import STREAMING
from signaling.client import PodiumClient
from signaling.identity import Role
from streaming.channels import State
from streaming.service import StreamingService
from tests.conftest import ClientFactory, NodeFactory, app_of, token
from tests.contract_streaming import interpreter
from tests.streaming_helpers import SDP, Client, audio_offer, bearer, connected, post_offer


def _service(server: TestServer) -> StreamingService:
    return app_of(server)[STREAMING]


async def _channel_events(
    watcher: PodiumClient, channel: str, *, wait: bool = True
) -> list[tuple[str, str]]:
    # The channel's first event (waited for), then every other one already sent to the watcher.
    seen: list[tuple[str, str]] = []
    async with asyncio.timeout(15):
        while wait and not seen:
            event = await watcher.next_event(timeout=15)
            if event["name"] == "stream.channel" and event["data"]["channel"]["id"] == channel:
                seen.append((event["data"]["channel"]["state"], event["data"]["channel"]["reason"]))
    await asyncio.sleep(0.5)
    while not watcher.events.empty():
        event = watcher.events.get_nowait()
        if event["name"] == "stream.channel" and event["data"]["channel"]["id"] == channel:
            seen.append((event["data"]["channel"]["state"], event["data"]["channel"]["reason"]))
    return seen


async def _live_at(server: TestServer, channel: str, wait: float = 15.0) -> None:
    async with asyncio.timeout(wait):
        while not ((live := _service(server).channels.get(("plenary", channel))) and live.live):
            await asyncio.sleep(0.05)


async def _settle(nodes: list[TestServer]) -> None:
    # Health rounds on both nodes (renewals, reaping) and time for any late "live" to land.
    for _ in range(3):
        for server in nodes:
            for live in _service(server).channels.values():
                live.renewed = 0.0
            await _service(server).check()
        await asyncio.sleep(0.3)


async def _race(
    http: aiohttp.ClientSession,
    posts: list[tuple[TestServer, str, str, Client]],
) -> list[tuple[int, dict[str, Any]]]:
    return list(
        await asyncio.gather(
            *(post_offer(http, server, path, tok, c) for server, path, tok, c in posts)
        )
    )


async def test_publishers_racing_for_a_free_channel_over_two_nodes_leave_exactly_one_live(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    nodes = [await node_factory(), await node_factory()]
    watcher = await connect(nodes[0], token())
    async with aiohttp.ClientSession() as http:
        for channel in ("fr", "ar"):
            clients = [await audio_offer() for _ in range(6)]
            try:
                booths = [f"{channel}-booth-{i}" for i in range(len(clients))]
                results = await _race(
                    http,
                    [
                        (nodes[i % 2], f"/whip/plenary/{channel}", interpreter(channel, booth), c)
                        for i, (booth, c) in enumerate(zip(booths, clients, strict=True))
                    ],
                )
                statuses = [status for status, _ in results]
                assert sorted(statuses) == [201, 409, 409, 409, 409, 409], statuses
                won = statuses.index(201)
                carrier, other = nodes[won % 2], nodes[1 - won % 2]
                holder = _service(carrier).node
                for status, body in results:
                    if status == 409:
                        assert body["code"] == "channel_busy"
                        assert holder in body["message"], body
                await connected(clients[won].pc)
                await _live_at(carrier, channel)
                assert await _channel_events(watcher, channel) == [("live", "publishing")]
                await _settle(nodes)
                assert await _channel_events(watcher, channel, wait=False) == []
                # the losers left nothing behind: no session, no channel, no recording, no event
                live = _service(carrier).channels[("plenary", channel)]
                assert live.publisher.sub == booths[won]
                assert [p.sub for p in _service(carrier).resources.values()] == [booths[won]]
                assert ("plenary", channel) not in _service(other).channels
                assert _service(other).resources == {}
                # (the nodes share a data directory: one recording of the channel in it, the winner's)
                (recording,) = (_service(carrier).recordings_dir / "plenary").glob(f"{channel}-*")
                assert live.recording is not None
                assert live.recording.path == recording
                for server in nodes:  # the channel's record names the winner, seen from both nodes
                    record = await _service(server).store.record("plenary", channel)
                    assert (record.state, record.node) == (State.LIVE, holder)
                async with http.delete(
                    carrier.make_url(clients[won].location),
                    headers=bearer(interpreter(channel, booths[won])),
                ) as response:
                    assert response.status == 200
            finally:
                await asyncio.gather(*(c.close() for c in clients))


async def test_an_operator_s_takeover_racing_a_first_publish_at_another_node_leaves_one_live(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    nodes = [await node_factory(), await node_factory()]
    watcher = await connect(nodes[0], token())
    olu = token(Role.OPERATOR, ("*",), sub="olu")
    async with aiohttp.ClientSession() as http:
        for channel, first_at in (("en", 0), ("es", 1), ("zh", 0), ("ru", 1)):
            booth, desk = await audio_offer(), await audio_offer()
            try:
                results = await _race(
                    http,
                    [
                        (nodes[first_at], f"/whip/plenary/{channel}", interpreter(channel), booth),
                        (nodes[1 - first_at], f"/whip/plenary/{channel}?takeover=1", olu, desk),
                    ],
                )
                statuses = [status for status, _ in results]
                assert sorted(statuses) == [201, 409], (channel, statuses)
                won = statuses.index(201)
                carrier = nodes[first_at] if won == 0 else nodes[1 - first_at]
                other = nodes[1 - nodes.index(carrier)]
                holder = _service(carrier).node
                assert holder in results[1 - won][1]["message"]
                await connected((booth, desk)[won].pc)
                await _live_at(carrier, channel)
                assert await _channel_events(watcher, channel) == [("live", "publishing")]
                await _settle(nodes)
                assert await _channel_events(watcher, channel, wait=False) == []
                live = _service(carrier).channels[("plenary", channel)]
                assert live.publisher.sub == ("booth", "olu")[won]
                assert ("plenary", channel) not in _service(other).channels
                assert _service(other).resources == {}
                record = await _service(other).store.record("plenary", channel)
                assert (record.state, record.node) == (State.LIVE, holder)
                async with http.delete(
                    carrier.make_url((booth, desk)[won].location),
                    headers=bearer((interpreter(channel), olu)[won]),
                ) as response:
                    assert response.status == 200
            finally:
                await asyncio.gather(booth.close(), desk.close())


async def test_a_publisher_answered_but_not_yet_connected_holds_the_channel_at_every_node(
    node_factory: NodeFactory,
) -> None:
    first, second = await node_factory(), await node_factory()
    async with aiohttp.ClientSession() as http:
        pending, late = await audio_offer(), await audio_offer()
        try:
            # answered (201), but the publisher never sets the answer: its connection is not up
            async with http.post(
                first.make_url("/whip/plenary/fr"),
                data=pending.pc.localDescription.sdp,
                headers={"Content-Type": SDP, **bearer(interpreter("fr", "booth-a"))},
            ) as response:
                assert response.status == 201
                location = response.headers["Location"]
            assert not _service(first).channels[("plenary", "fr")].live
            status, body = await post_offer(
                http, second, "/whip/plenary/fr", interpreter("fr", "booth-b"), late
            )
            assert (status, body["code"]) == (409, "channel_busy")
            assert _service(first).node in body["message"]
            assert _service(second).resources == {}
            # the answered publisher leaves: its claim goes with it, the channel is free again
            async with http.delete(
                first.make_url(location), headers=bearer(interpreter("fr", "booth-a"))
            ) as response:
                assert response.status == 200
            again = await audio_offer()
            late_status, _ = await post_offer(
                http, second, "/whip/plenary/fr", interpreter("fr", "booth-b"), again
            )
            await again.close()
            assert late_status == 201
        finally:
            await asyncio.gather(pending.close(), late.close())


async def test_a_node_whose_claim_another_node_took_ends_its_channel_without_writing_over_it(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    watcher = await connect(first, token())
    service = _service(first)
    async with aiohttp.ClientSession() as http:
        booth = await audio_offer()
        try:
            status, _ = await post_offer(http, first, "/whip/plenary/fr", interpreter("fr"), booth)
            assert status == 201
            await connected(booth.pc)
            await _live_at(first, "fr")
            assert await _channel_events(watcher, "fr") == [("live", "publishing")]
            # the first node could not renew (a store outage) past its lease; the second node's
            # publisher claimed the channel since
            later = service.now_ms() + 2 * service.limits.lease_ms
            taken = await service.store.claim(
                "plenary", "fr", _service(second).node, "other", "", later, later + 15_000
            )
            assert taken == (True, _service(second).node)
            before = await service.store.record("plenary", "fr")
            service.channels[("plenary", "fr")].renewed = 0.0
            await service.check()
            assert service.channels == {}
            assert service.resources == {}
            assert await service.store.record("plenary", "fr") == before
            await asyncio.sleep(0.5)
            assert watcher.events.empty()
        finally:
            await booth.close()
