"""A Python client for podium's protocol, on the ``websockets`` library (tests, benchmarks, bots).

It authenticates, keeps the stream position, resumes after a disconnect (full-jitter backoff,
moving on to the next of its node URLs), deduplicates events by sequence, detects a silent network
with its own pings, and turns acks and errors into return values and exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class ClientError(Exception):
    """The server refused a command (its typed error)."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after


class Disconnected(Exception):
    """The connection closed; ``code`` says why (4000–4499: reconnect, 4500–4999: do not)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"closed with {code} {reason}".strip())
        self.code = code
        self.reason = reason

    @property
    def reconnect(self) -> bool:
        """Whether the close code asks the client to come back."""
        return (
            self.code is None or self.code in (1001, 1006, 1011, 1012) or 4000 <= self.code < 4500
        )


class PodiumClient:
    """One participant connection to one session."""

    def __init__(
        self,
        url: str,
        token: str,
        session: str,
        *,
        origin: str | None = None,
        open_timeout: float = 10.0,
        alternates: Sequence[str] = (),
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
    ) -> None:
        """Sets up a client; nothing is opened before ``connect``.

        Args:
            url: the WebSocket URL of the node to use first.
            token: a join token for ``session``.
            session: the session to join.
            origin: the Origin header to send.
            open_timeout: seconds for the TCP connect, the upgrade and the first reply together.
            alternates: the URLs of other nodes; reconnecting moves on to the next one each attempt.
            ping_interval: seconds between the client's own pings (None: no pings).
            ping_timeout: seconds without a pong after which the connection counts as lost.
            close_timeout: seconds a closing handshake may take before the socket is dropped.
        """
        self.urls: tuple[str, ...] = (url, *(u for u in alternates if u != url))
        self.url = url
        self.token = token
        self.session = session
        self.origin = origin
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.epoch: str | None = None
        self.seq = 0
        self.welcome: dict[str, Any] | None = None
        self.presence: dict[str, Any] | None = None
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.presence_updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.resyncs = 0
        self.resumed: dict[str, Any] | None = None
        self.closed: asyncio.Future[Disconnected] | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        # Figures of the reconnects: when each attempt started (monotonic), the failed attempts by
        # cause, and how long each reconnect took from the call to the resumed stream.
        self.attempts: list[float] = []
        self.failures: Counter[str] = Counter()
        self.reconnect_times: list[float] = []
        self.connected_at: float | None = None  # monotonic time of the last welcome or resume
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    async def connect(self, *, resume: bool = True) -> dict[str, Any]:
        """Opens the socket, authenticates and returns the ``welcome`` or ``resumed`` message.

        Raises:
            Disconnected: the server refused the connection (its close code says why).
            ClientError: the server answered ``auth`` with a typed error.
            TimeoutError: no first reply within ``open_timeout``.
            OSError: the TCP connection failed.
        """
        self.attempts.append(time.monotonic())
        started = asyncio.get_running_loop().time()
        try:
            ws = await connect(
                self.url,
                origin=self.origin,  # type: ignore[arg-type]
                open_timeout=self.open_timeout,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                close_timeout=self.close_timeout,
                compression=None,
                max_size=2**22,
                proxy=None,
            )
        except websockets.InvalidStatus as exc:
            raise Disconnected(None, f"HTTP {exc.response.status_code}") from exc
        except websockets.InvalidHandshake as exc:
            raise Disconnected(None, f"handshake failed: {exc}") from exc
        self._ws = ws
        self.closed = asyncio.get_running_loop().create_future()
        auth: dict[str, Any] = {
            "type": "auth",
            "id": self._next_id(),
            "token": self.token,
            "session": self.session,
        }
        if resume and self.epoch is not None:
            auth["resume"] = {"epoch": self.epoch, "seq": self.seq}
        # The upgrade and the first reply share one deadline: a node that accepted the socket and
        # then went silent (a stalled network) must not hold the client forever.
        remaining = self.open_timeout - (asyncio.get_running_loop().time() - started)
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                await ws.send(json.dumps(auth))
                first = await self._first_reply(ws)
        except BaseException as exc:
            self._ws = None
            ws.transport.abort()
            if not self.closed.done():  # so that a waiter learns this attempt failed
                self.closed.set_result(Disconnected(ws.close_code, _cause(exc)))
            raise
        self.connected_at = time.monotonic()
        self._reader = asyncio.create_task(self._read(ws))
        return first

    async def _first_reply(self, ws: ClientConnection) -> dict[str, Any]:
        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosed as exc:
                raise _disconnected(exc) from exc
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "error":
                with contextlib.suppress(ConnectionClosed):
                    await ws.recv()
                raise ClientError(message["code"], message["message"])
            if kind == "resync":
                self.resyncs += 1
                self.epoch, self.seq = None, 0
                await self.events.put(message)
                continue
            if kind == "welcome":
                self.welcome = message
                self.epoch, self.seq = message["epoch"], message["seq"]
                self.presence = message["presence"]
                return dict(message)
            if kind == "resumed":
                self.epoch = message["epoch"]
                self.resumed = message
                return dict(message)
            raise ClientError("unexpected", f"unexpected first message {kind!r}")

    async def reconnect(
        self,
        *,
        attempts: int = 20,
        base: float = 0.1,
        cap: float = 5.0,
        jitter: bool = True,
        move: bool = True,
    ) -> dict[str, Any]:
        """Reconnects with exponential backoff, resuming from the last position.

        Every attempt, the first included, waits ``backoff_delay(attempt)`` first: with full jitter
        a crowd that lost the same node spreads its return over the window instead of arriving at
        once. With ``move`` each attempt goes to the next of ``urls`` (the node just lost is the
        last one tried again).

        Args:
            attempts: attempts before giving up.
            base: the first window, seconds.
            cap: the largest window, seconds.
            jitter: full jitter (a uniform delay in the window); without it, the window itself.
            move: go to the next node URL on each attempt.

        Raises:
            Disconnected: the server said not to come back (4500–4999), or every attempt failed.
            TimeoutError, OSError: the last attempt's failure, when every attempt failed.
        """
        started = time.monotonic()
        await self.close()
        for attempt in range(attempts):
            await asyncio.sleep(backoff_delay(attempt, base=base, cap=cap, jitter=jitter))
            if move and len(self.urls) > 1:
                self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
            try:
                first = await self.connect(resume=True)
            except (TimeoutError, OSError, Disconnected) as exc:
                self.failures[_cause(exc)] += 1
                if isinstance(exc, Disconnected) and not exc.reconnect:
                    raise
                if attempt + 1 >= attempts:
                    raise
                continue
            self.reconnect_times.append(time.monotonic() - started)
            return first
        raise Disconnected(None, "no reconnect attempts")

    async def stay_connected(self, **backoff: Any) -> Disconnected:
        """Reconnects (see ``reconnect``) after every close that asks for it; returns the final close.

        Run it as a task beside the client's work; cancel it to stop. A close that says not to come
        back (4500–4999), or running out of attempts, ends it.
        """
        while True:
            assert self.closed is not None, "connect first"
            closed = await asyncio.shield(self.closed)
            if not closed.reconnect:
                return closed
            try:
                await self.reconnect(**backoff)
            except Disconnected as exc:
                return exc
            except (TimeoutError, OSError) as exc:
                return Disconnected(None, _cause(exc))

    async def request(self, kind: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Sends a command and returns its ack's ``result``.

        Raises:
            ClientError: the server answered with a typed error.
        """
        rid = self._next_id()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            await self.send_raw(json.dumps({"type": kind, "id": rid, **fields}))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(rid, None)

    async def send_raw(self, frame: str | bytes) -> None:
        """Sends a frame as it is (tests use it to send bad input)."""
        if self._ws is None:
            raise Disconnected(None, "not connected")
        await self._ws.send(frame)

    async def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next event (deduplicated, in order)."""
        return await asyncio.wait_for(self.events.get(), timeout)

    async def next_presence(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next presence update."""
        return await asyncio.wait_for(self.presence_updates.get(), timeout)

    async def wait_closed(self, timeout: float = 10.0) -> Disconnected:
        """Waits for the server to close the connection and returns why."""
        assert self.closed is not None
        return await asyncio.wait_for(asyncio.shield(self.closed), timeout)

    async def close(self) -> None:
        """Closes the socket (the server sees a normal close, if it is still there to see it)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            if self.closed is not None and self.closed.done():
                ws.transport.abort()  # already closed or failed: no handshake to wait for
            else:
                await ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._on_message(json.loads(raw))
            result = Disconnected(ws.close_code, ws.close_reason or "")
        except ConnectionClosed as exc:
            result = _disconnected(exc)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(result)
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(result)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "event":
            if message["epoch"] == self.epoch and message["seq"] <= self.seq:
                return  # already seen: a resume may replay what the fan-out also sent
            self.epoch, self.seq = message["epoch"], message["seq"]
            self.events.put_nowait(message)
        elif kind == "presence":
            self.presence = message
            self.presence_updates.put_nowait(message)
        elif kind in ("ack", "error", "pong"):
            future = self._pending.get(message.get("id") or "")
            if future is None or future.done():
                if kind == "error":
                    self.events.put_nowait(message)
                return
            if kind == "error":
                future.set_exception(
                    ClientError(message["code"], message["message"], message.get("retry_after"))
                )
            else:
                future.set_result(message.get("result", {}))
        else:
            self.events.put_nowait(message)

    def _next_id(self) -> str:
        return str(next(self._ids))


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: bool = True) -> float:
    """The wait before reconnect attempt ``attempt`` (0 first): ``min(cap, base · 2^attempt)``,
    times a uniform random factor in [0, 1) with full jitter."""
    window = min(cap, base * 2**attempt)
    return random.uniform(0, window) if jitter else window


def _cause(exc: BaseException) -> str:
    """A short, bounded name for why an attempt failed (figures, not messages)."""
    if isinstance(exc, Disconnected):
        return "refused" if exc.code is None else f"closed_{exc.code}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, ConnectionResetError):
        return "connection_reset"
    return type(exc).__name__


def _disconnected(exc: ConnectionClosed) -> Disconnected:
    frame = exc.rcvd
    return Disconnected(frame.code if frame else 1006, frame.reason if frame else "")
