"""HTTP routes of streaming: WHIP (RFC 9725) and WHEP endpoints and resources, channels, recordings."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from signaling.errors import SignalingError
from signaling.identity import Identity, Role
from signaling.programme import Session
from signaling.routes import bearer_identity
from signaling.service import SignalingService
from streaming.channels import ChannelSpec, check_publisher, external_url, may_manage
from streaming.errors import (
    ChannelElsewhere,
    ChannelForbidden,
    InvalidBody,
    MalformedSdp,
    MethodNotAllowed,
    NotAcceptable,
    PreconditionRequired,
    StreamingError,
    UnknownRecording,
    UnsupportedMediaType,
)
from streaming.sdp import MAX_SDP_BYTES
from streaming.service import StreamingService

SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"
RESOURCE_METHODS = "PATCH, DELETE"
RECORDING = re.compile(r"(floor|[a-z]{2,3})-\d{8}T\d{6}Z-[\w-]{1,16}\.(mkv|ogg)")
MEDIA_TYPES = {"mkv": "video/x-matroska", "ogg": "audio/ogg"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(exc: StreamingError) -> web.Response:
    """A streaming refusal as an HTTP response (``{"code", "message"}`` with the error's status)."""
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = RESOURCE_METHODS
    if isinstance(exc, ChannelElsewhere):
        headers["Location"] = exc.location
    return web.json_response(
        {"code": exc.code, "message": exc.message}, status=exc.http_status, headers=headers
    )


class StreamingRoutes:
    """The streaming HTTP surface, bound to one node's services."""

    def __init__(self) -> None:
        self._service: StreamingService | None = None
        self._signaling: SignalingService | None = None

    def bind(self, service: StreamingService, signaling: SignalingService) -> None:
        """Attaches the node's services once the app has started them."""
        self._service, self._signaling = service, signaling

    @property
    def service(self) -> StreamingService:
        """The node's streaming service."""
        if self._service is None:
            raise SignalingError("the node is starting")
        return self._service

    @property
    def signaling(self) -> SignalingService:
        """The node's signaling service (tokens, the programme)."""
        if self._signaling is None:
            raise SignalingError("the node is starting")
        return self._signaling

    def add_to(self, app: web.Application) -> None:
        """Registers the routes."""
        for prefix, publish in (("whip", True), ("whep", False)):
            endpoint = f"/{prefix}/{{session}}/{{channel}}"
            resource = endpoint + "/{resource}"
            app.router.add_post(endpoint, self._wrap(self._offer(publish)))
            app.router.add_patch(resource, self._wrap(self._patch(publish)))
            app.router.add_delete(resource, self._wrap(self._delete(publish)))
            # RFC 9725 reserves the other methods on a resource URL: 405 with Allow.
            app.router.add_get(resource, self._wrap(self._not_allowed))
            app.router.add_post(resource, self._wrap(self._not_allowed))
            app.router.add_put(resource, self._wrap(self._not_allowed))
        app.router.add_get("/api/v1/sessions/{session}/channels", self._wrap(self.channels))
        app.router.add_get("/api/v1/streams", self._wrap(self.streams))
        app.router.add_put(
            "/api/v1/sessions/{session}/channels/{channel}/external", self._wrap(self.external)
        )
        app.router.add_post(
            "/api/v1/sessions/{session}/channels/{channel}/release", self._wrap(self.release)
        )
        app.router.add_get("/api/v1/sessions/{session}/recordings", self._wrap(self.recordings))
        app.router.add_get(
            "/api/v1/sessions/{session}/recordings/{name}", self._wrap(self.recording)
        )

    def _wrap(self, handler: Handler) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except StreamingError as exc:
                self.service.metrics.refused(exc.code)
                return problem(exc)
            except SignalingError as exc:
                if self._service is not None:
                    self.service.metrics.refused(exc.code)
                raise

        handle.__name__ = handler.__name__
        return handle

    # ---- shared checks -------------------------------------------------------------------------------

    def _caller(self, request: web.Request) -> tuple[Identity, Session]:
        identity = bearer_identity(request, self.signaling)
        session = self.signaling.session(request.match_info["session"])
        return identity, session

    def _channel(self, request: web.Request) -> tuple[Identity, Session, ChannelSpec]:
        identity, session = self._caller(request)
        spec = self.service.spec(session, request.match_info["channel"])
        identity.check_session(session.id)
        return identity, session, spec

    # ---- WHIP and WHEP -------------------------------------------------------------------------------

    def _offer(self, publish: bool) -> Handler:
        async def offer(request: web.Request) -> web.StreamResponse:
            """POST an SDP offer: 201 with the answer, Location, ETag and ICE servers as Link."""
            identity, session, spec = self._channel(request)
            takeover = request.query.get("takeover", "") in ("1", "true")
            if publish:
                check_publisher(identity, spec, takeover=takeover)
            self.service.admit(identity)
            _content_type(request, SDP)
            _accepts(request, SDP)
            body = await _body(request)
            if publish:
                peer, answer = await self.service.publish(
                    session, spec, identity, body, takeover=takeover, origin=_own_address(request)
                )
            else:
                peer, answer = await self.service.listen(session, spec, identity, body)
            prefix = "whip" if publish else "whep"
            response = web.Response(status=201, body=answer.encode(), content_type=SDP)
            response.headers["Location"] = f"/{prefix}/{session.id}/{spec.id}/{peer.id}"
            response.headers["ETag"] = peer.etag
            response.headers["Accept-Patch"] = SDPFRAG
            for server in self.service.ice_servers(identity):
                if not publish and server.get("username"):
                    continue  # TURN credentials go to publishers, not to every listener
                for link in ice_links(server):
                    response.headers.add("Link", link)
            return response

        offer.__name__ = "whip_offer" if publish else "whep_offer"
        return offer

    def _patch(self, publish: bool) -> Handler:
        async def patch(request: web.Request) -> web.StreamResponse:
            """PATCH trickled candidates (If-Match: the ETag); 204, or 422 for an ICE restart."""
            identity, session, spec = self._channel(request)
            peer = self.service.resource(
                request.match_info["resource"], publish=publish, session=session.id, channel=spec.id
            )
            _content_type(request, SDPFRAG)
            if_match = request.headers.get("If-Match")
            if not if_match:
                raise PreconditionRequired("a PATCH must carry If-Match with the session's ETag")
            body = await _body(request)
            await self.service.trickle(peer, identity, if_match, body)
            return web.Response(status=204)

        patch.__name__ = "whip_patch" if publish else "whep_patch"
        return patch

    def _delete(self, publish: bool) -> Handler:
        async def delete(request: web.Request) -> web.StreamResponse:
            """DELETE ends the session (a publisher's ends the channel's live period)."""
            identity, session, spec = self._channel(request)
            peer = self.service.resource(
                request.match_info["resource"], publish=publish, session=session.id, channel=spec.id
            )
            if publish:
                await self.service.unpublish(peer, identity)
            else:
                await self.service.unlisten(peer, identity)
            return web.Response(status=200)

        delete.__name__ = "whip_delete" if publish else "whep_delete"
        return delete

    async def _not_allowed(self, request: web.Request) -> web.StreamResponse:
        raise MethodNotAllowed("a WHIP/WHEP resource takes PATCH and DELETE only")

    # ---- channels and recordings ---------------------------------------------------------------------

    async def channels(self, request: web.Request) -> web.StreamResponse:
        """A session's channels: state, external URL, WHEP path; staff also see health and load."""
        identity, session = self._caller(request)
        identity.check_session(session.id)
        views = await self.service.views(session, staff=identity.is_staff)
        return web.json_response({"session": session.id, "channels": views})

    async def streams(self, request: web.Request) -> web.StreamResponse:
        """Operators: every channel of every session they may see, with health (the overview)."""
        identity = bearer_identity(request, self.signaling)
        if identity.role is not Role.OPERATOR:
            raise ChannelForbidden("only operators see every session's streams")
        sessions = [s for s in self.signaling.programme.sessions if identity.may_join(s.id)]
        return web.json_response({"sessions": await self.service.all_views(sessions)})

    async def external(self, request: web.Request) -> web.StreamResponse:
        """An operator or production registers a channel's external playback URL (or clears it)."""
        identity, session, spec = self._channel(request)
        if not may_manage(identity):
            raise ChannelForbidden("only operators and production manage channels")
        url = external_url(await _json(request))
        return web.json_response({"channel": await self.service.set_external(session, spec, url)})

    async def release(self, request: web.Request) -> web.StreamResponse:
        """An operator forces a takeover: the channel's publisher is let go, on whichever node."""
        identity, session, spec = self._channel(request)
        if identity.role is not Role.OPERATOR:
            raise ChannelForbidden("only operators release a channel")
        view, released = await self.service.release(session, spec)
        return web.json_response({"channel": view, "released": released})

    async def recordings(self, request: web.Request) -> web.StreamResponse:
        """An operator lists a session's recordings."""
        self._operator(request)
        session = request.match_info["session"]
        folder = self.service.recordings_dir / session
        active = {
            live.recording.path.name
            for live in self.service.channels.values()
            if live.recording is not None and live.session == session
        }
        files = sorted(folder.glob("*.*")) if folder.is_dir() else []
        listing = [
            {
                "name": path.name,
                "channel": path.name.split("-", 1)[0],
                "bytes": path.stat().st_size,
                "recording": path.name in active,
                "url": f"/api/v1/sessions/{session}/recordings/{path.name}",
            }
            for path in files
            if RECORDING.fullmatch(path.name)
        ]
        return web.json_response({"session": session, "recordings": listing})

    async def recording(self, request: web.Request) -> web.StreamResponse:
        """An operator downloads one recording."""
        self._operator(request)
        name = request.match_info["name"]
        path = self.service.recordings_dir / request.match_info["session"] / name
        if not RECORDING.fullmatch(name) or not path.is_file():
            raise UnknownRecording(f"no recording {name!r} for this session")
        return web.FileResponse(
            path,
            headers={
                "Content-Type": MEDIA_TYPES[name.rsplit(".", 1)[1]],
                "Content-Disposition": f'attachment; filename="{name}"',
            },
        )

    def _operator(self, request: web.Request) -> None:
        identity, session = self._caller(request)
        identity.check_session(session.id)
        if identity.role is not Role.OPERATOR:
            raise ChannelForbidden("only operators see recordings")


def ice_links(server: dict[str, Any]) -> list[str]:
    """The ``Link`` header values (RFC 9725 §4.6) of one ICE server entry."""
    urls = server.get("urls", [])
    links = []
    for url in [urls] if isinstance(urls, str) else urls:
        link = f'<{url}>; rel="ice-server"'
        if server.get("username"):
            link += f'; username="{server["username"]}"; credential="{server["credential"]}"'
            link += '; credential-type="password"'
        links.append(link)
    return links


def _own_address(request: web.Request) -> str:
    """This node's address as the publisher's connection reached it (the socket's, not the Host
    header a client chooses: a 307 must never send listeners where a publisher says)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        return ""
    host, port = sockname[0], sockname[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _content_type(request: web.Request, wanted: str) -> None:
    if request.content_type != wanted:
        raise UnsupportedMediaType(
            f"the body must be {wanted}, not {request.content_type or 'none'}"
        )


def _accepts(request: web.Request, produced: str) -> None:
    accept = request.headers.get("Accept", "")
    if not accept:
        return
    kinds = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    if not kinds & {produced, "application/*", "*/*"}:
        raise NotAcceptable(f"the answer is {produced}, which this request does not accept")


async def _body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
        raise MalformedSdp(f"the body is larger than {MAX_SDP_BYTES} bytes")
    raw = await request.content.read(MAX_SDP_BYTES + 1)
    if len(raw) > MAX_SDP_BYTES:
        raise MalformedSdp(f"the body is larger than {MAX_SDP_BYTES} bytes")
    return raw


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.content.read(4097)
    try:
        # msgspec refuses NaN, half a UTF-16 pair and deep nesting; json.loads would not (or crash).
        body = msgspec.json.decode(raw)
    except (ValueError, RecursionError):
        raise InvalidBody("the body must be JSON") from None
    if len(raw) > 4096 or not isinstance(body, dict):
        raise InvalidBody("the body must be a small JSON object")
    return body
