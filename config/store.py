"""The store client: one Redis (or Valkey) server, or a Redis Cluster when the settings say so."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException
from redis.typing import EncodableT

from config.settings import Settings, check_cluster_url


def store_client(settings: Settings, url: str) -> aioredis.Redis:
    """A client of the store at ``url``, with the node's pool size and timeouts.

    On a cluster (``settings.redis_cluster``) the URL names any one primary; the client discovers
    the others, routes each command to the shard owning its keys' slot and follows MOVED/ASK. Every
    key of a session shares one hash tag, so each script and transaction runs on one shard.

    The cluster client is returned as a ``Redis``: podium sends both the same commands (scripts,
    pipelines, single-slot transactions, SPUBLISH), and the one place they differ, subscribing,
    checks for the cluster (signaling/subscriber.py).

    Raises:
        SettingsError: a cluster was asked for with a URL no cluster node can have.
    """
    if settings.redis_cluster:
        check_cluster_url(url)
        cluster = QueuedCluster.from_url(
            url,
            slots=settings.store_connections,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=15,
        )
        return cast(aioredis.Redis, cluster)
    # A bounded pool that queues callers rather than failing them: a join storm waits a few
    # milliseconds for a connection instead of being refused "too many connections".
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=settings.store_connections,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=15,
    )
    # The client owns the pool: closing the client closes every connection of it.
    return aioredis.Redis.from_pool(pool)


class QueuedCluster(RedisCluster):
    """A cluster client whose callers queue for a connection, as ``BlockingConnectionPool`` makes
    them on one server: redis-py's cluster pool raises ``MaxConnectionsError`` at once when a shard's
    connections are all busy, and a join or vote storm on one session — one slot, one shard — would
    be refused instead of waiting a few milliseconds.

    At most ``slots`` commands and pipelines are in flight at once; each holds at most one
    connection per shard, so a shard never needs more than ``slots`` plus the fan-out's subscription.
    """

    def __init__(self, *args: Any, slots: int, **kwargs: Any) -> None:
        kwargs["max_connections"] = slots + 1  # per shard
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Semaphore(slots)

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        """Runs one command once a slot is free."""
        async with self.gate:
            return await super().execute_command(*args, **kwargs)

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> ClusterPipeline:
        """A pipeline (a single-slot transaction when ``transaction``) that queues like a command."""
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        # redis-py declares an attribute abstract that its own ClusterPipeline sets at runtime.
        return QueuedPipeline(self, transaction)  # type: ignore[abstract]


class QueuedPipeline(ClusterPipeline):
    """A cluster pipeline that waits for one of its client's slots to run."""

    def __init__(self, client: QueuedCluster, transaction: bool | None = None) -> None:
        super().__init__(client, transaction)
        self._gate = client.gate

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        """Sends the queued commands once a slot is free."""
        async with self._gate:
            return await super().execute(raise_on_error, allow_redirections)
