"""A TCP fault proxy on loopback: latency, blackhole and reset between a client and a server.

``FaultProxy(target_host, target_port)`` listens on ``127.0.0.1:<port>`` and forwards each accepted
connection to the target. Its mode is changed while it runs:

- ``latency(mean_ms, jitter_ms)``: every chunk, in each direction, is held ``mean ± jitter`` ms
  (uniform); a chunk never overtakes the one before it on the same connection and direction.
- ``blackhole()``: nothing is forwarded and nothing is read, as in a network partition: existing
  connections stall with their bytes waiting in the kernel's buffers (delivered after ``heal``, as
  TCP would retransmit them), new connections are accepted and held with no connection upstream.
- ``reset()``: every current connection is reset (RST, by ``SO_LINGER`` 0) and so is every new one.
- ``heal()``: back to plain forwarding; held connections resume where they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass
class ProxyCounters:
    """What went through the proxy since it started."""

    connections: int = 0
    active: int = 0
    resets: int = 0
    bytes_up: int = 0  # client → target
    bytes_down: int = 0  # target → client


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's side, the target's side once opened, the pumps."""

    client_reader: asyncio.StreamReader
    client_writer: asyncio.StreamWriter
    target_writer: asyncio.StreamWriter | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class FaultProxy:
    """A TCP proxy from ``127.0.0.1:port`` to ``target_host:target_port`` with injectable faults."""

    def __init__(self, target_host: str, target_port: int, *, seed: int | None = None) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.counters = ProxyCounters()
        self._random = random.Random(seed)
        self._mean = 0.0
        self._jitter = 0.0
        self._resetting = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def mode(self) -> str:
        """``forward``, ``latency``, ``blackhole`` or ``reset``."""
        if self._resetting:
            return "reset"
        if not self._flowing.is_set():
            return "blackhole"
        return "latency" if self._mean or self._jitter else "forward"

    async def start(self) -> None:
        """Listens on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def stop(self) -> None:
        """Stops listening and aborts every connection."""
        if self._server is not None:
            self._server.close()
        self._flowing.set()
        for link in list(self._links):
            self._abort(link, rst=False)
        tasks = [*self._handlers, *(t for link in self._links for t in link.tasks)]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def latency(self, mean_ms: float, jitter_ms: float = 0.0) -> None:
        """Holds every chunk ``mean_ms ± jitter_ms`` (uniform, never negative), order kept."""
        if mean_ms < 0 or jitter_ms < 0:
            raise ValueError("latency and jitter must not be negative")
        self._mean, self._jitter = mean_ms / 1000, jitter_ms / 1000

    def blackhole(self) -> None:
        """Forwards nothing from now on; connections stall, new ones are held unconnected."""
        self._flowing.clear()

    def reset(self) -> None:
        """Resets every current connection, and every new one until ``heal``."""
        self._resetting = True
        for link in list(self._links):
            self._abort(link, rst=True)

    def heal(self) -> None:
        """Plain forwarding again (no latency); stalled connections resume."""
        self._mean = self._jitter = 0.0
        self._resetting = False
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.counters.connections += 1
        link = _Link(reader, writer)
        self._links.add(link)
        self.counters.active += 1
        try:
            if self._resetting:
                self._abort(link, rst=True)
                return
            await self._flowing.wait()  # a partition: the connection is held, nothing upstream
            if self.mode == "reset":  # reset() came while it was held
                self._abort(link, rst=True)
                return
            try:
                target_reader, target_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                self._abort(link, rst=True)
                return
            link.target_writer = target_writer
            up = asyncio.create_task(self._pump(reader, target_writer, up=True))
            down = asyncio.create_task(self._pump(target_reader, writer, up=False))
            link.tasks = {up, down}
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
            # One side ended: let the other finish what it has, then close both.
            await asyncio.wait(link.tasks, timeout=1.0)
        finally:
            for pump in link.tasks:
                pump.cancel()
            self._close(link)
            self._links.discard(link)
            self.counters.active -= 1
            self._handlers.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        """Copies one direction, with the current latency, stalling while blackholed."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(queue, writer))
        loop = asyncio.get_running_loop()
        last_due = 0.0
        try:
            while True:
                await self._flowing.wait()
                try:
                    data = await reader.read(CHUNK)
                except (ConnectionError, OSError):
                    data = b""
                if not data:
                    break
                if up:
                    self.counters.bytes_up += len(data)
                else:
                    self.counters.bytes_down += len(data)
                delay = self._delay()
                # Order kept: a chunk is never due before the previous one on this direction.
                last_due = max(loop.time() + delay, last_due)
                queue.put_nowait((last_due, data))
            queue.put_nowait((0.0, b""))
            await sender
        finally:
            sender.cancel()

    async def _send(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            if not data:
                with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._flowing.wait()
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                return

    def _delay(self) -> float:
        if not self._jitter:
            return self._mean
        return max(0.0, self._mean + self._random.uniform(-self._jitter, self._jitter))

    def _abort(self, link: _Link, *, rst: bool) -> None:
        if rst:
            self.counters.resets += 1
        for writer in (link.client_writer, link.target_writer):
            if writer is None:
                continue
            if rst:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
            writer.transport.abort()
        for task in link.tasks:
            task.cancel()

    def _close(self, link: _Link) -> None:
        for writer in (link.client_writer, link.target_writer):
            if writer is not None and not writer.transport.is_closing():
                writer.transport.close()
