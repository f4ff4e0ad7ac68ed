"""The participant connection: one WebSocket per client and session, from upgrade to close.

Sequence: Origin checked at the upgrade; ``auth`` within the deadline; a snapshot (or the missed events
on resume); then commands answered by ``ack``/``error`` while the fan-out writes events. Writes to the
socket never wait: a socket whose send buffer passes its bound is cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import WSMessage, WSMsgType, web

from signaling.errors import (
    AuthTimeout,
    CloseCode,
    Draining,
    Forbidden,
    NotAuthenticated,
    OriginRefused,
    ProtocolError,
    RateLimited,
    SignalingError,
    StoreUnavailable,
)
from signaling.fanout import Feed
from signaling.framing import pong_frame, text_frame
from signaling.identity import Identity, Role, verify
from signaling.lifecycle import State
from signaling.messages import (
    Ack,
    Auth,
    Codec,
    Command,
    Error,
    Message,
    Ping,
    Pong,
    Presence,
    Resumed,
    Resync,
    SetState,
    Welcome,
    encode,
    request_id_of,
)
from signaling.presence import Counts, presence_view, summarise
from signaling.ratelimit import KeyedBuckets, TokenBucket
from signaling.service import (
    JoinRead,
    JoinSnapshot,
    SignalingService,
    SnapshotPart,
    lifecycle_view,
    session_view,
)
from signaling.store import AUDIENCE_ALL, AUDIENCE_STAFF, HistoryEntry

log = logging.getLogger("podium.connection")


class Connection:
    """One authenticated client socket: a fan-out sink plus the client's identity and limits."""

    __slots__ = (
        "_max_buffer",
        "audiences",
        "identity",
        "pinged",
        "seen",
        "service",
        "session",
        "transport",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        identity: Identity,
        session: str,
        service: SignalingService,
    ) -> None:
        self.ws = ws
        self.transport: asyncio.Transport | None = transport
        self.identity = identity
        self.session = session
        self.service = service
        self._max_buffer = service.limits.send_buffer_bytes
        # For the node's heartbeat (signaling/heartbeat.py): when the peer was last heard, when pinged.
        self.seen = time.monotonic()
        self.pinged = 0.0
        # "r:<role>" reaches every socket of one role (the production desks, say) on every node.
        audiences = [AUDIENCE_ALL, "u:" + identity.sub, "r:" + identity.role.value]
        if identity.is_staff:
            audiences.append(AUDIENCE_STAFF)
        self.audiences: tuple[str, ...] = tuple(audiences)

    def write(self, frame: bytes) -> bool:
        """Writes a ready frame; cuts the socket off when its send buffer passes the bound."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        transport.write(frame)
        if transport.get_write_buffer_size() > self._max_buffer:
            self.cut()
            return False
        return True

    def send(self, message: Message) -> bool:
        """Encodes and writes one message to this socket only."""
        return self.write(text_frame(encode(message)))

    def cut(self) -> None:
        """Drops a socket that stopped reading: no close handshake, its buffer is freed now."""
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.abort()

    def visible(self, entry: HistoryEntry) -> bool:
        """Whether a stored event is for this connection's audiences."""
        return any(part in self.audiences for part in entry.audience.split("|"))


def origin_allowed(origin: str | None, allowed: frozenset[str], own: str = "") -> bool:
    """True when the upgrade's Origin is the node's own, or in the allow-list (``*``: any)."""
    if not origin:
        return False
    origin = origin.rstrip("/")
    return "*" in allowed or origin in allowed or origin == own


async def websocket(
    request: web.Request,
    service: SignalingService,
    codec: Codec,
    origins: frozenset[str],
    joins: KeyedBuckets | None = None,
) -> web.StreamResponse:
    """The ``GET /ws`` handler (``joins``: the per-person join rate limit, when there is one)."""
    # No local for the node's own origin: this frame lives as long as the connection.
    if not origin_allowed(
        request.headers.get("Origin"), origins, f"{request.scheme}://{request.host}"
    ):
        service.metrics.join("origin_refused")
        raise OriginRefused("this Origin may not connect")
    if service.draining:
        raise Draining("this node is shutting down; connect again", retry_after=2.0)
    limits = service.limits
    ws = web.WebSocketResponse(
        heartbeat=None,  # the node's shared heartbeat pings (signaling/heartbeat.py), not aiohttp's
        max_msg_size=limits.max_frame_bytes,
        compress=False,
        autoping=False,  # pings and pongs come to _serve: a pong is what the heartbeat waits for
    )
    try:
        await ws.prepare(request)
    except ConnectionResetError:  # the peer went away before the 101 was written
        return ws
    transport = request.transport
    if transport is None:  # the peer went away during the upgrade
        return ws
    conn: Connection | None = None
    feed: Feed | None = None
    expiry: asyncio.TimerHandle | None = None
    counted = False
    auth, conn = await _authenticate(ws, transport, service, codec, joins)
    if conn is None or auth is None:
        return ws
    try:
        service.connections.add(conn)
        feed = await service.hub.attach(conn.session)
        joined = await service.joined(conn.session, conn.identity, snapshot=auth.resume is None)
        counted = True
        _gauge(conn).inc()
        await _catch_up(conn, auth, feed, joined)
        # The auth frame (its token) and the welcome's store replies would otherwise stay in this
        # frame for the connection's life: ~1.3 KiB of a ~19 KiB connection.
        joined = None
        auth = None
        expiry = _close_at_expiry(conn)  # after the welcome: a token may not expire before it
        await _serve(conn, codec)
    except StoreUnavailable:
        # Only the join can get here: commands answer store outages with a retryable error frame.
        service.metrics.join("store_unavailable")
        rid = auth.id if auth is not None else None
        conn.send(Error(code="store_unavailable", message="the store is unavailable", id=rid))
        await _close(ws, CloseCode.STORE_UNAVAILABLE, "store_unavailable")
    finally:
        if expiry is not None:
            expiry.cancel()
        service.connections.discard(conn)
        if feed is not None:
            service.hub.remove(feed, conn)
        if counted:
            _gauge(conn).dec()
            with contextlib.suppress(SignalingError):
                await service.left(conn.session, conn.identity)
        for hook in service.closed_hooks:
            try:
                await hook(conn)
            except Exception:  # one failing hook must not keep the others from running
                log.warning("a connection-closed hook failed", exc_info=True)
    return ws


async def _first_message(ws: web.WebSocketResponse, timeout: float) -> WSMessage:
    """The first data or closing message, within ``timeout``; pings before it are answered."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = await ws.receive(timeout=max(0.001, deadline - time.monotonic()))
        except TimeoutError:
            raise AuthTimeout("no auth message within the deadline") from None
        if msg.type is WSMsgType.PING:
            await ws.pong(msg.data)
        elif msg.type is not WSMsgType.PONG:
            return msg


async def _authenticate(
    ws: web.WebSocketResponse,
    transport: asyncio.Transport,
    service: SignalingService,
    codec: Codec,
    joins: KeyedBuckets | None = None,
) -> tuple[Auth | None, Connection | None]:
    raw: str | None = None
    try:
        msg = await _first_message(ws, service.limits.auth_timeout)
        if msg.type is WSMsgType.BINARY:
            await _close(ws, CloseCode.UNSUPPORTED_DATA, "binary frames are not accepted")
            service.metrics.join("bad_request")
            return None, None
        if msg.type is not WSMsgType.TEXT:
            if msg.type is WSMsgType.ERROR:
                service.metrics.join("bad_request")
            return None, None
        raw = msg.data
        command = codec.decode(msg.data)
        if not isinstance(command, Auth):
            raise NotAuthenticated("the first message must be auth")
        identity = verify(service.token_keys, command.token, now=int(service.clock()))
        service.session(command.session)
        identity.check_session(command.session)
        wait = joins.take(identity.sub, time.monotonic()) if joins is not None else 0.0
        if wait:
            raise RateLimited("too many joins by this person, try again shortly", retry_after=wait)
    except SignalingError as exc:
        service.metrics.join("bad_request" if isinstance(exc, ProtocolError) else exc.code)
        rid = request_id_of(raw) if raw is not None else None
        retry = round(exc.retry_after, 3) if exc.retry_after is not None else None
        await ws.send_str(
            encode(Error(code=exc.code, message=exc.message, id=rid, retry_after=retry)).decode()
        )
        # A join flood is a flood: the client is told when to come back and not to hammer.
        flood = CloseCode.FLOOD if isinstance(exc, RateLimited) else None
        code = exc.close_code or flood or CloseCode.PROTOCOL_VIOLATION
        await _close(ws, code, exc.code)
        return None, None
    return command, Connection(ws, transport, identity, command.session, service)


async def _catch_up(
    conn: Connection, auth: Auth, feed: Feed, joined: JoinSnapshot | None = None
) -> None:
    """Sends the snapshot (or the missed events), then attaches the socket to the fan-out, gap-free.

    ``joined``: what the presence join read with it (a fresh join); without it (a resume that must
    resync) the snapshot and every part are read here.
    """
    service = conn.service
    session = service.session(conn.session)
    floor = -1
    if auth.resume is not None:
        missed = await service.store.missed(
            conn.session, auth.resume.epoch, auth.resume.seq, service.limits.resume_limit
        )
        if missed.resync is None:
            visible = [e for e in missed.entries if conn.visible(e)]
            conn.send(Resumed(id=auth.id, epoch=missed.epoch, seq=missed.seq, missed=len(visible)))
            for entry in visible:
                conn.write(text_frame(entry.frame))
            floor = missed.entries[-1].seq if missed.entries else auth.resume.seq
            service.metrics.join("resumed")
            counts = await service.counts(conn.session)
            conn.send(_presence_message(conn.session, counts))
        else:
            conn.send(Resync(id=auth.id, reason=missed.resync))  # type: ignore[arg-type]
            service.metrics.join("resync")
    if floor < 0:
        if joined is None:
            snapshot = await service.store.snapshot(conn.session)
            raw: dict[str, Any] = {}
        else:
            snapshot, raw = joined.snapshot, joined.parts
        counts = summarise(snapshot.counts, snapshot.unique)
        # The join reads came with the position; the others are read after it: events past it
        # re-apply idempotently (they carry absolute values).
        parts = {
            name: await _part(conn, name, part, raw)
            for name, part in service.snapshot_parts.items()
        }
        conn.send(
            Welcome(
                id=auth.id,
                session=session_view(session),
                you=_you(conn.identity),
                state=snapshot.lifecycle.state.value,
                presence=presence_view(counts),
                epoch=snapshot.epoch,
                seq=snapshot.seq,
                parts=parts,
            )
        )
        floor = snapshot.seq
        if auth.resume is None:
            service.metrics.join("ok")
    # Catch up with events the fan-out delivered while we read; then attach with no gap between.
    while feed.last_seq > floor and not feed.filling:
        entries = await service.store.range(conn.session, floor, feed.last_seq)
        for entry in entries:
            if conn.visible(entry):
                conn.write(text_frame(entry.frame))
        floor = max(floor, feed.last_seq if not entries else entries[-1].seq)
    service.hub.add(feed, conn, floor)


async def _part(
    conn: Connection, name: str, part: SnapshotPart | JoinRead, raw: dict[str, Any]
) -> Any:
    """One welcome part: shaped from the join script's reply, or read now."""
    if isinstance(part, JoinRead):
        return part.build(conn, raw[name]) if name in raw else await part.read(conn)
    return await part(conn)


async def _serve(conn: Connection, codec: Codec) -> None:
    service = conn.service
    limits = service.limits
    bucket = TokenBucket(limits.rate, limits.burst)
    # Refusals are forgiven at the message rate: a client is closed for flooding when it keeps
    # sending past the limit, not when, over a long session, a node that fell behind read a few
    # seconds of its honest messages at once (seen in the vote-storm benchmark, S7).
    strikes = TokenBucket(limits.rate, limits.flood_strikes - 1)  # the last one closes
    bad = 0
    async for msg in conn.ws:
        conn.seen = now = time.monotonic()
        if msg.type is WSMsgType.PONG:
            continue
        if msg.type is WSMsgType.PING:
            conn.write(pong_frame(msg.data))
            continue
        if msg.type is WSMsgType.BINARY:
            service.metrics.reject("binary_frame")
            await _close(conn.ws, CloseCode.UNSUPPORTED_DATA, "binary frames are not accepted")
            return
        if msg.type is not WSMsgType.TEXT:
            if msg.type is WSMsgType.ERROR:
                service.metrics.reject("too_big")
            continue
        wait = bucket.take(now)
        if wait:
            service.metrics.reject("rate_limited")
            conn.send(
                Error(
                    code=RateLimited.code,
                    message="too many messages",
                    id=request_id_of(msg.data),
                    retry_after=round(wait, 3),
                )
            )
            if strikes.take(now):
                await _close(conn.ws, CloseCode.FLOOD, "flood")
                return
            continue
        try:
            command = codec.decode(msg.data)
            result = await _dispatch(conn, command)
        except SignalingError as exc:
            service.metrics.reject(exc.code)
            conn.send(
                Error(
                    code=exc.code,
                    message=exc.message,
                    id=request_id_of(msg.data),
                    retry_after=exc.retry_after,
                )
            )
            if isinstance(exc, ProtocolError):
                bad += 1
                if bad >= limits.bad_frame_limit:
                    await _close(conn.ws, CloseCode.PROTOCOL_VIOLATION, "too many bad frames")
                    return
            continue
        if result is not None:
            conn.send(result)


async def _dispatch(conn: Connection, command: Command) -> Message | None:
    if isinstance(command, Ping):
        return Pong(id=command.id)
    if isinstance(command, Auth):
        raise NotAuthenticated("already authenticated")
    if isinstance(command, SetState):
        if conn.identity.role is not Role.OPERATOR:
            raise Forbidden("only operators change a session's state")
        transition = await conn.service.set_state(conn.session, State(command.state))
        return Ack(id=command.id, result={"state": transition.state.value})
    handler = conn.service.handlers.get(type(command))
    if handler is None:  # a codec type with no handler is a server bug, not the client's fault
        raise SignalingError(f"no handler for {type(command).__name__}")
    return Ack(id=command.id, result=await handler(conn, command))


def _close_at_expiry(conn: Connection) -> asyncio.TimerHandle:
    delay = max(0.0, conn.identity.expires - conn.service.clock())
    loop = asyncio.get_running_loop()

    def expire() -> None:
        conn.send(Error(code="token_expired", message="the token has expired"))
        conn.service.spawn(_close(conn.ws, CloseCode.TOKEN_EXPIRED, "token_expired"))

    return loop.call_later(delay, expire)


async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code=code, message=reason.encode()[:120])


def _gauge(conn: Connection) -> Any:
    labels = conn.service.metrics.connection_labels(
        conn.session, conn.identity.mode, conn.identity.role.value
    )
    return conn.service.metrics.connections.labels(*labels)


def _you(identity: Identity) -> dict[str, Any]:
    return {
        "sub": identity.sub,
        "name": identity.name,
        "role": identity.role.value,
        "mode": identity.mode,
        "group": identity.group,
        "country": identity.country,
    }


def _presence_message(session: str, counts: Counts) -> Message:
    return Presence(session=session, **presence_view(counts))


__all__ = ["Connection", "lifecycle_view", "origin_allowed", "websocket"]
