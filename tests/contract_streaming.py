"""Real exchanges with the streaming routes, one per documented response (used by the HTTP contract)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientResponse, ClientSession
from aiohttp.test_utils import TestServer

from config.appkeys import STREAMING
from signaling.identity import Identity, Role, mint
from tests.conftest import KEYS, app_of, operator_headers, token
from tests.contract_helpers import Ctx, Wire
from tests.streaming_helpers import SDP, Client, connected, offer_sdp, publish

Send = Callable[[Ctx], Awaitable[ClientResponse]]
STREAMING_EXCHANGES: dict[str, tuple[str, str, int, Send]] = {}

WHIP = "/whip/{session}/{channel}"
WHEP = "/whep/{session}/{channel}"
WHIP_R = WHIP + "/{resource}"
WHEP_R = WHEP + "/{resource}"
CHANNELS = "/api/v1/sessions/{session}/channels"
EXTERNAL = "/api/v1/sessions/{session}/channels/{channel}/external"
RECORDINGS = "/api/v1/sessions/{session}/recordings"
RECORDING = RECORDINGS + "/{name}"
FRAG = "application/trickle-ice-sdpfrag"
CANDIDATE = "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"
STALE = '"0000000000000000"'


def exchange(method: str, route: str, status: int) -> Callable[[Send], Send]:
    """Registers a real request whose response must match the documented ``status`` response."""

    def register(send: Send) -> Send:
        STREAMING_EXCHANGES[send.__name__] = (method, route, status, send)
        return send

    return register


def _auth(tok: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + tok}


def interpreter(lang: str, sub: str = "booth") -> str:
    """An interpreter's token for the plenary's ``lang`` channel."""
    identity = Identity(
        sub=sub, name="Booth", role=Role.INTERPRETER, sessions=("plenary",), lang=lang
    )
    return mint(KEYS, identity, now=int(time.time()), ttl=3600)


def _production(sub: str = "desk") -> str:
    return token(Role.PRODUCTION, sub=sub)


async def _post_sdp(
    ctx: Ctx, path: str, body: str | bytes, tok: str | None, content_type: str = SDP
) -> ClientResponse:
    headers = {"Content-Type": content_type, **(_auth(tok) if tok else {})}
    return await ctx.http.post(ctx.node.make_url(path), data=body, headers=headers)


async def _floor_offer() -> str:
    return await offer_sdp(("audio", "video"), "sendonly")


async def _whip(ctx: Ctx, sub: str = "desk") -> tuple[str, str]:
    """A WHIP session on the floor (its client gone): (resource path, ETag)."""
    response = await _post_sdp(ctx, "/whip/plenary/floor", await _floor_offer(), _production(sub))
    assert response.status == 201, await response.text()
    return response.headers["Location"], response.headers["ETag"]


async def _live_fr(ctx: Ctx) -> Client:
    """A live French channel: a real publisher (close it after the exchange)."""
    publisher = await publish(
        ctx.http, ctx.node, "/whip/plenary/fr", interpreter("fr"), video=False
    )
    await connected(publisher.pc)
    service = app_of(ctx.node)[STREAMING]
    async with asyncio.timeout(15):
        while not ((live := service.channels.get(("plenary", "fr"))) and live.live):
            await asyncio.sleep(0.05)
    return publisher


async def _whep(ctx: Ctx, sub: str = "amina") -> tuple[Client, str, str]:
    """A WHEP session on the live French channel: (its publisher, resource path, ETag)."""
    publisher = await _live_fr(ctx)
    offer = await offer_sdp(("audio",), "recvonly")
    response = await _post_sdp(ctx, "/whep/plenary/fr", offer, token(sub=sub))
    assert response.status == 201, await response.text()
    return publisher, response.headers["Location"], response.headers["ETag"]


async def _patch(
    ctx: Ctx, path: str, tok: str | None, if_match: str | None, body: str, kind: str = FRAG
) -> ClientResponse:
    headers = {"Content-Type": kind, **(_auth(tok) if tok else {})}
    if if_match is not None:
        headers["If-Match"] = if_match
    return await ctx.http.patch(ctx.node.make_url(path), data=body, headers=headers)


async def _with_whep(
    ctx: Ctx, act: Callable[[str, str], Awaitable[ClientResponse]]
) -> ClientResponse:
    publisher, location, etag = await _whep(ctx)
    try:
        response = await act(location, etag)
        await response.read()
        return response
    finally:
        await publisher.close()


# ---- WHIP endpoint ------------------------------------------------------------------------------


@exchange("POST", WHIP, 201)
async def production_publishes_the_floor(ctx: Ctx) -> ClientResponse:
    return await _post_sdp(ctx, "/whip/plenary/floor", await _floor_offer(), _production())


@exchange("POST", WHIP, 400)
async def a_body_that_is_not_sdp_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await _post_sdp(ctx, "/whip/plenary/floor", "hello, podium", _production())


@exchange("POST", WHIP, 401)
async def a_publisher_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await _post_sdp(ctx, "/whip/plenary/floor", await _floor_offer(), None)


@exchange("POST", WHIP, 403)
async def a_participant_may_not_publish(ctx: Ctx) -> ClientResponse:
    return await _post_sdp(ctx, "/whip/plenary/floor", await _floor_offer(), token())


@exchange("POST", WHIP, 403)
async def an_interpreter_may_not_publish_another_language(ctx: Ctx) -> ClientResponse:
    offer = await offer_sdp(("audio",), "sendonly")
    return await _post_sdp(ctx, "/whip/plenary/es", offer, interpreter("fr"))


@exchange("POST", WHIP, 404)
async def a_channel_the_session_does_not_have_is_not_found(ctx: Ctx) -> ClientResponse:
    return await _post_sdp(ctx, "/whip/plenary/de", await _floor_offer(), token(Role.OPERATOR))


@exchange("POST", WHIP, 404)
async def publishing_to_an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await _post_sdp(ctx, "/whip/nowhere/floor", await _floor_offer(), _production())


@exchange("POST", WHIP, 406)
async def an_offer_with_three_video_tracks_is_not_acceptable(ctx: Ctx) -> ClientResponse:
    offer = await offer_sdp(("audio", "video", "video", "video"), "sendonly")
    return await _post_sdp(ctx, "/whip/plenary/floor", offer, _production())


@exchange("POST", WHIP, 409)
async def a_second_publisher_is_refused(ctx: Ctx) -> ClientResponse:
    await _whip(ctx, "desk-1")
    return await _post_sdp(ctx, "/whip/plenary/floor", await _floor_offer(), _production("desk-2"))


@exchange("POST", WHIP, 415)
async def an_offer_that_is_not_application_sdp_is_unsupported(ctx: Ctx) -> ClientResponse:
    offer = await _floor_offer()
    return await _post_sdp(ctx, "/whip/plenary/floor", offer, _production(), "text/plain")


@exchange("POST", WHIP, 503)
async def a_node_at_its_channel_cap_refuses_publishers(ctx: Ctx) -> ClientResponse:
    await ctx.own_node(stream_max_channels=0)
    return await _post_sdp(ctx, "/whip/plenary/floor", await _floor_offer(), _production())


# ---- WHIP resource ------------------------------------------------------------------------------


@exchange("PATCH", WHIP_R, 204)
async def a_publisher_trickles_a_candidate(ctx: Ctx) -> ClientResponse:
    location, etag = await _whip(ctx)
    return await _patch(ctx, location, _production(), etag, "a=mid:0\r\n" + CANDIDATE + "\r\n")


@exchange("PATCH", WHIP_R, 400)
async def a_fragment_with_a_broken_candidate_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    location, etag = await _whip(ctx)
    return await _patch(ctx, location, _production(), etag, "a=candidate:nonsense\r\n")


@exchange("PATCH", WHIP_R, 401)
async def a_trickle_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    location, etag = await _whip(ctx)
    return await _patch(ctx, location, None, etag, CANDIDATE)


@exchange("PATCH", WHIP_R, 403)
async def someone_else_may_not_trickle_into_a_publisher_s_session(ctx: Ctx) -> ClientResponse:
    location, etag = await _whip(ctx)
    return await _patch(ctx, location, _production("other-desk"), etag, CANDIDATE)


@exchange("PATCH", WHIP_R, 404)
async def a_trickle_to_an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await _patch(ctx, "/whip/plenary/floor/nope", _production(), STALE, CANDIDATE)


@exchange("PATCH", WHIP_R, 412)
async def a_trickle_with_a_stale_etag_fails_its_precondition(ctx: Ctx) -> ClientResponse:
    location, _ = await _whip(ctx)
    return await _patch(ctx, location, _production(), STALE, CANDIDATE)


@exchange("PATCH", WHIP_R, 415)
async def a_trickle_that_is_not_a_fragment_is_unsupported(ctx: Ctx) -> ClientResponse:
    location, etag = await _whip(ctx)
    return await _patch(ctx, location, _production(), etag, CANDIDATE, SDP)


@exchange("PATCH", WHIP_R, 422)
async def an_ice_restart_is_unprocessable(ctx: Ctx) -> ClientResponse:
    location, _ = await _whip(ctx)
    body = "a=ice-ufrag:abcd\r\na=ice-pwd:" + "x" * 24 + "\r\n" + CANDIDATE
    return await _patch(ctx, location, _production(), "*", body)


@exchange("PATCH", WHIP_R, 428)
async def a_trickle_without_if_match_is_refused(ctx: Ctx) -> ClientResponse:
    location, _ = await _whip(ctx)
    return await _patch(ctx, location, _production(), None, CANDIDATE)


@exchange("DELETE", WHIP_R, 200)
async def a_publisher_ends_its_session(ctx: Ctx) -> ClientResponse:
    location, _ = await _whip(ctx)
    return await ctx.http.delete(ctx.node.make_url(location), headers=_auth(_production()))


@exchange("DELETE", WHIP_R, 401)
async def an_end_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    location, _ = await _whip(ctx)
    return await ctx.http.delete(ctx.node.make_url(location))


@exchange("DELETE", WHIP_R, 403)
async def someone_else_may_not_end_a_publisher_s_session(ctx: Ctx) -> ClientResponse:
    location, _ = await _whip(ctx)
    return await ctx.http.delete(ctx.node.make_url(location), headers=_auth(_production("x")))


@exchange("DELETE", WHIP_R, 404)
async def ending_an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    url = ctx.node.make_url("/whip/plenary/floor/" + uuid.uuid4().hex)
    return await ctx.http.delete(url, headers=_auth(_production()))


@exchange("GET", WHIP_R, 405)
async def a_whip_resource_cannot_be_read(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/whip/plenary/floor/any")


@exchange("POST", WHIP_R, 405)
async def a_whip_resource_takes_no_post(ctx: Ctx) -> ClientResponse:
    return await ctx.http.post(ctx.node.make_url("/whip/plenary/floor/any"))


@exchange("PUT", WHIP_R, 405)
async def a_whip_resource_takes_no_put(ctx: Ctx) -> ClientResponse:
    return await ctx.http.put(ctx.node.make_url("/whip/plenary/floor/any"))


# ---- WHEP ---------------------------------------------------------------------------------------


@exchange("POST", WHEP, 201)
async def a_participant_plays_a_live_language_channel(ctx: Ctx) -> ClientResponse:
    publisher = await _live_fr(ctx)
    try:
        offer = await offer_sdp(("audio",), "recvonly")
        response = await _post_sdp(ctx, "/whep/plenary/fr", offer, token())
        await response.read()
        return response
    finally:
        await publisher.close()


@exchange("POST", WHEP, 400)
async def a_player_s_body_that_is_not_sdp_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await _post_sdp(ctx, "/whep/plenary/fr", "v=0\r\n", token())


@exchange("POST", WHEP, 401)
async def a_player_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await _post_sdp(ctx, "/whep/plenary/fr", await offer_sdp(("audio",), "recvonly"), None)


@exchange("POST", WHEP, 403)
async def a_player_of_another_session_is_forbidden(ctx: Ctx) -> ClientResponse:
    offer = await offer_sdp(("audio",), "recvonly")
    return await _post_sdp(ctx, "/whep/plenary/fr", offer, token(sessions=("workshop",)))


@exchange("POST", WHEP, 404)
async def playing_a_channel_the_session_does_not_have_is_not_found(ctx: Ctx) -> ClientResponse:
    offer = await offer_sdp(("audio",), "recvonly")
    return await _post_sdp(ctx, "/whep/workshop/fr", offer, token(sessions=("workshop",)))


@exchange("POST", WHEP, 406)
async def video_from_a_language_channel_is_not_acceptable(ctx: Ctx) -> ClientResponse:
    offer = await offer_sdp(("audio", "video"), "recvonly")
    return await _post_sdp(ctx, "/whep/plenary/fr", offer, token())


@exchange("POST", WHEP, 409)
async def playing_an_offline_channel_is_a_conflict(ctx: Ctx) -> ClientResponse:
    offer = await offer_sdp(("audio", "video"), "recvonly")
    return await _post_sdp(ctx, "/whep/plenary/floor", offer, token())


@exchange("POST", WHEP, 415)
async def a_player_s_offer_that_is_not_application_sdp_is_unsupported(ctx: Ctx) -> ClientResponse:
    offer = await offer_sdp(("audio",), "recvonly")
    return await _post_sdp(ctx, "/whep/plenary/fr", offer, token(), "application/json")


@exchange("POST", WHEP, 503)
async def a_node_at_its_listener_cap_refuses_players(ctx: Ctx) -> ClientResponse:
    await ctx.own_node(stream_max_listeners=0)
    offer = await offer_sdp(("audio",), "recvonly")
    return await _post_sdp(ctx, "/whep/plenary/fr", offer, token())


@exchange("PATCH", WHEP_R, 204)
async def a_player_trickles_a_candidate(ctx: Ctx) -> ClientResponse:
    async def act(location: str, etag: str) -> ClientResponse:
        return await _patch(ctx, location, token(sub="amina"), etag, CANDIDATE)

    return await _with_whep(ctx, act)


@exchange("PATCH", WHEP_R, 400)
async def a_player_s_empty_fragment_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    async def act(location: str, etag: str) -> ClientResponse:
        return await _patch(ctx, location, token(sub="amina"), etag, "a=mid:0\r\n")

    return await _with_whep(ctx, act)


@exchange("PATCH", WHEP_R, 401)
async def a_player_s_trickle_with_an_expired_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    expired = token(sub="amina", now=int(time.time()) - 7200, ttl=3600)
    return await _patch(ctx, "/whep/plenary/fr/any", expired, STALE, CANDIDATE)


@exchange("PATCH", WHEP_R, 403)
async def someone_else_may_not_trickle_into_a_player_s_session(ctx: Ctx) -> ClientResponse:
    async def act(location: str, etag: str) -> ClientResponse:
        return await _patch(ctx, location, token(sub="li"), etag, CANDIDATE)

    return await _with_whep(ctx, act)


@exchange("PATCH", WHEP_R, 404)
async def a_trickle_to_an_ended_player_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await _patch(ctx, "/whep/plenary/fr/gone", token(sub="amina"), STALE, CANDIDATE)


@exchange("PATCH", WHEP_R, 412)
async def a_player_s_trickle_with_a_stale_etag_fails(ctx: Ctx) -> ClientResponse:
    async def act(location: str, etag: str) -> ClientResponse:
        return await _patch(ctx, location, token(sub="amina"), STALE, CANDIDATE)

    return await _with_whep(ctx, act)


@exchange("PATCH", WHEP_R, 415)
async def a_player_s_trickle_as_json_is_unsupported(ctx: Ctx) -> ClientResponse:
    async def act(location: str, etag: str) -> ClientResponse:
        return await _patch(ctx, location, token(sub="amina"), etag, "{}", "application/json")

    return await _with_whep(ctx, act)


@exchange("PATCH", WHEP_R, 422)
async def a_player_s_new_ice_credentials_are_unprocessable(ctx: Ctx) -> ClientResponse:
    async def act(location: str, etag: str) -> ClientResponse:
        body = "a=ice-ufrag:zzzz\r\na=ice-pwd:" + "y" * 24 + "\r\n" + CANDIDATE
        return await _patch(ctx, location, token(sub="amina"), etag, body)

    return await _with_whep(ctx, act)


@exchange("PATCH", WHEP_R, 428)
async def a_player_s_trickle_without_if_match_is_refused(ctx: Ctx) -> ClientResponse:
    async def act(location: str, etag: str) -> ClientResponse:
        return await _patch(ctx, location, token(sub="amina"), None, CANDIDATE)

    return await _with_whep(ctx, act)


@exchange("DELETE", WHEP_R, 200)
async def a_player_stops(ctx: Ctx) -> ClientResponse:
    async def act(location: str, etag: str) -> ClientResponse:
        return await ctx.http.delete(ctx.node.make_url(location), headers=_auth(token(sub="amina")))

    return await _with_whep(ctx, act)


@exchange("DELETE", WHEP_R, 401)
async def a_player_s_stop_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.http.delete(ctx.node.make_url("/whep/plenary/fr/any"))


@exchange("DELETE", WHEP_R, 403)
async def someone_else_may_not_stop_a_player(ctx: Ctx) -> ClientResponse:
    async def act(location: str, etag: str) -> ClientResponse:
        return await ctx.http.delete(ctx.node.make_url(location), headers=_auth(token(sub="li")))

    return await _with_whep(ctx, act)


@exchange("DELETE", WHEP_R, 404)
async def stopping_an_unknown_player_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.http.delete(ctx.node.make_url("/whep/plenary/fr/any"), headers=_auth(token()))


@exchange("GET", WHEP_R, 405)
async def a_whep_resource_cannot_be_read(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/whep/plenary/fr/any")


@exchange("POST", WHEP_R, 405)
async def a_whep_resource_takes_no_post(ctx: Ctx) -> ClientResponse:
    return await ctx.http.post(ctx.node.make_url("/whep/plenary/fr/any"))


@exchange("PUT", WHEP_R, 405)
async def a_whep_resource_takes_no_put(ctx: Ctx) -> ClientResponse:
    return await ctx.http.put(ctx.node.make_url("/whep/plenary/fr/any"))


# ---- channels and recordings --------------------------------------------------------------------


@exchange("GET", CHANNELS, 200)
async def an_operator_sees_the_channels_with_their_health(ctx: Ctx) -> ClientResponse:
    publisher = await _live_fr(ctx)
    try:
        await app_of(ctx.node)[STREAMING].check()  # one health round: the figures are there
        response = await ctx.get("/api/v1/sessions/plenary/channels", operator_headers())
        body = await response.json()
        fr = next(c for c in body["channels"] if c["id"] == "fr")
        assert (fr["state"], fr["publisher"]) == ("live", "Booth")
        assert fr["health"] is not None
        return response
    finally:
        await publisher.close()


@exchange("GET", CHANNELS, 200)
async def a_participant_sees_the_channels_and_their_external_urls(ctx: Ctx) -> ClientResponse:
    url = "https://webtv.example.org/plenary.m3u8"
    await ctx.http.put(
        ctx.node.make_url("/api/v1/sessions/plenary/channels/floor/external"),
        json={"url": url},
        headers=operator_headers(),
    )
    response = await ctx.get("/api/v1/sessions/plenary/channels", _auth(token()))
    floor = (await response.json())["channels"][0]
    assert (floor["id"], floor["external_url"], floor["state"]) == ("floor", url, "offline")
    return response


@exchange("GET", CHANNELS, 401)
async def the_channels_without_a_token_are_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/channels")


@exchange("GET", CHANNELS, 403)
async def the_channels_of_a_session_the_token_does_not_grant_are_forbidden(
    ctx: Ctx,
) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/channels", _auth(token(sessions=("workshop",))))


@exchange("GET", CHANNELS, 404)
async def the_channels_of_an_unknown_session_are_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/nowhere/channels", operator_headers())


@exchange("GET", CHANNELS, 503)
async def the_channels_are_unavailable_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get("/api/v1/sessions/plenary/channels", _auth(token()))


def _external(channel: str = "fr") -> str:
    return f"/api/v1/sessions/plenary/channels/{channel}/external"


async def _put(ctx: Ctx, path: str, body: object, tok: str | None) -> ClientResponse:
    ctx.body = body
    headers = _auth(tok) if tok else {}
    return await ctx.http.put(ctx.node.make_url(path), json=body, headers=headers)


@exchange("PUT", EXTERNAL, 200)
async def an_operator_registers_an_external_url(ctx: Ctx) -> ClientResponse:
    body = {"url": "https://webtv.example.org/live/plenary-fr.m3u8"}
    return await _put(ctx, _external(), body, token(Role.OPERATOR, ("*",)))


@exchange("PUT", EXTERNAL, 200)
async def production_clears_an_external_url(ctx: Ctx) -> ClientResponse:
    return await _put(ctx, _external("floor"), {"url": None}, _production())


@exchange("PUT", EXTERNAL, 400)
async def an_external_url_that_is_not_http_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await _put(ctx, _external(), {"url": "ftp://files.example.org/x"}, _production())


@exchange("PUT", EXTERNAL, 401)
async def an_external_url_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await _put(ctx, _external(), {"url": None}, None)


@exchange("PUT", EXTERNAL, 403)
async def a_participant_may_not_set_an_external_url(ctx: Ctx) -> ClientResponse:
    return await _put(ctx, _external(), {"url": None}, token())


@exchange("PUT", EXTERNAL, 404)
async def the_external_url_of_an_unknown_channel_is_not_found(ctx: Ctx) -> ClientResponse:
    return await _put(ctx, _external("de"), {"url": None}, _production())


@exchange("PUT", EXTERNAL, 503)
async def an_external_url_cannot_be_set_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await _put(ctx, _external(), {"url": None}, _production())


RECORDED = "floor-20260101T090000Z-abcdef.mkv"


def _recorded(ctx: Ctx) -> None:
    folder = app_of(ctx.node)[STREAMING].recordings_dir / "plenary"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RECORDED).write_text("a recording's bytes")


@exchange("GET", RECORDINGS, 200)
async def an_operator_lists_the_recordings(ctx: Ctx) -> ClientResponse:
    _recorded(ctx)
    return await ctx.get("/api/v1/sessions/plenary/recordings", operator_headers())


@exchange("GET", RECORDINGS, 401)
async def the_recordings_without_a_token_are_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/recordings")


@exchange("GET", RECORDINGS, 403)
async def production_may_not_list_the_recordings(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/recordings", _auth(_production()))


@exchange("GET", RECORDINGS, 404)
async def the_recordings_of_an_unknown_session_are_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/nowhere/recordings", operator_headers())


@exchange("GET", RECORDING, 200)
async def an_operator_downloads_a_recording(ctx: Ctx) -> ClientResponse:
    _recorded(ctx)
    return await ctx.get(f"/api/v1/sessions/plenary/recordings/{RECORDED}", operator_headers())


@exchange("GET", RECORDING, 401)
async def a_download_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.get(f"/api/v1/sessions/plenary/recordings/{RECORDED}")


@exchange("GET", RECORDING, 403)
async def a_participant_may_not_download_a_recording(ctx: Ctx) -> ClientResponse:
    _recorded(ctx)
    return await ctx.get(f"/api/v1/sessions/plenary/recordings/{RECORDED}", _auth(token()))


@exchange("GET", RECORDING, 404)
async def a_recording_outside_the_session_s_folder_is_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/recordings/..%2F..%2Fsecret", operator_headers())


# ---- streaming events on the client socket (used by the WebSocket contract) ---------------------


async def _no_nodes(**changes: Any) -> TestServer:
    raise AssertionError("the socket contract's stream traffic starts no node")


async def _no_clients(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the socket contract's stream traffic opens no protocol client")


class _NoTmp:
    def mktemp(self, name: str) -> Any:
        raise AssertionError("the socket contract's stream traffic needs no directory")


_no_tmp: Any = _NoTmp()


async def stream_traffic(node: TestServer, wire: Wire) -> None:
    """Channel and listener events: an external URL, a channel live with a listener, then offline."""
    operator = await wire.join(node, token(Role.OPERATOR, ("*",), sub="olu", name="Olu"))
    async with ClientSession() as http:
        ctx = Ctx(http, node, _no_nodes, _no_clients, _no_tmp)
        url = "https://webtv.example.org/live/plenary-es.m3u8"
        response = await _put(ctx, _external("es"), {"url": url}, _production())
        assert response.status == 200
        await operator.event("stream.channel", lambda d: d["channel"]["external_url"] == url)
        publisher, _, _ = await _whep(ctx)
        try:
            await operator.event("stream.channel", lambda d: d["channel"]["state"] == "live")
            await operator.event("stream.listeners", lambda d: d["listeners"] == {"fr": 1})
        finally:
            await publisher.close()
        await operator.event("stream.channel", lambda d: d["channel"]["state"] == "offline")
        await operator.event("stream.listeners", lambda d: d["listeners"] == {})


@exchange("POST", WHEP, 307)
async def a_channel_live_on_another_node_is_a_redirect_there(ctx: Ctx) -> ClientResponse:
    publisher = await _live_fr(ctx)
    try:
        await ctx.own_node()  # a second node on the same store
        offer = await offer_sdp(("audio",), "recvonly")
        headers = {"Content-Type": SDP, **_auth(token())}
        url = ctx.node.make_url("/whep/plenary/fr")
        response = await ctx.http.post(url, data=offer, headers=headers, allow_redirects=False)
        await response.read()
        return response
    finally:
        await publisher.close()


STREAMS = "/api/v1/streams"


@exchange("GET", STREAMS, 200)
async def an_operator_sees_every_session_s_streams(ctx: Ctx) -> ClientResponse:
    publisher = await _live_fr(ctx)
    try:
        service = app_of(ctx.node)[STREAMING]
        await service.check()
        response = await ctx.get(STREAMS, operator_headers())
        body = await response.json()
        assert [s["session"] for s in body["sessions"]] == ["plenary", "workshop", "open-forum"]
        fr = next(c for c in body["sessions"][0]["channels"] if c["id"] == "fr")
        assert (fr["state"], fr["listeners"], fr["publisher"]) == ("live", 0, "Booth")
        return response
    finally:
        await publisher.close()


@exchange("GET", STREAMS, 401)
async def the_streams_without_a_token_are_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.get(STREAMS)


@exchange("GET", STREAMS, 403)
async def production_may_not_see_every_session_s_streams(ctx: Ctx) -> ClientResponse:
    return await ctx.get(STREAMS, _auth(_production()))


@exchange("GET", STREAMS, 503)
async def the_streams_are_unavailable_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get(STREAMS, operator_headers())


async def _flood(ctx: Ctx, path: str, tok: str) -> ClientResponse:
    for _ in range(20):
        response = await _post_sdp(ctx, path, "not sdp", tok)
        if response.status == 429:
            return response
        assert response.status == 400
        response.release()
    raise AssertionError("20 offers in a row were not rate-limited")


@exchange("POST", WHIP, 429)
async def a_burst_of_offers_from_one_publisher_is_rate_limited(ctx: Ctx) -> ClientResponse:
    return await _flood(ctx, "/whip/plenary/floor", _production())


@exchange("POST", WHEP, 429)
async def a_burst_of_offers_from_one_player_is_rate_limited(ctx: Ctx) -> ClientResponse:
    return await _flood(ctx, "/whep/plenary/fr", token(sub="amina"))
