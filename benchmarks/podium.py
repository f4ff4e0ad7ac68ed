"""Podium as a system under test (``benchmarks.system.System``) for the broadcast scenarios.

The server is one ``python -m config.cli serve --demo`` node (``benchmarks.node.start_node``) pinned to
one core. Participants join with the lean raw-socket client (``benchmarks.wsclient``) and a token
minted with the node's secret (``signaling.identity.mint``); an event is published the way the product
publishes one: ``SessionStore.append`` (history stream + sharded pub/sub), whose seq is the tally key.

``client_spec()`` / ``Podium.attach(spec)`` give a client-only copy for the probe process (which opens
sockets of the same system from another process) and ``metrics()`` reads the node's ``/metrics``, a
podium-only extra the harness uses when a system has it.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import redis.asyncio as aioredis

from benchmarks.node import Node, scrape, start_node, stop_node, wait_ready
from benchmarks.system import Attachable
from benchmarks.wsclient import EVENT_NAME, BenchSocket, Tally, open_socket
from signaling.identity import Identity, Role, TokenKeys, mint
from signaling.store import SessionStore

SESSION = "opening-plenary"
ORIGIN = "http://bench.podium.test"
# Per-connection command rate: the participants send nothing but their auth frame and pongs.
NODE_ENV = {
    "PODIUM_NODE_ID": "bench-node",
    "PODIUM_LOG_LEVEL": "WARNING",
    "PODIUM_RATE": "10",
    "PODIUM_BURST": "20",
    "PODIUM_HEARTBEAT": "20",
}


def participant_token(keys: TokenKeys, index: int, now: int) -> str:
    """The join token of participant ``index``: its own identity, a quarter of them in the venue."""
    identity = Identity(
        sub=f"bench-{index:06d}",
        name=f"Bench {index}",
        role=Role.PARTICIPANT,
        sessions=(SESSION,),
        mode="venue" if index % 4 == 0 else "remote",
        group="civil-society",
        country="CH",
    )
    return mint(keys, identity, now=now, ttl=3600)


class Podium(Attachable):
    """One podium node, its participants and its publish path."""

    name = "podium"
    factory = "benchmarks.podium:Podium.attach"

    def __init__(self) -> None:
        super().__init__()
        self.prefix = "bench" + secrets.token_hex(4)
        self._node: Node | None = None
        self._client: aioredis.Redis | None = None
        self._store: SessionStore | None = None

    @property
    def pid(self) -> int:
        """The node's process."""
        if self._node is None:
            raise RuntimeError("the node is not started")
        return self._node.pid

    async def start(self, tmp: Path, store_url: str, cpu: int | None) -> None:
        """Starts the node pinned to ``cpu`` on a fresh key prefix and waits for ``/readyz``."""
        self._node = start_node(
            data_dir=tmp / "node",
            store_url=store_url,
            cpu=cpu,
            env={
                **NODE_ENV,
                "PODIUM_JWT_SECRET": self.secret,
                "PODIUM_ALLOWED_ORIGINS": ORIGIN,
                "PODIUM_KEY_PREFIX": self.prefix,
            },
        )
        self.port = self._node.port
        await wait_ready(self._node)
        self._client = aioredis.Redis.from_url(store_url)
        self._store = SessionStore(self._client, prefix=self.prefix, history_size=10_000)

    async def open(self, index: int, tally: Tally, timeout: float) -> BenchSocket:
        """Joins participant ``index``; returns once its ``welcome`` arrived."""
        token = participant_token(self._keys, index, self._now)
        return await open_socket("127.0.0.1", self.port, ORIGIN, token, SESSION, tally, timeout)

    async def publish(self, i: int, t: float) -> int:
        """Appends ``bench.tick {"i": i, "t": t}`` to the session; returns its seq."""
        if self._store is None:
            raise RuntimeError("the node is not started")
        _, seq = await self._store.append(SESSION, EVENT_NAME, {"i": i, "t": t})
        return seq

    async def metrics(self) -> dict[str, float]:
        """The node's Prometheus samples (fan-out histogram, delivered counter, join results)."""
        if self._node is None:
            return {}
        return await scrape(self._node)

    async def stop(self) -> None:
        """Stops the node (it drains, closing every socket) and closes the store client."""
        if self._node is not None:
            await stop_node(self._node)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
