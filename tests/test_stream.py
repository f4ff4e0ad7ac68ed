"""The event stream: ordered events with (epoch, seq), resume after a disconnect, resync when gone."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestServer

from config.appkeys import SIGNALING
from signaling.client import PodiumClient
from tests.conftest import ClientFactory, NodeFactory, app_of


async def _emit(server: TestServer, count: int) -> list[int]:
    store = app_of(server)[SIGNALING].store
    seqs = []
    for i in range(count):
        _, seq = await store.append("plenary", "test.tick", {"n": i})
        seqs.append(seq)
    return seqs


async def _drain(client: PodiumClient, count: int) -> list[dict[str, object]]:
    return [await client.next_event() for _ in range(count)]


async def test_events_arrive_in_order_with_increasing_seq(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node)
    seqs = await _emit(node, 20)
    events = await _drain(client, 20)
    assert [e["seq"] for e in events] == seqs
    assert [e["data"] for e in events] == [{"n": i} for i in range(20)]
    assert len({e["epoch"] for e in events}) == 1


async def test_client_that_missed_events_gets_exactly_those_once_in_order_on_resume(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node)
    await _emit(node, 3)
    seen = await _drain(client, 3)
    await client.close()
    missed = await _emit(node, 7)
    resumed = await client.reconnect()
    assert resumed["type"] == "resumed"
    assert resumed["missed"] == 7
    replayed = await _drain(client, 7)
    assert [e["seq"] for e in replayed] == missed
    assert [e["data"] for e in replayed] == [{"n": i} for i in range(7)]
    live = await _emit(node, 1)
    after = await client.next_event()
    assert after["seq"] == live[0]
    assert client.events.empty()
    assert seen[-1]["seq"] == missed[0] - 1


async def test_client_whose_missed_events_left_history_is_told_to_resync(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node)
    await client.close()
    await _emit(node, 60)  # the test node keeps 50 events of history
    first = await client.reconnect()
    assert first["type"] == "welcome"
    assert client.resyncs == 1
    resync = await client.next_event()
    assert resync == {"type": "resync", "id": resync["id"], "reason": "history_gone"}
    assert first["seq"] >= 60


async def test_client_from_another_epoch_is_told_to_resync(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node)
    await client.close()
    client.epoch = "0000feedbeef0000"
    first = await client.reconnect()
    assert first["type"] == "welcome"
    resync = await client.next_event()
    assert resync["reason"] == "epoch_changed"


async def test_client_claiming_a_position_ahead_of_the_stream_is_told_to_resync(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node)
    await client.close()
    client.seq += 1000
    await client.reconnect()
    resync = await client.next_event()
    assert resync["reason"] == "ahead_of_stream"


async def test_two_nodes_on_one_store_deliver_the_same_events_in_the_same_order(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    a = await connect(first)
    b = await connect(second)
    stores = [app_of(first)[SIGNALING].store, app_of(second)[SIGNALING].store]
    for i in range(30):
        await stores[i % 2].append("plenary", "test.tick", {"n": i})
    on_a = await _drain(a, 30)
    on_b = await _drain(b, 30)
    assert [(e["seq"], e["data"]) for e in on_a] == [(e["seq"], e["data"]) for e in on_b]
    assert [e["data"] for e in on_a] == [{"n": i} for i in range(30)]


async def test_events_written_while_clients_join_are_neither_lost_nor_doubled(
    node: TestServer, connect: ClientFactory
) -> None:
    watcher = await connect(node)
    writer = asyncio.create_task(_emit(node, 200))
    late = [await connect(node) for _ in range(5)]
    seqs = await writer
    await _until_seq(watcher, seqs[-1])
    for client in late:
        assert client.welcome is not None
        got = await _until_seq(client, seqs[-1])
        # Every seq after the snapshot exactly once, in order: nothing lost in the join window.
        assert [e["seq"] for e in got] == list(range(client.welcome["seq"] + 1, seqs[-1] + 1))


async def _until_seq(client: PodiumClient, last: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while not got or got[-1]["seq"] < last:
        got.append(await client.next_event())
    await asyncio.sleep(0.05)
    assert client.events.empty()
    return got
