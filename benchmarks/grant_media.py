"""Floor to first video frame: from a moderator's ``floor.grant`` to the first decoded frame at the desk.

Two podium nodes (``podium serve --demo`` child processes on one store): the speaker and the moderator
on the first, the production desk on the second, so every relayed message crosses nodes through the
store. The speaker and the desk are real aiortc peer connections in this process (synthetic VP8 video,
host candidates on this machine's own addresses, no STUN or TURN). Each run:

1. the speaker asks for the floor (``floor.request``), its camera track already running;
2. **t0**: the moderator sends ``floor.grant``;
3. the speaker sees itself as the speaker in ``floor.list``, asks ``rtc.ice``, offers (``rtc.offer``);
4. the desk gets the relayed offer, answers (``rtc.answer``); the speaker applies the answer;
5. ICE and DTLS connect, VP8 flows; **t1**: the desk's ``track.recv()`` returns a decoded frame;
6. the moderator revokes the turn, both ends get ``rtc.hangup``, both peer connections close.

It prints p50/p95/max of t1 − t0 over N runs, and the p50 of each stage.
Run: ``python -m benchmarks.grant_media --runs 30``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from av import VideoFrame

from benchmarks.fanout import machine
from benchmarks.node import Node, start_node, stop_node, wait_ready
from config.embedded import EmbeddedStore
from signaling.client import PodiumClient
from signaling.identity import Identity, Role, TokenKeys, mint

SESSION = "high-level-policy-session"  # in the demo programme: floor enabled, remote speakers
ORIGIN = "http://bench.podium.test"
STAGES = ("grant_ack", "speaker_sees_grant", "offer_at_desk", "answer_at_speaker", "first_frame")


class Camera(VideoStreamTrack):
    """Synthetic 320×240 frames at 30 fps, with moving content so VP8 has something to encode."""

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=320, height=240)
        shade = (pts // 3000) % 256
        for plane in frame.planes:
            plane.update(bytes([shade]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        return frame


def _token(keys: TokenKeys, sub: str, role: Role, name: str) -> str:
    identity = Identity(
        sub=sub,
        name=name,
        role=role,
        sessions=(SESSION,),
        mode="remote",
        group="government",
        country="CH",
    )
    return mint(keys, identity, now=int(time.time()), ttl=3600)


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0.0 when empty)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = math.ceil(q / 100 * len(ordered)) - 1
    return ordered[min(len(ordered) - 1, max(0, rank))]


async def _message(client: PodiumClient, match: Any, timeout: float = 30.0) -> dict[str, Any]:
    """The next message from the server that ``match`` accepts (the others are dropped)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await client.events.get()
            if match(message):
                return message


def _drain(client: PodiumClient) -> None:
    while not client.events.empty():
        client.events.get_nowait()


async def _speaker_side(
    speaker: PodiumClient, entry: str, camera: MediaStreamTrack, marks: dict[str, float]
) -> RTCPeerConnection:
    """What a speaker's page does once it sees it has the floor: ICE servers, offer, apply answer."""

    def granted(m: dict[str, Any]) -> bool:
        view = m.get("data", {}).get("speaker") if m.get("name") == "floor.list" else None
        return isinstance(view, dict) and view.get("entry") == entry

    await _message(speaker, granted)
    marks["speaker_sees_grant"] = time.perf_counter()
    await speaker.request("rtc.ice")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(camera)
    await pc.setLocalDescription(await pc.createOffer())
    media = (await speaker.request("rtc.offer", sdp=pc.localDescription.sdp))["media"]
    answer = await _message(
        speaker, lambda m: m.get("type") == "rtc.answer" and m.get("media") == media
    )
    marks["answer_at_speaker"] = time.perf_counter()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    return pc


async def _desk_side(desk: PodiumClient, marks: dict[str, float]) -> RTCPeerConnection:
    """What the desk page does: answer the next offer, wait for the first decoded frame."""
    offer = await _message(desk, lambda m: m.get("type") == "rtc.offer")
    marks["offer_at_desk"] = time.perf_counter()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
    pc.on("track", tracks.put_nowait)
    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    await desk.request("rtc.answer", media=offer["media"], sdp=pc.localDescription.sdp)
    track = await tracks.get()
    frame = await asyncio.wait_for(track.recv(), 30)
    assert isinstance(frame, VideoFrame)
    marks["first_frame"] = time.perf_counter()
    await desk.request("rtc.state", media=offer["media"], state="connected")
    return pc


async def _one_run(
    speaker: PodiumClient, desk: PodiumClient, chair: PodiumClient
) -> dict[str, float]:
    """One grant → first frame → revoke cycle; the stage times in seconds from the grant."""
    for client in (speaker, desk, chair):
        _drain(client)
    camera = Camera()  # the preview is running before the grant, as on the speaker's page
    entry = (await speaker.request("floor.request"))["entry"]
    marks: dict[str, float] = {}
    speaking = asyncio.create_task(_speaker_side(speaker, entry, camera, marks))
    answering = asyncio.create_task(_desk_side(desk, marks))
    await asyncio.sleep(0.05)  # both sides are waiting, as pages are
    t0 = time.perf_counter()
    await chair.request("floor.grant", entry=entry)
    marks["grant_ack"] = time.perf_counter()
    pcs = await asyncio.gather(speaking, answering)
    await chair.request("floor.revoke")
    for client in (speaker, desk):
        await _message(client, lambda m: m.get("type") == "rtc.hangup")
    for pc in pcs:
        await pc.close()
    camera.stop()
    return {stage: marks[stage] - t0 for stage in STAGES}


PACE = 0.3
"""Seconds between two runs."""


async def run(runs: int) -> dict[str, Any]:
    """Starts a store and two nodes, measures ``runs`` grants, stops everything; returns figures."""
    host = machine()
    secret = secrets.token_urlsafe(48)
    keys = TokenKeys(secret)
    env = {
        "PODIUM_JWT_SECRET": secret,
        "PODIUM_ALLOWED_ORIGINS": ORIGIN,
        "PODIUM_KEY_PREFIX": "bench" + secrets.token_hex(4),
        "PODIUM_LOG_LEVEL": "WARNING",
        "PODIUM_ALLOW_PRIVATE_CANDIDATES": "true",
    }
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as tmp:
        embedded = EmbeddedStore(Path(tmp) / "store")
        url = await embedded.start()
        nodes: list[Node] = []
        clients: list[PodiumClient] = []
        try:
            for name in ("a", "b"):
                node_env = env | {"PODIUM_NODE_ID": f"bench-{name}"}
                nodes.append(
                    start_node(data_dir=Path(tmp) / name, store_url=url, env=node_env, cpu=None)
                )
            for node in nodes:
                await wait_ready(node)

            async def join(node: Node, sub: str, role: Role, name: str) -> PodiumClient:
                ws = node.base.replace("http://", "ws://") + "/ws"
                client = PodiumClient(ws, _token(keys, sub, role, name), SESSION, origin=ORIGIN)
                clients.append(client)
                await client.connect()
                return client

            chair = await join(nodes[0], "chair", Role.MODERATOR, "Claire Martin")
            desk = await join(nodes[1], "desk", Role.PRODUCTION, "Desk 1")
            samples: list[dict[str, float]] = []
            for n in range(runs + 1):  # the first is a warm-up: imports, codecs, first connections
                # A new speaker each time: one person may ask for the floor 5 times a minute.
                speaker = await join(nodes[0], f"speaker-{n}", Role.SPEAKER, f"Speaker {n}")
                sample = await _one_run(speaker, desk, chair)
                await speaker.close()
                # A floor turn every few minutes in an event, not ten a second: the desk's two
                # messages per turn must stay within the per-connection rate limit (10/s).
                await asyncio.sleep(PACE)
                if n:
                    samples.append(sample)
        finally:
            for client in clients:
                await client.close()
            for node in nodes:
                await stop_node(node)
            await embedded.stop()
    total = [s["first_frame"] * 1000 for s in samples]
    return {
        "runs": runs,
        "grant_to_first_frame_ms": {
            "p50": _percentile(total, 50),
            "p95": _percentile(total, 95),
            "max": max(total),
        },
        "stage_p50_ms": {
            stage: _percentile([s[stage] * 1000 for s in samples], 50) for stage in STAGES
        },
        "machine": host,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.grant_media``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grant_media", description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.runs))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    figures = result["grant_to_first_frame_ms"]
    print(f"floor.grant → first decoded frame at the desk, {args.runs} runs (two nodes, loopback)")
    print(
        f"  p50 {figures['p50']:.0f} ms   p95 {figures['p95']:.0f} ms   max {figures['max']:.0f} ms"
    )
    print("  stage p50 (ms from the grant):")
    for stage, value in result["stage_p50_ms"].items():
        print(f"    {stage:<20} {value:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
