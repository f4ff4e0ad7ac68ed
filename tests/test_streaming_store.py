"""Channel records and listener counts on the real store: atomic events, totals across nodes."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis

from signaling.store import SessionStore
from streaming.channels import ChannelRecord
from streaming.store import ChannelStore, claims_key, streams_key


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


async def test_a_channel_is_claimed_once_and_only_its_holder_writes_it_until_released_or_lapsed(
    redis_client: aioredis.Redis,
) -> None:
    store = _store(redis_client, "lc3")
    claims = [
        store.claim("plenary", "fr", f"node-{i % 2}", f"c{i}", "", 1000, 16_000) for i in range(10)
    ]
    results = await asyncio.gather(*claims)
    (won,) = [i for i, (taken, _) in enumerate(results) if taken]
    holder = f"node-{won % 2}"
    assert {node for _, node in results} == {holder}
    # the holder keeps it (a replacement, a takeover, a renewal); nobody else takes it
    assert await store.claim("plenary", "fr", holder, f"c{won}", f"c{won}", 2000, 17_000) == (
        True,
        holder,
    )
    assert await store.claim("plenary", "fr", "node-x", "cx", "", 2000, 17_000) == (False, holder)
    live = ChannelRecord().went_live("node-x", 2000, 15_000)
    assert await store.held("plenary", "fr", "cx", 17_000, live, {"id": "fr"}) == -1
    assert await store.record("plenary", "fr") == ChannelRecord()
    # lapsed: the next claim takes it, and the old holder can write nothing any more
    assert await store.claim("plenary", "fr", "node-x", "cx", "", 17_001, 32_000) == (
        True,
        "node-x",
    )
    assert await store.held("plenary", "fr", f"c{won}", 33_000, ChannelRecord(), {"id": "fr"}) < 0
    assert await store.held("plenary", "fr", "cx", 17_000, live, {"id": "fr"}) > 0
    assert await store.record("plenary", "fr") == live
    # released: free at once, and nothing written without a record or a view
    assert await store.held("plenary", "fr", "cx", 0) == 0
    assert await store.claim("plenary", "fr", "node-y", "cy", "", 3000, 18_000) == (False, "node-x")
    assert await store.claim("plenary", "fr", "node-y", "cy", "", 17_001, 32_000) == (
        True,
        "node-y",
    )
    assert await _events(store, "stream.channel") == [{"channel": {"id": "fr"}}]


async def test_a_channel_live_on_a_node_without_a_claim_is_held_and_reaping_drops_a_lapsed_claim(
    redis_client: aioredis.Redis,
) -> None:
    store = _store(redis_client, "lc4")
    live = ChannelRecord().went_live("node-old", 1000, 15_000)
    await store.write("plenary", "ar", live, {"id": "ar"})
    assert await store.claim("plenary", "ar", "node-b", "cb", "", 2000, 17_000) == (
        False,
        "node-old",
    )
    assert await store.claim("plenary", "ar", "node-old", "co", "", 2000, 16_000) == (
        True,
        "node-old",
    )
    raw = await redis_client.hget(streams_key(store.store, "plenary"), "ar")
    assert isinstance(raw, bytes)
    lost = live.went_offline("node_lost", 20_000)
    assert await store.replace("plenary", "ar", raw, lost, {"id": "ar"}, 20_000) > 0
    assert await redis_client.hget(claims_key(store.store, "plenary"), "ar") is None
    assert await store.held("plenary", "ar", "co", 35_000, live) == -1  # the reaped node lost it
