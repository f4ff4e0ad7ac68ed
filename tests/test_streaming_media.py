"""Real media through podium: aiortc WHIP publishers and WHEP listeners on loopback, recordings."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import av
from aiohttp.test_utils import TestServer

from config.appkeys import STREAMING
from signaling.client import PodiumClient
from signaling.identity import Role
from tests.conftest import ClientFactory, app_of, operator_headers, token
from tests.streaming_helpers import Client, bearer, connected, listen, publish

FLOOR = "/whip/plenary/floor"


async def _close(*clients: Client) -> None:
    await asyncio.gather(*(c.close() for c in clients))


async def _event(client: PodiumClient, name: str, wait: float = 15.0) -> dict[str, Any]:
    async with asyncio.timeout(wait):
        while True:
            event = await client.next_event(timeout=wait)
            if event["name"] == name:
                return event


async def _live(server: TestServer, channel: str, wait: float = 15.0) -> None:
    service = app_of(server)[STREAMING]
    async with asyncio.timeout(wait):
        while not ((live := service.channels.get(("plenary", channel))) and live.live):
            await asyncio.sleep(0.05)


async def test_a_publisher_reaches_two_listeners_and_its_delete_takes_the_channel_offline(
    node: TestServer, connect: ClientFactory
) -> None:
    watcher = await connect(node, token(Role.PARTICIPANT))
    production = token(Role.PRODUCTION, sub="desk")
    async with aiohttp.ClientSession() as http:
        publisher = await publish(http, node, FLOOR, production)
        listeners: list[Client] = []
        try:
            await connected(publisher.pc)
            await _live(node, "floor")
            live = await _event(watcher, "stream.channel")
            assert live["data"]["channel"]["state"] == "live"
            started = time.monotonic()
            for _ in range(2):
                listeners.append(await listen(http, node, "/whep/plenary/floor", token()))
            async with asyncio.timeout(20):
                await asyncio.gather(*(c.got.wait() for c in listeners))
            for listener in listeners:
                assert listener.frames["audio"] >= 10
                assert listener.frames["video"] >= 5
            await asyncio.sleep(max(0.0, 1.5 - (time.monotonic() - started)))
            async with http.delete(
                node.make_url(publisher.location), headers=bearer(production)
            ) as response:
                assert response.status == 200
            published = time.monotonic() - started
            offline = await _event(watcher, "stream.channel")
            assert offline["data"]["channel"]["state"] == "offline"
            assert offline["data"]["channel"]["reason"] == "deleted"
            async with asyncio.timeout(10):
                await asyncio.gather(*(c.ended.wait() for c in listeners))
            async with http.get(
                node.make_url("/api/v1/sessions/plenary/recordings"), headers=operator_headers()
            ) as response:
                listing = (await response.json())["recordings"]
            assert [r["channel"] for r in listing] == ["floor"]
            async with http.get(
                node.make_url(listing[0]["url"]), headers=operator_headers()
            ) as response:
                assert response.status == 200
                data = await response.read()
        finally:
            await _close(publisher, *listeners)
    path = app_of(node)[STREAMING].recordings_dir / "plenary" / listing[0]["name"]
    assert path.read_bytes() == data
    with av.open(str(path)) as container:
        assert container.duration is not None
        duration = container.duration / 1_000_000
    assert abs(duration - published) <= 0.2 * published, (duration, published)
