"""An operator forces a channel takeover from the dashboard: the channel is released in the store, so
a backup booth may publish at once, on any node, and the node carrying the old publisher closes it.

Real aiortc publishers on two podium nodes sharing the real store.
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
from tests.conftest import ClientFactory, NodeFactory, app_of, operator_headers, token
from tests.contract_streaming import interpreter
from tests.streaming_helpers import Client, audio_offer, connected, post_offer

RELEASE = "/api/v1/sessions/plenary/channels/{}/release"


def _service(server: TestServer) -> StreamingService:
    return app_of(server)[STREAMING]


async def _live_at(server: TestServer, channel: str, wait: float = 15.0) -> None:
    async with asyncio.timeout(wait):
        while not ((live := _service(server).channels.get(("plenary", channel))) and live.live):
            await asyncio.sleep(0.05)


async def _booth(http: aiohttp.ClientSession, server: TestServer, sub: str) -> Client:
    booth = await audio_offer()
    status, body = await post_offer(http, server, "/whip/plenary/fr", interpreter("fr", sub), booth)
    assert status == 201, body
    return booth


async def _release(
    http: aiohttp.ClientSession, server: TestServer, headers: dict[str, str], channel: str = "fr"
) -> tuple[int, dict[str, Any]]:
    async with http.post(server.make_url(RELEASE.format(channel)), headers=headers) as response:
        return response.status, await response.json()


async def _channel_event(watcher: PodiumClient, state: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            event = await watcher.next_event(timeout=10)
            channel = event["data"].get("channel") if event["name"] == "stream.channel" else None
            if channel and channel["id"] == "fr" and channel["state"] == state:
                return dict(channel)


async def test_an_operator_releases_a_channel_through_another_node_and_a_backup_booth_takes_it(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    one, two = await node_factory(stream_record=False), await node_factory(stream_record=False)
    watcher = await connect(two, token())
    async with aiohttp.ClientSession() as http:
        main = await _booth(http, one, "main-booth")
        backup: Client | None = None
        try:
            await connected(main.pc)
            await _live_at(one, "fr")
            assert (await _channel_event(watcher, "live"))["reason"] == "publishing"

            # The backup booth is refused while the main one holds the channel.
            early = await audio_offer()
            try:
                status, body = await post_offer(
                    http, two, "/whip/plenary/fr", interpreter("fr", "backup-booth"), early
                )
                assert (status, body["code"]) == (409, "channel_busy")
            finally:
                await early.close()

            status, body = await _release(http, two, operator_headers())
            assert status == 200, body
            assert body["released"] is True
            assert (body["channel"]["state"], body["channel"]["reason"]) == ("offline", "released")
            offline = await _channel_event(watcher, "offline")
            assert offline["reason"] == "released"

            # At once, at the other node, the backup booth gets the channel.
            backup = await _booth(http, two, "backup-booth")
            await connected(backup.pc)
            await _live_at(two, "fr")

            # The main booth's node closes its publisher at its next health round, writing nothing.
            live = _service(one).channels[("plenary", "fr")]
            live.renewed = 0.0
            await _service(one).check()
            assert ("plenary", "fr") not in _service(one).channels
            async with asyncio.timeout(10):
                while main.pc.connectionState not in ("closed", "failed"):
                    await asyncio.sleep(0.05)
            for server in (one, two):
                record = await _service(server).store.record("plenary", "fr")
                assert (record.state, record.node) == (State.LIVE, _service(two).node)
        finally:
            await main.close()
            if backup is not None:
                await backup.close()


async def test_a_backup_booth_may_publish_at_once_at_the_node_still_carrying_the_released_channel(
    node_factory: NodeFactory,
) -> None:
    one, two = await node_factory(stream_record=False), await node_factory(stream_record=False)
    async with aiohttp.ClientSession() as http:
        main = await _booth(http, one, "main-booth")
        backup: Client | None = None
        try:
            await connected(main.pc)
            await _live_at(one, "fr")
            status, body = await _release(http, two, operator_headers())
            assert (status, body["released"]) == (200, True)
            assert _service(one).channels[("plenary", "fr")].publisher.sub == "main-booth"
            # Before node one's health round: its publish finds the release and starts afresh.
            backup = await _booth(http, one, "backup-booth")
            await connected(backup.pc)
            await _live_at(one, "fr")
            assert _service(one).channels[("plenary", "fr")].publisher.sub == "backup-booth"
            record = await _service(two).store.record("plenary", "fr")
            assert (record.state, record.reason, record.node) == (
                State.LIVE,
                "publishing",
                _service(one).node,
            )
        finally:
            await main.close()
            if backup is not None:
                await backup.close()


async def test_a_release_reaching_the_carrying_node_ends_the_publisher_at_once(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    one = await node_factory(stream_record=False)
    watcher = await connect(one, token())
    async with aiohttp.ClientSession() as http:
        main = await _booth(http, one, "main-booth")
        try:
            await connected(main.pc)
            await _live_at(one, "fr")
            status, body = await _release(http, one, operator_headers())
            assert (status, body["released"]) == (200, True)
            assert ("plenary", "fr") not in _service(one).channels
            assert (await _channel_event(watcher, "offline"))["reason"] == "released"
            # Released again, nothing is left to release.
            status, body = await _release(http, one, operator_headers())
            assert (status, body["released"], body["channel"]["state"]) == (200, False, "offline")
        finally:
            await main.close()


async def test_only_operators_release_a_channel_and_only_one_the_session_has(
    node: TestServer,
) -> None:
    async with aiohttp.ClientSession() as http:
        status, body = await _release(http, node, {})
        assert (status, body["code"]) == (401, "unauthorized")
        for role in (Role.PARTICIPANT, Role.PRODUCTION, Role.INTERPRETER):
            headers = {"Authorization": "Bearer " + token(role, ("plenary",))}
            status, body = await _release(http, node, headers)
            assert (status, body["code"]) == (403, "channel_forbidden"), role
        status, body = await _release(http, node, operator_headers(), channel="de")
        assert (status, body["code"]) == (404, "unknown_channel")
        headers = {"Authorization": "Bearer " + token(Role.OPERATOR, ("open-forum",))}
        status, body = await _release(http, node, headers)
        assert (status, body["code"]) == (403, "session_forbidden")
