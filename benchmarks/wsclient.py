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
from dataclasses import dataclass, field
from typing import Any

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


class BenchSocket:
    """One participant socket of the load generator."""

    __slots__ = (
        "_auth",
        "_buf",
        "_fd",
        "_key",
        "_loop",
        "_state",
        "close_code",
        "last_seq",
        "sock",
        "tally",
        "welcomed",
    )

    def __init__(self, sock: socket.socket, key: str, auth: bytes, tally: Tally) -> None:
        self.sock = sock
        self._fd = sock.fileno()
        self._key = key
        self._auth = auth
        self._buf = b""
        self._state = _UPGRADING
        self._loop = asyncio.get_running_loop()
        self.tally = tally
        self.last_seq = -1
        self.close_code: int | None = None
        self.welcomed: asyncio.Future[dict[str, Any]] = self._loop.create_future()

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
            self._state = _AUTHENTICATING
            self._send(client_frame(OP_TEXT, self._auth))
            data = data[end + 4 :]
        try:
            frames, used = parse_frames(data)
        except FrameError as exc:
            self._fail(exc)
            return
        if used < len(data):
            self._buf = data[used:]
        for first, start, end in frames:
            opcode = first & 0x0F
            if opcode == OP_TEXT and first & FIN:
                if self._state == _OPEN:
                    self._on_event(data, start, end, stamp, now)
                elif self._state == _AUTHENTICATING:
                    self._on_reply(data[start:end])
            elif opcode == OP_PING:
                self.tally.pings += 1
                self._send(client_frame(OP_PONG, data[start:end]))
            elif opcode == OP_CLOSE:
                self._on_close(data[start:end])
                return
            else:
                self.tally.other_frames += 1

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
        if not self.welcomed.done():
            self.welcomed.set_exception(exc)
        self.abort()

    def _lost(self, exc: Exception | None) -> None:
        if self._state == _OPEN:
            self.tally.dropped += 1
        if not self.welcomed.done():
            reason = exc or f"closed before welcome ({self.close_code})"
            self.welcomed.set_exception(AuthRefused(str(reason)))
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
    loop = asyncio.get_running_loop()
    key = base64.b64encode(os.urandom(16)).decode()
    auth = json.dumps(
        {"type": "auth", "id": "1", "token": token, "session": session}, separators=(",", ":")
    ).encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bench = BenchSocket(sock, key, auth, tally)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (host, port))
            bench.start(upgrade_request(host, port, "/ws", origin, key))
            await bench.welcomed
    except BaseException:
        bench.abort()
        raise
    return bench
