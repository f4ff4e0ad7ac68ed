"""Listeners one podium process sustains on a channel: WHEP listeners added in steps until delivery drops.

A store and one node (``podium serve --demo``, pinned to core 0); a publisher and the listeners are
real aiortc peer connections in this process (left to the other core). For a language channel the
publisher sends Opus audio; for the floor, audio and synthetic 320×240 VP8 video at 30 fps. At each
step the benchmark adds listeners, waits until every one is connected and receiving, then measures
for a few seconds: frames each listener decoded against what was sent, and the node's CPU (``/proc``).
A step is *sustained* when every listener got ≥ 95 % of the frames and the node used < 90 % of its
core. Recording is on (the node's default) unless ``--no-record``.

Run: ``python -m benchmarks.streaming --channel fr --steps 10,20,40,80``
     ``python -m benchmarks.streaming --channel floor --steps 2,4,8,12``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from av import VideoFrame

from benchmarks.fanout import machine
from benchmarks.node import Node, cpu_seconds, rss_bytes, start_node, stop_node, wait_ready
from config.embedded import EmbeddedStore
from signaling.identity import Identity, Role, TokenKeys, mint

SECRET = "benchmark-secret-" + "x" * 32
AUDIO_FPS = 50  # Opus in 20 ms frames
VIDEO_FPS = 30


class Camera(VideoStreamTrack):
    """Synthetic 320×240 frames at 30 fps with changing content, so VP8 has work to do."""

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=320, height=240)
        shade = (pts // 3000) % 256
        for plane in frame.planes:
            plane.update(bytes([shade]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        return frame


@dataclass
class Listener:
    """One WHEP listener: its connection and the frames it decoded, per kind."""

    pc: RTCPeerConnection
    frames: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def consume(self, track: MediaStreamTrack) -> None:
        async def run() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    await track.recv()
                    self.frames[track.kind] += 1

        self.tasks.append(asyncio.ensure_future(run()))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pc.close()


def _token(role: Role, session: str, lang: str = "") -> str:
    identity = Identity(
        sub="bench-" + secrets.token_hex(4), name="Bench", role=role, sessions=(session,), lang=lang
    )
    return mint(TokenKeys(SECRET), identity, now=int(time.time()), ttl=3600)


async def _offer(http: aiohttp.ClientSession, url: str, token: str, pc: RTCPeerConnection) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp", "Authorization": "Bearer " + token}
    async with http.post(url, data=pc.localDescription.sdp, headers=headers) as response:
        if response.status != 201:
            raise RuntimeError(f"{url}: {response.status} {await response.text()}")
        answer = await response.text()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


async def _listener(
    http: aiohttp.ClientSession, node: Node, session: str, channel: str, video: bool
) -> Listener:
    listener = Listener(RTCPeerConnection(RTCConfiguration(iceServers=[])))
    listener.pc.addTransceiver("audio", direction="recvonly")
    if video:
        listener.pc.addTransceiver("video", direction="recvonly")
    listener.pc.on("track", listener.consume)
    await _offer(http, f"{node.base}/whep/{session}/{channel}", _token(Role.PARTICIPANT, session),
                 listener.pc)  # fmt: skip
    return listener


async def _until(check: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.1)


async def run(channel: str, steps: list[int], seconds: float, record: bool) -> dict[str, Any]:
    """Adds listeners step by step; the figures of each step."""
    video = channel == "floor"
    with tempfile.TemporaryDirectory(prefix="podium-bench-stream-") as tmp:
        store = EmbeddedStore(Path(tmp) / "store")
        url = await store.start()
        env = {
            "PODIUM_JWT_SECRET": SECRET,
            "PODIUM_LOG_LEVEL": "WARNING",
            "PODIUM_STREAM_MAX_LISTENERS": "10000",
            "PODIUM_STREAM_RECORD": "true" if record else "false",
        }
        node = start_node(data_dir=Path(tmp) / "node", store_url=url, env=env, cpu=0)
        publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        listeners: list[Listener] = []
        results: list[dict[str, Any]] = []
        try:
            with contextlib.suppress(OSError):
                import os

                os.sched_setaffinity(0, {1})
            await wait_ready(node)
            async with aiohttp.ClientSession() as http:
                async with http.get(node.base + "/api/v1/event") as response:
                    event = await response.json()
                session = next(
                    s["id"]
                    for s in event["sessions"]
                    if channel == "floor" or channel in s["languages"]
                )
                publisher.addTransceiver(AudioStreamTrack(), direction="sendonly")
                if video:
                    publisher.addTransceiver(Camera(), direction="sendonly")
                role, lang = (Role.PRODUCTION, "") if video else (Role.INTERPRETER, channel)
                await _offer(http, f"{node.base}/whip/{session}/{channel}",
                             _token(role, session, lang), publisher)  # fmt: skip
                await _until(lambda: publisher.connectionState == "connected", 30)
                await asyncio.sleep(1.0)
                for target in steps:
                    while len(listeners) < target:
                        listeners.append(await _listener(http, node, session, channel, video))
                    await _until(lambda: all(x.frames["audio"] > 0 for x in listeners), 60)
                    await asyncio.sleep(1.0)
                    before = [dict(x.frames) for x in listeners]
                    cpu0, t0 = cpu_seconds(node.pid), time.monotonic()
                    await asyncio.sleep(seconds)
                    cpu1, t1 = cpu_seconds(node.pid), time.monotonic()
                    span = t1 - t0
                    audio = [
                        (x.frames["audio"] - b["audio"]) / span
                        for x, b in zip(listeners, before, strict=True)
                    ]
                    videos = [
                        (x.frames["video"] - b["video"]) / span
                        for x, b in zip(listeners, before, strict=True)
                    ]
                    worst = min(a / AUDIO_FPS for a in audio)
                    if video:
                        worst = min(worst, min(v / VIDEO_FPS for v in videos))
                    cpu = (cpu1 - cpu0) / span
                    results.append(
                        {
                            "listeners": target,
                            "node_cpu": round(cpu, 3),
                            "node_rss_mib": round(rss_bytes(node.pid) / 2**20, 1),
                            "audio_fps_min": round(min(audio), 1),
                            "video_fps_min": round(min(videos), 1) if video else None,
                            "worst_delivery": round(worst, 3),
                            "sustained": worst >= 0.95 and cpu < 0.9,
                        }
                    )
                    print(json.dumps(results[-1]), file=sys.stderr, flush=True)
                    if worst < 0.5:
                        break
        finally:
            await asyncio.gather(*(x.close() for x in listeners), return_exceptions=True)
            await publisher.close()
            await stop_node(node)
            await store.stop()
    return {"channel": channel, "record": record, "seconds": seconds, "machine": machine(),
            "steps": results}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--channel", default="fr", help="floor, or a language of the session")
    parser.add_argument("--steps", default="10,20,40,80", help="listener counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement per step")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    steps = [int(s) for s in args.steps.split(",")]
    result = asyncio.run(run(args.channel, steps, args.seconds, not args.no_record))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"channel {result['channel']}  record {result['record']}  {result['machine']}")
    print("listeners  node CPU  RSS MiB  audio fps (min)  video fps (min)  delivery  sustained")
    for s in result["steps"]:
        print(f"{s['listeners']:>9}  {s['node_cpu']:>8.0%}  {s['node_rss_mib']:>7}  "
              f"{s['audio_fps_min']:>15}  {s['video_fps_min'] or '-':>15}  "
              f"{s['worst_delivery']:>8.0%}  {s['sustained']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
