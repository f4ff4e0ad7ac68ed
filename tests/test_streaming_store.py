"""Channel records and listener counts on the real store: atomic events, totals across nodes."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from signaling.store import SessionStore
from streaming.channels import ChannelRecord
from streaming.store import ChannelStore


def _store(client: aioredis.Redis, prefix: str) -> ChannelStore:
    return ChannelStore(SessionStore(client, prefix=prefix, history_size=50))


async def _events(store: ChannelStore, name: str) -> list[dict[str, object]]:
    _, seq = await store.store.position("plenary")
    frames = [json.loads(e.frame) for e in await store.store.range("plenary", 0, seq)]
    return [f["data"] for f in frames if f["name"] == name]


async def test_listener_counts_of_several_nodes_add_up_and_a_silent_node_drops_out(
    redis_client: aioredis.Redis,
) -> None:
    store = _store(redis_client, "lc1")
    assert await store.listeners("plenary", "node-a", {"fr": 2, "floor": 0}, 1000, 10_000) > 0
    assert await store.listeners("plenary", "node-b", {"fr": 1, "floor": 3}, 2000, 10_000) > 0
    # the same totals again: nothing to tell
    assert await store.listeners("plenary", "node-b", {"fr": 1, "floor": 3}, 3000, 10_000) == 0
    # node-a stopped renewing: at its lease's end its listeners drop out of the totals
    assert await store.listeners("plenary", "node-b", {"fr": 1, "floor": 3}, 12_000, 10_000) > 0
    assert await store.listeners("plenary", "node-b", {"fr": 0, "floor": 0}, 13_000, 10_000) > 0
    assert await _events(store, "stream.listeners") == [
        {"listeners": {"fr": 2}},
        {"listeners": {"floor": 3, "fr": 3}},
        {"listeners": {"floor": 3, "fr": 1}},
        {"listeners": {}},
    ]


async def test_a_channel_record_and_its_event_are_written_together(
    redis_client: aioredis.Redis,
) -> None:
    store = _store(redis_client, "lc2")
    assert await store.record("plenary", "fr") == ChannelRecord()
    live = ChannelRecord().went_live("node-a", 1000, 15_000)
    seq = await store.write("plenary", "fr", live, {"id": "fr", "state": "live"})
    assert seq > 0
    assert await store.record("plenary", "fr") == live
    assert await store.records("plenary") == {"fr": live}
    assert await _events(store, "stream.channel") == [{"channel": {"id": "fr", "state": "live"}}]
