"""A lean WebSocket client for load generation: just enough of RFC 6455 to join and count events.

One ``BenchSocket`` per connection: a non-blocking socket watched by the asyncio loop
(``add_reader``). It sends the upgrade request and a masked ``auth`` frame, waits for ``welcome``,
answers pings, and from then on reads only what the fan-out benchmark needs from an event frame: its
``seq`` and the send time the benchmark put in its data. ``parse_frames`` works on offsets, so a read
carrying many frames costs no copies.

Each read also carries the kernel's receive timestamp (``SO_TIMESTAMPNS``): when the frame reached
the socket, whatever the load generator was busy with. Latency is measured from it, so a load
generator slower than the server (one core, Python, 10k sockets) does not pass its own lag off as the
server's; the lag is reported beside it. It is a load generator, not a general client: no extensions,
no fragmented messages (the server sends none), no TLS.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
FIN = 0x80
EVENT_NAME = "bench.tick"
MAX_HEAD = 16 * 1024
RECV_SIZE = 256 * 1024
# <asm-generic/socket.h>: SO_TIMESTAMPNS (= SCM_TIMESTAMPNS), a struct timespec per read; Python
# does not export the name.
SO_TIMESTAMPNS = 35
ANC_SIZE = socket.CMSG_SPACE(16)

_SEQ = b'"seq":'
_NAME = b'"name":"' + EVENT_NAME.encode() + b'"'
_T = b'"t":'

_UPGRADING, _AUTHENTICATING, _OPEN, _CLOSED = range(4)
_FIN_TEXT = FIN | OP_TEXT


class FrameError(Exception):
    """The server broke the protocol (a masked frame, a 64-bit length with the top bit set)."""


class HandshakeError(Exception):
    """The upgrade was refused or its answer was not a valid WebSocket accept."""


class AuthRefused(Exception):
    """The server answered ``auth`` with an error or closed the socket instead of a ``welcome``."""


def parse_frames(data: bytes, pos: int = 0) -> tuple[list[tuple[int, int, int]], int]:
    """Finds the complete server frames in ``data`` from ``pos`` on.

    Args:
        data: bytes read from the socket (possibly many frames, possibly a partial one at the end).
        pos: where the first frame starts.

    Returns:
        ``([(first_byte, payload_start, payload_end), ...], consumed)``: the first byte holds FIN
        and the opcode; ``data[consumed:]`` is an incomplete frame to keep for the next read.

    Raises:
        FrameError: a frame is masked (servers must not mask) or its length is invalid.
    """
    frames: list[tuple[int, int, int]] = []
    n = len(data)
    while n - pos >= 2:
        b1 = data[pos + 1]
        if b1 & 0x80:
            raise FrameError("a server frame is masked")
        length = b1 & 0x7F
        head = pos + 2
        if length == 126:
            if n - pos < 4:
                break
            length = (data[pos + 2] << 8) | data[pos + 3]
            head = pos + 4
        elif length == 127:
            if n - pos < 10:
                break
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            if length >> 63:
                raise FrameError("a 64-bit frame length has its top bit set")
            head = pos + 10
        end = head + length
        if end > n:
            break
        frames.append((data[pos], head, end))
        pos = end
    return frames, pos


def mask(payload: bytes, key: bytes) -> bytes:
    """XORs ``payload`` with the 4-byte masking ``key`` (RFC 6455 §5.3)."""
    n = len(payload)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes, key: bytes | None = None) -> bytes:
    """A final, masked client frame (clients must mask every frame they send)."""
    key = key if key is not None else os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", FIN | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", FIN | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", FIN | opcode, 0x80 | 127, n)
    return head + key + mask(payload, key)


def accept_for(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade_request(host: str, port: int, path: str, origin: str, key: str) -> bytes:
    """The HTTP/1.1 upgrade request."""
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n"
        "\r\n"
    ).encode()


def check_upgrade(head: bytes, key: str) -> None:
    """Checks the server's answer to the upgrade request (status line and headers, no blank line).

    Raises:
        HandshakeError: not a 101, or the accept value is missing or wrong.
    """
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 101"):
        raise HandshakeError(f"upgrade refused: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("sec-websocket-accept") != accept_for(key):
        raise HandshakeError("wrong or missing Sec-WebSocket-Accept")


@dataclass(slots=True)
class Tally:
    """What every socket of one run received, shared by all of them (one loop, no locks).

    ``latencies`` are kernel receive time − send time; ``lags`` are the load generator's read time −
    kernel receive time; ``first`` and ``last`` are each event's first and last kernel receive time.
    """

    delivered: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    other_frames: int = 0
    pings: int = 0
    dropped: int = 0
    unstamped: int = 0
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)


class FrameSocket:
    """The raw-socket machinery every load-generator socket shares (podium's and Socket.IO's).

    Reads with kernel receive timestamps, answers the upgrade, parses frames, answers pings and
    closes. Subclasses say what happens after the upgrade (``_upgraded``), to a text frame on an open
    socket (``_on_event``: the hot path, called straight from the frame loop) and to a text frame
    before that (``_on_text``). ``_ready`` resolves once the server admitted the socket.
    """

    __slots__ = (
        "_buf",
        "_fd",
        "_key",
        "_loop",
        "_ready",
        "_state",
        "close_code",
        "last_seq",
        "sock",
        "tally",
    )

    _closed_before = "admission"  # what a socket closed before admission was waiting for

    def __init__(self, sock: socket.socket, key: str, tally: Tally) -> None:
        self.sock = sock
        self._fd = sock.fileno()
        self._key = key
        self._buf = b""
        self._state = _UPGRADING
        self._loop = asyncio.get_running_loop()
        self.tally = tally
        self.last_seq = -1
        self.close_code: int | None = None
        self._ready: asyncio.Future[dict[str, Any]] = self._loop.create_future()

    def start(self, request: bytes) -> None:
        """Sends the upgrade request and starts reading."""
        self._loop.add_reader(self._fd, self._readable)
        self._send(request)

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(RECV_SIZE, ANC_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        now = time.time()
        if not data:
            self._lost(None)
            return
        stamp = 0.0
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = struct.unpack_from("qq", value)
                stamp = sec + nsec * 1e-9
        self.received(data, stamp, now)

    def received(self, data: bytes, stamp: float, now: float) -> None:
        """Handles one read: the upgrade answer, then frames.

        Args:
            data: the bytes read.
            stamp: the kernel's receive time of the read (0.0 when the kernel gave none).
            now: when the load generator read it.
        """
        if self._buf:
            data, self._buf = self._buf + data, b""
        if self._state == _UPGRADING:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_HEAD:
                    self._fail(HandshakeError("upgrade answer too long"))
                else:
                    self._buf = data
                return
            try:
                check_upgrade(data[:end], self._key)
            except HandshakeError as exc:
                self._fail(exc)
                return
            self._upgraded()
            data = data[end + 4 :]
        try:
            frames, used = parse_frames(data)
        except FrameError as exc:
            self._fail(exc)
            return
        if used < len(data):
            self._buf = data[used:]
        for first, start, end in frames:
            if first == _FIN_TEXT:
                # The hot path first: a text frame on an admitted socket, one call per frame.
                if self._state == _OPEN:
                    self._on_event(data, start, end, stamp, now)
                else:
                    self._on_text(data, start, end)
                if self._state == _CLOSED:
                    return
            elif first & 0x0F == OP_PING:
                self._on_ping(data[start:end])
            elif first & 0x0F == OP_CLOSE:
                self._on_close(data[start:end])
                return
            else:
                self.tally.other_frames += 1

    def _upgraded(self) -> None:
        """The upgrade was accepted: send what comes next (a hook)."""
        raise NotImplementedError

    def _on_event(self, data: bytes, start: int, end: int, stamp: float, now: float) -> None:
        """A text frame ``data[start:end]`` on an admitted socket (a hook; the hot path)."""
        raise NotImplementedError

    def _on_text(self, data: bytes, start: int, end: int) -> None:
        """A text frame ``data[start:end]`` before admission (a hook)."""
        raise NotImplementedError

    def _on_ping(self, payload: bytes) -> None:
        self.tally.pings += 1
        self._send(client_frame(OP_PONG, payload))

    def _on_close(self, payload: bytes) -> None:
        self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        self._send(client_frame(OP_CLOSE, payload[:2]))
        self._lost(None)

    def _send(self, data: bytes) -> None:
        # Client frames are a few hundred bytes on a socket that sends nothing else: they fit the
        # send buffer whole, or the socket is broken.
        if self._state == _CLOSED:
            return
        try:
            sent = self.sock.send(data)
        except OSError as exc:
            self._lost(exc)
            return
        if sent != len(data):
            self._lost(OSError("the client send buffer is full"))

    def _fail(self, exc: Exception) -> None:
        if not self._ready.done():
            self._ready.set_exception(exc)
        self.abort()

    def _lost(self, exc: Exception | None) -> None:
        if self._state == _OPEN:
            self.tally.dropped += 1
        if not self._ready.done():
            reason = exc or f"closed before {self._closed_before} ({self.close_code})"
            self._ready.set_exception(AuthRefused(str(reason)))
        self.abort()

    def abort(self) -> None:
        """Stops reading and resets the connection (no close handshake, no TIME_WAIT)."""
        if self._state == _CLOSED:
            return
        self._state = _CLOSED
        self._loop.remove_reader(self._fd)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class BenchSocket(FrameSocket):
    """One participant socket of the load generator."""

    __slots__ = ("_auth", "welcomed")

    _closed_before = "welcome"

    def __init__(self, sock: socket.socket, key: str, auth: bytes, tally: Tally) -> None:
        super().__init__(sock, key, tally)
        self._auth = auth
        self.welcomed = self._ready

    def _upgraded(self) -> None:
        self._state = _AUTHENTICATING
        self._send(client_frame(OP_TEXT, self._auth))

    def _on_text(self, data: bytes, start: int, end: int) -> None:
        if self._state == _AUTHENTICATING:
            self._on_reply(data[start:end])

    def _on_event(self, data: bytes, start: int, end: int, stamp: float, now: float) -> None:
        # The hot path: three searches and two number parses per frame, no JSON decoding.
        tally = self.tally
        i = data.find(_SEQ, start, end)
        named = data.find(_NAME, i, end) if i >= 0 else -1
        if named < 0:
            tally.other_frames += 1  # presence, session.state: not the benchmark's events
            return
        i += len(_SEQ)
        seq = int(data[i : data.find(b",", i, end)])
        j = data.find(_T, named, end) + len(_T)
        sent = float(data[j : data.find(b"}", j, end)])
        if seq <= self.last_seq:
            if seq == self.last_seq:
                tally.duplicates += 1
            else:
                tally.out_of_order += 1
            return
        self.last_seq = seq
        if not sent <= stamp <= now:  # no stamp, or a clock the kernel did not stamp with
            tally.unstamped += 1
            stamp = now
        tally.delivered += 1
        tally.latencies.append(stamp - sent)
        tally.lags.append(now - stamp)
        if seq not in tally.first or stamp < tally.first[seq]:
            tally.first[seq] = stamp
        if stamp > tally.last.get(seq, 0.0):
            tally.last[seq] = stamp

    def _on_reply(self, payload: bytes) -> None:
        message = json.loads(payload)
        kind = message.get("type")
        if kind == "welcome":
            self._state = _OPEN
            self.last_seq = int(message["seq"])
            if not self.welcomed.done():
                self.welcomed.set_result(message)
        elif kind == "error":
            self._fail(AuthRefused(f"{message.get('code')}: {message.get('message')}"))


_S = TypeVar("_S", bound=BenchSocket)

_EVENT_HEAD = b'{"type":"event"'
_NAME_AT = b'"name":"'


class CommandSocket(BenchSocket):
    """A participant socket that also sends commands and sorts what comes back by kind.

    On top of ``BenchSocket`` (which still counts ``bench.tick`` events in the shared ``Tally``) it
    resolves each command's reply (``ack`` or ``error``, matched by ``id``), counts the events it
    receives by name (``names``) and, for the names in ``watch``, keeps each frame's kernel receive
    time and payload (``seen``), for latency from a command to the broadcast it causes. It can stop
    reading, so that its kernel receive buffer fills as a stalled client's would.
    """

    __slots__ = ("_next_id", "_replies", "names", "seen", "watch")

    def __init__(self, sock: socket.socket, key: str, auth: bytes, tally: Tally) -> None:
        super().__init__(sock, key, auth, tally)
        self._next_id = 1
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.names: dict[str, int] = {}
        self.watch: frozenset[str] = frozenset()
        self.seen: list[tuple[str, float, bytes]] = []

    def _on_event(self, data: bytes, start: int, end: int, stamp: float, now: float) -> None:
        if data.startswith(_EVENT_HEAD, start):
            i = data.find(_NAME_AT, start, end)
            if i >= 0:
                i += len(_NAME_AT)
                name = data[i : data.find(b'"', i, end)].decode()
                self.names[name] = self.names.get(name, 0) + 1
                if name in self.watch:
                    self.seen.append((name, stamp or now, data[start:end]))
                if name == EVENT_NAME:
                    super()._on_event(data, start, end, stamp, now)
                    return
            self.tally.other_frames += 1
            return
        if data.startswith(b'{"type":"ack"', start) or data.startswith(b'{"type":"error"', start):
            message = json.loads(data[start:end])
            message["_received"] = stamp or now  # the reply's kernel receive time
            future = self._replies.pop(str(message.get("id")), None)
            if future is not None and not future.done():
                future.set_result(message)
                return
        self.tally.other_frames += 1  # presence, pong, a reply nobody waits for

    def send_command(self, kind: str, **fields: Any) -> asyncio.Future[dict[str, Any]]:
        """Sends one command; the future gets its ``ack`` or ``error`` frame as a dict (with the
        kernel's receive time of the reply added as ``_received``).

        If the socket closes first, the future never resolves: callers bound their wait.
        """
        ident = f"c{self._next_id}"
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._replies[ident] = future
        body = json.dumps({"type": kind, "id": ident, **fields}, separators=(",", ":"))
        self._send(client_frame(OP_TEXT, body.encode()))
        return future

    async def command(self, kind: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """``send_command`` and wait for the reply (``TimeoutError`` after ``timeout``)."""
        async with asyncio.timeout(timeout):
            return await self.send_command(kind, **fields)

    @property
    def is_open(self) -> bool:
        """Whether the socket is joined and not closed on this side."""
        return self._state == _OPEN

    def stop_reading(self) -> None:
        """Stops reading: the kernel receive buffer fills, then the server's send side backs up."""
        if self._state != _CLOSED:
            self._loop.remove_reader(self._fd)


async def open_command_socket(
    host: str,
    port: int,
    origin: str,
    token: str,
    session: str,
    tally: Tally,
    timeout: float,
    *,
    rcvbuf: int | None = None,
) -> CommandSocket:
    """``open_socket`` returning a ``CommandSocket``; ``rcvbuf`` sets a small ``SO_RCVBUF``."""
    return await _open(CommandSocket, host, port, origin, token, session, tally, timeout, rcvbuf)


async def open_socket(
    host: str, port: int, origin: str, token: str, session: str, tally: Tally, timeout: float
) -> BenchSocket:
    """Connects, upgrades and authenticates one socket; returns it once ``welcome`` arrived.

    Raises:
        HandshakeError: the upgrade failed.
        AuthRefused: the server refused the token or closed the socket.
        TimeoutError: no ``welcome`` within ``timeout``.
        OSError: the TCP connection failed.
    """
    return await _open(BenchSocket, host, port, origin, token, session, tally, timeout, None)


async def _open(
    factory: type[_S],
    host: str,
    port: int,
    origin: str,
    token: str,
    session: str,
    tally: Tally,
    timeout: float,
    rcvbuf: int | None,
) -> _S:
    """``open_socket`` for any ``BenchSocket`` class, with an optional small receive buffer."""
    auth = json.dumps(
        {"type": "auth", "id": "1", "token": token, "session": session}, separators=(",", ":")
    ).encode()
    return await connect(
        lambda sock, key: factory(sock, key, auth, tally),
        host,
        port,
        "/ws",
        origin,
        timeout,
        rcvbuf,
    )


_F = TypeVar("_F", bound=FrameSocket)


async def connect(
    make: Callable[[socket.socket, str], _F],
    host: str,
    port: int,
    path: str,
    origin: str,
    timeout: float,
    rcvbuf: int | None = None,
) -> _F:
    """Connects a ``FrameSocket`` (``make(sock, key)``) and upgrades ``path``; returns it once the
    server admitted it (``rcvbuf``: a small ``SO_RCVBUF``, set before connect)."""
    loop = asyncio.get_running_loop()
    key = base64.b64encode(os.urandom(16)).decode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if rcvbuf is not None:
        # Before connect, so that the window the socket advertises is small from the start.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    bench = make(sock, key)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (host, port))
            bench.start(upgrade_request(host, port, path, origin, key))
            await bench._ready
    except BaseException:
        bench.abort()
        raise
    return bench
