"""The raw fan-out floor on this machine: the same frame bytes written to N asyncio transports.

No podium, no Redis, no WebSocket handshake: a bare asyncio server pinned to the first core accepts N
loopback TCP connections and, E times, writes one pre-built frame to every transport in a loop (what
``signaling.fanout`` does per event, minus everything else); a reader pinned to the second core drains
the sockets. The server's CPU per delivery is the floor that podium's figure compares with (PRODUCT.md
§5 quotes ≈ 10 µs for this class of machine). Run: ``python -m benchmarks.floor --clients 5000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time

from benchmarks.node import cpu_seconds, free_port, raise_open_files
from benchmarks.steering import steered
from signaling.framing import text_frame

# About the size of a podium event frame with the benchmark's data (154 bytes framed; theirs: ~162).
PAYLOAD = b"x" * 150


async def serve(port: int, clients: int, events: int, interval: float) -> None:
    """The writing side: accept ``clients`` connections, write ``events`` frames to each, report."""
    transports: list[asyncio.Transport] = []
    ready = asyncio.Event()

    class Sink(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transports.append(transport)
            if len(transports) == clients:
                ready.set()

    server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", port, backlog=1024)
    print("listening", flush=True)
    await asyncio.wait_for(ready.wait(), 120)
    await asyncio.sleep(1.0)
    frame = text_frame(PAYLOAD)
    cpu0, t0 = cpu_seconds(os.getpid()), time.perf_counter()
    for _ in range(events):
        for transport in transports:
            transport.write(frame)
        await asyncio.sleep(interval)
    cpu = cpu_seconds(os.getpid()) - cpu0
    wall = time.perf_counter() - t0
    print(json.dumps({"server_cpu_s": cpu, "wall_s": wall}), flush=True)
    await asyncio.sleep(1.0)
    server.close()
    for transport in transports:
        transport.abort()


async def drain(port: int, clients: int, expected: int, timeout: float) -> int:
    """The reading side: ``clients`` sockets, read until ``expected`` bytes in all or ``timeout``."""
    loop = asyncio.get_running_loop()
    socks: list[socket.socket] = []
    received = 0
    done = loop.create_future()

    def reader(sock: socket.socket) -> None:
        nonlocal received
        try:
            data = sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        received += len(data)
        if not data:
            loop.remove_reader(sock.fileno())
        if received >= expected and not done.done():
            done.set_result(None)

    for _ in range(clients):
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        loop.add_reader(sock.fileno(), reader, sock)
        socks.append(sock)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done, timeout)
    for sock in socks:
        loop.remove_reader(sock.fileno())
        sock.close()
    return received


def run(clients: int, events: int, interval: float) -> dict[str, float]:
    """Measures the floor once; returns server CPU per delivery (µs) and what was received."""
    cpus = sorted(os.sched_getaffinity(0))
    affinity = os.sched_getaffinity(0)
    raise_open_files(clients + 256)
    port = free_port()
    args = [sys.executable, "-m", "benchmarks.floor", "--serve", str(port)]
    args += ["--clients", str(clients), "--events", str(events), "--interval", str(interval)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        if len(cpus) >= 2:
            os.sched_setaffinity(process.pid, {cpus[0]})
            os.sched_setaffinity(0, {cpus[1]})
        assert process.stdout is not None
        process.stdout.readline()  # "listening"
        size = len(text_frame(PAYLOAD))
        timeout = 30 + events * interval
        received = asyncio.run(drain(port, clients, clients * events * size, timeout))
        report = json.loads(process.stdout.readline())
    finally:
        process.wait(timeout=60)
        os.sched_setaffinity(0, affinity)
    deliveries = received // size
    return {
        "clients": clients,
        "events": events,
        "received_fraction": deliveries / (clients * events),
        "server_cpu_us_per_delivery": report["server_cpu_s"] / (clients * events) * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.floor``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__)
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--steer",
        action="store_true",
        help="steer loopback receive processing to the reader's core (root; benchmarks/steering.py)",
    )
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve, args.clients, args.events, args.interval))
        return 0
    cpus = sorted(os.sched_getaffinity(0))
    with steered(cpus[1] if args.steer and len(cpus) >= 2 else None) as mask:
        result: dict[str, object] = dict(run(args.clients, args.events, args.interval))
    result["lo_rps_cpus"] = mask
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
