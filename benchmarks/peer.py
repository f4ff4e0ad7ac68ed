"""The python-socketio peer as a system under test (``benchmarks.system.System``).

The server is ``python -m benchmarks.sio_server`` (python-socketio on aiohttp, Redis manager) as a
child process pinned to one core. Participants join with the lean Socket.IO client
(``benchmarks.sioclient``) and a podium join token for their own identity (``signaling.identity.mint``,
the same claims podium's load generator uses). An event is published the way python-socketio
documents for an external process: a write-only ``socketio.AsyncRedisManager`` emits ``tick``
``{"i": i, "t": t}`` to the room ``opening-plenary``; it goes over Redis pub/sub to the server, whose
manager emits it to every socket in the room. The tally key is ``i``.

Self-check without the scenario harness::

    python -m benchmarks.peer --clients 1000 --events 20 --interval 0.1

joins N sockets, publishes E events and prints reach, the server's CPU per delivery and p50/p99
latency (server on the first core; this process and the store on the second).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import socketio  # type: ignore[import-untyped]  # no stubs, no py.typed

from benchmarks.node import cpu_seconds, free_port, raise_open_files
from benchmarks.podium import participant_token as participant_token
from benchmarks.sioclient import SioSocket, open_socket
from benchmarks.system import Attachable
from benchmarks.wsclient import AuthRefused, HandshakeError, Tally
from config.embedded import EmbeddedStore

SESSION = "opening-plenary"
ORIGIN = "http://bench.podium.test"
EVENT = "tick"
CHANNEL = "socketio"  # AsyncRedisManager's default pub/sub channel, on both sides
ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def spawn_server(
    port: int, store_url: str, secret: str, log: Path, cpu: int | None
) -> subprocess.Popen[bytes]:
    """Starts ``python -m benchmarks.sio_server`` on ``port``, output to ``log``, pinned to ``cpu``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    args = [
        sys.executable,
        "-m",
        "benchmarks.sio_server",
        "--port",
        str(port),
        "--redis-url",
        store_url,
        f"--jwt-secret={secret}",  # one argument: a secret may start with "-"
        "--origin",
        ORIGIN,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    if cpu is not None:
        # Python has started no thread yet; any thread the server makes inherits the mask.
        os.sched_setaffinity(process.pid, {cpu})
    return process


class SocketIO(Attachable):
    """One python-socketio server process, its participants and its Redis emitter."""

    name = "python-socketio"
    factory = "benchmarks.peer:SocketIO.attach"

    def __init__(self) -> None:
        super().__init__()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._emitter: socketio.AsyncRedisManager | None = None
        self._client: aioredis.Redis | None = None
        self._subscribed = False

    @property
    def pid(self) -> int:
        """The server's process (the Python process itself: no shell in between)."""
        if self._process is None:
            raise RuntimeError("the server is not started")
        return self._process.pid

    async def start(self, tmp: Path, store_url: str, cpu: int | None) -> None:
        """Starts the server pinned to ``cpu`` on ``store_url``; waits until ``/healthz`` answers.

        Raises:
            RuntimeError: the server exited or did not answer within READY_TIMEOUT (with its log).
        """
        self.port = free_port()
        self._log = tmp / "sio_server.log"
        self._process = spawn_server(self.port, store_url, self.secret, self._log, cpu)
        await self._wait_ready()
        self._client = aioredis.Redis.from_url(store_url)
        self._emitter = socketio.AsyncRedisManager(store_url, channel=CHANNEL, write_only=True)

    async def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        url = f"http://127.0.0.1:{self.port}/healthz"
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"the server exited with {self._process.returncode}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(url) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the server was not ready within {READY_TIMEOUT} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's output, for error messages."""
        if self._log is not None:
            with contextlib.suppress(OSError):
                return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def open(self, index: int, tally: Tally, timeout: float) -> SioSocket:
        """Joins participant ``index``; returns once the namespace connect was accepted."""
        token = participant_token(self._keys, index, self._now)
        return await open_socket("127.0.0.1", self.port, ORIGIN, token, tally, timeout)

    async def publish(self, i: int, t: float) -> int:
        """Emits ``tick {"i": i, "t": t}`` to the room through the Redis emitter; returns ``i``.

        The server's manager subscribes to the channel when its first client connects; the first
        publish waits (at most 5 s) until it has, so that no event is published to nobody.
        """
        if self._emitter is None or self._client is None:
            raise RuntimeError("the server is not started")
        if not self._subscribed:
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                counts = await self._client.pubsub_numsub(CHANNEL)
                if counts and counts[0][1] > 0:
                    break
                await asyncio.sleep(0.02)
            self._subscribed = True
        await self._emitter.emit(EVENT, {"i": i, "t": t}, room=SESSION, namespace="/")
        return i

    async def stop(self) -> None:
        """SIGTERM the server (SIGKILL after STOP_TIMEOUT) and close the emitter and store client."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            deadline = time.monotonic() + STOP_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if process.poll() is None:
                process.kill()
                process.wait()
        if self._emitter is not None and self._emitter.redis is not None:
            await self._emitter.redis.aclose()
        self._emitter = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None


# The self-check: python -m benchmarks.peer.


@dataclass
class Check:
    """What one self-check run measured."""

    clients: int
    events: int
    connected: int = 0
    join_failures: dict[str, int] = field(default_factory=dict)
    join_wall_s: float = 0.0
    join_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    loadgen_cpu_s: float = 0.0
    publish_wall_s: float = 0.0
    dropped: int = 0
    tally: Tally = field(default_factory=Tally)

    @property
    def expected(self) -> int:
        """Deliveries expected: every joined socket gets every event."""
        return self.connected * self.events

    @property
    def reach(self) -> float:
        """Distinct in-order deliveries ÷ (clients × events)."""
        total = self.clients * self.events
        return self.tally.delivered / total if total else 0.0

    def summary(self) -> dict[str, Any]:
        """The figures, as printed."""
        t = self.tally
        latencies = sorted(t.latencies)
        delivered = t.delivered
        return {
            "clients": self.clients,
            "events": self.events,
            "connected": self.connected,
            "join_failures": self.join_failures,
            "joins_per_s": self.connected / self.join_wall_s if self.join_wall_s else 0.0,
            "server_cpu_us_per_join": self.join_cpu_s / self.connected * 1e6
            if self.connected
            else 0.0,
            "delivered": delivered,
            "reach": self.reach,
            "duplicates": t.duplicates,
            "out_of_order": t.out_of_order,
            "dropped_sockets": self.dropped,
            "server_cpu_us_per_delivery": self.server_cpu_s / delivered * 1e6 if delivered else 0.0,
            "server_cpu_pct_publish": 100 * self.server_cpu_s / self.publish_wall_s
            if self.publish_wall_s
            else 0.0,
            "loadgen_cpu_pct_publish": 100 * self.loadgen_cpu_s / self.publish_wall_s
            if self.publish_wall_s
            else 0.0,
            "latency_p50_ms": percentile(latencies, 50) * 1000,
            "latency_p99_ms": percentile(latencies, 99) * 1000,
            "latency_max_ms": (latencies[-1] if latencies else 0.0) * 1000,
            "unstamped": t.unstamped,
        }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not values:
        return 0.0
    rank = math.ceil(q / 100 * len(values)) - 1
    return values[min(len(values) - 1, max(0, rank))]


async def check(
    clients: int, events: int, interval: float, *, concurrency: int = 25, quiet: float = 3.0
) -> Check:
    """Joins ``clients`` sockets to a fresh peer, publishes ``events`` and counts what arrived.

    The server is pinned to the first core this process may use; this process and the store to the
    second (as the benchmarks do). Raises RuntimeError when the server does not start.
    """
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, gen_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    affinity = os.sched_getaffinity(0)
    limits = raise_open_files(clients + 256)
    if gen_cpu is not None:
        os.sched_setaffinity(0, {gen_cpu})
    result = Check(clients, events)
    system = SocketIO()
    sockets: list[SioSocket] = []
    try:
        with tempfile.TemporaryDirectory(prefix="podium-peer-") as tmp:
            store = EmbeddedStore(Path(tmp) / "store")
            url = await store.start()
            try:
                await system.start(Path(tmp) / "sio", url, server_cpu)
                await _join(system, clients, concurrency, result, sockets)
                await asyncio.sleep(1.0)  # the joins' presence writes and room entries settle
                await _publish(system, events, interval, quiet, result)
            finally:
                await system.stop()
                for sock in sockets:
                    sock.abort()
                await store.stop()
    finally:
        os.sched_setaffinity(0, affinity)
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
    return result


async def _join(
    system: SocketIO, clients: int, concurrency: int, result: Check, sockets: list[SioSocket]
) -> None:
    pending = iter(range(clients))
    failures: dict[str, int] = {}
    tally = result.tally

    async def worker() -> None:
        for index in pending:  # one shared iterator: each index is taken once
            try:
                sockets.append(await system.open(index, tally, 20.0))
            except (OSError, TimeoutError, HandshakeError, AuthRefused) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:80]
                failures[reason] = failures.get(reason, 0) + 1

    cpu0, started = cpu_seconds(system.pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    result.join_wall_s = time.perf_counter() - started
    result.join_cpu_s = cpu_seconds(system.pid) - cpu0
    result.connected = len(sockets)
    result.join_failures = failures


async def _publish(
    system: SocketIO, events: int, interval: float, quiet: float, result: Check
) -> None:
    loop = asyncio.get_running_loop()
    tally = result.tally
    me = os.getpid()
    gc.collect()
    gc.disable()  # the load generator's pauses must not show up as latency
    try:
        cpu0, gen0, t0 = cpu_seconds(system.pid), cpu_seconds(me), time.perf_counter()
        due = loop.time()
        for i in range(events):
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            due = max(due, loop.time()) + interval
            await system.publish(i, time.time())
        seen, since = tally.delivered, time.monotonic()
        while tally.delivered < result.expected and time.monotonic() - since < quiet:
            await asyncio.sleep(0.02)
            if tally.delivered != seen:
                seen, since = tally.delivered, time.monotonic()
        result.publish_wall_s = time.perf_counter() - t0
        result.server_cpu_s = cpu_seconds(system.pid) - cpu0
        result.loadgen_cpu_s = cpu_seconds(me) - gen0
        result.dropped = tally.dropped  # before stop() closes them all
    finally:
        gc.enable()


def table(summary: dict[str, Any]) -> str:
    """The self-check's figures as plain text."""
    s = summary
    rows = (
        ("connected", f"{s['connected']:,} of {s['clients']:,}"),
        ("joins per second", f"{s['joins_per_s']:,.0f}/s ({s['server_cpu_us_per_join']:,.0f} µs of server CPU per join)"),
        ("reach", f"{100 * s['reach']:.3f} % ({s['delivered']:,} deliveries)"),
        ("duplicates / out of order / dropped", f"{s['duplicates']} / {s['out_of_order']} / {s['dropped_sockets']}"),
        ("server CPU per delivery", f"{s['server_cpu_us_per_delivery']:,.1f} µs ({s['server_cpu_pct_publish']:.0f} % of a core)"),
        ("delivery latency p50 / p99 / max", f"{s['latency_p50_ms']:.1f} / {s['latency_p99_ms']:.1f} / {s['latency_max_ms']:.1f} ms"),
        ("load generator CPU (publish)", f"{s['loadgen_cpu_pct_publish']:.0f} % of a core"),
    )  # fmt: skip
    width = max(len(label) for label, _ in rows)
    lines = [f"python-socketio peer: {s['clients']:,} sockets, {s['events']} events"]
    lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
    if s["join_failures"]:
        lines.append(f"  join failures: {s['join_failures']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.peer``: the peer's self-check."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peer", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000, help="sockets (default 1000)")
    parser.add_argument("--events", type=int, default=20, help="events published (default 20)")
    parser.add_argument(
        "--interval", type=float, default=0.1, help="seconds between events (default 0.1)"
    )
    args = parser.parse_args(argv)
    result = asyncio.run(check(args.clients, args.events, args.interval))
    print(table(result.summary()))
    return 0 if result.reach == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
