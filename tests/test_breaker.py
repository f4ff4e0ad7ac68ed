"""The store breaker: refuse at once while the store is known down, one probe a period, recover."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from signaling.breaker import Breaker
from signaling.errors import StoreUnavailable
from signaling.store import SessionStore


def test_a_healthy_store_lets_every_call_and_probe_through() -> None:
    breaker = Breaker(retry_after=1.0)
    assert breaker.allow()
    assert all(breaker.trial(t) for t in (0.0, 0.0, 0.1))
    assert not breaker.down


def test_after_a_failure_calls_are_refused_and_one_probe_a_period_may_try() -> None:
    breaker = Breaker(retry_after=1.0)
    breaker.failed(10.0)
    assert breaker.down
    assert not breaker.allow()
    assert not breaker.trial(10.5)
    assert breaker.trial(11.0)
    assert not breaker.trial(11.0)  # one probe at a time
    assert not breaker.allow()  # and clients still refused while it is out
    breaker.failed(11.2)
    assert not breaker.trial(12.0)
    assert breaker.down_since == 10.0  # the outage began at the first failure


def test_a_successful_probe_closes_the_breaker() -> None:
    breaker = Breaker(retry_after=1.0)
    breaker.failed(0.0)
    assert breaker.trial(1.0)
    breaker.succeeded()
    assert not breaker.down
    assert breaker.allow()


def test_an_abandoned_probe_lets_another_try() -> None:
    breaker = Breaker(retry_after=1.0)
    breaker.failed(0.0)
    assert breaker.trial(1.0)
    breaker.abandoned()
    assert breaker.trial(1.0)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_store_known_to_be_down_refuses_without_sending_and_a_probe_brings_it_back() -> (
    None
):
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    clock = _Clock()
    store = SessionStore(client, prefix="t", history_size=10, clock=clock)
    sent: list[str] = []

    async def call(name: str) -> str:
        sent.append(name)
        raise redis.exceptions.ConnectionError("refused")

    try:
        with pytest.raises(StoreUnavailable):
            await store.guard("read", call("first"))
        refused = []
        for name in ("second", "third"):
            with pytest.raises(StoreUnavailable) as exc:
                await store.guard("read", call(name))
            refused.append(exc.value.retry_after)
        assert sent == ["first"]  # the others were never sent (and no coroutine left unawaited)
        assert refused == [1.0, 1.0]
        assert not await store.ping()  # within the period: answered at once, nothing sent
        clock.now = 1.0
        assert not await store.ping()  # the probe: the store still does not answer
        assert not store.breaker.allow()

        async def answered() -> bool:
            return True

        store.client.ping = answered  # type: ignore[assignment,method-assign]
        clock.now = 2.0
        assert await store.ping()
        assert store.breaker.allow()
        assert await store.guard("read", answered())
    finally:
        await client.aclose()


async def test_a_slow_ping_makes_the_node_not_ready_without_refusing_writes() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0")
    store = SessionStore(client, prefix="t", history_size=10, clock=_Clock())

    async def slow() -> bool:
        await asyncio.sleep(1)
        return True

    async def answered() -> bool:
        return True

    store.client.ping = slow  # type: ignore[assignment,method-assign]
    try:
        assert not await store.ping(timeout=0.05)
        assert store.breaker.allow()  # slow is not down
        assert await store.guard("read", answered())
    finally:
        await client.aclose()


async def test_a_pool_with_every_connection_busy_refuses_without_marking_the_store_down(
    store_url: str,
) -> None:
    pool = aioredis.BlockingConnectionPool.from_url(store_url, max_connections=1, timeout=0.1)
    client = aioredis.Redis.from_pool(pool)
    store = SessionStore(client, prefix="t", history_size=10)
    try:
        # One caller holds the only connection (a blocking pop), so the next waits past the
        # pool's timeout: this node is overloaded, the store is fine.
        holder = asyncio.ensure_future(client.blpop(["t:breaker:nothing"], timeout=1))
        await asyncio.sleep(0.05)
        with pytest.raises(StoreUnavailable):
            await store.guard("read", client.get("t:breaker:key"))
        assert store.breaker.allow()  # other callers still go through
        await holder
        assert await store.guard("read", client.get("t:breaker:key")) is None
    finally:
        await client.aclose()
