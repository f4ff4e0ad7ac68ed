"""The operator dashboard's API on real nodes and the real store: who may read it, the overview's
figures against what clients did (on two nodes), the online series sampled once per period
cluster-wide, and its settings."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from config.appkeys import SIGNALING
from config.settings import Settings, SettingsError, load_settings
from reporting.series import SeriesSampler, SeriesStore, parse_sample
from signaling.identity import Role
from signaling.store import SessionStore
from tests.conftest import ClientFactory, NodeFactory, app_of, operator_headers, token


def _bearer(tok: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + tok}


async def _get(server: TestServer, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with ClientSession() as http, http.get(server.make_url(path), headers=headers) as r:
        return r.status, await r.json()


def _row(overview: dict[str, Any], session: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [row for row in overview["sessions"] if row["id"] == session]
    assert len(rows) == 1, overview
    return rows[0]


async def _overview_until(
    server: TestServer, session: str, test: Any, wait: float = 10.0
) -> dict[str, Any]:
    # Presence is counted at once but a client's join completes asynchronously: read until true.
    async with asyncio.timeout(wait):
        while True:
            status, body = await _get(server, "/api/v1/overview", operator_headers())
            assert status == 200, body
            if test(_row(body, session)):
                return _row(body, session)
            await asyncio.sleep(0.1)


# ---- who may read it -----------------------------------------------------------------------------


async def test_only_operators_read_the_overview_and_the_series(node: TestServer) -> None:
    for path in ("/api/v1/overview", "/api/v1/sessions/plenary/series"):
        status, body = await _get(node, path, {})
        assert (status, body["code"]) == (401, "unauthorized")
        for role in (Role.PARTICIPANT, Role.MODERATOR, Role.PRODUCTION):
            status, body = await _get(node, path, _bearer(token(role, ("*",))))
            assert (status, body["code"]) == (403, "forbidden"), role
        status, _ = await _get(node, path, operator_headers())
        assert status == 200


async def test_an_operator_of_one_session_sees_only_that_session(node: TestServer) -> None:
    headers = _bearer(token(Role.OPERATOR, ("open-forum",)))
    status, body = await _get(node, "/api/v1/overview?all=1", headers)
    assert status == 200
    assert [row["id"] for row in body["sessions"]] == ["open-forum"]
    status, body = await _get(node, "/api/v1/sessions/plenary/series", headers)
    assert (status, body["code"]) == (403, "session_forbidden")


async def test_bad_queries_and_unknown_sessions_are_refused_with_typed_errors(
    node: TestServer,
) -> None:
    for path in (
        "/api/v1/overview?all=yes",
        "/api/v1/overview?day=2026-01-01",
        "/api/v1/overview?all=1&all=0",
        "/api/v1/sessions/plenary/series?since=-5",
        "/api/v1/sessions/plenary/series?since=12345678901234567890",
        "/api/v1/sessions/plenary/series?from=0",
    ):
        status, body = await _get(node, path, operator_headers())
        assert (status, body["code"]) == (400, "invalid_query"), path
    status, body = await _get(node, "/api/v1/sessions/nope/series", operator_headers())
    assert (status, body["code"]) == (404, "unknown_session")


# ---- the overview --------------------------------------------------------------------------------


async def test_the_overview_lists_today_s_sessions_and_every_session_when_asked(
    node: TestServer,
) -> None:
    status, today = await _get(node, "/api/v1/overview", operator_headers())
    assert status == 200
    assert [row["id"] for row in today["sessions"]] == ["plenary", "open-forum"]
    assert today["all"] is False
    assert today["event"] == {
        "id": "test-summit",
        "title": "Test Summit",
        "timezone": "Europe/Zurich",
    }
    status, every = await _get(node, "/api/v1/overview?all=1", operator_headers())
    assert [row["id"] for row in every["sessions"]] == ["plenary", "open-forum", "workshop"]
    workshop = _row(every, "workshop")
    assert workshop["state"] == "scheduled"
    assert workshop["online"] == {"total": 0, "venue": 0, "remote": 0}
    assert workshop["floor"] == {"requests": 0, "speaker": None}
    assert [c["id"] for c in workshop["channels"]] == ["floor", "en"]
    assert all(c["state"] == "offline" and c["listeners"] == 0 for c in workshop["channels"])


async def test_the_overview_on_any_node_shows_what_clients_did_on_two_nodes(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    one, two = await node_factory(), await node_factory()
    amina = await connect(one, token(sub="amina", name="Amina", mode="remote"))
    await connect(two, token(sub="amina", name="Amina", mode="remote"))  # her second tab
    li = await connect(two, token(sub="li", name="Li", mode="venue"))
    await connect(one, token(sub="sam", name="Sam", mode="venue"))
    chair = await connect(one, token(Role.MODERATOR, sub="chair", name="Chair", mode="venue"))
    await amina.request("qa.ask", text="How will remote delegates vote?", lang="en")
    await li.request("qa.ask", text="Where are the slides?", lang="en")
    entry = (await li.request("floor.request"))["entry"]
    await amina.request("floor.request")
    await chair.request("floor.grant", entry=entry)

    row = await _overview_until(two, "plenary", lambda r: r["online"]["total"] == 4)
    assert row["state"] == "live"
    assert row["online"] == {"total": 4, "venue": 3, "remote": 1}
    assert row["unique"] == 4
    assert row["questions"] == {"waiting": 2}
    assert row["floor"]["requests"] == 1
    speaker = row["floor"]["speaker"]
    assert (speaker["name"], speaker["mode"], speaker["expired"]) == ("Li", "venue", False)
    assert 100 < speaker["left"] <= 180

    await li.close()
    row = await _overview_until(one, "plenary", lambda r: r["online"]["total"] == 3)
    assert row["online"] == {"total": 3, "venue": 2, "remote": 1}
    assert row["unique"] == 4  # who ever joined does not fall


# ---- the series ----------------------------------------------------------------------------------


async def test_two_nodes_sampling_the_same_period_write_one_sample(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    one, two = await node_factory(), await node_factory()
    await connect(one, token(sub="amina", mode="remote"))
    await connect(two, token(sub="li", mode="venue"))
    stores = [SeriesStore(app_of(server)[SIGNALING].store, period=10.0) for server in (one, two)]
    base = 1_900_000_000_000  # the start of a 10 s bucket, far from the real clock's samples
    sessions = ["plenary", "workshop", "open-forum"]

    first = await asyncio.gather(*(s.sample(sessions, base + i) for i, s in enumerate(stores)))
    again = await stores[1].sample(sessions, base + 9_999)
    later = await stores[0].sample(sessions, base + 10_000)

    # One of the two nodes wrote the plenary's and the forum's sample, nobody the workshop's
    # (scheduled, nobody in it); nothing more in the same bucket; the next bucket's once.
    assert sorted(first[0] + first[1]) == ["open-forum", "plenary"]
    assert again == []
    assert later == ["plenary", "open-forum"]
    samples = await stores[1].read("plenary", since_ms=base - 1)
    assert [(s.at - base, s.online, s.venue, s.remote) for s in samples] in (
        [(0, 2, 1, 1), (10_000, 2, 1, 1)],
        [(1, 2, 1, 1), (10_000, 2, 1, 1)],
    )


async def test_every_node_runs_the_sampler_and_each_period_has_one_sample(
    node_factory: NodeFactory, connect: ClientFactory, redis_client: Any, settings: Settings
) -> None:
    one = await node_factory(series_period=1.0)
    await node_factory(series_period=1.0)
    await connect(one, token(sub="amina"))
    await asyncio.sleep(3.6)
    key = app_of(one)[SIGNALING].store.keys("plenary").series
    raw = await redis_client.lrange(key, 0, -1)
    samples = [parse_sample(item) for item in raw]
    buckets = [s.at // 1000 for s in samples if s is not None]
    assert len(buckets) >= 2
    assert buckets == sorted(set(buckets))  # one sample per period, in order
    newest = samples[-1]
    assert newest is not None
    assert newest.online == 1


async def test_the_series_route_returns_the_samples_after_since(
    node: TestServer, connect: ClientFactory
) -> None:
    await connect(node, token(sub="amina", mode="venue"))
    series = SeriesStore(app_of(node)[SIGNALING].store, period=15.0)
    base = 1_900_000_000_000
    for i in range(3):
        await series.sample(["plenary"], base + i * 15_000)
    status, body = await _get(
        node, f"/api/v1/sessions/plenary/series?since={base}", operator_headers()
    )
    assert status == 200
    assert body["session"] == "plenary"
    assert body["samples"][-2:] == [
        {"at": base + 15_000, "online": 1, "venue": 1, "remote": 0},
        {"at": base + 30_000, "online": 1, "venue": 1, "remote": 0},
    ]


def test_the_sample_period_is_a_setting_with_bounds() -> None:
    assert load_settings({"PODIUM_SERIES_PERIOD": "30"}).series_period == 30.0
    for bad in ("0.5", "7200", "soon"):
        with pytest.raises(SettingsError, match="series_period"):
            load_settings({"PODIUM_SERIES_PERIOD": bad})


def test_a_stored_sample_that_is_not_one_is_skipped() -> None:
    assert parse_sample(b"1000 3 1 2") is not None
    assert [parse_sample(raw) for raw in ("1000 3 1", "x 1 1 0", "1000 -1 0 0", "")] == [
        None,
        None,
        None,
        None,
    ]


def test_settings_default_to_a_fifteen_second_period() -> None:
    assert replace(Settings()).series_period == 15.0


async def test_a_sampler_that_cannot_reach_the_store_logs_and_keeps_sampling(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
    try:
        store = SessionStore(client, prefix="t-down", history_size=10)
        sampler = SeriesSampler(SeriesStore(store, period=1.0), ["plenary"], clock=lambda: 0.999)
        task = asyncio.create_task(sampler.run())
        await asyncio.sleep(0.6)
        assert not task.done()  # still sampling
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await client.aclose()
    failures = [r for r in caplog.records if r.getMessage() == "series sample failed"]
    assert len(failures) >= 2
