"""Recording: one live period of a channel written to a file, encoded off the event loop.

aiortc's ``MediaRecorder`` encodes in the event loop; x264 on a 1080p floor feed would stall every
socket of the node. Here each recording has one thread of its own that encodes and muxes, in order,
while the loop only hands it frames. The floor is written as Matroska (H.264 and AAC), a language
as Ogg (Opus).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from streaming.peers import VIDEO_CLOCK

log = logging.getLogger("podium.streaming")

VIDEO_RATE = 30


class Recording:
    """Writes a channel's tracks to ``path`` from ``start`` to ``stop``."""

    def __init__(
        self, path: Path, relay: MediaRelay, tracks: Mapping[str, MediaStreamTrack]
    ) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._container: Any = av.open(str(path), mode="w")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="podium-recording")
        self._streams: dict[str, Any] = {}
        audio_codec = "libopus" if path.suffix == ".ogg" else "aac"
        for kind in tracks:
            if kind == "audio":
                self._streams[kind] = self._container.add_stream(audio_codec, rate=48_000)
            else:
                stream = self._container.add_stream("libx264", rate=VIDEO_RATE)
                # The channel's own clock. A frame is shared with the listeners' encoders on the
                # loop, and PyAV rescales a frame's pts in place to the encoder's time base when
                # the two differ: with x264 at 1/30 this thread rewrote (pts, time base) while the
                # loop read them, and a 2.4 s recording once came out 7,200 s long
                # (90,000 × 2.4 read as thirtieths of a second).
                stream.codec_context.time_base = Fraction(1, VIDEO_CLOCK)
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "veryfast", "tune": "zerolatency"}
                self._streams[kind] = stream
        self._sized = "video" not in tracks
        self._held: list[Any] = []  # audio packets that came before the picture's size was known
        self._proxies = {kind: relay.subscribe(t, buffered=False) for kind, t in tracks.items()}
        self._tasks: list[asyncio.Task[None]] = []
        self._failed = False

    async def start(self) -> None:
        """Starts writing."""
        self._tasks = [asyncio.ensure_future(self._run(k, p)) for k, p in self._proxies.items()]

    async def _run(self, kind: str, proxy: MediaStreamTrack) -> None:
        loop = asyncio.get_running_loop()
        while not self._failed:
            try:
                frame = await proxy.recv()
            except MediaStreamError:
                return
            await loop.run_in_executor(self._pool, self._write, kind, frame)

    def _write(self, kind: str, frame: Any) -> None:
        # In the recording's own thread: encodes and muxes one frame, in arrival order.
        try:
            stream = self._streams[kind]
            if kind == "video" and not self._sized:
                stream.width, stream.height = frame.width, frame.height
                self._sized = True
            packets = list(stream.encode(frame))
            if not self._sized:
                self._held.extend(packets)  # the header needs the picture's size first
                return
            for packet in [*self._held, *packets]:
                self._container.mux(packet)
            self._held.clear()
        except Exception:
            # A frame the encoder cannot take (a publisher changing its picture size mid-way):
            # the recording ends here rather than taking the channel down.
            if not self._failed:
                log.warning("recording %s stopped", self.path.name, exc_info=True)
            self._failed = True

    async def stop(self) -> None:
        """Flushes the encoders and closes the file (off the loop)."""
        for proxy in self._proxies.values():
            proxy.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=False)

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            if self._sized:
                for stream in self._streams.values():
                    for packet in stream.encode(None):
                        self._container.mux(packet)
        with contextlib.suppress(Exception):  # a file with no frame at all cannot be finalised
            self._container.close()
