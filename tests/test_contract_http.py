"""docs/openapi.yaml against the app's router and real HTTP responses."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import pytest
from aiohttp import ClientResponse, ClientSession, web
from aiohttp.test_utils import TestServer
from openapi_spec_validator import validate as validate_openapi

from config.app import create_app
from config.appkeys import SIGNALING
from config.settings import Settings
from moderation.questions import QState, Question
from moderation.routes import AUDIT_COLUMNS, QUESTION_COLUMNS
from signaling.identity import Identity, Role, TokenKeys
from signaling.programme import Programme
from signaling.routes import create_join_code
from tests.conftest import (
    ORIGIN,
    ClientFactory,
    NodeFactory,
    app_of,
    operator_headers,
    token,
)
from tests.contract_helpers import (
    HTTP_METHODS,
    Ctx,
    asyncapi,
    escape,
    http_failures,
    openapi,
)
from tests.contract_operator import OPERATOR_EXCHANGES
from tests.contract_streaming import STREAMING_EXCHANGES

METRICS_TOKEN: Final = "metrics-token-for-the-contract-tests"


# ---- (a) the OpenAPI document and the router -----------------------------------------------------


def test_openapi_document_is_valid_openapi_3_1() -> None:
    assert openapi().doc["openapi"] == "3.1.0"
    validate_openapi(openapi().doc)


def test_openapi_documents_every_route_of_the_app_and_nothing_else(
    settings: Settings, programme: Programme
) -> None:
    app = create_app(settings, programme=programme)
    registered: set[tuple[str, str]] = set()
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource) or route.resource is None:
            continue
        registered.add((route.method.lower(), route.resource.canonical))
    heads = {path for method, path in registered if method == "head"}
    assert heads == {path for method, path in registered if method == "get"}
    # add_get registers a HEAD beside every GET; the document says so instead of listing them.
    registered -= {("head", path) for path in heads}
    documented = {
        (method, path)
        for path, item in openapi().doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert registered == documented


def test_both_documents_describe_the_shared_objects_identically() -> None:
    ours, theirs = asyncapi().doc["components"]["schemas"], openapi().doc["components"]["schemas"]
    for name in ("SessionName", "StateName", "Role", "Mode", "Count", "RoleCounts"):
        assert ours[name] == theirs[name], name
    for name in ("PresenceCounts", "QnaSettings", "FloorSettings"):
        assert ours[name] == theirs[name], name
    for name in ("QuestionId", "QuestionState", "Language", "Timestamp", "Labels"):
        assert ours[name] == theirs[name], name
    for name in ("PublicQuestion", "AuthorQuestion", "StaffQuestion", "QuestionView"):
        assert ours[name] == theirs[name], name
    view, fields = ours["SessionView"], theirs["SessionFields"]
    assert (view["properties"], view["required"]) == (fields["properties"], fields["required"])


def _bare(schema: Any) -> Any:
    """A schema without its descriptions."""
    if isinstance(schema, dict):
        return {k: _bare(v) for k, v in schema.items() if k != "description"}
    return [_bare(v) for v in schema] if isinstance(schema, list) else schema


def test_an_exported_question_is_the_staff_view_with_decided_and_voters() -> None:
    question = Question("q00001", "Why?", "en", "amina", "Amina", "", False, QState.PENDING, 1.0)
    staff = asyncapi().doc["components"]["schemas"]["StaffQuestion"]
    exported = openapi().doc["components"]["schemas"]["ExportedQuestion"]
    assert set(exported["properties"]) == set(exported["required"])
    assert set(exported["properties"]) == set(question.staff_view()) | {"decided", "voters"}
    assert {k: _bare(v) for k, v in exported["properties"].items() if k in staff["properties"]} == (
        _bare(staff["properties"])
    )


def test_the_csv_export_documents_the_columns_the_code_writes() -> None:
    csv = openapi().at(f"#/paths/{escape(EXPORT)}/get/responses/200/content/text~1csv/schema")
    header = "|".join(",".join(columns) for columns in (QUESTION_COLUMNS, AUDIT_COLUMNS))
    assert csv["pattern"] == f"^({header})\\r\\n"


# ---- (b) real HTTP responses ---------------------------------------------------------------------


Send = Callable[[Ctx], Awaitable[ClientResponse]]
EXCHANGES: dict[str, tuple[str, str, int, Send]] = {}


def exchange(method: str, route: str, status: int) -> Callable[[Send], Send]:
    """Registers a real request whose response must match the documented ``status`` response."""

    def register(send: Send) -> Send:
        EXCHANGES[send.__name__] = (method, route, status, send)
        return send

    return register


def _bearer(tok: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + tok}


def _upgrade() -> dict[str, str]:
    key = base64.b64encode(os.urandom(16)).decode()
    return {
        "Origin": ORIGIN,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }


@exchange("GET", "/healthz", 200)
async def a_live_node_says_ok(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/healthz")


@exchange("GET", "/readyz", 200)
async def a_node_whose_store_answers_is_ready(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/readyz")


@exchange("GET", "/readyz", 503)
async def a_draining_node_is_not_ready(ctx: Ctx) -> ClientResponse:
    ctx.draining()
    return await ctx.get("/readyz")


@exchange("GET", "/readyz", 503)
async def a_node_without_its_store_is_not_ready(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get("/readyz")


@exchange("GET", "/metrics", 200)
async def metrics_are_served_to_loopback(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/metrics")


@exchange("GET", "/metrics", 200)
async def metrics_are_served_to_the_metrics_token_from_any_network(ctx: Ctx) -> ClientResponse:
    await ctx.own_node(metrics_allow=(), metrics_token=METRICS_TOKEN)
    return await ctx.get("/metrics", _bearer(METRICS_TOKEN))


@exchange("GET", "/metrics", 403)
async def metrics_are_refused_outside_the_allowed_networks(ctx: Ctx) -> ClientResponse:
    await ctx.own_node(metrics_allow=(), metrics_token=METRICS_TOKEN)
    return await ctx.get("/metrics", _bearer("not-the-metrics-token"))


@exchange("GET", "/api/v1/event", 200)
async def the_event_lists_its_sessions_with_their_states(ctx: Ctx) -> ClientResponse:
    await ctx.live()
    return await ctx.get("/api/v1/event")


@exchange("GET", "/api/v1/event", 503)
async def the_event_is_unavailable_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get("/api/v1/event")


@exchange("GET", "/api/v1/sessions/{session}", 200)
async def a_session_shows_its_state_and_who_is_online(ctx: Ctx) -> ClientResponse:
    await ctx.connect(ctx.node, token(mode="venue"))
    await ctx.connect(ctx.node, token(Role.MODERATOR))
    return await ctx.get("/api/v1/sessions/plenary")


@exchange("GET", "/api/v1/sessions/{session}", 404)
async def an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/nowhere")


@exchange("GET", "/api/v1/sessions/{session}", 503)
async def a_session_is_unavailable_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get("/api/v1/sessions/plenary")


STATE = "/api/v1/sessions/{session}/state"


@exchange("POST", STATE, 200)
async def an_operator_pauses_a_live_session(ctx: Ctx) -> ClientResponse:
    await ctx.live()
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, operator_headers())


@exchange("POST", STATE, 401)
async def a_state_change_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"})


@exchange("POST", STATE, 401)
async def a_state_change_with_a_forged_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    forged = token(Role.OPERATOR, ("*",), keys=TokenKeys("x" * 40))
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, _bearer(forged))


@exchange("POST", STATE, 401)
async def a_state_change_with_an_expired_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    expired = token(Role.OPERATOR, ("*",), now=int(time.time()) - 7200, ttl=3600)
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, _bearer(expired))


@exchange("POST", STATE, 403)
async def a_participant_may_not_change_the_state(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, _bearer(token()))


@exchange("POST", STATE, 403)
async def an_operator_of_other_sessions_may_not_change_this_one(ctx: Ctx) -> ClientResponse:
    other = token(Role.OPERATOR, ("workshop",))
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, _bearer(other))


@exchange("POST", STATE, 404)
async def the_state_of_an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/nowhere/state", {"state": "open"}, operator_headers())


@exchange("POST", STATE, 400)
async def a_state_that_does_not_exist_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "paused"}, operator_headers())


@exchange("POST", STATE, 400)
async def a_state_body_with_extra_fields_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    body = {"state": "open", "reason": "lunch"}
    return await ctx.post("/api/v1/sessions/plenary/state", body, operator_headers())


@exchange("POST", STATE, 400)
async def a_state_body_that_is_not_json_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/plenary/state", b"state=open", operator_headers())


@exchange("POST", STATE, 409)
async def a_backward_move_the_lifecycle_forbids_is_a_conflict(ctx: Ctx) -> ClientResponse:
    await ctx.live()
    body = {"state": "scheduled"}
    return await ctx.post("/api/v1/sessions/plenary/state", body, operator_headers())


@exchange("POST", STATE, 503)
async def a_state_change_is_refused_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, operator_headers())


GUEST = "/api/v1/sessions/{session}/guest"


@exchange("POST", GUEST, 200)
async def a_guest_gets_a_participant_token(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/open-forum/guest", {"name": "  Amina   Diallo "})


@exchange("POST", GUEST, 200)
async def a_guest_in_the_room_gets_a_venue_token(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/open-forum/guest", {"name": "Li Wei", "mode": "venue"})


@exchange("POST", GUEST, 400)
async def a_guest_without_a_name_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/open-forum/guest", {"name": " "})


@exchange("POST", GUEST, 400)
async def a_guest_in_an_unknown_mode_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/open-forum/guest", {"name": "Li", "mode": "car"})


@exchange("POST", GUEST, 403)
async def a_session_without_guest_access_refuses_guests(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/plenary/guest", {"name": "Amina"})


@exchange("POST", GUEST, 404)
async def a_guest_of_an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/nowhere/guest", {"name": "Amina"})


@exchange("POST", GUEST, 429)
async def a_burst_of_guests_is_rate_limited(ctx: Ctx) -> ClientResponse:
    for n in range(40):
        response = await ctx.post("/api/v1/sessions/open-forum/guest", {"name": f"Guest {n}"})
        if response.status == 429:
            return response
        assert response.status == 200
        response.release()
    raise AssertionError("40 guest joins in a row were not rate-limited")


@exchange("POST", "/api/v1/join", 200)
async def a_join_code_is_exchanged_for_a_token(ctx: Ctx) -> ClientResponse:
    service = app_of(ctx.node)[SIGNALING]
    speaker = Identity(sub="d-7", name="Delegate", role=Role.SPEAKER, sessions=("plenary",))
    code = await create_join_code(service, speaker, ttl=3600, code_ttl=60)
    return await ctx.post("/api/v1/join", {"code": code})


@exchange("POST", "/api/v1/join", 400)
async def a_join_code_of_the_wrong_shape_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/join", {"code": "short"})


@exchange("POST", "/api/v1/join", 401)
async def an_unknown_join_code_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/join", {"code": "x" * 32})


@exchange("POST", "/api/v1/join", 503)
async def a_join_code_cannot_be_exchanged_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.post("/api/v1/join", {"code": "x" * 32})


QUESTIONS = "/api/v1/sessions/{session}/questions"
EXPORT = QUESTIONS + "/export"


async def _queue(ctx: Ctx) -> dict[str, str]:
    """A plenary queue with a question in every lane and every kind of action in its audit trail."""
    amina = await ctx.connect(ctx.node, token(sub="amina", name="Amina"))
    maria = await ctx.connect(ctx.node, token(Role.MODERATOR, sub="maria", name="Maria"))

    async def ask(text: str, **fields: Any) -> str:
        return str((await amina.request("qa.ask", text=text, **fields))["question"]["id"])

    public = await ask("Comment le fonds sera-t-il gouverné ?", lang="fr", anonymous=True)
    duplicate, pending, refused = [
        await ask(text)
        for text in ("Who governs the fund?", "A youth quota?", "What is for lunch?")
    ]
    for qid in (public, duplicate):
        await maria.request("qa.approve", question=qid)
    await maria.request("qa.vote", question=public)
    await amina.request("qa.vote", question=duplicate)
    await maria.request("qa.pin", question=duplicate)
    await maria.request("qa.merge", source=duplicate, target=public)  # and so off screen
    for kind, fields in (
        ("qa.edit", {"question": public, "text": "Comment le nouveau fonds sera-t-il gouverné ?"}),
        ("qa.label", {"question": public, "labels": ["funding", "governance"]}),
        ("qa.reply", {"question": public, "text": "=Its board publishes the terms in June."}),
        ("qa.move", {"question": pending, "rank": -1.5}),
        ("qa.pin", {"question": public}),
        ("qa.pin", {"question": None}),
        ("qa.lock", {"locked": True}),
        ("qa.lock", {"locked": False}),
        ("qa.reject", {"question": refused, "reason": "Please ask the help desk"}),
        ("qa.archive", {"question": refused}),
        ("qa.answer", {"question": public}),
    ):
        await maria.request(kind, **fields)
    return {"public": public, "duplicate": duplicate, "pending": pending, "refused": refused}


async def _views(response: ClientResponse) -> dict[str, dict[str, Any]]:
    """The questions of a list response, by state."""
    body = await response.json()
    return {q["state"]: q for q in body["questions"]} if response.status == 200 else {}


@exchange("GET", QUESTIONS, 200)
async def a_participant_sees_only_the_public_questions(ctx: Ctx) -> ClientResponse:
    await _queue(ctx)
    response = await ctx.get("/api/v1/sessions/plenary/questions", _bearer(token(sub="li")))
    views = await _views(response)
    assert list(views) == ["answered"]
    assert views["answered"]["author_name"] == ""  # asked anonymously
    return response


@exchange("GET", QUESTIONS, 200)
async def an_asker_sees_their_own_questions_with_the_reasons(ctx: Ctx) -> ClientResponse:
    await _queue(ctx)
    response = await ctx.get("/api/v1/sessions/plenary/questions", _bearer(token(sub="amina")))
    views = await _views(response)
    assert sorted(views) == ["answered", "pending"]
    assert views["answered"]["author_name"] == "Amina"
    return response


@exchange("GET", QUESTIONS, 200)
async def a_moderator_sees_every_question_with_its_author(ctx: Ctx) -> ClientResponse:
    await _queue(ctx)
    moderator = _bearer(token(Role.MODERATOR, sub="kofi"))
    response = await ctx.get("/api/v1/sessions/plenary/questions", moderator)
    assert sorted(await _views(response)) == ["answered", "archived", "pending"]
    return response


@exchange("GET", QUESTIONS, 401)
async def the_questions_without_a_token_are_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/questions")


@exchange("GET", QUESTIONS, 401)
async def the_questions_with_an_expired_token_are_unauthorized(ctx: Ctx) -> ClientResponse:
    expired = token(now=int(time.time()) - 7200, ttl=3600)
    return await ctx.get("/api/v1/sessions/plenary/questions", _bearer(expired))


@exchange("GET", QUESTIONS, 403)
async def the_questions_of_a_session_the_token_does_not_grant_are_forbidden(
    ctx: Ctx,
) -> ClientResponse:
    elsewhere = _bearer(token(sessions=("workshop",)))
    return await ctx.get("/api/v1/sessions/plenary/questions", elsewhere)


@exchange("GET", QUESTIONS, 404)
async def the_questions_of_an_unknown_session_are_not_found(ctx: Ctx) -> ClientResponse:
    everywhere = _bearer(token(sessions=("*",)))
    return await ctx.get("/api/v1/sessions/nowhere/questions", everywhere)


@exchange("GET", QUESTIONS, 503)
async def the_questions_are_unavailable_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get("/api/v1/sessions/plenary/questions", _bearer(token()))


def _export(query: str = "") -> str:
    return "/api/v1/sessions/plenary/questions/export" + query


def _moderator() -> dict[str, str]:
    return _bearer(token(Role.MODERATOR, sub="kofi", name="Kofi"))


@exchange("GET", EXPORT, 200)
async def a_moderator_exports_the_questions_and_the_audit_trail_as_json(
    ctx: Ctx,
) -> ClientResponse:
    asked = await _queue(ctx)
    response = await ctx.get(_export(), _moderator())
    body = await response.json()
    unpinned = [entry["question"] for entry in body["audit"] if entry["action"] == "unpin"]
    assert unpinned == [asked["duplicate"], ""]  # merged off screen, then taken off by hand
    assert [q["voters"] for q in body["questions"] if q["state"] == "answered"] == [
        ["amina", "maria"]
    ]
    actions = {entry["action"] for entry in body["audit"]}
    assert actions == {
        "ask",
        "approve",
        "merge",
        "edit",
        "label",
        "reply",
        "move",
        "pin",
        "unpin",
    } | {"lock", "unlock", "reject", "archive", "answer"}
    return response


@exchange("GET", EXPORT, 200)
async def an_operator_exports_the_questions_as_csv(ctx: Ctx) -> ClientResponse:
    await _queue(ctx)
    response = await ctx.get(_export("?format=csv"), operator_headers())
    assert "'=Its board publishes the terms in June." in await response.text()
    return response


@exchange("GET", EXPORT, 200)
async def a_moderator_exports_the_audit_trail_as_csv(ctx: Ctx) -> ClientResponse:
    await _queue(ctx)
    return await ctx.get(_export("?format=csv&table=audit"), _moderator())


@exchange("GET", EXPORT, 400)
async def an_export_in_an_unknown_format_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.get(_export("?format=xlsx"), _moderator())


@exchange("GET", EXPORT, 400)
async def an_export_of_an_unknown_table_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.get(_export("?format=csv&table=votes"), _moderator())


@exchange("GET", EXPORT, 401)
async def an_export_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.get(_export())


@exchange("GET", EXPORT, 403)
async def a_participant_may_not_export(ctx: Ctx) -> ClientResponse:
    return await ctx.get(_export(), _bearer(token()))


@exchange("GET", EXPORT, 403)
async def a_moderator_of_other_sessions_may_not_export_this_one(ctx: Ctx) -> ClientResponse:
    return await ctx.get(_export(), _bearer(token(Role.MODERATOR, ("workshop",))))


@exchange("GET", EXPORT, 404)
async def the_export_of_an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    everywhere = _bearer(token(Role.OPERATOR, ("*",)))
    return await ctx.get("/api/v1/sessions/nowhere/questions/export", everywhere)


@exchange("GET", EXPORT, 503)
async def an_export_is_unavailable_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get(_export(), _moderator())


REPORT = "/api/v1/sessions/{session}/report"
EVENT_REPORT = "/api/v1/report"


@exchange("GET", REPORT, 200)
async def an_operator_reads_a_session_s_report_as_json(ctx: Ctx) -> ClientResponse:
    await _queue(ctx)
    response = await ctx.get("/api/v1/sessions/plenary/report", operator_headers())
    assert (await response.json())["questions"]["asked"] == 4
    return response


@exchange("GET", REPORT, 200)
async def an_operator_downloads_a_session_s_report_as_csv(ctx: Ctx) -> ClientResponse:
    csv_download = "/api/v1/sessions/plenary/report?format=csv&download=1"
    return await ctx.get(csv_download, operator_headers())


@exchange("GET", REPORT, 200)
async def an_operator_reads_a_session_s_report_as_a_printable_page(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/report?format=html", operator_headers())


@exchange("GET", REPORT, 400)
async def a_report_in_an_unknown_format_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/report?format=pdf", operator_headers())


@exchange("GET", REPORT, 401)
async def a_report_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/report")


@exchange("GET", REPORT, 403)
async def a_moderator_may_not_read_a_report(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/plenary/report", _moderator())


@exchange("GET", REPORT, 404)
async def the_report_of_an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/nowhere/report", operator_headers())


@exchange("GET", REPORT, 503)
async def a_report_is_unavailable_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get("/api/v1/sessions/plenary/report", operator_headers())


@exchange("GET", EVENT_REPORT, 200)
async def an_operator_reads_the_event_s_report_as_json(ctx: Ctx) -> ClientResponse:
    await _queue(ctx)
    return await ctx.get("/api/v1/report", operator_headers())


@exchange("GET", EVENT_REPORT, 200)
async def an_operator_downloads_the_event_s_report_as_a_printable_page(
    ctx: Ctx,
) -> ClientResponse:
    return await ctx.get("/api/v1/report?format=html&download=1", operator_headers())


@exchange("GET", EVENT_REPORT, 200)
async def an_operator_reads_the_event_s_report_as_csv(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/report?format=csv", operator_headers())


@exchange("GET", EVENT_REPORT, 400)
async def an_event_report_with_a_bad_download_flag_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/report?download=yes", operator_headers())


@exchange("GET", EVENT_REPORT, 401)
async def the_event_s_report_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/report")


@exchange("GET", EVENT_REPORT, 403)
async def an_operator_of_one_session_may_not_read_the_event_s_report(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/report", _bearer(token(Role.OPERATOR, ("plenary",))))


@exchange("GET", EVENT_REPORT, 503)
async def the_event_s_report_is_unavailable_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get("/api/v1/report", operator_headers())


@exchange("GET", "/ws", 101)
async def an_upgrade_from_an_allowed_origin_switches_protocols(ctx: Ctx) -> ClientResponse:
    response = await ctx.get("/ws", _upgrade())
    response.close()
    return response


@exchange("GET", "/ws", 400)
async def a_plain_request_to_the_socket_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/ws", {"Origin": ORIGIN})


@exchange("GET", "/ws", 403)
async def an_upgrade_from_a_foreign_origin_is_forbidden(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/ws", {**_upgrade(), "Origin": "https://evil.example"})


@exchange("GET", "/ws", 403)
async def an_upgrade_without_an_origin_is_forbidden(ctx: Ctx) -> ClientResponse:
    headers = _upgrade()
    del headers["Origin"]
    return await ctx.get("/ws", headers)


@exchange("GET", "/ws", 503)
async def a_draining_node_refuses_upgrades(ctx: Ctx) -> ClientResponse:
    ctx.draining()
    return await ctx.get("/ws", _upgrade())


@exchange("GET", "/", 200)
async def the_home_page_is_served(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/")


@exchange("GET", "/s/{session}", 200)
async def a_session_page_is_served(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/s/plenary")


@exchange("GET", "/s/{session}/moderate", 200)
async def a_session_s_moderator_console_is_served(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/s/plenary/moderate")


@exchange("GET", "/s/{session}/display", 200)
async def a_session_s_room_display_is_served(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/s/plenary/display")


@exchange("GET", "/s/{session}/desk", 200)
async def a_session_s_production_desk_is_served(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/s/plenary/desk")


@exchange("GET", "/s/{session}/booth", 200)
async def a_session_s_interpreter_booth_is_served(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/s/plenary/booth")


EXCHANGES.update(STREAMING_EXCHANGES)
EXCHANGES.update(OPERATOR_EXCHANGES)


def test_every_documented_http_response_is_produced_by_a_real_exchange() -> None:
    documented = {
        (method.upper(), path, int(status))
        for path, item in openapi().doc["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
        for status in operation["responses"]
    }
    assert {(m, route, status) for m, route, status, _ in EXCHANGES.values()} == documented


@pytest.mark.parametrize("name", sorted(EXCHANGES))
async def test_real_http_response_matches_the_documented_response_for_its_status(
    name: str,
    node: TestServer,
    node_factory: NodeFactory,
    connect: ClientFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    method, route, status, send = EXCHANGES[name]
    async with ClientSession() as http:
        ctx = Ctx(http, node, node_factory, connect, tmp_path_factory)
        try:
            response = await send(ctx)
            body = b"" if response.status == 101 else await response.read()
        finally:
            for store in ctx.stores:
                await store.stop()
    assert response.status == status, body
    assert http_failures(method, route, response, body, ctx.body) == []
