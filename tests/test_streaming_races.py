"""Writes that meet on one channel, on the real store: an operator's external URL set while the
channel goes live, is renewed or goes offline (either write landing between the other's read and
write); a takeover answered while the channel ends.

The other write is made to land at the worst moment (between the read and the write, while the
takeover is answered or the old publisher closes); nothing else is stubbed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

import streaming.peers
from config.appkeys import STREAMING
from signaling.client import PodiumClient
from signaling.identity import Role
from streaming.channels import ChannelRecord, State, channel_view
from streaming.peers import Peer
from streaming.service import StreamingService
from streaming.store import claims_key, streams_key
from tests.conftest import ClientFactory, app_of, operator_headers, token
from tests.contract_streaming import interpreter
from tests.streaming_helpers import audio_offer, bearer, connected, post_offer

URL = "https://webtv.example.org/live/plenary.m3u8"


def _service(server: TestServer) -> StreamingService:
    return app_of(server)[STREAMING]


async def _told(watcher: PodiumClient, count: int) -> dict[str, list[dict[str, Any]]]:
    # ``count`` channel events (waited for), then any other already sent, by channel.
    seen: dict[str, list[dict[str, Any]]] = {}
    async with asyncio.timeout(15):
        while sum(map(len, seen.values())) < count:
            event = await watcher.next_event(timeout=15)
            if event["name"] == "stream.channel":
                view = event["data"]["channel"]
                seen.setdefault(view["id"], []).append(view)
    await asyncio.sleep(0.3)
    while not watcher.events.empty():
        event = watcher.events.get_nowait()
        if event["name"] == "stream.channel":
            view = event["data"]["channel"]
            seen.setdefault(view["id"], []).append(view)
    return seen


async def test_an_external_url_set_while_the_channel_changes_keeps_the_change_and_the_url(
    node: TestServer, connect: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _service(node)
    store = service.store
    session = service.programme.session("plenary")
    assert session is not None
    watcher = await connect(node, token())
    now = service.now_ms()
    live = ChannelRecord().went_live(service.node, now, 15_000, "http://127.0.0.1:1")
    between: dict[str, tuple[ChannelRecord | None, ChannelRecord]] = {
        "fr": (None, live),  # it goes live
        "ar": (live, live.renewed(now + 5000, 15_000, {"score": 1}, 3)),  # it is renewed
        "en": (live, live.went_offline("deleted", now + 5000)),  # it goes offline
    }
    for channel, (before, _) in between.items():
        if before is not None:
            view = channel_view("plenary", service.spec(session, channel), before, now)
            await store.write("plenary", channel, before, view)
        assert (
            await store.claim("plenary", channel, service.node, channel, "", now, now + 60_000)
        )[0]
    # The channel's own write lands between the operator's read of the record and its write.
    client, key = store.store.client, streams_key(store.store, "plenary")
    real_hget = client.hget
    pending = dict(between)

    async def hget(name: str, field: str) -> Any:
        raw = await real_hget(name, field)
        if name == key and field in pending:
            record = pending.pop(field)[1]
            view = channel_view("plenary", service.spec(session, field), record, now)
            assert await store.held("plenary", field, field, now + 60_000, record, view) > 0
        return raw

    monkeypatch.setattr(client, "hget", hget)
    async with aiohttp.ClientSession() as http:
        for channel, (_, record) in between.items():
            path = node.make_url(f"/api/v1/sessions/plenary/channels/{channel}/external")
            async with http.put(path, json={"url": URL}, headers=operator_headers()) as response:
                assert response.status == 200
                view = (await response.json())["channel"]
            assert (view["state"], view["external_url"]) == (record.state.value, URL), channel
    monkeypatch.undo()
    assert pending == {}
    stored = await store.records("plenary")
    for channel, (_, record) in between.items():
        assert stored[channel] == replace(record, external_url=URL)
    # everyone was told the change, then the URL on the changed channel
    views = await _told(watcher, 8)
    for channel, (_, record) in between.items():
        told = [(v["state"], v["reason"], v["external_url"]) for v in views[channel]]
        after = (record.state.value, record.reason)
        assert told[-2:] == [(*after, None), (*after, URL)], (channel, told)


async def _live_at(server: TestServer, channel: str) -> None:
    async with asyncio.timeout(15):
        while not ((live := _service(server).channels.get(("plenary", channel))) and live.live):
            await asyncio.sleep(0.05)


async def _stored(server: TestServer, state: State) -> ChannelRecord:
    async with asyncio.timeout(15):
        while (record := await _service(server).store.record("plenary", "fr")).state is not state:
            await asyncio.sleep(0.05)
    return record


async def test_a_going_live_renewal_or_offline_write_keeps_an_external_url_set_meanwhile(
    node: TestServer, connect: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _service(node)
    store = service.store
    watcher = await connect(node, token())
    urls = {kind: f"{URL}?{kind}" for kind in ("live", "renewal", "offline")}
    pending = list(urls)  # the holder's writes, in turn
    statuses: list[int] = []
    real_held = store._held
    async with aiohttp.ClientSession() as http:
        booth = await audio_offer()

        async def held(keys: list[Any], args: list[Any]) -> Any:
            # The operator's URL lands between the holder's read of the record and its write.
            if args[5] == "fr" and args[6] and pending:
                written = json.loads(args[6])["state"]
                kind = "renewal" if args[1] == "" else "live" if written == "live" else "offline"
                if kind == pending[0]:
                    pending.pop(0)
                    path = node.make_url("/api/v1/sessions/plenary/channels/fr/external")
                    body = {"url": urls[kind]}
                    async with http.put(path, json=body, headers=operator_headers()) as response:
                        statuses.append(response.status)
            return await real_held(keys=keys, args=args)

        monkeypatch.setattr(store, "_held", held)
        try:
            assert (await post_offer(http, node, "/whip/plenary/fr", interpreter("fr"), booth))[
                0
            ] == 201
            await connected(booth.pc)
            await _live_at(node, "fr")
            record = await _stored(node, State.LIVE)
            assert (pending[0], record.external_url) == ("renewal", urls["live"])
            live = service.channels[("plenary", "fr")]
            live.renewed = 0.0  # due: the next health round renews the lease
            lease = record.lease
            await service.check()
            record = await service.store.record("plenary", "fr")
            assert pending == ["offline"]
            assert (record.state, record.external_url) == (State.LIVE, urls["renewal"])
            assert record.lease > lease
            async with http.delete(
                node.make_url(booth.location), headers=bearer(interpreter("fr"))
            ) as response:
                assert response.status == 200
            record = await _stored(node, State.OFFLINE)
            assert (pending, record.reason, record.external_url) == ([], "deleted", urls["offline"])
        finally:
            monkeypatch.undo()
            await booth.close()
    assert statuses == [200, 200, 200]
    # every event says what was stored then: the URL set, then the holder's write keeping it
    views = await _told(watcher, 5)
    told = [(v["state"], v["external_url"]) for v in views["fr"]]
    assert told == [
        ("offline", urls["live"]),
        ("live", urls["live"]),
        ("live", urls["renewal"]),
        ("live", urls["offline"]),
        ("offline", urls["offline"]),
    ]


@pytest.mark.parametrize("when", ["answering", "closing the old publisher"])
async def test_a_takeover_on_one_node_while_the_channel_ends_is_refused_and_leaves_nothing_open(
    node: TestServer, connect: ClientFactory, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    service = _service(node)
    watcher = await connect(node, token())
    olu = token(Role.OPERATOR, ("*",), sub="olu")
    async with aiohttp.ClientSession() as http:
        booth, desk, again = await audio_offer(), await audio_offer(), await audio_offer()
        try:
            assert (await post_offer(http, node, "/whip/plenary/fr", interpreter("fr"), booth))[
                0
            ] == 201
            await connected(booth.pc)
            await _live_at(node, "fr")
            live = service.channels[("plenary", "fr")]
            old = live.publisher
            answered: list[Peer] = []

            async def booth_leaves() -> None:  # the booth's own DELETE, meanwhile
                async with http.delete(
                    node.make_url(booth.location), headers=bearer(interpreter("fr"))
                ) as response:
                    assert response.status == 200

            real_answer = streaming.peers.answer_publisher

            async def answer(new: Peer, offer: str) -> str:
                answered.append(new)
                sdp = await real_answer(new, offer)
                if when == "answering":
                    await booth_leaves()
                return sdp

            monkeypatch.setattr("streaming.service.answer_publisher", answer)
            if when == "closing the old publisher":
                real_close: Callable[[], Awaitable[None]] = old.close

                async def close() -> None:
                    await real_close()
                    await service.end(live, "no_media")  # the health round ends it meanwhile

                monkeypatch.setattr(old, "close", close)
            status, body = await post_offer(http, node, "/whip/plenary/fr?takeover=1", olu, desk)
            monkeypatch.undo()
            assert (status, body.get("code")) == (409, "channel_busy"), body
            assert "ended while it was being taken over" in body["message"]
            (new,) = answered
            assert (new.closed, new.pc.connectionState) == (True, "closed")
            assert (old.closed, old.pc.connectionState) == (True, "closed")
            assert service.channels == {}
            assert service.resources == {}
            assert (
                await service.store.store.client.hget(
                    claims_key(service.store.store, "plenary"), "fr"
                )
                is None
            )
            record = await service.store.record("plenary", "fr")
            assert record.state is State.OFFLINE
            views = await _told(watcher, 2)
            assert [v["state"] for v in views["fr"]] == ["live", "offline"]
            # the channel is free: publishing again (the operator's retry) takes it live
            assert (await post_offer(http, node, "/whip/plenary/fr", olu, again))[0] == 201
            await connected(again.pc)
            await _live_at(node, "fr")
            assert service.channels[("plenary", "fr")].publisher.sub == "olu"
        finally:
            await asyncio.gather(booth.close(), desk.close(), again.close())
