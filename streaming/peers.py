"""The media edge: aiortc peer connections of publishers and listeners, a channel's tracks, recording.

A channel's media outlive its publishers: each kind (audio, video) is a ``ChannelTrack`` that a
publisher's incoming track is attached to, and replaced in on a takeover, while listeners and the
recorder stay subscribed (through one ``MediaRelay``, unbuffered) to the channel track. A pump reads
the publisher's track as fast as it arrives and keeps only the newest frame, so a slow consumer drops
frames instead of growing a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRecorder, MediaRelay
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp
from av import AudioFrame

from streaming.errors import MalformedSdp, NotAcceptable
from streaming.health import Sample

log = logging.getLogger("podium.streaming")

VIDEO_CLOCK = 90_000


def rtc_configuration() -> RTCConfiguration:
    """No STUN or TURN server of podium's own: the node answers with its host candidates."""
    return RTCConfiguration(iceServers=[])


class ChannelTrack(MediaStreamTrack):
    """One kind of a channel's media, whichever publisher feeds it; restamped to run on."""

    def __init__(self, kind: str, on_frame: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        self._on_frame = on_frame
        self._pump: asyncio.Task[None] | None = None
        self._frame: Any = None
        self._fresh = asyncio.Event()
        self._t0: float | None = None
        self._next = 0

    def attach(self, source: MediaStreamTrack) -> None:
        """Feeds the channel from ``source`` from now on (a takeover replaces the previous one)."""
        previous = self._pump
        self._pump = asyncio.ensure_future(self._run(source))
        if previous is not None:
            previous.cancel()

    async def _run(self, source: MediaStreamTrack) -> None:
        while self.readyState == "live":
            try:
                frame = await source.recv()
            except MediaStreamError:
                return
            self._stamp(frame)
            self._frame = frame
            self._fresh.set()
            self._on_frame()

    def _stamp(self, frame: Any) -> None:
        # One timeline for the channel, across publishers: timestamps keep running on a takeover,
        # and a pause in the media is a pause in the timeline (the recording's duration is true).
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        if isinstance(frame, AudioFrame):
            rate = frame.sample_rate
            wall = round((now - self._t0) * rate)
            pts = wall if wall - self._next > rate // 5 else self._next
            frame.pts, frame.time_base = pts, Fraction(1, rate)
            self._next = pts + frame.samples
        else:
            pts = max(self._next, round((now - self._t0) * VIDEO_CLOCK))
            frame.pts, frame.time_base = pts, Fraction(1, VIDEO_CLOCK)
            self._next = pts + 1

    async def recv(self) -> Any:
        """The next frame (the newest one; frames a slow reader missed are dropped)."""
        if self.readyState != "live":
            raise MediaStreamError
        await self._fresh.wait()
        self._fresh.clear()
        if self.readyState != "live" or self._frame is None:
            raise MediaStreamError
        return self._frame

    def stop(self) -> None:
        """Ends the channel's media: readers get the end of the stream."""
        super().stop()
        if self._pump is not None:
            self._pump.cancel()
        self._frame = None
        self._fresh.set()


@dataclass(eq=False)
class Peer:
    """One WHIP or WHEP session: a peer connection, its resource id and the ICE session's tag."""

    pc: RTCPeerConnection
    session: str
    channel: str
    publish: bool
    sub: str
    name: str
    created: float
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    etag: str = field(default_factory=lambda: '"' + secrets.token_hex(8) + '"')
    ice_ufrag: str = ""
    ice_pwd: str = ""
    tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)
    closed: bool = False

    async def close(self) -> None:
        """Closes the connection and stops this peer's own tracks (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if not self.publish:
            for track in self.tracks.values():
                track.stop()  # a relay proxy: unsubscribe it from the channel
        await self.pc.close()

    @property
    def connected(self) -> bool:
        """True once ICE and DTLS are up."""
        return bool(self.pc.connectionState == "connected")

    async def add_candidates(self, candidates: tuple[tuple[str, int, str], ...]) -> None:
        """Adds trickled remote candidates (mid, media index, ``candidate:…``).

        Raises:
            MalformedSdp: a candidate the ICE agent cannot read.
        """
        for mid, index, line in candidates:
            try:
                candidate = candidate_from_sdp(line.split(":", 1)[1])
            except (ValueError, IndexError) as exc:
                raise MalformedSdp(f"not an ICE candidate: {line[:80]!r}") from exc
            candidate.sdpMid = mid or None
            candidate.sdpMLineIndex = index
            await self.pc.addIceCandidate(candidate)

    async def sample(self, listeners: list[Peer]) -> Sample:
        """The publisher's cumulative receive figures and the listeners' worst round-trip time."""
        stats = await self.pc.getStats()
        received = lost = bytes_in = 0
        jitter = 0.0
        for s in stats.values():
            if s.type == "inbound-rtp":
                received += s.packetsReceived
                lost += max(0, s.packetsLost)
                clock = 48_000 if s.kind == "audio" else VIDEO_CLOCK
                jitter = max(jitter, s.jitter / clock)
            elif s.type == "transport":
                bytes_in += s.bytesReceived
        rtt: float | None = None
        for listener in listeners[:5]:
            for s in (await listener.pc.getStats()).values():
                if s.type == "remote-inbound-rtp" and s.roundTripTime is not None:
                    rtt = max(rtt or 0.0, float(s.roundTripTime))
        return Sample(time.monotonic(), bytes_in, received, lost, jitter, rtt)


async def answer_publisher(peer: Peer, offer: str) -> str:
    """Accepts a WHIP offer: the publisher's tracks land in ``peer.tracks``; returns the answer.

    Raises:
        MalformedSdp: the media stack cannot read the offer.
        NotAcceptable: it can, but shares no codec with podium.
    """

    @peer.pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        peer.tracks[track.kind] = track

    return await _answer(peer, offer)


async def answer_listener(
    peer: Peer, offer: str, relay: MediaRelay, tracks: dict[str, ChannelTrack]
) -> str:
    """Accepts a WHEP offer: each media section gets an unbuffered relay of the channel's track."""
    await _remote(peer, offer)
    for transceiver in peer.pc.getTransceivers():
        source = tracks.get(transceiver.kind)
        if source is not None and transceiver.kind not in peer.tracks:
            proxy = relay.subscribe(source, buffered=False)
            peer.tracks[transceiver.kind] = proxy
            peer.pc.addTrack(proxy)
    return await _local(peer)


async def _answer(peer: Peer, offer: str) -> str:
    await _remote(peer, offer)
    return await _local(peer)


async def _remote(peer: Peer, offer: str) -> None:
    try:
        await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    except (ValueError, KeyError, IndexError) as exc:
        raise MalformedSdp(f"the media stack cannot read this offer: {exc}") from exc


async def _local(peer: Peer) -> str:
    try:
        answer = await peer.pc.createAnswer()
        await peer.pc.setLocalDescription(answer)
    except (ValueError, KeyError) as exc:
        raise NotAcceptable(f"podium shares no codec with this offer: {exc}") from exc
    description = peer.pc.localDescription
    return str(description.sdp)


class Recording:
    """One live period of a channel written to a file (Matroska for the floor, Ogg for a language)."""

    def __init__(self, path: Path, relay: MediaRelay, tracks: dict[str, ChannelTrack]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._recorder = MediaRecorder(str(path))
        self._proxies = [relay.subscribe(t, buffered=False) for t in tracks.values()]
        for proxy in self._proxies:
            self._recorder.addTrack(proxy)

    async def start(self) -> None:
        """Starts writing."""
        await self._recorder.start()

    async def stop(self) -> None:
        """Flushes the encoders and closes the file."""
        for proxy in self._proxies:
            proxy.stop()
        with contextlib.suppress(Exception):  # a file with no frame at all cannot be finalised
            await self._recorder.stop()


def new_peer(session: str, channel: str, *, publish: bool, sub: str, name: str) -> Peer:
    """A peer with a fresh connection (no ICE servers: loopback and host candidates only)."""
    return Peer(
        RTCPeerConnection(rtc_configuration()),
        session,
        channel,
        publish,
        sub,
        name,
        created=time.monotonic(),
    )
