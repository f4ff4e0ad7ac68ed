"""The fan-out keeps order and completeness when pub/sub is imperfect: gaps are filled from history."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from redis.asyncio.cluster import RedisCluster

from config.appkeys import SIGNALING
from signaling.client import PodiumClient
from signaling.messages import event_body
from tests.conftest import ClientFactory, app_of

pytestmark = pytest.mark.both_stores


async def _append_silently(server: TestServer, n: int) -> int:
    """Writes an event to history as the store would, but never publishes it (a lost message)."""
    store = app_of(server)[SIGNALING].store
    keys = store.keys("plenary")
    epoch, _ = await store.position("plenary")
    seq = int(await store.client.hincrby(keys.meta, "seq", 1))
    body = event_body("test.silent", {"n": n}).decode()
    frame = f'{{"type":"event","session":"plenary","epoch":"{epoch}","seq":{seq},"ts":0,' + body
    await store.client.xadd(keys.history, {"a": "a", "f": frame}, id=f"{seq}-0")
    return seq


async def _kill_subscriptions(admin: aioredis.Redis) -> int:
    """Kills the store's pub/sub connections (on every shard of a cluster); returns how many."""
    maybe_cluster: object = admin
    if isinstance(maybe_cluster, RedisCluster):
        per_node: object = await maybe_cluster.client_kill_filter(
            _type="pubsub", target_nodes=RedisCluster.PRIMARIES
        )
        assert isinstance(per_node, dict)  # node name → connections killed there
        return sum(int(n) for n in per_node.values())
    return int(await admin.client_kill_filter(_type="pubsub"))


async def _names_until(client: PodiumClient, last: int) -> list[tuple[int, str]]:
    got: list[tuple[int, str]] = []
    while not got or got[-1][0] < last:
        event = await client.next_event()
        got.append((event["seq"], event["name"]))
    return got


async def test_a_lost_pubsub_message_is_filled_from_history_before_the_next_one(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node)
    store = app_of(node)[SIGNALING].store
    silent = await _append_silently(node, 1)
    _, loud = await store.append("plenary", "test.loud", {})
    got = await _names_until(client, loud)
    assert got == [(silent, "test.silent"), (loud, "test.loud")]


async def test_a_dropped_subscription_recovers_and_catches_up_from_history(
    node: TestServer, connect: ClientFactory, redis_client: aioredis.Redis
) -> None:
    client = await connect(node)
    store = app_of(node)[SIGNALING].store
    assert await _kill_subscriptions(redis_client) >= 1
    missed = [await _append_silently(node, i) for i in range(3)]
    await asyncio.sleep(0.5)
    _, last = await store.append("plenary", "test.after", {})
    got = await _names_until(client, last)
    assert [seq for seq, _ in got] == [*missed, last]
