"""HTTP routes of signaling: the WebSocket endpoint, the session API, guest join and join codes."""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from typing import Any

import msgspec
from aiohttp import web

from signaling.connection import websocket
from signaling.errors import (
    AuthError,
    Forbidden,
    GuestAccessClosed,
    InvalidMessage,
    RateLimited,
    SignalingError,
)
from signaling.identity import Identity, Role, mint, verify
from signaling.keys import join_code_key
from signaling.lifecycle import State
from signaling.messages import Codec
from signaling.presence import presence_view
from signaling.ratelimit import KeyedBuckets
from signaling.service import SignalingService, lifecycle_view, session_view
from signaling.store import SessionStore

GUEST_TTL = 4 * 3600
MAX_BODY = 16 * 1024


def problem(exc: SignalingError) -> web.Response:
    """A typed error as an HTTP response (``{"code", "message"}`` with the error's status)."""
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return web.json_response(
        {"code": exc.code, "message": exc.message}, status=exc.http_status, headers=headers
    )


@web.middleware
async def errors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turns signaling errors raised by handlers into typed JSON responses."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except SignalingError as exc:
        return problem(exc)


class SignalingRoutes:
    """The signaling HTTP surface, bound to one node's service."""

    def __init__(
        self,
        codec: Codec,
        origins: frozenset[str],
        *,
        guest_rate: float = 1.0,
        guest_burst: float = 20.0,
        join_rate: float = 1.0,
        join_burst: float = 20.0,
    ) -> None:
        self._service: SignalingService | None = None
        self.codec = codec
        self.origins = origins
        # One bucket per client address, so one client cannot use up guest joins for everyone.
        self._guest_buckets = KeyedBuckets(guest_rate, guest_burst)
        # One bucket per person (token subject): a few tabs and reconnects pass, a flood does not.
        self.joins = KeyedBuckets(join_rate, join_burst)

    def bind(self, service: SignalingService) -> None:
        """Attaches the node's service once the app has started it."""
        self._service = service

    @property
    def service(self) -> SignalingService:
        """The node's service (routes are registered before the app starts it)."""
        if self._service is None:
            raise SignalingError("the node is starting")
        return self._service

    def add_to(self, app: web.Application) -> None:
        """Registers the routes."""
        app.router.add_get("/ws", self.ws)
        app.router.add_get("/api/v1/event", self.event)
        app.router.add_get("/api/v1/sessions/{session}", self.session)
        app.router.add_post("/api/v1/sessions/{session}/state", self.set_state)
        app.router.add_post("/api/v1/sessions/{session}/guest", self.guest)
        app.router.add_post("/api/v1/join", self.join)

    async def ws(self, request: web.Request) -> web.StreamResponse:
        """The client connection (see docs/asyncapi.yaml)."""
        return await websocket(request, self.service, self.codec, self.origins, self.joins)

    async def event(self, request: web.Request) -> web.Response:
        """The event and its sessions with their current states."""
        programme = self.service.programme
        states = await self.service.store.lifecycles([s.id for s in programme.sessions])
        event = programme.event
        return web.json_response(
            {
                "id": event.id,
                "title": event.title,
                "timezone": event.timezone,
                "venue": event.venue,
                "languages": list(event.languages),
                "sessions": [
                    {**session_view(s), **lifecycle_view(states[s.id])} for s in programme.sessions
                ],
            }
        )

    async def session(self, request: web.Request) -> web.Response:
        """One session, its state and its presence figures."""
        session = self.service.session(request.match_info["session"])
        lifecycle = await self.service.store.lifecycle(session.id)
        counts = await self.service.counts(session.id)
        return web.json_response(
            {
                **session_view(session),
                **lifecycle_view(lifecycle),
                "presence": presence_view(counts),
            }
        )

    async def set_state(self, request: web.Request) -> web.Response:
        """An operator sets a session's lifecycle state: ``{"state": "live"}``."""
        identity = self._bearer(request)
        session_id = request.match_info["session"]
        self.service.session(session_id)
        if identity.role is not Role.OPERATOR:
            raise Forbidden("only operators change a session's state")
        identity.check_session(session_id)
        body = await _json_body(request)
        state = body.get("state")
        if set(body) != {"state"} or state not in State.__members__.values():
            raise _bad_request('body must be {"state": one of ' + ", ".join(State) + "}")
        transition = await self.service.set_state(session_id, State(str(state)))
        return web.json_response(
            {"state": transition.state.value, "previous": transition.previous.value}
        )

    async def guest(self, request: web.Request) -> web.Response:
        """Issues a participant token for a session that allows guests: ``{"name": "…"}``."""
        session = self.service.session(request.match_info["session"])
        if not session.guest_access:
            raise GuestAccessClosed("this session does not allow guests")
        wait = self._guest_buckets.take(request.remote or "", self.service.clock())
        if wait:
            raise RateLimited("too many guest joins, try again shortly", retry_after=wait)
        body = await _json_body(request)
        name = body.get("name")
        if set(body) - {"name", "mode"} or not isinstance(name, str):
            raise _bad_request('body must be {"name": "…"} (and optionally "mode")')
        name = guest_name(name)
        mode = body.get("mode", "remote")
        if mode not in ("venue", "remote"):
            raise _bad_request("mode must be venue or remote")
        identity = Identity(
            sub="guest-" + secrets.token_hex(8),
            name=name,
            role=Role.PARTICIPANT,
            sessions=(session.id,),
            mode=mode,
        )
        now = int(self.service.clock())
        token = mint(self.service.token_keys, identity, now=now, ttl=GUEST_TTL)
        return web.json_response(
            {"token": token, "session": session.id, "expires": now + GUEST_TTL}
        )

    async def join(self, request: web.Request) -> web.Response:
        """Exchanges a join code (from a link's fragment) for a fresh token: ``{"code": "…"}``."""
        body = await _json_body(request)
        code = body.get("code")
        if set(body) != {"code"} or not isinstance(code, str) or not JOIN_CODE.fullmatch(code):
            raise _bad_request('body must be {"code": "…"}, 16–64 base64url characters')
        key = join_code_key(self.service.store.prefix, code)
        stored = await self.service.store.guard("join_code", self.service.store.client.get(key))
        if stored is None:
            raise AuthError("unknown or expired join code")
        claims = json.loads(stored)
        identity = Identity(
            sub=claims["sub"],
            name=claims["name"],
            role=Role(claims["role"]),
            sessions=tuple(claims["sessions"]),
            mode=claims["mode"],
            group=claims.get("group", ""),
            country=claims.get("country", ""),
            lang=claims.get("lang", ""),
        )
        now = int(self.service.clock())
        ttl = int(claims.get("ttl", GUEST_TTL))
        token = mint(self.service.token_keys, identity, now=now, ttl=ttl)
        return web.json_response(
            {"token": token, "sessions": list(identity.sessions), "role": identity.role.value}
        )

    def _bearer(self, request: web.Request) -> Identity:
        return bearer_identity(request, self.service)


def bearer_identity(request: web.Request, service: SignalingService) -> Identity:
    """The identity of the request's ``Authorization: Bearer`` token.

    Raises:
        AuthError: no bearer token, or one that does not verify.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("an Authorization: Bearer token is required")
    return verify(service.token_keys, token.strip(), now=int(service.clock()))


async def create_join_code(
    service: SignalingService, identity: Identity, *, ttl: int, code_ttl: int
) -> str:
    """Stores a join code for ``identity`` (the token it yields lives ``ttl`` s; the code ``code_ttl``)."""
    return await store_join_code(service.store, identity, ttl=ttl, code_ttl=code_ttl)


async def store_join_code(
    store: SessionStore, identity: Identity, *, ttl: int, code_ttl: int
) -> str:
    """``create_join_code`` on a bare store (the CLI, with no node running)."""
    code = secrets.token_urlsafe(24)
    claims = {
        "sub": identity.sub,
        "name": identity.name,
        "role": identity.role.value,
        "sessions": list(identity.sessions),
        "mode": identity.mode,
        "group": identity.group,
        "country": identity.country,
        "lang": identity.lang,
        "ttl": ttl,
    }
    key = join_code_key(store.prefix, code)
    await store.guard("join_code", store.client.set(key, json.dumps(claims), ex=code_ttl))
    return code


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _bad_request("the body is too large")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise _bad_request("the body is too large")
    try:
        # msgspec, like the socket's decoder: it refuses what json.loads lets through (NaN, half
        # a UTF-16 pair that no store key or log line can hold) and nesting deeper than it reads.
        body = msgspec.json.decode(raw)
    except (ValueError, RecursionError):
        raise _bad_request("the body must be JSON") from None
    if not isinstance(body, dict):
        raise _bad_request("the body must be a JSON object")
    return body


# What create_join_code makes (secrets.token_urlsafe): anything else is refused before the store.
JOIN_CODE = re.compile(r"[A-Za-z0-9_-]{16,64}")
ZWNJ = "\u200c"  # the zero-width non-joiner: Persian words need it (moderation.text keeps it too)


def guest_name(raw: str) -> str:
    """A guest's name as others will see it: NFC, trimmed, inner whitespace folded to one space.

    Raises:
        InvalidMessage: not 1–60 characters; a control, bidi-override, zero-width (but ZWNJ),
            private-use or unassigned character; nothing visible; a flood of combining marks.
    """
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    visible = name.replace(ZWNJ, "")
    if not 1 <= len(name) <= 60 or not visible.strip() or not visible.isprintable():
        raise _bad_request("name must be 1–60 printable characters")
    if _combining_flood(name):
        raise _bad_request("name must not stack more than 4 combining marks")
    return name


def _combining_flood(text: str, limit: int = 4) -> bool:
    """True when more than ``limit`` combining marks follow each other (a "Zalgo" name that
    spills over the lines around it); the limit is the question text's (moderation.text)."""
    run = 0
    for ch in text:
        run = run + 1 if unicodedata.combining(ch) else 0
        if run > limit:
            return True
    return False


def _bad_request(message: str) -> SignalingError:
    return InvalidMessage(message)
