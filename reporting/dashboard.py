"""HTTP routes of the operator dashboard: the overview of the day's sessions and a session's series."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from reporting.errors import InvalidQuery, ReportingError
from reporting.overview import OverviewReader, day_of, sessions_of_day
from reporting.series import SeriesStore
from signaling.errors import Forbidden, SignalingError
from signaling.identity import Identity, Role
from signaling.routes import bearer_identity
from signaling.service import SignalingService

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_MS_DIGITS = 15


def problem(exc: ReportingError) -> web.Response:
    """A reporting refusal as an HTTP response (``{"code", "message"}`` with the error's status)."""
    return web.json_response({"code": exc.code, "message": exc.message}, status=exc.http_status)


def wrap(handler: Handler) -> Handler:
    """Turns reporting refusals into typed responses (signaling's go through its middleware)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ReportingError as exc:
            return problem(exc)

    handle.__name__ = handler.__name__
    return handle


def query(request: web.Request, allowed: dict[str, Callable[[str], bool]]) -> dict[str, str]:
    """The request's query parameters, each known and well-formed.

    Raises:
        InvalidQuery: an unknown parameter, a repeated one, or a value its check refuses.
    """
    values: dict[str, str] = {}
    for name, value in request.query.items():
        check = allowed.get(name)
        if check is None:
            raise InvalidQuery(f"unknown query parameter {name!r} (allowed: {', '.join(allowed)})")
        if name in values or not check(value):
            raise InvalidQuery(f"query parameter {name!r} has a value this route does not take")
        values[name] = value
    return values


def _flag(value: str) -> bool:
    return value in ("0", "1")


def _millis(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= MAX_MS_DIGITS


class DashboardRoutes:
    """The overview and series routes, bound to one node's services once the app has started."""

    def __init__(self) -> None:
        self._bound: tuple[SignalingService, OverviewReader, SeriesStore] | None = None

    def bind(self, service: SignalingService, reader: OverviewReader, series: SeriesStore) -> None:
        """Attaches the node's services."""
        self._bound = (service, reader, series)

    @property
    def bound(self) -> tuple[SignalingService, OverviewReader, SeriesStore]:
        """The node's services (routes are registered before the app starts them)."""
        if self._bound is None:
            raise SignalingError("the node is starting")
        return self._bound

    def add_to(self, app: web.Application) -> None:
        """Registers the routes."""
        app.router.add_get("/api/v1/overview", wrap(self.overview))
        app.router.add_get("/api/v1/sessions/{session}/series", wrap(self.series))

    def _operator(self, request: web.Request) -> Identity:
        identity = bearer_identity(request, self.bound[0])
        if identity.role is not Role.OPERATOR:
            raise Forbidden("only operators see the dashboard")
        return identity

    async def overview(self, request: web.Request) -> web.Response:
        """Every session of the day (``?all=1``: of the event) with its live figures (operators)."""
        service, reader, series = self.bound
        identity = self._operator(request)
        every_day = query(request, {"all": _flag}).get("all") == "1"
        now = service.now()
        programme = service.programme
        sessions = [
            s
            for s in sessions_of_day(programme, now, every_day=every_day)
            if identity.may_join(s.id)
        ]
        rows = await reader.read(sessions, int(service.clock() * 1000))
        body: dict[str, Any] = {
            "event": {
                "id": programme.event.id,
                "title": programme.event.title,
                "timezone": programme.event.timezone,
            },
            "day": day_of(now, programme.event.timezone).isoformat(),
            "all": every_day,
            "now": int(service.clock() * 1000),
            "period": series.period_ms / 1000,
            "sessions": rows,
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def series(self, request: web.Request) -> web.Response:
        """A session's online samples (``?since=<ms>``: only later ones), oldest first (operators)."""
        service, _, series = self.bound
        identity = bearer_identity(request, service)
        session = service.session(request.match_info["session"])
        if identity.role is not Role.OPERATOR:
            raise Forbidden("only operators see the dashboard")
        identity.check_session(session.id)
        since = int(query(request, {"since": _millis}).get("since", "0"))
        samples = await series.read(session.id, since)
        return web.json_response(
            {
                "session": session.id,
                "period": series.period_ms / 1000,
                "samples": [s.view() for s in samples],
            },
            headers={"Cache-Control": "no-store"},
        )
