"""HTTP routes of the participation report: one session's, and the event's (operators only).

``GET /api/v1/sessions/{session}/report`` and ``GET /api/v1/report`` take ``format`` (``json``,
``csv`` or ``html``; JSON when omitted) and ``download`` (``1``: sent as an attachment with a file
name). The HTML page is sent with its own Content-Security-Policy (``render.REPORT_CSP``).
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from aiohttp import web

from reporting import render
from reporting.dashboard import query, wrap
from reporting.report_store import ReportStore
from signaling.errors import Forbidden, SessionForbidden, SignalingError
from signaling.identity import ALL_SESSIONS, Identity, Role
from signaling.routes import bearer_identity
from signaling.service import SignalingService

UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def _any(value: str) -> bool:
    # Any format passes the query check; one podium does not write is ``unknown_format`` (400).
    return True


def _flag(value: str) -> bool:
    return value in ("0", "1")


def respond(text: str, fmt: str, name: str, *, download: bool) -> web.Response:
    """A rendered report as a response: its media type, the HTML's policy, an attachment name."""
    headers = {"Cache-Control": "no-store"}
    if fmt == "html":
        headers["Content-Security-Policy"] = render.REPORT_CSP
    if download:
        filename = UNSAFE_NAME.sub("_", name) + "." + fmt
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return web.Response(
        text=text, content_type=render.check_format(fmt), charset="utf-8", headers=headers
    )


class ReportRoutes:
    """The report routes, bound to one node's signaling service once the app has started."""

    def __init__(self) -> None:
        self._service: SignalingService | None = None

    def bind(self, service: SignalingService) -> None:
        """Attaches the node's service (its store, programme and clock)."""
        self._service = service

    @property
    def service(self) -> SignalingService:
        """The node's service (routes are registered before the app starts it)."""
        if self._service is None:
            raise SignalingError("the node is starting")
        return self._service

    def add_to(self, app: web.Application) -> None:
        """Registers the routes."""
        app.router.add_get("/api/v1/sessions/{session}/report", wrap(self.session))
        app.router.add_get("/api/v1/report", wrap(self.event))

    def _options(self, request: web.Request) -> tuple[str, bool]:
        values = query(request, {"format": _any, "download": _flag})
        fmt = values.get("format", "json")
        render.check_format(fmt)
        return fmt, values.get("download") == "1"

    def _operator(self, identity: Identity) -> None:
        if identity.role is not Role.OPERATOR:
            raise Forbidden("only operators read the participation reports")

    async def session(self, request: web.Request) -> web.Response:
        """One session's participation report (operators whose token grants the session)."""
        service = self.service
        identity = bearer_identity(request, service)
        session = service.session(request.match_info["session"])
        self._operator(identity)
        identity.check_session(session.id)
        fmt, download = self._options(request)
        now = service.clock()
        report = await ReportStore(service.store).session_report(session, now=now)
        event = service.programme.event
        text = render.session_text(
            report,
            fmt,
            event_id=event.id,
            event_title=event.title,
            now_ms=int(now * 1000),
            zone=ZoneInfo(event.timezone),
        )
        return respond(text, fmt, f"report-{session.id}", download=download)

    async def event(self, request: web.Request) -> web.Response:
        """The event's participation report (operators whose token grants every session)."""
        service = self.service
        identity = bearer_identity(request, service)
        self._operator(identity)
        if ALL_SESSIONS not in identity.sessions:
            raise SessionForbidden("the event's report needs a token for every session ('*')")
        fmt, download = self._options(request)
        programme = service.programme
        report = await ReportStore(service.store).event_report(programme, now=service.clock())
        text = render.event_text(report, fmt, zone=ZoneInfo(programme.event.timezone))
        return respond(text, fmt, f"report-{programme.event.id}", download=download)
