"""A real Prometheus scrapes two podium nodes, and its PromQL answers equal what the clients did.

The Debian ``prometheus`` binary runs on a free loopback port with a generated configuration (both
nodes scraped every second, the shipped ``config/prometheus/rules.yml`` evaluated every second)
and a temporary TSDB. The nodes are real aiohttp servers on the shared test store, with real
protocol clients on both; every query goes over Prometheus's HTTP API, as Grafana's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp.test_utils import TestServer

from signaling.client import PodiumClient
from signaling.identity import Mode, Role
from tests.conftest import ClientFactory, NodeFactory, require_program, token
from tests.test_deployment import (
    GRAFANA_VARIABLES,
    HISTOGRAM_SUFFIX,
    METRIC_NAME,
    PROMETHEUS_RULES,
    _alert_rules,
    _dashboard,
    _dashboard_queries,
    _panel_queries,
    _promql,
    _rows,
)
from tests.test_metrics import _metrics, _settled
from tests.test_metrics_catalogue import OTHER, _documented, _exported, _metric_objects

A, B = "plenary", "open-forum"  # two live sessions of the test programme
ANSWER_WITHIN = 30.0  # seconds: a 5 s gauge refresh, a 1 s scrape and a 1 s evaluation, with room


# --- Prometheus as a subprocess ------------------------------------------------------------------


@dataclass
class Prometheus:
    """A running Prometheus, queried over its HTTP API."""

    url: str
    http: aiohttp.ClientSession

    async def api(self, path: str, **params: str) -> Any:
        """The ``data`` of an API answer (asserting it succeeded)."""
        async with self.http.get(f"{self.url}/api/v1/{path}", params=params) as response:
            body = await response.json()
        assert response.status == 200, body
        assert body["status"] == "success", body
        return body["data"]

    async def answer(self, expression: str, by: Sequence[str]) -> dict[str, float]:
        """An instant query's vector, keyed by the ``by`` labels' values joined with ``/``."""
        data = await self.api("query", query=expression)
        assert data["resultType"] == "vector", data
        return {
            "/".join(sample["metric"].get(label, "") for label in by): float(sample["value"][1])
            for sample in data["result"]
        }

    async def until(
        self, expression: str, expected: dict[str, float], by: Sequence[str] = ("session",)
    ) -> None:
        """Waits until the query answers exactly ``expected``; fails showing the last answer."""
        deadline = time.monotonic() + ANSWER_WITHIN
        while True:
            answer = await self.answer(expression, by)
            if answer == expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        assert answer == expected, expression


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(log_path: Path) -> str:
    """The end of Prometheus's log, for a failure message."""
    return log_path.read_text(errors="replace")[-4000:]


def _target(server: TestServer) -> str:
    """The node's address as Prometheus labels it (``instance``)."""
    return str(server.make_url("/").authority)


@contextlib.asynccontextmanager
async def running_prometheus(
    tmp_path: Path, nodes: Sequence[TestServer]
) -> AsyncIterator[Prometheus]:
    """Starts Prometheus scraping ``nodes`` every second; stops it (SIGTERM, then wait) at the end."""
    binary = require_program("prometheus")
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "evaluation_interval": "1s",
                },
                "rule_files": [str(PROMETHEUS_RULES)],
                "scrape_configs": [
                    {
                        "job_name": "podium",  # the job the alert rules name
                        "metrics_path": "/metrics",
                        "static_configs": [{"targets": [_target(node) for node in nodes]}],
                    }
                ],
            }
        )
    )
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with aiohttp.ClientSession() as http:
                prometheus = Prometheus(f"http://127.0.0.1:{port}", http)
                await _ready(prometheus, process, log_path)
                yield prometheus
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()
    assert process.returncode == 0, _tail(log_path)


async def _ready(
    prometheus: Prometheus, process: asyncio.subprocess.Process, log_path: Path
) -> None:
    """Waits for ``/-/ready``; fails with Prometheus's log if it exits or never gets ready."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.returncode is None, _tail(log_path)
        with contextlib.suppress(aiohttp.ClientConnectionError):
            async with prometheus.http.get(f"{prometheus.url}/-/ready") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise AssertionError("Prometheus was not ready in 20 s:\n" + _tail(log_path))


# --- the clients ---------------------------------------------------------------------------------


async def _person(
    connect: ClientFactory,
    server: TestServer,
    session: str,
    name: str,
    mode: Mode = "remote",
    role: Role = Role.PARTICIPANT,
) -> PodiumClient:
    return await connect(server, token(role, (session,), sub=name, name=name, mode=mode), session)


async def _asks(client: PodiumClient, text: str) -> str:
    result = await client.request("qa.ask", text=text, lang="en")
    question: str = result["question"]["id"]
    return question


def _panel(title: str, row: str, session: str = ".*") -> str:
    """The one query of a dashboard panel, as Prometheus takes it with ``session`` picked."""
    panels = [panel for panel in _rows(_dashboard())[row] if panel["title"] == title]
    assert len(panels) == 1, f"no single panel {title!r} in row {row!r}"
    (query,) = _panel_queries(panels[0])
    return _promql(query, {**GRAFANA_VARIABLES, "$session": session})


# --- tests ---------------------------------------------------------------------------------------


async def test_prometheus_counts_people_and_questions_on_two_nodes_as_the_clients_made_them(
    node_factory: NodeFactory, connect: ClientFactory, tmp_path: Path
) -> None:
    one, two = await node_factory(), await node_factory()
    # Session A: three participants and a moderator on node 1, two participants on node 2.
    # Session B: two participants on node 2.
    on_one = [
        await _person(connect, one, A, "p1"),
        await _person(connect, one, A, "p2"),
        await _person(connect, one, A, "p3", mode="venue"),
    ]
    moderator = await _person(connect, one, A, "m1", role=Role.MODERATOR)
    on_two = [
        await _person(connect, two, A, "p4", mode="venue"),
        await _person(connect, two, A, "p5", mode="venue"),
    ]
    in_b = [await _person(connect, two, B, "p6"), await _person(connect, two, B, "p7")]
    # Every participant asks one question; the moderator approves two (asked on either node)
    # and rejects one, so A has 2 pending, 2 approved, 1 rejected and B 2 pending.
    asked = [await _asks(client, f"Question {i}?") for i, client in enumerate(on_one + on_two)]
    for client in in_b:
        await _asks(client, "A question for the forum?")
    await moderator.request("qa.approve", question=asked[0])
    await moderator.request("qa.approve", question=asked[3])
    await moderator.request("qa.reject", question=asked[1], reason="Asked already")

    async with running_prometheus(tmp_path, [one, two]) as prometheus:
        online = "max by (session, mode, role) (podium_presence_online_participants)"
        await prometheus.until(f"sum by (session) ({online}) > 0", {A: 6, B: 2})
        participants = (
            'max by (session, mode, role) (podium_presence_online_participants{role="participant"})'
        )
        await prometheus.until(f"sum by (session) ({participants}) > 0", {A: 5, B: 2})
        await prometheus.until(
            f"sum by (session, mode) ({online}) > 0",
            {f"{A}/venue": 3, f"{A}/remote": 3, f"{B}/remote": 2},
            by=("session", "mode"),
        )
        # Both nodes report the store's figure: summed without max first, everyone counts twice.
        await prometheus.until(
            "sum by (session) (podium_presence_online_participants) > 0", {A: 12, B: 4}
        )
        # Sockets are per node: summed over nodes, each counts once.
        await prometheus.until(
            "sum by (instance) (podium_signaling_connections)",
            {_target(one): 4, _target(two): 4},
            by=("instance",),
        )
        await prometheus.until("sum by (session) (podium_signaling_connections) > 0", {A: 6, B: 2})
        await prometheus.until(
            "max by (session, state) (podium_qa_questions) > 0",
            {f"{A}/pending": 2, f"{A}/approved": 2, f"{A}/rejected": 1, f"{B}/pending": 2},
            by=("session", "state"),
        )
        await prometheus.until("max by (session) (podium_qa_queue_depth) > 0", {A: 2, B: 2})
        # Actions are counted on the node that took them (asks on both): the sum adds them up.
        await prometheus.until(
            "sum by (action) (podium_qa_moderator_actions_total) > 0",
            {"ask": 7, "approve": 2, "reject": 1},
            by=("action",),
        )
        # The dashboard's own panels give the same figures.
        await prometheus.until(
            _panel("Online participants by session", "Event overview"),
            {A: 6, B: 2, "workshop": 0},
        )
        await prometheus.until(
            _panel("Questions by state", "Q&A"),
            {"pending": 4, "approved": 2, "rejected": 1, "answered": 0, "archived": 0},
            by=("state",),
        )
        for session, online_now, waiting in ((A, 6, 2), (B, 2, 2)):
            await prometheus.until(
                _panel("Online", "Session $session", session), {"": online_now}, by=()
            )
            await prometheus.until(
                _panel("Questions waiting", "Session $session", session), {"": waiting}, by=()
            )

        # One participant on node 2 leaves, the moderator answers a question: both show.
        await on_two[1].close()
        await moderator.request("qa.answer", question=asked[0])
        await prometheus.until(f"sum by (session) ({online}) > 0", {A: 5, B: 2})
        await prometheus.until(
            "max by (session, state) (podium_qa_questions) > 0",
            {
                f"{A}/pending": 2,
                f"{A}/approved": 1,
                f"{A}/answered": 1,
                f"{A}/rejected": 1,
                f"{B}/pending": 2,
            },
            by=("session", "state"),
        )


async def test_every_metric_the_dashboard_and_alert_rules_query_has_series_in_prometheus(
    node_factory: NodeFactory, connect: ClientFactory, tmp_path: Path
) -> None:
    expressions = [str(rule["expr"]) for rule in _alert_rules()] + _dashboard_queries(_dashboard())
    used = {"up"}.union(*(METRIC_NAME.findall(expression) for expression in expressions))
    families = {HISTOGRAM_SUFFIX.sub("", name).removesuffix("_total") for name in used}
    nodes = [await node_factory(), await node_factory()]
    documented = _documented()
    for server in nodes:
        await connect(server)
        await _settled(server)
        # A labelled family has no series until it is used (a store error, a packet lost...);
        # as the catalogue test does, give each such family one series labelled `other`, so what
        # is checked is the names as Prometheus stores them, whatever this scenario exercised.
        objects = _metric_objects(server)
        for name, (_, _, samples) in _exported(await _metrics(server)).items():
            if name in families and not samples:
                objects[name].labels(**dict.fromkeys(documented[name][1], OTHER))

    async with running_prometheus(tmp_path, nodes) as prometheus:
        # Exact names as queried (`_total`, `_bucket`), not families: what Prometheus stores.
        names = 'group by (__name__) ({__name__=~"podium_.+|up"})'
        deadline = time.monotonic() + ANSWER_WITHIN
        while True:
            stored = set(await prometheus.answer(names, by=("__name__",)))
            if used <= stored or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        assert used - stored == set(), "queried but never scraped"
        await prometheus.until('sum(up{job="podium"})', {"": 2}, by=())

        # Every shipped rule evaluates without error against real series...
        deadline = time.monotonic() + ANSWER_WITHIN
        while True:
            groups = (await prometheus.api("rules", type="alert"))["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            # A rule not evaluated yet reports Go's zero time, 0001-01-01.
            evaluated = all(not rule["lastEvaluation"].startswith("0001") for rule in rules)
            if evaluated or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        assert {rule["name"] for rule in rules} == {str(rule["alert"]) for rule in _alert_rules()}
        assert {rule["name"]: rule["health"] for rule in rules} == {
            rule["name"]: "ok" for rule in rules
        }, [rule.get("lastError") for rule in rules]
        # ...the live sessions, which no encoder publishes, have their floor alert pending, and
        # no-node-ready is quiet (it may be pending for a moment before the first scrape, when
        # Prometheus has no `up` series yet: its `for` absorbs that).
        deadline = time.monotonic() + ANSWER_WITHIN
        while True:
            alerts = (await prometheus.api("alerts"))["alerts"]
            active = {
                (alert["labels"]["alertname"], alert["labels"].get("session", "")): alert["state"]
                for alert in alerts
            }
            expected = {
                ("PodiumFloorOfflineWhileLive", A): "pending",
                ("PodiumFloorOfflineWhileLive", B): "pending",
            }
            if active == expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        assert active == expected
