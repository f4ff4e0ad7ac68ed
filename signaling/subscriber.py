"""Session-channel subscriptions: SSUBSCRIBE on one server, or on each shard of a Redis Cluster.

A session's channel carries the session's hash tag, so on a cluster it belongs to the shard (primary)
that owns the session's slot. redis-py's ``ClusterPubSub`` keeps one connection per shard that holds
a subscribed channel and moves a channel to its new owner after a slot migration; this module names
those connections (*shards*) so the fan-out can read each on its own task — a quiet shard never
delays a busy one. On one server there is a single shard, ``""``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub, RedisCluster

SINGLE = ""


class Subscriber:
    """This node's subscriptions to session channels, readable shard by shard."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._cluster: RedisCluster | None = None
        self._sharded: ClusterPubSub | None = None
        # The cluster client stands in for a Redis everywhere else (config/store.py casts it: the
        # commands podium sends are the same); pub/sub is where the two differ.
        maybe_cluster: object = client
        if isinstance(maybe_cluster, RedisCluster):
            self._cluster = maybe_cluster
            self._sharded = maybe_cluster.pubsub()
        self._pubsub: PubSub = self._sharded or client.pubsub()

    async def subscribe(self, channel: bytes) -> None:
        """Sends SSUBSCRIBE for a channel (to the shard that owns it); the confirmation is a message."""
        if self._cluster is not None:
            await self._cluster.initialize()  # the slot map, if no command has loaded it yet
        await self._pubsub.ssubscribe(channel)

    def shards(self) -> list[str]:
        """The shards with a subscription connection now."""
        if self._sharded is not None:
            return list(self._sharded.node_pubsub_mapping)
        return [SINGLE] if self._pubsub.subscribed else []

    async def get_message(self, shard: str, timeout: float) -> dict[str, Any] | None:
        """The next message of one shard's connection, or None after ``timeout`` seconds.

        Raises:
            redis.exceptions.ConnectionError: the connection broke (the next call reconnects and
                subscribes again; the confirmations come as messages).
        """
        if self._sharded is None or self._cluster is None:
            message = await self._pubsub.get_message(timeout=timeout)
        else:
            node = self._cluster.get_node(node_name=shard)
            if node is None:  # left the cluster: its channels are being moved
                await asyncio.sleep(timeout)
                return None
            message = await self._sharded.get_sharded_message(target_node=node, timeout=timeout)
        return message if isinstance(message, dict) else None

    async def aclose(self) -> None:
        """Closes every subscription connection."""
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
