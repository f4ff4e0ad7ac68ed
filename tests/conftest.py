"""Shared fixtures: a real store server, programmes around the real clock, nodes, tokens, clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, async_playwright
from redis.asyncio.cluster import RedisCluster

from config.app import create_app
from config.appkeys import SIGNALING
from config.embedded import EmbeddedStore
from config.settings import Settings
from signaling.client import PodiumClient
from signaling.errors import StoreUnavailable
from signaling.identity import Identity, Mode, Role, TokenKeys, mint
from signaling.programme import Event, Programme, Session
from tests.cluster_store import ClusterStore

SECRET = "test-secret-for-podium-tests-0123456789abcdef"
ORIGIN = "http://podium.test"
# Chromium for the page tests: Debian's binary, headless, no network of its own; it reaches the test
# node under the allowed Origin's host name (a host-resolver rule maps it to the node's port).
BROWSER_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
EXPECT_MS = 8000
HOST = urlsplit(ORIGIN).hostname
KEYS = TokenKeys(SECRET)


def require_program(name: str) -> str:
    """The path of a program tests need; skips without it, but fails under CI so CI always runs it."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required under CI (.ci/run installs it)")
    pytest.skip(f"{name} is not installed (apt-get install it, or run .ci/run)")


@pytest.fixture(scope="session")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis-compatible server for the whole run, started by podium's own embedded-store code."""
    store = EmbeddedStore(tmp_path_factory.mktemp("store"))
    url = asyncio.run(store.start())
    yield url
    asyncio.run(store.stop())


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-primary Redis Cluster on loopback, started once per run by the first test that asks."""
    cluster = ClusterStore(tmp_path_factory.mktemp("cluster"))
    url = asyncio.run(cluster.start())
    yield url
    asyncio.run(cluster.stop())


def pytest_configure(config: pytest.Config) -> None:
    """Registers the ``both_stores`` marker."""
    config.addinivalue_line(
        "markers", "both_stores: runs each test on one store server and on a Redis Cluster"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module marked ``both_stores`` runs its store-using tests twice: [single] and [cluster]."""
    if metafunc.definition.get_closest_marker("both_stores") and (
        "store_kind" in metafunc.fixturenames
    ):
        metafunc.parametrize("store_kind", STORE_KINDS, indirect=True)


STORE_KINDS = ("single", "cluster")


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which store a test runs on: both in a ``both_stores`` module, else ``PODIUM_TEST_STORE``
    (``single``, the default, or ``cluster``: every test on the cluster, except those that build
    their own store URL — a dead unix socket, a CLI's environment — which assume one server)."""
    kind = str(getattr(request, "param", os.environ.get("PODIUM_TEST_STORE") or "single"))
    if kind not in STORE_KINDS:
        pytest.fail(f"PODIUM_TEST_STORE must be one of {', '.join(STORE_KINDS)}, got {kind!r}")
    return kind


@dataclass(frozen=True)
class StoreTarget:
    """Where a test's store is: its URL and whether it is a cluster."""

    url: str
    cluster: bool


@pytest.fixture
def store_target(store_kind: str, request: pytest.FixtureRequest) -> StoreTarget:
    """The store of this test (the cluster is only started when a test runs on it)."""
    if store_kind == "cluster":
        return StoreTarget(request.getfixturevalue("cluster_url"), cluster=True)
    return StoreTarget(request.getfixturevalue("store_url"), cluster=False)


def store_admin(target: StoreTarget) -> aioredis.Redis:
    """A client of a test store, cluster-aware when it is a cluster (close it with ``aclose``)."""
    if target.cluster:
        return cast(aioredis.Redis, RedisCluster.from_url(target.url))
    return aioredis.Redis.from_url(target.url)


@pytest.fixture
async def redis_client(store_target: StoreTarget) -> AsyncIterator[aioredis.Redis]:
    """A plain client of the test store (a cluster client on the cluster)."""
    client = store_admin(store_target)
    yield client
    await client.aclose()


def make_programme(now: datetime | None = None) -> Programme:
    """Three sessions around ``now``: one live, one tomorrow, one live with guest access."""
    now = now or datetime.now(UTC)
    event = Event(id="test-summit", title="Test Summit", timezone="Europe/Zurich")
    return Programme(
        event,
        (
            Session(
                id="plenary",
                title="Opening plenary",
                room="Plenary Hall",
                track="plenary",
                start=now - timedelta(minutes=10),
                end=now + timedelta(hours=2),
                languages=("ar", "zh", "en", "fr", "ru", "es"),
            ),
            Session(
                id="workshop",
                title="Workshop tomorrow",
                room="Room XVII",
                track="workshops",
                start=now + timedelta(days=1),
                end=now + timedelta(days=1, hours=1),
            ),
            Session(
                id="open-forum",
                title="Open forum",
                room="Room XX",
                track="forum",
                start=now - timedelta(minutes=5),
                end=now + timedelta(hours=1),
                guest_access=True,
            ),
        ),
    )


@pytest.fixture
def programme() -> Programme:
    """The test programme."""
    return make_programme()


@pytest.fixture
def settings(store_target: StoreTarget, tmp_path: Path) -> Settings:
    """Settings of a node on the test store, under a key prefix of its own."""
    return Settings(
        host="127.0.0.1",
        port=0,
        redis_url=store_target.url,
        redis_cluster=store_target.cluster,
        data_dir=tmp_path / "data",
        key_prefix="t" + uuid.uuid4().hex[:12],
        jwt_secret=SECRET,
        allowed_origins=(ORIGIN,),
        auth_timeout=1.0,
        history_size=50,
        heartbeat=5.0,
        log_json=False,
    )


NodeFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def node_factory(settings: Settings, programme: Programme) -> AsyncIterator[NodeFactory]:
    """Starts podium nodes (real HTTP servers on loopback) sharing the test store and prefix."""
    servers: list[TestServer] = []

    async def start(**changes: Any) -> TestServer:
        from dataclasses import replace

        node_settings = replace(settings, node_id=f"node-{len(servers) + 1}", **changes)
        app = create_app(node_settings, programme=programme)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        with contextlib.suppress(StoreUnavailable):  # a test may start a node with no store
            await app[SIGNALING].tick()  # the schedule has run: session states are settled
        return server

    yield start
    for server in reversed(servers):
        await server.close()


@pytest.fixture
async def node(node_factory: NodeFactory) -> TestServer:
    """One podium node."""
    return await node_factory()


def token(
    role: Role | str = Role.PARTICIPANT,
    sessions: tuple[str, ...] = ("plenary",),
    *,
    sub: str | None = None,
    name: str = "Amina",
    mode: Mode = "remote",
    ttl: int = 3600,
    now: int | None = None,
    keys: TokenKeys = KEYS,
) -> str:
    """A signed join token."""
    identity = Identity(
        sub=sub or uuid.uuid4().hex,
        name=name,
        role=Role(role),
        sessions=sessions,
        mode=mode,
        group="civil-society",
        country="CH",
    )
    return mint(keys, identity, now=int(time.time()) if now is None else now, ttl=ttl)


def ws_url(server: TestServer) -> str:
    """The node's WebSocket URL."""
    return str(server.make_url("/ws")).replace("http://", "ws://")


ClientFactory = Callable[..., Awaitable[PodiumClient]]


@pytest.fixture
async def connect() -> AsyncIterator[ClientFactory]:
    """Connects protocol clients (closed at the end of the test)."""
    clients: list[PodiumClient] = []

    async def make(
        server: TestServer, tok: str | None = None, session: str = "plenary", **kwargs: Any
    ) -> PodiumClient:
        client = PodiumClient(ws_url(server), tok or token(), session, origin=ORIGIN)
        clients.append(client)
        await client.connect(**kwargs)
        return client

    yield make
    for client in clients:
        await client.close()


def operator_headers() -> dict[str, str]:
    """HTTP headers of an operator."""
    return {"Authorization": "Bearer " + token(Role.OPERATOR, ("*",), name="Olu")}


def app_of(server: TestServer) -> web.Application:
    """The app behind a test server."""
    return server.app


@pytest.fixture
async def browser(node: TestServer) -> AsyncIterator[Browser]:
    """A headless Chromium that resolves the allowed Origin's host name to the test node."""
    chromium = require_program("chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=[*BROWSER_ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1:{node.port}"],
        )
        yield browser
        await browser.close()
