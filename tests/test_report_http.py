"""The report over HTTP: who may read it, its formats and headers, and figures kept once cluster-wide."""

from __future__ import annotations

import csv
import io
import time

import aiohttp
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from config.settings import Settings
from reporting.render import REPORT_CSP
from signaling.identity import Identity, Mode, Role, mint
from tests.conftest import KEYS, ClientFactory, NodeFactory, operator_headers, token

SESSION = "/api/v1/sessions/plenary/report"
EVENT = "/api/v1/report"


def _bearer(tok: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + tok}


def _person(sub: str, mode: Mode = "remote", *, sessions: tuple[str, ...] = ("plenary",)) -> str:
    identity = Identity(
        sub=sub, name=sub, role=Role.PARTICIPANT, sessions=sessions, mode=mode,
        group="youth", country="GH",
    )  # fmt: skip
    return mint(KEYS, identity, now=int(time.time()), ttl=3600)


async def _get(
    server: TestServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.make_url(path), headers=headers or {}) as response,
    ):
        return response.status, dict(response.headers), await response.text()


async def test_only_operators_read_reports_without_a_token_401_a_participant_403(
    node: TestServer,
) -> None:
    for path in (SESSION, EVENT):
        status, _, body = await _get(node, path)
        assert (status, '"unauthorized"' in body) == (401, True)
        for role in (Role.PARTICIPANT, Role.MODERATOR, Role.PRODUCTION):
            status, _, body = await _get(node, path, _bearer(token(role, ("*",))))
            assert (status, '"forbidden"' in body) == (403, True), role
        status, headers, _ = await _get(node, path, operator_headers())
        assert status == 200
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        assert "Content-Disposition" not in headers


async def test_an_operator_of_other_sessions_is_refused_this_one_and_the_event(
    node: TestServer,
) -> None:
    elsewhere = _bearer(token(Role.OPERATOR, ("workshop",)))
    for path in (SESSION, EVENT):
        status, _, body = await _get(node, path, elsewhere)
        assert (status, '"session_forbidden"' in body) == (403, True)
    status, _, _ = await _get(node, "/api/v1/sessions/workshop/report", elsewhere)
    assert status == 200


async def test_bad_queries_and_unknown_sessions_get_typed_errors(node: TestServer) -> None:
    cases = {
        SESSION + "?format=pdf": (400, "unknown_format"),
        EVENT + "?format=xlsx": (400, "unknown_format"),
        SESSION + "?download=yes": (400, "invalid_query"),
        SESSION + "?format=csv&format=json": (400, "invalid_query"),
        EVENT + "?colour=red": (400, "invalid_query"),
        "/api/v1/sessions/nowhere/report": (404, "unknown_session"),
    }
    for path, (status, code) in cases.items():
        got, headers, body = await _get(node, path, operator_headers())
        assert (got, f'"code": "{code}"' in body or f'"code":"{code}"' in body) == (status, True)
        assert headers["Content-Type"].startswith("application/json")


async def test_downloads_carry_a_file_name_and_the_page_its_own_policy(node: TestServer) -> None:
    status, headers, text = await _get(node, SESSION + "?format=csv&download=1", operator_headers())
    assert status == 200
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == 'attachment; filename="report-plenary.csv"'
    assert text.startswith("session,section,item,value\r\n")
    status, headers, text = await _get(node, EVENT + "?format=html&download=1", operator_headers())
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Disposition"] == 'attachment; filename="report-test-summit.html"'
    assert headers["Content-Security-Policy"] == REPORT_CSP
    assert text.startswith("<!doctype html>")
    assert "<script" not in text


async def test_peak_and_people_are_counted_once_across_two_nodes_and_across_sessions(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    one, two = await node_factory(), await node_factory()
    both = ("plenary", "open-forum")
    await connect(one, _person("ama", "venue", sessions=both))
    await connect(one, _person("kojo"))
    await connect(two, _person("ama", "venue", sessions=both))  # another tab, on another node
    await connect(two, _person("esi"))
    await connect(two, _person("ama", "venue", sessions=both), session="open-forum")
    _, _, text = await _get(two, EVENT + "?format=csv", operator_headers())
    rows = {(s, section, item): v for s, section, item, v in csv.reader(io.StringIO(text))}
    assert rows[("plenary", "participation", "peak_online")] == "3"
    assert rows[("plenary", "participation", "unique")] == "3"
    assert rows[("plenary", "mode", "venue")] == "1"
    assert rows[("plenary", "group", "youth")] == "3"
    assert rows[("open-forum", "participation", "unique")] == "1"
    assert rows[("workshop", "participation", "peak_online")] == "0"
    assert rows[("*", "participation", "unique")] == "3"  # Ama once, though in two sessions
    assert rows[("*", "participation", "peak_online")] == "3"
    assert rows[("*", "event", "peak_session")] == "plenary"
    assert rows[("*", "country", "GH")] == "3"
    _, _, from_one = await _get(one, SESSION + "?format=csv", operator_headers())
    _, _, from_two = await _get(two, SESSION + "?format=csv", operator_headers())
    assert from_one == from_two  # the store's figures, whichever node answers


async def test_a_report_over_damaged_records_still_answers_with_what_it_can_read(
    node: TestServer, connect: ClientFactory, redis_client: aioredis.Redis, settings: Settings
) -> None:
    await connect(node, _person("ama"))
    tag = "{" + settings.key_prefix + ":plenary}"
    await redis_client.hset(tag + ":pres:people", "ghost", "not json")
    await redis_client.sadd(tag + ":pres:uniq", "ghost")
    await redis_client.hset(tag + ":pres:peak", "at", "soon")
    await redis_client.zadd(tag + ":qa:ids", {"q-lost": 1})  # an id whose record is gone
    await redis_client.xadd(tag + ":qa:audit", {"e": "{broken"})
    await redis_client.xadd(tag + ":floor:audit", {"x": "no entry field"})
    await redis_client.rpush(tag + ":pres:series", "garbage")
    status, _, text = await _get(node, SESSION + "?format=csv", operator_headers())
    assert status == 200
    rows = {(section, item): v for _, section, item, v in csv.reader(io.StringIO(text))}
    assert rows[("participation", "unique")] == "2"
    assert rows[("group", "unspecified")] == "1"
    assert rows[("participation", "peak_at")] == ""  # "soon" is not a time
    assert rows[("questions", "asked")] == "0"
