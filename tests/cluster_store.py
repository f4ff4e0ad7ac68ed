"""A three-primary Redis Cluster on loopback for tests, run from the same server binary as the store.

Each primary is a child process with ``--cluster-enabled yes`` on a free loopback port (and a free
cluster-bus port); the 16384 slots are split in three ranges, the nodes meet, and ``start`` returns
once every node reports ``cluster_state:ok`` and knows the other two. No persistence: a test cluster
lives for one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import redis.asyncio as aioredis

from config.embedded import find_server_binary

SLOTS = 16384
PRIMARIES = 3


class ClusterStoreError(Exception):
    """The test cluster could not be started."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def slot_ranges(primaries: int = PRIMARIES) -> list[tuple[int, int]]:
    """The 16384 slots split into ``primaries`` contiguous inclusive ranges."""
    size = SLOTS // primaries
    starts = [i * size for i in range(primaries)]
    ends = [*(s - 1 for s in starts[1:]), SLOTS - 1]
    return list(zip(starts, ends, strict=True))


class ClusterStore:
    """Three cluster primaries owned by this process, in ``<directory>/<port>``."""

    def __init__(self, directory: Path, primaries: int = PRIMARIES) -> None:
        self.dir = directory.resolve()
        self.primaries = primaries
        self.ports: list[int] = []
        self.buses: list[int] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """A seed URL for a cluster client (it discovers the other primaries)."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    async def start(self, timeout: float = 20.0) -> str:
        """Starts the primaries, assigns the slots, and waits for a healthy cluster; returns a URL."""
        binary = find_server_binary()
        for _ in range(self.primaries):
            port, bus = _free_port(), _free_port()
            node_dir = self.dir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            args = [
                str(binary),
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-port", str(bus),
                "--cluster-config-file", str(node_dir / "nodes.conf"),
                "--cluster-node-timeout", "5000",
                "--dir", str(node_dir),
                "--appendonly", "no",
                "--save", "",
                "--daemonize", "no",
                "--logfile", str(node_dir / "server.log"),
            ]  # fmt: skip
            self.ports.append(port)
            self.buses.append(bus)
            self.processes.append(
                subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        try:
            await self._form(timeout)
        except BaseException:
            await self.stop()
            raise
        return self.url

    async def stop(self, timeout: float = 10.0) -> None:
        """Stops every primary (SIGTERM, then SIGKILL if one hangs)."""
        processes, self.processes = self.processes, []
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in processes:
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if process.poll() is None:
                process.kill()
                process.wait()

    async def _form(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        clients = [aioredis.Redis(host="127.0.0.1", port=port) for port in self.ports]
        try:
            for client in clients:
                await _until(deadline, partial(_answers, client), "a primary did not start")
            for client, (first, last) in zip(clients, slot_ranges(self.primaries), strict=True):
                await client.cluster("ADDSLOTSRANGE", first, last)
            for port, bus in zip(self.ports[1:], self.buses[1:], strict=True):
                await clients[0].cluster("MEET", "127.0.0.1", port, bus)
            for client in clients:
                await _until(deadline, partial(self._healthy, client), "the cluster did not form")
        finally:
            for client in clients:
                await client.aclose()

    async def _healthy(self, client: aioredis.Redis) -> bool:
        info = await client.cluster("INFO")  # parsed by redis-py into a dict
        return bool(
            info.get("cluster_state") == "ok"
            and int(info.get("cluster_known_nodes", 0)) == self.primaries
        )


async def _answers(client: aioredis.Redis) -> bool:
    with contextlib.suppress(Exception):
        return bool(await client.ping())
    return False


async def _until(deadline: float, check: Callable[[], Awaitable[bool]], failure: str) -> None:
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise ClusterStoreError(failure)
