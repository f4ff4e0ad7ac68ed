"""The WHIP/WHEP HTTP exchange (RFC 9725): every status and header, and refusals that change nothing."""

from __future__ import annotations

import re

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from config.appkeys import STREAMING
from signaling.identity import Role
from streaming.channels import ChannelRecord, channel_view
from streaming.store import streams_key
from tests.conftest import ClientFactory, NodeFactory, app_of, operator_headers, token
from tests.contract_streaming import CANDIDATE, FRAG, STALE, interpreter
from tests.streaming_helpers import SDP, bearer, offer_sdp

FLOOR = "/whip/plenary/floor"


async def _post(
    http: aiohttp.ClientSession,
    server: TestServer,
    path: str,
    body: str,
    tok: str | None,
    **headers: str,
) -> aiohttp.ClientResponse:
    sent = {"Content-Type": SDP, **(bearer(tok) if tok else {}), **headers}
    return await http.post(server.make_url(path), data=body, headers=sent)


async def _nothing_streams(server: TestServer) -> None:
    service = app_of(server)[STREAMING]
    assert service.channels == {}
    assert service.resources == {}
    store = service.store.store
    assert await store.client.hgetall(streams_key(store, "plenary")) == {}
    _, seq = await store.position("plenary")
    entries = await store.range("plenary", 0, seq)
    assert not [e for e in entries if b'"stream.channel"' in e.frame]


async def test_a_whip_offer_is_answered_201_with_location_etag_accept_patch_and_ice_links(
    node_factory: NodeFactory,
) -> None:
    node = await node_factory(
        ice_servers=("stun:stun.example.org:3478", "turn:turn.example.org:3478?transport=udp"),
        turn_secret="t" * 32,
    )
    desk = token(Role.PRODUCTION, sub="desk")
    async with aiohttp.ClientSession() as http:
        offer = await offer_sdp(("audio", "video"), "sendonly")
        async with await _post(http, node, FLOOR, offer, desk) as response:
            assert response.status == 201
            assert response.content_type == SDP
            assert (await response.text()).startswith("v=0\r\n")
            location = response.headers["Location"]
            etag = response.headers["ETag"]
            links = response.headers.getall("Link")
            assert response.headers["Accept-Patch"] == FRAG
        assert re.fullmatch(r"/whip/plenary/floor/[A-Za-z0-9_-]+", location)
        assert re.fullmatch(r'"[0-9a-f]{16}"', etag)
        assert links[0] == '<stun:stun.example.org:3478>; rel="ice-server"'
        assert re.fullmatch(
            r'<turn:turn\.example\.org:3478\?transport=udp>; rel="ice-server"; '
            r'username="\d+:desk"; credential="[A-Za-z0-9+/=]+"; credential-type="password"',
            links[1],
        )
        # the resource takes a trickled candidate with its ETag, then ends; then it is gone
        headers = {"Content-Type": FRAG, "If-Match": etag, **bearer(desk)}
        async with http.patch(node.make_url(location), data=CANDIDATE, headers=headers) as r:
            assert r.status == 204
            assert await r.read() == b""
        async with http.delete(node.make_url(location), headers=bearer(desk)) as r:
            assert r.status == 200
        async with http.delete(node.make_url(location), headers=bearer(desk)) as r:
            assert r.status == 404
            assert (await r.json())["code"] == "unknown_resource"
        # a listener's Link headers carry STUN only: TURN credentials are for publishers
        publisher_links = links
        listen = await offer_sdp(("audio",), "recvonly")
        async with await _post(http, node, "/whep/plenary/fr", listen, token()) as r:
            assert r.status == 409  # offline: nothing to play
    assert len(publisher_links) == 2


async def test_refusals_carry_their_status_code_and_headers_and_change_nothing(
    node: TestServer,
) -> None:
    three_videos = await offer_sdp(("audio", "video", "video", "video"), "sendonly")
    audio = await offer_sdp(("audio",), "sendonly")
    floor_offer = await offer_sdp(("audio", "video"), "sendonly")
    cases: list[tuple[str, str, str | None, dict[str, str], int, str]] = [
        (FLOOR, floor_offer, None, {}, 401, "unauthorized"),
        (FLOOR, floor_offer, "forged", {}, 401, "unauthorized"),
        (FLOOR, floor_offer, token(Role.PRODUCTION, ("workshop",)), {}, 403, "session_forbidden"),
        (FLOOR, floor_offer, token(), {}, 403, "channel_forbidden"),
        (FLOOR, floor_offer, token(Role.PRODUCTION), {"takeover": "1"}, 403, "channel_forbidden"),
        ("/whip/plenary/fr", audio, interpreter("es"), {}, 403, "channel_forbidden"),
        ("/whip/plenary/fr", audio, token(Role.INTERPRETER), {}, 403, "channel_forbidden"),
        ("/whip/plenary/de", audio, token(Role.OPERATOR), {}, 404, "unknown_channel"),
        ("/whip/atlantis/fr", audio, token(Role.OPERATOR, ("*",)), {}, 404, "unknown_session"),
        (FLOOR, "v=0\r\nnot sdp", token(Role.PRODUCTION), {}, 400, "malformed_sdp"),
        (FLOOR, three_videos, token(Role.PRODUCTION), {}, 406, "not_acceptable"),
        ("/whip/plenary/fr", floor_offer, interpreter("fr"), {}, 406, "not_acceptable"),
        (FLOOR, floor_offer, token(Role.PRODUCTION), {"Accept": "text/html"}, 406, "not_acceptable"),
        (FLOOR, floor_offer, token(Role.PRODUCTION), {"Content-Type": "text/plain"}, 415,
         "unsupported_media_type"),
    ]  # fmt: skip
    async with aiohttp.ClientSession() as http:
        for path, body, tok, extra, status, code in cases:
            query = "?takeover=1" if extra.pop("takeover", None) else ""
            async with await _post(http, node, path + query, body, tok, **extra) as response:
                assert (response.status, (await response.json())["code"]) == (status, code), path
        await _nothing_streams(node)
        async with http.get(node.make_url("/metrics")) as response:
            metrics = await response.text()
    assert 'podium_stream_refusals_total{code="not_acceptable"} 3.0' in metrics
    assert 'podium_stream_refusals_total{code="channel_forbidden"} 4.0' in metrics


async def test_a_stale_etag_or_an_ice_restart_changes_nothing_and_the_session_goes_on(
    node: TestServer,
) -> None:
    desk = token(Role.PRODUCTION, sub="desk")
    async with aiohttp.ClientSession() as http:
        offer = await offer_sdp(("audio", "video"), "sendonly")
        async with await _post(http, node, FLOOR, offer, desk) as response:
            location, etag = response.headers["Location"], response.headers["ETag"]
        url = node.make_url(location)
        peer = app_of(node)[STREAMING].resources[location.rsplit("/", 1)[1]]
        before = peer.pc.remoteDescription.sdp
        refusals = [
            ({"If-Match": STALE}, CANDIDATE, 412, "precondition_failed"),
            ({}, CANDIDATE, 428, "precondition_required"),
            ({"If-Match": "*"}, "a=ice-ufrag:new1\r\na=ice-pwd:" + "n" * 22, 422,
             "ice_restart_unsupported"),
            ({"If-Match": etag}, "a=ice-ufrag:new1\r\na=ice-pwd:" + "n" * 22, 422,
             "ice_restart_unsupported"),
            ({"If-Match": etag, "Content-Type": SDP}, CANDIDATE, 415, "unsupported_media_type"),
            ({"If-Match": etag}, "a=candidate:junk", 400, "malformed_sdp"),
        ]  # fmt: skip
        for headers, body, status, code in refusals:
            sent = {"Content-Type": FRAG, **bearer(desk), **headers}
            async with http.patch(url, data=body, headers=sent) as response:
                assert (response.status, (await response.json())["code"]) == (status, code)
        assert peer.etag == etag
        assert not peer.closed
        assert peer.pc.remoteDescription.sdp == before
        sent = {"Content-Type": FRAG, "If-Match": etag, **bearer(desk)}
        async with http.patch(url, data=CANDIDATE, headers=sent) as response:
            assert response.status == 204


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT"])
async def test_a_resource_url_reserves_every_other_method_with_405_and_allow(
    node: TestServer, method: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, node.make_url("/whep/plenary/fr/abc")) as response,
    ):
        assert response.status == 405
        assert response.headers["Allow"] == "PATCH, DELETE"


async def test_caps_are_refused_with_503_and_retry_after(node_factory: NodeFactory) -> None:
    node = await node_factory(stream_max_channels=0, stream_max_listeners=0)
    async with aiohttp.ClientSession() as http:
        offer = await offer_sdp(("audio",), "sendonly")
        async with await _post(http, node, "/whip/plenary/fr", offer, interpreter("fr")) as r:
            assert (r.status, r.headers["Retry-After"]) == (503, "30")
        listen = await offer_sdp(("audio",), "recvonly")
        async with await _post(http, node, "/whep/plenary/fr", listen, token()) as r:
            assert (r.status, r.headers["Retry-After"]) == (503, "30")
            assert (await r.json())["code"] == "over_capacity"
    await _nothing_streams(node)


async def test_an_external_url_is_an_event_and_part_of_every_view(
    node: TestServer, connect: ClientFactory
) -> None:
    url = "https://webtv.example.org/live/plenary-ar.m3u8"
    async with aiohttp.ClientSession() as http:
        path = node.make_url("/api/v1/sessions/plenary/channels/ar/external")
        async with http.put(path, json={"url": url}, headers=operator_headers()) as response:
            assert (await response.json())["channel"]["external_url"] == url
        async with http.get(
            node.make_url("/api/v1/sessions/plenary/channels"), headers=bearer(token())
        ) as response:
            channels = {c["id"]: c for c in (await response.json())["channels"]}
    assert list(channels) == ["floor", "ar", "zh", "en", "fr", "ru", "es"]
    assert channels["ar"]["external_url"] == url
    assert "health" not in channels["ar"]  # participants do not see the operator's figures
    store = app_of(node)[STREAMING].store.store
    _, seq = await store.position("plenary")
    frames = [e.frame for e in await store.range("plenary", 0, seq)]
    assert any(b'"stream.channel"' in f and url.encode() in f for f in frames)
    # a client joining now finds the channels in its welcome snapshot
    client = await connect(node, token())
    assert client.welcome is not None
    part = client.welcome["parts"]["stream"]
    assert [c["id"] for c in part["channels"]] == list(channels)
    assert part["channels"][1]["external_url"] == url
    assert part["listeners"] == {}


async def test_a_channel_whose_node_died_is_taken_offline_by_another_node_and_everyone_is_told(
    node: TestServer, connect: ClientFactory
) -> None:
    watcher = await connect(node, token())
    service = app_of(node)[STREAMING]
    now = service.now_ms()
    session = service.programme.session("plenary")
    assert session is not None
    ghost = ChannelRecord().went_live("ghost-node", now - 60_000, 15_000, "http://gone:1")
    busy = ChannelRecord().went_live("busy-node", now, 15_000, "http://busy:1")
    for channel, record in (("fr", ghost), ("ar", busy)):
        spec = service.spec(session, channel)
        await service.store.write(
            "plenary", channel, record, channel_view("plenary", spec, record, now)
        )
    assert await service.reap_lost() == [("plenary", "fr")]
    assert await service.reap_lost() == []
    records = await service.store.records("plenary")
    assert (records["fr"].state.value, records["fr"].reason) == ("offline", "node_lost")
    assert records["ar"] == busy
    seen: list[tuple[str, str, str]] = []
    while len(seen) < 3:
        event = await watcher.next_event(timeout=5)
        if event["name"] == "stream.channel":
            view = event["data"]["channel"]
            seen.append((view["id"], view["state"], view["reason"]))
    # the ghost's record was written already lapsed: it reads offline from the start
    assert seen == [
        ("fr", "offline", "node_lost"),
        ("ar", "live", "publishing"),
        ("fr", "offline", "node_lost"),
    ]
