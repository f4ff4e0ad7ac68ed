"""podium on a three-primary Redis Cluster: one slot per session, sharded pub/sub, queued connections.

The Q&A, floor, presence and fan-out suites run on the cluster too (``pytest.mark.both_stores``);
these tests check what only a cluster has.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from config.app import create_app
from config.appkeys import SIGNALING
from config.cli import main
from config.settings import Settings, SettingsError, load_settings
from config.store import store_client
from moderation.keys import QaKeys
from signaling.identity import Role
from signaling.keys import SessionKeys
from signaling.programme import Programme
from tests.conftest import ClientFactory, NodeFactory, app_of, operator_headers, token
from tests.test_cli import PROGRAMME


@pytest.fixture
def store_kind() -> str:
    """Every test of this module runs on the cluster."""
    return "cluster"


def _cluster(client: aioredis.Redis) -> RedisCluster:
    maybe_cluster: object = client
    assert isinstance(maybe_cluster, RedisCluster)
    return maybe_cluster


def _shard_of(cluster: RedisCluster, key: str) -> str:
    node = cluster.get_node_from_key(key)
    assert node is not None
    return node.name


async def _prefix_with_sessions_on_different_shards(cluster: RedisCluster) -> str:
    """A key prefix that puts the plenary and the open forum on two different primaries."""
    await cluster.initialize()
    while True:
        prefix = "t" + uuid.uuid4().hex[:12]
        plenary = SessionKeys(prefix, "plenary").channel
        forum = SessionKeys(prefix, "open-forum").channel
        if _shard_of(cluster, plenary) != _shard_of(cluster, forum):
            return prefix


async def test_the_test_cluster_has_three_primaries_sharing_every_slot(
    redis_client: aioredis.Redis,
) -> None:
    cluster = _cluster(redis_client)
    await cluster.initialize()
    primaries = cluster.get_primaries()
    assert len(primaries) == 3
    info = await cluster.cluster_info()
    assert info["cluster_state"] == "ok"
    assert int(info["cluster_slots_assigned"]) == 16384


async def test_every_key_a_session_writes_carries_its_hash_tag_so_it_lives_in_one_slot(
    node: TestServer, connect: ClientFactory, redis_client: aioredis.Redis, settings: Settings
) -> None:
    moderator = await connect(node, token(Role.MODERATOR, sub="mod", name="Maria"))
    asker = await connect(node, token(sub="asker"))
    speaker = await connect(node, token(Role.SPEAKER, sub="speaker", name="Sam"))
    asked = await asker.request("qa.ask", text="How do remote delegates speak?", lang="en")
    await moderator.request("qa.approve", question=asked["question"]["id"])
    await speaker.request("floor.request")
    cluster = _cluster(redis_client)
    prefix = settings.key_prefix
    keys = [k.decode() async for k in cluster.scan_iter(match=f"*{prefix}*", count=1000)]
    untagged = [key for key in keys if not key.startswith("{")]
    assert all(key.startswith(f"{prefix}:joincode:") for key in untagged)
    sessions = {s: SessionKeys(prefix, s).tag for s in ("plenary", "workshop", "open-forum")}
    by_session: dict[str, list[str]] = {}
    for key in keys:
        if key.startswith("{"):
            session = next(s for s, tag in sessions.items() if key.startswith(tag + ":"))
            by_session.setdefault(session, []).append(key)
    for session, session_keys in by_session.items():
        assert {key_slot(k.encode()) for k in session_keys} == {
            key_slot(sessions[session].encode())
        }
    # Questions, the floor's entries and presence are among them: one slot holds the whole session.
    plenary = by_session["plenary"]
    qa = QaKeys(SessionKeys(prefix, "plenary"))
    assert qa.audit in plenary
    assert qa.question(asked["question"]["id"]) in plenary
    assert any(":floor" in key for key in plenary)
    assert any(":pres:" in key for key in plenary)


async def test_events_reach_clients_on_another_node_for_sessions_on_different_shards(
    node_factory: NodeFactory, connect: ClientFactory, redis_client: aioredis.Redis
) -> None:
    cluster = _cluster(redis_client)
    prefix = await _prefix_with_sessions_on_different_shards(cluster)
    first = await node_factory(key_prefix=prefix)
    second = await node_factory(key_prefix=prefix)
    listeners = {
        session: await connect(second, token(sessions=(session,)), session=session)
        for session in ("plenary", "open-forum")
    }
    store = app_of(first)[SIGNALING].store
    for session, client in listeners.items():
        _, seq = await store.append(session, "test.ping", {"session": session})
        event = await client.next_event()
        assert (event["name"], event["seq"], event["data"]) == (
            "test.ping",
            seq,
            {"session": session},
        )
    # Each session's channel is a shard channel on its own shard, where the node with clients
    # subscribed (the one without clients has no need to).
    for session in listeners:
        channel = SessionKeys(prefix, session).channel
        owner = cluster.get_node_from_key(channel)
        shard_subs = await cluster.execute_command(
            "PUBSUB SHARDNUMSUB", channel, target_nodes=owner
        )
        assert shard_subs == [(channel.encode(), 1)]
        classic = await cluster.execute_command("PUBSUB NUMSUB", channel, target_nodes=owner)
        assert classic == [(channel.encode(), 0)]


async def test_a_state_change_through_one_node_reaches_participants_on_the_other(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    participant = await connect(second)
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            first.make_url("/api/v1/sessions/plenary/state"),
            json={"state": "closed"},
            headers=operator_headers(),
        )
        assert response.status == 200
    event = await participant.next_event()
    assert (event["name"], event["data"]["state"]) == ("session.state", "closed")


async def test_a_storm_larger_than_the_connection_pool_waits_instead_of_failing(
    settings: Settings,
) -> None:
    small = replace(settings, store_connections=2)
    client = store_client(small, settings.redis_url)
    key = SessionKeys(settings.key_prefix, "plenary").tag + ":storm"
    try:
        await asyncio.gather(*(client.incr(key) for _ in range(200)))

        async def transaction() -> None:
            pipe = client.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, 60)
            await pipe.execute()

        await asyncio.gather(*(transaction() for _ in range(50)))
        assert int(await client.get(key) or 0) == 250
    finally:
        await client.delete(key)
        await client.aclose()


async def test_qa_export_reads_the_questions_from_the_cluster(
    node: TestServer,
    connect: ClientFactory,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asker = await connect(node, token(sub="cli-asker"))
    await asker.request("qa.ask", text="Exported from a cluster?", lang="en")
    programme = tmp_path / "programme.toml"
    programme.write_text(PROGRAMME)
    monkeypatch.setenv("PODIUM_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("PODIUM_PROGRAMME", str(programme))
    monkeypatch.setenv("PODIUM_REDIS_CLUSTER", "true")
    out = tmp_path / "export.json"
    argv = ["qa", "export", "plenary", "--redis-url", settings.redis_url, "-o", str(out)]
    assert await asyncio.to_thread(main, argv) == 0
    data = json.loads(out.read_text())
    assert [q["text"] for q in data["questions"]] == ["Exported from a cluster?"]


def test_a_cluster_is_configured_by_a_tcp_url_and_one_setting() -> None:
    settings = load_settings(
        {"PODIUM_REDIS_URL": "redis://10.0.0.5:7000", "PODIUM_REDIS_CLUSTER": "yes"}
    )
    assert settings.redis_cluster
    assert settings.redis_url == "redis://10.0.0.5:7000"
    assert not load_settings({}).redis_cluster


@pytest.mark.parametrize(
    "url",
    ["", "unix:///run/redis.sock", "10.0.0.5:7000"],
    ids=["embedded store", "unix socket", "no scheme"],
)
def test_a_cluster_without_a_tcp_url_is_refused_naming_the_setting(url: str) -> None:
    environ = {"PODIUM_REDIS_CLUSTER": "1", "PODIUM_REDIS_URL": url}
    with pytest.raises(SettingsError, match="redis_cluster needs a redis:// or rediss://"):
        load_settings(environ)


async def test_a_cluster_node_without_a_tcp_url_refuses_to_start_and_stops_its_store(
    settings: Settings, programme: Programme
) -> None:
    app = create_app(replace(settings, redis_url=""), programme=programme)
    server = TestServer(app, host="127.0.0.1")
    with pytest.raises(SettingsError, match="redis_cluster needs a redis://"):
        await server.start_server()
    await server.close()
    # The embedded store it had started for the empty URL was stopped again.
    assert not list((settings.data_dir / "store").glob("store.sock"))


def test_a_cluster_setting_that_is_not_a_boolean_is_refused() -> None:
    with pytest.raises(SettingsError, match="redis_cluster must be of type bool"):
        load_settings({"PODIUM_REDIS_CLUSTER": "maybe", "PODIUM_REDIS_URL": "redis://h:1"})


def test_the_settings_file_can_name_a_cluster(tmp_path: Path) -> None:
    config = tmp_path / "podium.toml"
    config.write_text('redis_url = "rediss://cache.example:6380"\nredis_cluster = true\n')
    settings = load_settings({}, file=config)
    assert settings.redis_cluster
    assert settings.redis_url.startswith("rediss://")
