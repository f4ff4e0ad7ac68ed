"""Presence: people online per session by mode and role, each person once however many tabs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from config.appkeys import SIGNALING
from signaling.client import PodiumClient
from signaling.identity import Role
from signaling.presence import summarise
from tests.conftest import ClientFactory, NodeFactory, app_of, token

# Scenario 8 of issue 7: the same tests on one store server and on a three-primary Redis Cluster.
pytestmark = pytest.mark.both_stores


async def _settled(client: PodiumClient, online: int, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        update = await client.next_presence(max(0.1, deadline - time.monotonic()))
        if update["online"] == online:
            return update


async def test_three_tabs_of_one_person_count_as_one(
    node: TestServer, connect: ClientFactory
) -> None:
    tok = token(sub="amina")
    tabs = [await connect(node, tok) for _ in range(3)]
    counts = await app_of(node)[SIGNALING].counts("plenary")
    assert counts.online == 1
    assert counts.remote == 1
    assert counts.roles == {"participant": 1}
    assert counts.unique == 1
    await tabs[0].close()
    await tabs[1].close()
    await asyncio.sleep(0.1)
    assert (await app_of(node)[SIGNALING].counts("plenary")).online == 1
    await tabs[2].close()
    await asyncio.sleep(0.1)
    assert (await app_of(node)[SIGNALING].counts("plenary")).online == 0


async def test_counts_split_by_mode_and_role_follow_joins_and_leaves(
    node: TestServer, connect: ClientFactory
) -> None:
    watcher = await connect(node, token(Role.MODERATOR, sub="mod", mode="venue"))
    venue = [await connect(node, token(sub=f"v{i}", mode="venue")) for i in range(3)]
    remote = [await connect(node, token(sub=f"r{i}")) for i in range(2)]
    update = await _settled(watcher, 6)
    assert (update["venue"], update["remote"]) == (4, 2)
    assert update["roles"] == {"moderator": 1, "participant": 5}
    for client in venue[:2]:
        await client.close()
    update = await _settled(watcher, 4)
    assert (update["venue"], update["remote"]) == (2, 2)
    assert update["unique"] == 6
    assert len(remote) == 2


async def test_reconnecting_client_is_counted_once(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node, token(sub="returning"))
    for _ in range(3):
        await client.reconnect()
    await asyncio.sleep(0.1)
    counts = await app_of(node)[SIGNALING].counts("plenary")
    assert (counts.online, counts.unique) == (1, 1)


async def test_presence_updates_are_coalesced_to_about_one_a_second(
    node: TestServer, connect: ClientFactory
) -> None:
    watcher = await connect(node, token(sub="watcher"))
    started = time.monotonic()
    for i in range(20):
        await connect(node, token(sub=f"p{i}"))
    await _settled(watcher, 21, timeout=6)
    updates = 1 + watcher.presence_updates.qsize()
    elapsed = time.monotonic() - started
    assert updates <= elapsed + 2


async def test_presence_of_a_node_that_died_is_subtracted_by_the_survivor(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    survivor, doomed = await node_factory(), await node_factory()
    await connect(survivor, token(sub="stays"))
    gone = await connect(doomed, token(sub="leaves-with-node"))
    service = app_of(survivor)[SIGNALING]
    assert (await service.counts("plenary")).online == 2
    # The doomed node stops renewing its lease; once it lapses any node reaps it.
    dead = app_of(doomed)[SIGNALING]
    await dead.stop()
    keys = service.store.keys("plenary")
    await service.store.client.zadd(keys.nodes, {dead.presence.node: 1})  # its lease lapsed
    await service.maintain()
    assert (await service.counts("plenary")).online == 1
    await gone.close()


def test_summary_splits_the_store_hash_into_modes_and_roles() -> None:
    counts = summarise({"venue|participant": 3, "remote|participant": 2, "remote|moderator": 1}, 9)
    assert (counts.online, counts.venue, counts.remote, counts.unique) == (6, 3, 3, 9)
    assert counts.roles == {"participant": 5, "moderator": 1}
    assert summarise({"venue|display": 0}, 0).online == 0
