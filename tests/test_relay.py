"""The media relay end to end: two real aiortc peers, a speaker and a desk, on two podium nodes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from av import VideoFrame
from prometheus_client import generate_latest

from config.appkeys import REGISTRY, RELAY
from signaling.client import ClientError, PodiumClient
from signaling.identity import Role
from tests.conftest import ClientFactory, NodeFactory, app_of, token
from tests.test_media_rules import offer as sample_offer

LOOPBACK = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"
LAN = "candidate:2 1 udp 2130706431 192.0.2.77 50000 typ host"


class Frames(VideoStreamTrack):
    """Synthetic 160×120 frames at 30 fps (no camera, no media file)."""

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=160, height=120)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = pts
        frame.time_base = time_base
        return frame


class Chair:
    """The moderator, who gives and takes the floor through the speakers' list (the protocol)."""

    def __init__(self, client: PodiumClient) -> None:
        self.client = client

    async def grant(self, speaker: PodiumClient) -> None:
        entry = (await speaker.request("floor.request"))["entry"]
        await self.client.request("floor.grant", entry=entry)

    async def revoke(self) -> None:
        await self.client.request("floor.revoke")


async def relayed(client: PodiumClient, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next relayed message of that type (other messages on the way are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await client.events.get()
            if message.get("type") == kind:
                return message


async def nothing_relayed(client: PodiumClient, wait: float = 0.4) -> list[dict[str, Any]]:
    """The ``rtc.*`` messages that reach a client within ``wait`` seconds (expected: none)."""
    await asyncio.sleep(wait)
    seen: list[dict[str, Any]] = []
    while not client.events.empty():
        message = client.events.get_nowait()
        if str(message.get("type", "")).startswith("rtc."):
            seen.append(message)
    return seen


class Peers:
    """The test's peer connections (closed at its end); aiortc is given no STUN server at all."""

    def __init__(self) -> None:
        self.pcs: list[RTCPeerConnection] = []

    def new(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        return pc

    async def offer(self, speaker: PodiumClient, media: str | None = None) -> tuple[str, Any]:
        """The speaker offers a synthetic video track; returns the media id and its peer connection."""
        pc = self.new()
        pc.addTrack(Frames())
        await pc.setLocalDescription(await pc.createOffer())
        fields: dict[str, Any] = {"sdp": pc.localDescription.sdp}
        if media is not None:
            fields["media"] = media
        result = await speaker.request("rtc.offer", **fields)
        return str(result["media"]), pc

    async def answer(self, desk: PodiumClient) -> tuple[dict[str, Any], MediaStreamTrack]:
        """The desk answers the next offer it gets; returns the offer and the incoming track."""
        offer = await relayed(desk, "rtc.offer")
        pc = self.new()
        tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
        pc.on("track", tracks.put_nowait)
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await desk.request("rtc.answer", media=offer["media"], sdp=pc.localDescription.sdp)
        return offer, await tracks.get()

    async def accept(self, speaker: PodiumClient, pc: RTCPeerConnection) -> None:
        """The speaker applies the desk's answer."""
        answer = await relayed(speaker, "rtc.answer")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()


@pytest.fixture
async def peers() -> AsyncIterator[Peers]:
    made = Peers()
    yield made
    await made.close()


@pytest.fixture
async def two_nodes(node_factory: NodeFactory) -> tuple[TestServer, TestServer]:
    """Two nodes on one store; the relay passes this machine's own candidates (loopback tests)."""
    return (
        await node_factory(allow_private_candidates=True),
        await node_factory(allow_private_candidates=True),
    )


async def _chair(node: TestServer, connect: ClientFactory) -> Chair:
    return Chair(await connect(node, token(Role.MODERATOR, sub="chair", name="Claire")))


async def _speaker_and_desk(
    nodes: tuple[TestServer, TestServer], connect: ClientFactory
) -> tuple[PodiumClient, PodiumClient, Chair]:
    """A speaker granted the floor on the first node, a desk on the second, the chair on either."""
    speaker = await connect(nodes[0], token(Role.SPEAKER, sub="amina", name="Amina"))
    desk = await connect(nodes[1], token(Role.PRODUCTION, sub="desk", name="Desk A"))
    chair = await _chair(nodes[1], connect)
    await chair.grant(speaker)
    return speaker, desk, chair


async def _frame(track: MediaStreamTrack, timeout: float = 15.0) -> VideoFrame:
    frame = await asyncio.wait_for(track.recv(), timeout)
    assert isinstance(frame, VideoFrame)
    return frame


# ---- media flows ---------------------------------------------------------------------------------


async def test_the_desk_on_another_node_receives_the_granted_speaker_s_video_until_a_revoke(
    two_nodes: tuple[TestServer, TestServer], connect: ClientFactory, peers: Peers
) -> None:
    speaker, desk, chair = await _speaker_and_desk(two_nodes, connect)
    media, pc = await peers.offer(speaker)
    offer, track = await peers.answer(desk)
    assert (offer["media"], offer["name"], offer["group"]) == (media, "Amina", "civil-society")
    await peers.accept(speaker, pc)
    frame = await _frame(track)
    assert (frame.width, frame.height) == (160, 120)
    await desk.request("rtc.state", media=media, state="connected")
    assert (await relayed(speaker, "rtc.state"))["state"] == "connected"
    desk_node = _metrics(two_nodes[1])
    assert "podium_media_sessions_active 1.0" in desk_node
    assert "podium_grant_to_media_seconds_count 1.0" in desk_node
    assert 'podium_rtc_messages_total{type="answer"} 1.0' in desk_node

    await chair.revoke()  # on the desk's node; the speaker's is told through the store
    for end in (speaker, desk):
        assert await relayed(end, "rtc.hangup") == {
            "type": "rtc.hangup",
            "media": media,
            "reason": "revoked",
        }
    assert "podium_media_sessions_active 0.0" in _metrics(two_nodes[1])
    with pytest.raises(ClientError) as refused:
        await speaker.request("rtc.offer", sdp=sample_offer())
    assert refused.value.code == "not_allowed"


async def test_an_ice_restart_renegotiates_the_same_media_session_on_fresh_peer_connections(
    two_nodes: tuple[TestServer, TestServer], connect: ClientFactory, peers: Peers
) -> None:
    # aiortc cannot restart ICE on a live connection (no restartIce, one ICE start per transport):
    # the speaker answers rtc.restart with a new offer for the same media id from a new peer
    # connection, which brings new ICE credentials, and the desk answers it on a new one.
    speaker, desk, _ = await _speaker_and_desk(two_nodes, connect)
    media, first = await peers.offer(speaker)
    _, track = await peers.answer(desk)
    await peers.accept(speaker, first)
    await _frame(track)

    assert await desk.request("rtc.restart", media=media) == {}
    assert await relayed(speaker, "rtc.restart") == {"type": "rtc.restart", "media": media}
    await first.close()
    again, second = await peers.offer(speaker, media=media)
    assert again == media
    offer, track = await peers.answer(desk)  # to this desk only: it took the media session
    assert offer["media"] == media
    assert _ice_ufrag(offer["sdp"]) != _ice_ufrag(first.localDescription.sdp)
    await peers.accept(speaker, second)
    await _frame(track)


async def test_trickled_candidates_and_states_reach_the_other_end_and_a_hangup_ends_it(
    two_nodes: tuple[TestServer, TestServer], connect: ClientFactory
) -> None:
    speaker, desk, _ = await _speaker_and_desk(two_nodes, connect)
    media = (await speaker.request("rtc.offer", sdp=sample_offer()))["media"]
    await relayed(desk, "rtc.offer")
    # Before a desk answers, the speaker's candidates go to every desk.
    trickled = {"media": media, "candidate": LAN, "mid": "0", "mline": 0}
    assert await speaker.request("rtc.candidate", **trickled) == {"dropped": False}
    assert await relayed(desk, "rtc.candidate") == {"type": "rtc.candidate", **trickled}
    await desk.request("rtc.answer", media=media, sdp=sample_offer())
    await relayed(speaker, "rtc.answer")
    assert await desk.request("rtc.candidate", media=media, candidate="") == {"dropped": False}
    assert await relayed(speaker, "rtc.candidate") == {
        "type": "rtc.candidate",
        "media": media,
        "candidate": "",
    }
    await desk.request("rtc.state", media=media, state="connected")
    assert await relayed(speaker, "rtc.state") == {
        "type": "rtc.state",
        "media": media,
        "state": "connected",
    }
    assert await speaker.request("rtc.hangup", media=media) == {}
    assert await relayed(desk, "rtc.hangup") == {
        "type": "rtc.hangup",
        "media": media,
        "reason": "hangup",
    }
    with pytest.raises(ClientError) as gone:
        await desk.request("rtc.candidate", media=media, candidate=LAN)
    assert gone.value.code == "media_not_found"


async def test_a_speaker_who_leaves_ends_the_media_session_and_the_desk_hears_left(
    two_nodes: tuple[TestServer, TestServer], connect: ClientFactory
) -> None:
    speaker, desk, _ = await _speaker_and_desk(two_nodes, connect)
    media = (await speaker.request("rtc.offer", sdp=sample_offer()))["media"]
    await relayed(desk, "rtc.offer")
    await desk.request("rtc.answer", media=media, sdp=sample_offer())
    await speaker.close()
    assert await relayed(desk, "rtc.hangup") == {
        "type": "rtc.hangup",
        "media": media,
        "reason": "left",
    }


async def test_the_first_desk_to_answer_takes_the_media_session_and_a_second_gets_a_conflict(
    two_nodes: tuple[TestServer, TestServer], connect: ClientFactory
) -> None:
    speaker, desk, _ = await _speaker_and_desk(two_nodes, connect)
    other = await connect(two_nodes[0], token(Role.PRODUCTION, sub="desk-b", name="Desk B"))
    media = (await speaker.request("rtc.offer", sdp=sample_offer()))["media"]
    await relayed(other, "rtc.offer")  # every desk sees the offer
    answers = await asyncio.gather(
        desk.request("rtc.answer", media=media, sdp=sample_offer()),
        other.request("rtc.answer", media=media, sdp=sample_offer()),
        return_exceptions=True,
    )
    refused = [a for a in answers if isinstance(a, ClientError)]
    assert [e.code for e in refused] == ["media_conflict"]
    assert len(await nothing_relayed(speaker)) == 1  # exactly one answer reached the speaker
    loser = other if isinstance(answers[1], ClientError) else desk
    with pytest.raises(ClientError) as conflict:
        await loser.request("rtc.candidate", media=media, candidate=LAN)
    assert conflict.value.code == "media_conflict"


async def test_a_fresh_offer_replaces_the_speaker_s_media_session_and_its_desk_hears_replaced(
    two_nodes: tuple[TestServer, TestServer], connect: ClientFactory
) -> None:
    speaker, desk, _ = await _speaker_and_desk(two_nodes, connect)
    first = (await speaker.request("rtc.offer", sdp=sample_offer()))["media"]
    await relayed(desk, "rtc.offer")
    await desk.request("rtc.answer", media=first, sdp=sample_offer())
    second = (await speaker.request("rtc.offer", sdp=sample_offer()))["media"]
    assert second != first
    assert await relayed(desk, "rtc.hangup") == {
        "type": "rtc.hangup",
        "media": first,
        "reason": "replaced",
    }
    assert (await relayed(desk, "rtc.offer"))["media"] == second
    for media, code in ((first, "media_conflict"), ("m" + "1" * 20, "media_conflict")):
        with pytest.raises(ClientError) as refused:
            await speaker.request("rtc.offer", sdp=sample_offer(), media=media)
        assert refused.value.code == code
    await speaker.request("rtc.hangup", media=second)
    with pytest.raises(ClientError) as refused:
        await speaker.request("rtc.offer", sdp=sample_offer(), media=second)
    assert refused.value.code == "media_not_found"


async def test_a_desk_that_leaves_ends_the_media_session_and_the_speaker_hears_left(
    two_nodes: tuple[TestServer, TestServer], connect: ClientFactory
) -> None:
    speaker, desk, _ = await _speaker_and_desk(two_nodes, connect)
    media = (await speaker.request("rtc.offer", sdp=sample_offer()))["media"]
    await relayed(desk, "rtc.offer")
    await desk.request("rtc.answer", media=media, sdp=sample_offer())
    await desk.close()
    assert (await relayed(speaker, "rtc.hangup"))["reason"] == "left"


async def test_the_active_gauge_counts_on_the_desk_s_node_and_forgets_sessions_ended_elsewhere(
    two_nodes: tuple[TestServer, TestServer], connect: ClientFactory
) -> None:
    speaker = await connect(two_nodes[0], token(Role.SPEAKER, sub="amina", name="Amina"))
    desk = await connect(two_nodes[1], token(Role.PRODUCTION, sub="desk", name="Desk A"))
    chair = await _chair(two_nodes[0], connect)  # the turn ends on the speaker's node
    await chair.grant(speaker)
    media = (await speaker.request("rtc.offer", sdp=sample_offer()))["media"]
    await relayed(desk, "rtc.offer")
    await desk.request("rtc.answer", media=media, sdp=sample_offer())
    await desk.request("rtc.state", media=media, state="connected")
    assert "podium_media_sessions_active 1.0" in _metrics(two_nodes[1])
    assert "podium_media_sessions_active 0.0" in _metrics(two_nodes[0])
    await desk.request("rtc.state", media=media, state="failed")
    assert "podium_media_sessions_active 0.0" in _metrics(two_nodes[1])
    await desk.request("rtc.state", media=media, state="connected")  # ICE came back
    await chair.revoke()
    await relayed(desk, "rtc.hangup")
    assert "podium_media_sessions_active 1.0" in _metrics(two_nodes[1])  # not known there yet
    await app_of(two_nodes[1])[RELAY].refresh_metrics()
    assert "podium_media_sessions_active 0.0" in _metrics(two_nodes[1])


# ---- who may ------------------------------------------------------------------------------------


async def test_people_not_holding_the_floor_cannot_offer_answer_trickle_restart_or_get_ice(
    two_nodes: tuple[TestServer, TestServer], connect: ClientFactory
) -> None:
    speaker, desk, chair = await _speaker_and_desk(two_nodes, connect)
    media = (await speaker.request("rtc.offer", sdp=sample_offer()))["media"]
    await relayed(desk, "rtc.offer")
    li = await connect(two_nodes[0], token(sub="li", name="Li"))
    moderator = await connect(two_nodes[1], token(Role.MODERATOR, sub="mod", name="Maria"))
    for outsider in (li, moderator):
        for kind, fields in (
            ("rtc.ice", {}),
            ("rtc.offer", {"sdp": sample_offer()}),
            ("rtc.answer", {"media": media, "sdp": sample_offer()}),
            ("rtc.candidate", {"media": media, "candidate": LAN}),
            ("rtc.restart", {"media": media}),
            ("rtc.hangup", {"media": media}),
            ("rtc.state", {"media": media, "state": "failed"}),
        ):
            with pytest.raises(ClientError) as refused:
                await outsider.request(kind, **fields)
            assert refused.value.code == "not_allowed", kind
    with pytest.raises(ClientError) as refused:
        await speaker.request("rtc.restart", media=media)  # the desk asks for restarts
    assert refused.value.code == "not_allowed"
    await chair.grant(li)  # the speaker's turn ends: their media session with it
    for end in (speaker, desk):
        assert (await relayed(end, "rtc.hangup"))["reason"] == "replaced"
    for kind, fields in (
        ("rtc.ice", {}),
        ("rtc.offer", {"sdp": sample_offer()}),
        ("rtc.offer", {"sdp": sample_offer(), "media": media}),
        ("rtc.candidate", {"media": media, "candidate": LAN}),
    ):
        with pytest.raises(ClientError) as refused:
            await speaker.request(kind, **fields)
        assert refused.value.code == "not_allowed", kind
    assert await nothing_relayed(desk) == []


async def test_the_holder_and_the_desks_get_stun_urls_and_their_own_turn_credentials(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    urls = ("stun:turn.example.org:3478", "turn:turn.example.org:3478?transport=udp")
    node = await node_factory(ice_servers=urls, turn_secret="s3cret", turn_ttl=300)
    speaker = await connect(node, token(Role.SPEAKER, sub="amina"))
    desk = await connect(node, token(Role.PRODUCTION, sub="desk"))
    await (await _chair(node, connect)).grant(speaker)
    for client, sub in ((speaker, "amina"), (desk, "desk")):
        answer = await client.request("rtc.ice")
        stun, turn = answer["ice_servers"]
        assert stun == {"urls": [urls[0]]}
        expiry, who = turn["username"].split(":")
        assert who == sub
        assert 0 < int(expiry) - time.time() <= 301
        assert answer["ttl"] == 300


# ---- bad input ----------------------------------------------------------------------------------


async def test_bad_sdp_and_candidates_are_refused_with_typed_errors_and_nothing_is_relayed(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    node = await node_factory(max_sdp_bytes=4096)  # private candidates not allowed here
    speaker = await connect(node, token(Role.SPEAKER, sub="amina"))
    desk = await connect(node, token(Role.PRODUCTION, sub="desk"))
    await (await _chair(node, connect)).grant(speaker)
    for sdp, why in (
        (sample_offer("a=x:" + "y" * 5000), "at most 4096 bytes"),
        ("hello", "'<letter>=<value>'"),
        (sample_offer().replace("a=fingerprint", "a=fingerprunt"), "a=fingerprint"),
        (sample_offer("a=candidate:1 1 udp 1 nowhere 9 typ host"), "address"),
        (sample_offer("a=\x00"), "control characters"),
    ):
        with pytest.raises(ClientError) as refused:
            await speaker.request("rtc.offer", sdp=sdp)
        assert (refused.value.code, why in refused.value.message) == ("sdp_invalid", True)
    assert await nothing_relayed(desk) == []

    # Candidate lines on blocked addresses leave the SDP; the rest is relayed as it was.
    media = (await speaker.request("rtc.offer", sdp=sample_offer("a=" + LOOPBACK, "a=" + LAN)))[
        "media"
    ]
    relayed_offer = await relayed(desk, "rtc.offer")
    assert relayed_offer["sdp"] == sample_offer("a=" + LAN)
    with pytest.raises(ClientError) as refused:
        await desk.request("rtc.answer", media=media, sdp="v=0\r\n")
    assert refused.value.code == "sdp_invalid"
    await desk.request("rtc.answer", media=media, sdp=sample_offer())
    await relayed(speaker, "rtc.answer")
    for candidate in ("candidate:1 1 udp 1 192.0.2.1 0 typ host", "a=" + LAN, "x" * 600):
        with pytest.raises(ClientError) as refused:
            await speaker.request("rtc.candidate", media=media, candidate=candidate)
        assert refused.value.code == "candidate_invalid"
    for blocked in (LOOPBACK, LOOPBACK.replace("127.0.0.1", "169.254.169.254")):
        assert await speaker.request("rtc.candidate", media=media, candidate=blocked) == {
            "dropped": True
        }
    assert await nothing_relayed(desk) == []
    for kind, fields in (
        ("rtc.candidate", {"media": "not-a-media-id", "candidate": LAN}),
        ("rtc.state", {"media": media, "state": "melted"}),
        ("rtc.offer", {"sdp": "x" * 62_000}),
    ):
        with pytest.raises(ClientError) as refused:
            await speaker.request(kind, **fields)
        assert refused.value.code == "invalid_message", kind


def _metrics(node: TestServer) -> str:
    return generate_latest(app_of(node)[REGISTRY]).decode()


def _ice_ufrag(sdp: str) -> str:
    return next(line for line in sdp.splitlines() if line.startswith("a=ice-ufrag:"))
