"""The python-socketio peer: the broadcast server a competent team would write with python-socketio.

Run: ``python -m benchmarks.sio_server --port P --redis-url URL --jwt-secret S``. It is the peer the
broadcast scenarios (S1, S2, S5) measure podium against, so it does the same job in the library's
idiomatic way and nothing more:

- ``socketio.AsyncServer(async_mode="aiohttp")`` on an aiohttp app, with an ``AsyncRedisManager``
  on the benchmark's store: events published by another process (``benchmarks.peer`` uses the
  documented write-only emitter) arrive over Redis pub/sub (channel ``socketio``) and are emitted to
  the room ``opening-plenary``.
- the namespace ``connect`` handler is the join: it verifies the participant's token (a podium join
  token: HS256, issuer and audience ``podium``, ``exp`` and ``sub`` required, the session granted),
  refuses a bad one (``ConnectionRefusedError`` → a ``44`` connect error), enters the room and
  records presence with one ``SADD``, as podium's join checks a token and records presence.
- engine.io defaults otherwise: ping every 25 s, 20 s to answer (podium's heartbeat is 20 s);
  ``http_compression`` only touches long-polling responses; on the WebSocket transport aiohttp
  offers permessage-deflate only to a client that asks for it, and the load generator does not,
  so frames go out uncompressed, as podium's do.

``/healthz`` answers 200 once the store answers, for the parent to wait on.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import jwt
import redis.asyncio as aioredis
import socketio  # type: ignore[import-untyped]  # no stubs, no py.typed
from aiohttp import web

ROOM = "opening-plenary"
PRESENCE = "sio:presence:" + ROOM
ISSUER = AUDIENCE = "podium"
ALL_SESSIONS = "*"
SHUTDOWN_GRACE = 1.0
# Where a token's subject is kept for the disconnect handler.
SUBJECT = "sub"


def verify(token: Any, secret: str) -> str:
    """Checks a podium join token for ``ROOM``; returns its subject.

    Raises:
        socketio.exceptions.ConnectionRefusedError: no token, a bad or expired one, or one that does
            not grant the room.
    """
    if not isinstance(token, str):
        raise socketio.exceptions.ConnectionRefusedError("a token is required")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "sub"]},
            leeway=5,
        )
    except jwt.PyJWTError as exc:
        raise socketio.exceptions.ConnectionRefusedError(f"bad token: {exc}") from None
    sessions = claims.get("sessions") or []
    if ROOM not in sessions and ALL_SESSIONS not in sessions:
        raise socketio.exceptions.ConnectionRefusedError(f"the token does not grant {ROOM}")
    return str(claims["sub"])


def create_app(redis_url: str, secret: str, origins: list[str] | None) -> web.Application:
    """The aiohttp app with the Socket.IO server attached under ``/socket.io/``."""
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=socketio.AsyncRedisManager(redis_url),
        cors_allowed_origins=origins,
    )
    app = web.Application()
    sio.attach(app)
    store = aioredis.Redis.from_url(redis_url)

    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None) -> None:
        subject = verify((auth or {}).get("token"), secret)
        await sio.save_session(sid, {SUBJECT: subject})
        await sio.enter_room(sid, ROOM)
        await store.sadd(PRESENCE, subject)

    async def disconnect(sid: str, reason: str) -> None:
        session = await sio.get_session(sid)
        if SUBJECT in session:
            await store.srem(PRESENCE, session[SUBJECT])

    async def healthz(request: web.Request) -> web.Response:
        await store.ping()
        return web.Response(text="ok")

    async def stop_socketio(app: web.Application) -> None:
        await sio.shutdown()  # its background tasks, as its documentation asks before shutdown

    async def close_store(app: web.Application) -> None:
        await store.aclose()

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)
    app.router.add_get("/healthz", healthz)
    app.on_shutdown.append(stop_socketio)
    app.on_cleanup.append(close_store)
    return app


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.sio_server``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sio_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True, help="the store (redis:// or unix://)")
    parser.add_argument(
        "--jwt-secret", required=True, help="the HS256 secret tokens are signed with"
    )
    parser.add_argument(
        "--origin",
        action="append",
        help="an allowed Origin (repeatable; default: the server's own host only)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    app = create_app(args.redis_url, args.jwt_secret, args.origin)
    # On SIGTERM, open WebSockets get SHUTDOWN_GRACE s to finish, then are closed: a benchmark stops
    # the server with all its participants still connected.
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
        shutdown_timeout=SHUTDOWN_GRACE,
    )


if __name__ == "__main__":
    main()
