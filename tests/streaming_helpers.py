"""What the streaming tests share: aiortc WHIP publishers and WHEP listeners on loopback, and offers."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from av import VideoFrame

SDP = "application/sdp"


def peer() -> RTCPeerConnection:
    """A peer connection with no STUN server: loopback and host candidates only."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class SmallVideo(MediaStreamTrack):
    """A small grey picture at 15 frames a second (cheap to encode on a shared machine)."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        self._count += 1
        wait = self._start + self._count / 15 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = VideoFrame(width=160, height=120, format="yuv420p")
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = self._count * 6000
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


async def offer_sdp(kinds: tuple[str, ...], direction: str) -> str:
    """A real aiortc offer with one section per kind in ``direction`` (the connection is closed)."""
    pc = peer()
    try:
        for kind in kinds:
            pc.addTransceiver(kind, direction=direction)
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


@dataclass
class Client:
    """A WHIP publisher or WHEP listener: its connection, resource and what it received."""

    pc: RTCPeerConnection
    location: str = ""
    etag: str = ""
    links: list[str] = field(default_factory=list)
    frames: dict[str, int] = field(default_factory=dict)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    got: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    want: dict[str, int] = field(default_factory=dict)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                await task
        await self.pc.close()

    def _consume(self, track: MediaStreamTrack) -> None:
        async def run() -> None:
            self.frames.setdefault(track.kind, 0)
            while True:
                try:
                    await track.recv()
                except MediaStreamError:
                    self.ended.set()
                    return
                self.frames[track.kind] += 1
                if all(self.frames.get(k, 0) >= n for k, n in self.want.items()):
                    self.got.set()

        self.tasks.append(asyncio.ensure_future(run()))


def bearer(tok: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": "Bearer " + tok}


async def _exchange(
    http: aiohttp.ClientSession, server: TestServer, path: str, tok: str, client: Client
) -> aiohttp.ClientResponse:
    await client.pc.setLocalDescription(await client.pc.createOffer())
    response = await http.post(
        server.make_url(path),
        data=client.pc.localDescription.sdp,
        headers={"Content-Type": SDP, **bearer(tok)},
    )
    if response.status == 201:
        answer = await response.text()
        await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        client.location = response.headers["Location"]
        client.etag = response.headers["ETag"]
        client.links = response.headers.getall("Link", [])
    return response


async def audio_offer() -> Client:
    """A publisher with one audio track whose offer is made but not sent (to race several POSTs)."""
    client = Client(peer())
    client.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await client.pc.setLocalDescription(await client.pc.createOffer())
    return client


async def post_offer(
    http: aiohttp.ClientSession, server: TestServer, path: str, tok: str, client: Client
) -> tuple[int, dict[str, Any]]:
    """POSTs a made offer: ``(201, {})`` with the answer applied, or the status and error body."""
    async with http.post(
        server.make_url(path),
        data=client.pc.localDescription.sdp,
        headers={"Content-Type": SDP, **bearer(tok)},
    ) as response:
        if response.status != 201:
            return response.status, await response.json()
        answer = RTCSessionDescription(sdp=await response.text(), type="answer")
        await client.pc.setRemoteDescription(answer)
        client.location = response.headers["Location"]
        return 201, {}


async def publish(
    http: aiohttp.ClientSession,
    server: TestServer,
    path: str,
    tok: str,
    *,
    video: bool = True,
    expect: int = 201,
) -> Client:
    """Publishes audio (and video) to a WHIP endpoint."""
    client = Client(peer())
    client.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    if video:
        client.pc.addTransceiver(SmallVideo(), direction="sendonly")
    response = await _exchange(http, server, path, tok, client)
    assert response.status == expect, await response.text()
    return client


async def listen(
    http: aiohttp.ClientSession,
    server: TestServer,
    path: str,
    tok: str,
    *,
    video: bool = True,
    want: dict[str, int] | None = None,
    expect: int = 201,
) -> Client:
    """Plays a WHEP endpoint, counting decoded frames per kind."""
    client = Client(peer(), want=want or {"audio": 10, **({"video": 5} if video else {})})
    client.pc.addTransceiver("audio", direction="recvonly")
    if video:
        client.pc.addTransceiver("video", direction="recvonly")
    client.pc.on("track", client._consume)
    response = await _exchange(http, server, path, tok, client)
    assert response.status == expect, await response.text()
    return client


async def listen_at(
    http: aiohttp.ClientSession, url: str, tok: str, *, video: bool = True
) -> Client:
    """Plays a WHEP endpoint at an absolute URL (another node's)."""
    client = Client(peer(), want={"audio": 10, **({"video": 5} if video else {})})
    client.pc.addTransceiver("audio", direction="recvonly")
    if video:
        client.pc.addTransceiver("video", direction="recvonly")
    client.pc.on("track", client._consume)
    await client.pc.setLocalDescription(await client.pc.createOffer())
    headers = {"Content-Type": SDP, **bearer(tok)}
    async with http.post(url, data=client.pc.localDescription.sdp, headers=headers) as response:
        assert response.status == 201, await response.text()
        answer = await response.text()
    await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return client


async def connected(pc: RTCPeerConnection, wait: float = 15.0) -> None:
    """Waits for the connection to be up."""
    async with asyncio.timeout(wait):
        while pc.connectionState != "connected":
            await asyncio.sleep(0.05)
