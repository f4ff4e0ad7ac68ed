"""A lean Socket.IO client for load generation: Engine.IO v4 over WebSocket, Socket.IO v5, namespace ``/``.

The python-socketio peer's counterpart of ``benchmarks.wsclient`` (whose frame parser, upgrade
request, ``Tally`` and kernel receive timestamps it reuses), so that both servers are driven by the
same kind of client at the same per-frame cost. One ``SioSocket`` per connection: a non-blocking
socket watched by the asyncio loop. It upgrades ``GET /socket.io/?EIO=4&transport=websocket``
straight away (no long-polling first, as a browser client with ``transports: ["websocket"]`` does),
reads the Engine.IO open packet ``0{...}``, connects to namespace ``/`` with ``40{"token": ...}``
and is admitted on ``40{"sid": ...}`` or refused on ``44{...}``. It answers the server's Engine.IO
ping ``2`` with a pong ``3``, and counts ``42["tick",{"i":..,"t":..}]`` events into the ``Tally``
exactly as ``BenchSocket`` counts podium's (key ``i``; duplicates and out-of-order counted apart;
latency from the kernel receive timestamp) with byte searches, no JSON decoding on the hot path.

It is a load generator, not a general client: no long-polling, no binary packets, no acks, no other
namespaces, no reconnection.
"""

from __future__ import annotations

import json
import socket

from benchmarks.wsclient import (
    _OPEN,
    OP_PONG,
    OP_TEXT,
    AuthRefused,
    FrameSocket,
    Tally,
    client_frame,
    connect,
)

PATH = "/socket.io/?EIO=4&transport=websocket"
EVENT_NAME = "tick"

# Engine.IO packet types (the first character of a text frame) and the Socket.IO ones after ``4``.
EIO_OPEN = ord("0")
EIO_CLOSE = ord("1")
EIO_PING = ord("2")
EIO_MESSAGE = ord("4")
SIO_CONNECT = ord("0")
SIO_DISCONNECT = ord("1")
SIO_CONNECT_ERROR = ord("4")

_TICK = b'42["' + EVENT_NAME.encode() + b'",'
_I = b'"i":'
_T = b'"t":'
_PONG = client_frame(OP_TEXT, b"3", b"\x00\x00\x00\x00")  # masked with a zero key: fine to reuse

_OPENING, _CONNECTING = 4, 5  # after wsclient's states


def connect_packet(token: str) -> bytes:
    """The Socket.IO CONNECT packet for namespace ``/`` carrying ``{"token": token}`` as auth."""
    return b"40" + json.dumps({"token": token}, separators=(",", ":")).encode()


class SioSocket(FrameSocket):
    """One participant socket of the load generator, speaking Socket.IO."""

    __slots__ = ("_connect", "admitted")

    _closed_before = "the namespace connect"

    def __init__(self, sock: socket.socket, key: str, connect: bytes, tally: Tally) -> None:
        super().__init__(sock, key, tally)
        self._connect = connect
        self.admitted = self._ready

    def _upgraded(self) -> None:
        self._state = _OPENING

    def _on_text(self, data: bytes, start: int, end: int) -> None:
        self._on_packet(data, start, end)

    def _on_ping(self, payload: bytes) -> None:
        # A WebSocket-level ping: answered, not counted (``pings`` counts Engine.IO pings).
        self._send(client_frame(OP_PONG, payload))

    def _on_event(self, data: bytes, start: int, end: int, stamp: float, now: float) -> None:
        # The hot path: three searches and two number parses per frame, no JSON decoding.
        if not data.startswith(_TICK, start, end):
            self._on_packet(data, start, end)
            return
        tally = self.tally
        i = data.find(_I, start, end)
        if i < 0:
            tally.other_frames += 1
            return
        i += len(_I)
        seq = int(data[i : data.find(b",", i, end)])
        j = data.find(_T, i, end) + len(_T)
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

    def _on_packet(self, data: bytes, start: int, end: int) -> None:
        """Every Engine.IO packet but an event on an admitted socket (rare: not the hot path)."""
        if start == end:
            self.tally.other_frames += 1
            return
        kind = data[start]
        if kind == EIO_PING:
            self.tally.pings += 1
            self._send(
                _PONG if end - start == 1 else client_frame(OP_TEXT, b"3" + data[start + 1 : end])
            )
        elif kind == EIO_OPEN and self._state == _OPENING:
            self._state = _CONNECTING
            self._send(client_frame(OP_TEXT, self._connect))
        elif kind == EIO_MESSAGE and end - start >= 2 and self._state == _CONNECTING:
            self._on_connect_reply(data[start + 1], data[start + 2 : end])
        elif kind == EIO_MESSAGE and end - start >= 2 and data[start + 1] == SIO_DISCONNECT:
            self._lost(None)  # the server disconnected us from the namespace
        elif kind == EIO_CLOSE:
            self._lost(None)
        else:
            self.tally.other_frames += 1

    def _on_connect_reply(self, kind: int, payload: bytes) -> None:
        body = json.loads(payload) if payload[:1] == b"{" else {}
        if kind == SIO_CONNECT:
            self._state = _OPEN
            if not self.admitted.done():
                self.admitted.set_result(body)
        elif kind == SIO_CONNECT_ERROR:
            self._fail(AuthRefused(f"connect refused: {body.get('message', body)}"))
        else:
            self.tally.other_frames += 1


async def open_socket(
    host: str, port: int, origin: str, token: str, tally: Tally, timeout: float
) -> SioSocket:
    """Connects, upgrades and joins namespace ``/`` with ``token``; returns once admitted.

    Raises:
        HandshakeError: the WebSocket upgrade failed.
        AuthRefused: the server refused the namespace connect (a ``44`` packet) or closed the socket.
        TimeoutError: not admitted within ``timeout``.
        OSError: the TCP connection failed.
    """
    connect_ = connect_packet(token)
    return await connect(
        lambda sock, key: SioSocket(sock, key, connect_, tally), host, port, PATH, origin, timeout
    )
