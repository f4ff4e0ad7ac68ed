"""Real media through podium: aiortc WHIP publishers and WHEP listeners on loopback, recordings."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import av
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from config.appkeys import SETTINGS, STREAMING
from signaling.client import PodiumClient
from signaling.identity import Role
from streaming.store import ChannelStore, streams_key
from tests.conftest import ClientFactory, NodeFactory, app_of, operator_headers, token
from tests.contract_streaming import interpreter
from tests.streaming_helpers import (
    SDP,
    Client,
    bearer,
    connected,
    listen,
    listen_at,
    offer_sdp,
    peer,
    publish,
)

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
            started = time.monotonic()  # media flows (and is recorded) from here until the DELETE
            await _live(node, "floor")
            live = await _event(watcher, "stream.channel")
            assert live["data"]["channel"]["state"] == "live"
            for _ in range(2):
                listeners.append(await listen(http, node, "/whep/plenary/floor", token()))
            async with asyncio.timeout(20):
                await asyncio.gather(*(c.got.wait() for c in listeners))
            counted = await _event(watcher, "stream.listeners")
            while counted["data"]["listeners"] != {"floor": 2}:
                counted = await _event(watcher, "stream.listeners")
            for listener in listeners:
                assert listener.frames["audio"] >= 10
                assert listener.frames["video"] >= 5
            await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - started)))
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
            assert (await _event(watcher, "stream.listeners"))["data"]["listeners"] == {}
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


class PausableAudio(AudioStreamTrack):
    """Silence until paused; then no frame at all (the connection stays up, media stop)."""

    def __init__(self) -> None:
        super().__init__()
        self.playing = asyncio.Event()
        self.playing.set()

    async def recv(self) -> Any:
        await self.playing.wait()
        return await super().recv()


async def _publish_audio(
    http: aiohttp.ClientSession,
    server: TestServer,
    tok: str,
    track: MediaStreamTrack,
    query: str = "",
) -> tuple[Client, int]:
    client = Client(peer())
    client.pc.addTransceiver(track, direction="sendonly")
    await client.pc.setLocalDescription(await client.pc.createOffer())
    async with http.post(
        server.make_url("/whip/plenary/fr" + query),
        data=client.pc.localDescription.sdp,
        headers={"Content-Type": SDP, **bearer(tok)},
    ) as response:
        if response.status == 201:
            answer = RTCSessionDescription(sdp=await response.text(), type="answer")
            await client.pc.setRemoteDescription(answer)
            client.location = response.headers["Location"]
        return client, response.status


async def test_an_operator_s_takeover_swaps_the_publisher_under_listeners_who_keep_listening(
    node: TestServer, connect: ClientFactory
) -> None:
    watcher = await connect(node, token(Role.PARTICIPANT))
    olu = token(Role.OPERATOR, ("*",), sub="olu")
    async with aiohttp.ClientSession() as http:
        first, status = await _publish_audio(
            http, node, interpreter("fr", "booth-a"), AudioStreamTrack()
        )
        clients = [first]
        try:
            assert status == 201
            await _live(node, "fr")
            assert (await _event(watcher, "stream.channel"))["data"]["channel"]["state"] == "live"
            listener = await listen(http, node, "/whep/plenary/fr", token(), video=False)
            clients.append(listener)
            async with asyncio.timeout(15):
                await listener.got.wait()
            second, status = await _publish_audio(
                http, node, interpreter("fr", "booth-b"), AudioStreamTrack()
            )
            clients.append(second)
            assert status == 409
            third, status = await _publish_audio(http, node, olu, AudioStreamTrack(), "?takeover=1")
            clients.append(third)
            assert status == 201
            await connected(third.pc)
            taken = (await _event(watcher, "stream.channel"))["data"]["channel"]
            assert (taken["state"], taken["reason"]) == ("live", "takeover")
            heard = listener.frames["audio"]
            async with asyncio.timeout(15):
                while listener.frames["audio"] < heard + 25:
                    await asyncio.sleep(0.05)
            assert not listener.ended.is_set()
            service = app_of(node)[STREAMING]
            live = service.channels[("plenary", "fr")]
            assert (live.publisher.sub, len(live.listeners)) == ("olu", 1)
            assert first.location.rsplit("/", 1)[1] not in service.resources
        finally:
            await _close(*clients)


async def test_a_channel_whose_media_stop_goes_offline_within_seconds(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    node = await node_factory(stream_media_timeout=1.0)
    watcher = await connect(node, token(Role.PARTICIPANT))
    track = PausableAudio()
    async with aiohttp.ClientSession() as http:
        client, status = await _publish_audio(http, node, interpreter("fr"), track)
        try:
            assert status == 201
            await _live(node, "fr")
            await _event(watcher, "stream.channel")
            channel = app_of(node)[STREAMING].channels[("plenary", "fr")].tracks["audio"]
            async with asyncio.timeout(10):
                while channel.frames < 25:  # half a second of media, recorded
                    await asyncio.sleep(0.05)
            track.playing.clear()
            paused = time.monotonic()
            offline = (await _event(watcher, "stream.channel"))["data"]["channel"]
            assert (offline["state"], offline["reason"]) == ("offline", "no_media")
            assert time.monotonic() - paused < 4.0
            assert app_of(node)[STREAMING].channels == {}
            folder = app_of(node)[STREAMING].recordings_dir / "plenary"
            (recording,) = folder.glob("fr-*.ogg")
            with av.open(str(recording)) as container:
                assert container.streams.audio[0].codec_context.name == "opus"
                assert container.duration is not None
                assert container.duration > 0
        finally:
            track.playing.set()
            await client.close()


async def test_a_node_shutting_down_ends_every_connection_and_records_its_channels_offline(
    node_factory: NodeFactory,
) -> None:
    node = await node_factory()
    service = app_of(node)[STREAMING]
    store = service.store
    async with aiohttp.ClientSession() as http:
        publisher = await publish(http, node, FLOOR, token(Role.PRODUCTION), video=False)
        listener: Client | None = None
        try:
            await _live(node, "floor")
            listener = await listen(http, node, "/whep/plenary/floor", token(), video=False)
            async with asyncio.timeout(15):
                await listener.got.wait()
            started = time.monotonic()
            await node.close()
            assert time.monotonic() - started < 6.0
            assert service.channels == {}
            assert service.resources == {}
            async with asyncio.timeout(10):
                await listener.ended.wait()
        finally:
            await _close(publisher, *([listener] if listener else []))
    record = await _record_after_close(store, node)
    assert record is not None
    assert (record["state"], record["reason"]) == ("offline", "shutdown")


async def _record_after_close(store: ChannelStore, node: TestServer) -> dict[str, Any] | None:
    # The node's store client is closed with it; read the record with a fresh client.
    url = app_of(node)[SETTINGS].redis_url
    client = aioredis.Redis.from_url(url)
    try:
        raw = await client.hget(streams_key(store.store, "plenary"), "floor")
    finally:
        await client.aclose()
    return None if raw is None else dict(json.loads(raw))


async def test_a_listener_at_another_node_is_sent_to_the_node_carrying_the_channel(
    node_factory: NodeFactory,
) -> None:
    carrier, other = await node_factory(), await node_factory()
    async with aiohttp.ClientSession() as http:
        publisher = await publish(http, carrier, "/whip/plenary/fr", interpreter("fr"), video=False)
        clients = [publisher]
        try:
            await _live(carrier, "fr")
            # a second booth at the other node is refused: one publisher per channel, cluster-wide
            second = await publish(
                http,
                other,
                "/whip/plenary/fr",
                interpreter("fr", "booth-b"),
                video=False,
                expect=409,
            )
            clients.append(second)
            offer = await offer_sdp(("audio",), "recvonly")
            headers = {"Content-Type": SDP, **bearer(token())}
            async with http.post(
                other.make_url("/whep/plenary/fr"),
                data=offer,
                headers=headers,
                allow_redirects=False,
            ) as response:
                assert response.status == 307
                location = response.headers["Location"]
            assert location == str(carrier.make_url("/whep/plenary/fr"))
            # Clients re-send their token themselves: HTTP clients drop Authorization on a redirect
            # to another origin.
            listener = await listen_at(http, location, token(), video=False)
            clients.append(listener)
            async with asyncio.timeout(15):
                await listener.got.wait()
            carried = app_of(carrier)[STREAMING].channels[("plenary", "fr")]
            assert len(carried.listeners) == 1
            assert app_of(other)[STREAMING].listener_count() == 0
            # the carrying node renews the channel with its figures: the other node's staff see them
            carried.renewed = 0.0
            await app_of(carrier)[STREAMING].check()
            async with http.get(
                other.make_url("/api/v1/sessions/plenary/channels"), headers=operator_headers()
            ) as response:
                fr = next(c for c in (await response.json())["channels"] if c["id"] == "fr")
            assert (fr["state"], fr["listeners"], fr["node"]) == ("live", 1, "node-1")
            assert fr["health"] is not None
        finally:
            await _close(*clients)


async def test_one_person_s_players_replace_their_oldest_rather_than_pile_up(
    node: TestServer,
) -> None:
    service = app_of(node)[STREAMING]
    amina = token(sub="amina")
    async with aiohttp.ClientSession() as http:
        publisher = await publish(http, node, "/whip/plenary/fr", interpreter("fr"), video=False)
        try:
            await _live(node, "fr")
            locations = []
            for _ in range(5):
                offer = await offer_sdp(("audio",), "recvonly")
                headers = {"Content-Type": SDP, **bearer(amina)}
                async with http.post(
                    node.make_url("/whep/plenary/fr"), data=offer, headers=headers
                ) as response:
                    assert response.status == 201
                    locations.append(response.headers["Location"])
            live = service.channels[("plenary", "fr")]
            kept = sorted(p.id for p in live.listeners.values())
            assert kept == sorted(loc.rsplit("/", 1)[1] for loc in locations[-3:])
            async with http.delete(node.make_url(locations[0]), headers=bearer(amina)) as r:
                assert r.status == 404  # replaced: gone
        finally:
            await publisher.close()


async def test_a_channel_reaped_while_its_node_could_not_renew_is_announced_live_again(
    node: TestServer, connect: ClientFactory
) -> None:
    watcher = await connect(node, token())
    service = app_of(node)[STREAMING]
    async with aiohttp.ClientSession() as http:
        publisher = await publish(http, node, "/whip/plenary/fr", interpreter("fr"), video=False)
        try:
            await _live(node, "fr")
            await _event(watcher, "stream.channel")
            # another node reaped it (as after a store outage longer than the lease)
            record = await service.store.record("plenary", "fr")
            lost = record.went_offline("node_lost", service.now_ms())
            spec = service.spec(service.programme.sessions[0], "fr")
            await service.store.write("plenary", "fr", lost, {"id": "fr", "state": "offline"})
            await _event(watcher, "stream.channel")
            service.channels[("plenary", "fr")].renewed = 0.0
            await service.check()
            again = (await _event(watcher, "stream.channel"))["data"]["channel"]
            assert (again["id"], again["state"]) == (spec.id, "live")
            assert (await service.store.record("plenary", "fr")).node == service.node
        finally:
            await publisher.close()


async def test_the_channel_encoder_stops_with_the_last_listener_and_starts_again_for_the_next(
    node: TestServer,
) -> None:
    service = app_of(node)[STREAMING]
    async with aiohttp.ClientSession() as http:
        publisher = await publish(http, node, "/whip/plenary/fr", interpreter("fr"), video=False)
        clients = [publisher]
        try:
            await _live(node, "fr")
            live = service.channels[("plenary", "fr")]
            for _ in range(2):
                listener = await listen(
                    http, node, "/whep/plenary/fr", token(sub="li"), video=False
                )
                clients.append(listener)
                async with asyncio.timeout(15):
                    await listener.got.wait()
                assert set(live.encoded) == {"audio"}
                async with http.delete(
                    node.make_url(listener.location), headers=bearer(token(sub="li"))
                ) as response:
                    assert response.status == 200
                assert live.encoded == {}
        finally:
            await _close(*clients)
