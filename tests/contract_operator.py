"""Real exchanges with the operator dashboard's routes, one per documented response (used by the
HTTP contract)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import ClientResponse

from signaling.identity import Role
from tests.conftest import operator_headers, token
from tests.contract_helpers import Ctx
from tests.contract_streaming import _live_fr

Send = Callable[[Ctx], Awaitable[ClientResponse]]
OPERATOR_EXCHANGES: dict[str, tuple[str, str, int, Send]] = {}

OVERVIEW = "/api/v1/overview"
SERIES = "/api/v1/sessions/{session}/series"
RELEASE = "/api/v1/sessions/{session}/channels/{channel}/release"


def exchange(method: str, route: str, status: int) -> Callable[[Send], Send]:
    """Registers a real request whose response must match the documented ``status`` response."""

    def register(send: Send) -> Send:
        OPERATOR_EXCHANGES[send.__name__] = (method, route, status, send)
        return send

    return register


def _as(role: Role, sessions: tuple[str, ...] = ("*",)) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(role, sessions)}


@exchange("GET", "/operator", 200)
async def the_operator_dashboard_is_served(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/operator")


@exchange("GET", OVERVIEW, 200)
async def an_operator_reads_the_overview_of_every_day(ctx: Ctx) -> ClientResponse:
    return await ctx.get(OVERVIEW + "?all=1", operator_headers())


@exchange("GET", OVERVIEW, 400)
async def an_overview_with_an_all_that_is_not_0_or_1_is_refused(ctx: Ctx) -> ClientResponse:
    return await ctx.get(OVERVIEW + "?all=yes", operator_headers())


@exchange("GET", OVERVIEW, 401)
async def an_overview_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.get(OVERVIEW)


@exchange("GET", OVERVIEW, 403)
async def a_moderator_may_not_read_the_overview(ctx: Ctx) -> ClientResponse:
    return await ctx.get(OVERVIEW, _as(Role.MODERATOR))


@exchange("GET", SERIES, 200)
async def an_operator_reads_a_session_s_series(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/series?since=0", operator_headers())


@exchange("GET", SERIES, 400)
async def a_series_since_a_negative_time_is_refused(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/series?since=-1", operator_headers())


@exchange("GET", SERIES, 401)
async def a_series_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/series")


@exchange("GET", SERIES, 403)
async def an_operator_of_another_session_may_not_read_its_series(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/series", _as(Role.OPERATOR, ("open-forum",)))


@exchange("GET", SERIES, 404)
async def the_series_of_an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/atlantis/series", operator_headers())


async def _release(ctx: Ctx, path: str, headers: dict[str, str] | None) -> ClientResponse:
    return await ctx.http.post(ctx.node.make_url(path), headers=headers)


@exchange("POST", RELEASE, 200)
async def an_operator_releases_a_live_channel(ctx: Ctx) -> ClientResponse:
    publisher = await _live_fr(ctx)
    try:
        response = await _release(
            ctx, "/api/v1/sessions/plenary/channels/fr/release", operator_headers()
        )
        await response.read()
        return response
    finally:
        await publisher.close()


@exchange("POST", RELEASE, 401)
async def a_release_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await _release(ctx, "/api/v1/sessions/plenary/channels/fr/release", None)


@exchange("POST", RELEASE, 403)
async def production_may_not_release_a_channel(ctx: Ctx) -> ClientResponse:
    headers = _as(Role.PRODUCTION, ("plenary",))
    return await _release(ctx, "/api/v1/sessions/plenary/channels/floor/release", headers)


@exchange("POST", RELEASE, 404)
async def releasing_a_channel_the_session_does_not_have_is_not_found(
    ctx: Ctx,
) -> ClientResponse:
    return await _release(ctx, "/api/v1/sessions/plenary/channels/de/release", operator_headers())
