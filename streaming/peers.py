"""The media edge: aiortc peer connections of publishers and listeners, and a channel's tracks.

A channel's media outlive its publishers: each kind (audio, video) is a ``ChannelTrack`` that a
publisher's incoming track is attached to, and replaced in on a takeover, while listeners and the
recorder stay subscribed (through one ``MediaRelay``, unbuffered) to the channel track. A pump reads
the publisher's track as fast as it arrives and keeps only the newest frame, so a slow consumer drops
frames instead of growing a queue.

Listeners do not each encode: aiortc would run one encoder per listener. An ``EncodedTrack`` encodes
the channel once (Opus, VP8) and every listener's sender only packetizes the same packets, so a
listener costs packetization and encryption, not an encoder.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.exceptions import OperationError
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp
from av import AudioFrame, VideoFrame
from av.audio.resampler import AudioResampler

from streaming.errors import MalformedSdp, NotAcceptable
from streaming.health import Sample

log = logging.getLogger("podium.streaming")

VIDEO_CLOCK = 90_000
AUDIO_RATE = 48_000
VIDEO_BITRATE = 1_000_000
KEYFRAME_EVERY = 60  # frames: a listener that lost a packet recovers within two seconds
ENCODED_BACKLOG = 16  # packets kept for the relay; older ones are dropped, nothing grows
CODECS = {"audio": ("audio/opus",), "video": ("video/VP8", "video/rtx")}


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
        self.frames = 0

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
            self.frames += 1
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


class EncodedTrack(MediaStreamTrack):
    """A channel's media of one kind encoded once (Opus or VP8), as packets every listener sends."""

    def __init__(self, kind: str, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = kind
        self._source = source
        self._packets: collections.deque[av.Packet[Any]] = collections.deque(maxlen=ENCODED_BACKLOG)
        self._ready = asyncio.Event()
        self._keyframe = True
        self._lock = threading.Lock()
        self._codec: Any = None
        self._resampler: AudioResampler | None = None
        self._origin: int | None = None
        self._count = 0
        self._pump = asyncio.ensure_future(self._run())

    def request_keyframe(self) -> None:
        """The next video frame is a key frame (a listener just connected)."""
        self._keyframe = True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.readyState == "live":
            try:
                frame = await self._source.recv()
            except MediaStreamError:
                break
            # Encoding releases the GIL: off the loop, as aiortc's own senders do.
            packets = await loop.run_in_executor(None, self._encode, frame)
            if packets:
                self._packets.extend(packets)
                self._ready.set()
        self.stop()

    def _encode(self, frame: Any) -> list[av.Packet[Any]]:
        with self._lock:
            if isinstance(frame, AudioFrame):
                return self._encode_audio(frame)
            if isinstance(frame, VideoFrame):
                return self._encode_video(frame)
            return []

    def _encode_audio(self, frame: AudioFrame) -> list[av.Packet[Any]]:
        if self._codec is None:
            codec = av.CodecContext.create("libopus", "w")
            codec.bit_rate = 64_000
            codec.format = "s16"
            codec.layout = "stereo"
            codec.sample_rate = AUDIO_RATE
            codec.time_base = Fraction(1, AUDIO_RATE)
            codec.options = {"application": "voip"}
            self._codec = codec
            self._resampler = AudioResampler(
                format="s16", layout="stereo", rate=AUDIO_RATE, frame_size=960
            )
        assert self._resampler is not None
        packets: list[av.Packet[Any]] = []
        for chunk in self._resampler.resample(frame):
            packets += self._codec.encode(chunk)
        return self._stamp(packets, AUDIO_RATE)

    def _encode_video(self, frame: VideoFrame) -> list[av.Packet[Any]]:
        codec = self._codec
        if codec is not None and (frame.width, frame.height) != (codec.width, codec.height):
            codec = None
        if codec is None:
            codec = av.CodecContext.create("libvpx", "w")
            codec.width, codec.height = frame.width, frame.height
            codec.bit_rate = VIDEO_BITRATE
            codec.pix_fmt = "yuv420p"
            codec.time_base = Fraction(1, VIDEO_CLOCK)
            codec.gop_size = KEYFRAME_EVERY
            codec.options = {
                "cpu-used": "-6",
                "deadline": "realtime",
                "lag-in-frames": "0",
                "static-thresh": "1",
                "partitions": "0",
            }
            self._codec = codec
            self._keyframe = True
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        if self._keyframe:
            self._keyframe = False
            frame.pict_type = av.video.frame.PictureType.I
        self._count += 1
        return self._stamp(list(codec.encode(frame)), VIDEO_CLOCK)

    def _stamp(self, packets: list[av.Packet[Any]], clock: int) -> list[av.Packet[Any]]:
        for packet in packets:
            # The encoder's clock may start below zero (Opus priming): start the channel at zero.
            if self._origin is None:
                self._origin = packet.pts or 0
            packet.pts = (packet.pts or 0) - self._origin
            packet.time_base = Fraction(1, clock)
        return packets

    async def recv(self) -> Any:
        """The next encoded packet."""
        while not self._packets:
            if self.readyState != "live":
                raise MediaStreamError
            await self._ready.wait()
            self._ready.clear()
        return self._packets.popleft()

    def stop(self) -> None:
        """Ends the encoded stream (its readers get the end of the stream)."""
        super().stop()
        self._pump.cancel()
        self._source.stop()
        self._ready.set()


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
            try:
                await self.pc.addIceCandidate(candidate)
            except (ValueError, OSError) as exc:
                raise MalformedSdp(f"the ICE agent refused a candidate: {exc}") from exc

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
    peer: Peer, offer: str, kinds: list[str], relay: MediaRelay, tracks: dict[str, EncodedTrack]
) -> str:
    """Accepts a WHEP offer: each media section sends the channel's encoded packets (Opus, VP8).

    Args:
        peer: the listener's peer.
        offer: the SDP offer.
        kinds: the kinds of the offer's media sections, in order.
        relay: the channel's packet relay.
        tracks: the channel's encoded tracks by kind.
    """
    for kind in kinds:
        source = tracks.get(kind)
        if source is None or kind in peer.tracks:
            continue
        proxy = relay.subscribe(source, buffered=False)
        peer.tracks[kind] = proxy
        transceiver = peer.pc.addTransceiver(proxy, direction="sendonly")
        # Listeners share one encoder: the codec is the one podium encodes, not the offer's first.
        codecs = RTCRtpSender.getCapabilities(kind).codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType in CODECS[kind]])
    await _remote(peer, offer)
    return await _local(peer)


async def _answer(peer: Peer, offer: str) -> str:
    await _remote(peer, offer)
    return await _local(peer)


async def _remote(peer: Peer, offer: str) -> None:
    try:
        await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    except OperationError as exc:
        raise NotAcceptable(f"podium shares no codec with this offer: {exc}") from exc
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
