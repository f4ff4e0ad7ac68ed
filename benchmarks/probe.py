"""The probe process: a few dozen sockets of the system under test, in a process of their own.

The bulk load generator holds thousands of sockets on one event loop; the latency it reads is stamped
by the kernel, but a busy loop still batches reads (several frames per read share one stamp). The
probes are a clean sample beside it: a separate Python process (pinned, like the load generator, to the
second core) whose loop has nothing else to do, so each probe read happens as the frame lands.

The parent (``ProbeProcess``) starts it after its own sockets joined, so the probes are the
last-joined sockets of the session. Protocol, one line each way, JSON after a keyword:

- parent → probe, on stdin: the first line is ``{"spec": <system client spec>, "first": <index>,
  "count": <n>, "timeout": <s>}``; the probe joins ``count`` participants from index ``first`` with
  ``spec["factory"]`` (``"module:attr"``, called with the spec, returning an object with the
  ``System.open`` coroutine) and answers ``READY {"joined": n, "failures": {...}}``.
- ``MARK <events published so far>``: the probe waits until each of its sockets has that many events
  (or nothing arrived for ``QUIET`` s) and answers ``SEGMENT {...}``: the deliveries since the last
  mark, their latency p50/p99/max (kernel receive timestamp − send time) and the counters.
- ``STOP`` (or end of input): it closes its sockets and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import math
import os
import sys
import time
from collections import Counter
from typing import Any

from benchmarks.node import cpu_seconds
from benchmarks.system import Socket
from benchmarks.wsclient import Tally

QUIET = 1.0
MARK_BUDGET = 20.0
PROBES = 32


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not values:
        return 0.0
    rank = math.ceil(q / 100 * len(values)) - 1
    return values[min(len(values) - 1, max(0, rank))]


def resolve(factory: str) -> Any:
    """The callable named ``"module:attr.attr"``."""
    module_name, _, path = factory.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in path.split("."):
        target = getattr(target, part)
    return target


async def _serve(config: dict[str, Any], reader: asyncio.StreamReader) -> None:
    system = resolve(config["spec"]["factory"])(config["spec"])
    tally = Tally()
    sockets: list[Socket] = []
    failures: Counter[str] = Counter()
    first, count, timeout = int(config["first"]), int(config["count"]), float(config["timeout"])
    for index in range(first, first + count):  # one at a time: a few dozen, no hurry
        try:
            sockets.append(await system.open(index, tally, timeout))
        except Exception as exc:  # every kind of refusal is a figure here, not a crash
            failures[f"{type(exc).__name__}: {exc}"[:80]] += 1
    gc.collect()
    gc.freeze()
    gc.disable()
    _say("READY", {"joined": len(sockets), "failures": dict(failures)})
    mark_delivered, mark_latencies = 0, 0
    counters = ("duplicates", "out_of_order", "dropped", "unstamped")
    marked = dict.fromkeys(counters, 0)
    cpu0 = cpu_seconds(os.getpid())
    try:
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "STOP":
                return
            word, _, arg = line.partition(" ")
            if word != "MARK":
                continue
            await _drain(tally, len(sockets) * int(arg))
            latencies = sorted(tally.latencies[mark_latencies:])
            segment: dict[str, Any] = {
                "delivered": tally.delivered - mark_delivered,
                "latency_p50_ms": percentile(latencies, 50) * 1000,
                "latency_p99_ms": percentile(latencies, 99) * 1000,
                "latency_max_ms": (latencies[-1] if latencies else 0.0) * 1000,
                "cpu_s": cpu_seconds(os.getpid()) - cpu0,
            }
            for name in counters:
                value = getattr(tally, name)
                segment[name] = value - marked[name]
                marked[name] = value
            mark_delivered, mark_latencies = tally.delivered, len(tally.latencies)
            cpu0 = cpu_seconds(os.getpid())
            _say("SEGMENT", segment)
    finally:
        for sock in sockets:
            sock.abort()


async def _drain(tally: Tally, expected: int) -> None:
    deadline = time.monotonic() + MARK_BUDGET
    seen, since = tally.delivered, time.monotonic()
    while tally.delivered < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        if tally.delivered != seen:
            seen, since = tally.delivered, time.monotonic()
        elif time.monotonic() - since > QUIET:
            return


def _say(word: str, payload: dict[str, Any]) -> None:
    sys.stdout.write(word + " " + json.dumps(payload) + "\n")
    sys.stdout.flush()


async def _main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    config = json.loads(await reader.readline())
    await _serve(config, reader)


class ProbeProcess:
    """The parent's handle on a running probe process."""

    def __init__(self, process: asyncio.subprocess.Process, joined: int, failures: dict[str, int]):
        self.process = process
        self.joined = joined
        self.failures = failures

    @property
    def pid(self) -> int:
        """The probe process (its CPU counts as load-generator CPU)."""
        return self.process.pid

    @classmethod
    async def start(
        cls, spec: dict[str, Any], first: int, count: int, timeout: float, cpu: int | None
    ) -> ProbeProcess:
        """Starts the probe process on ``cpu`` and waits until its ``count`` sockets joined.

        Raises:
            RuntimeError: the process exited or answered something else than ``READY``.
        """
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.probe",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        if cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(process.pid, {cpu})
        probe = cls(process, 0, {})
        config = {"spec": spec, "first": first, "count": count, "timeout": timeout}
        ready = await probe._ask(json.dumps(config), "READY", timeout + count * timeout)
        probe.joined, probe.failures = int(ready["joined"]), dict(ready["failures"])
        return probe

    async def mark(self, events: int) -> dict[str, Any]:
        """The probes' deliveries since the last mark, once each has ``events`` events in all."""
        return await self._ask(f"MARK {events}", "SEGMENT", MARK_BUDGET + 10)

    async def stop(self) -> None:
        """Tells the probe to close its sockets and waits for it (killed if it lingers)."""
        if self.process.returncode is not None:
            return
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.write(b"STOP\n")
                await self.process.stdin.drain()
                self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    async def _ask(self, line: str, word: str, timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()
        answer = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        head, _, body = answer.decode().partition(" ")
        if head != word:
            raise RuntimeError(f"the probe process answered {answer[:200]!r}, not {word}")
        result: dict[str, Any] = json.loads(body)
        return result


if __name__ == "__main__":
    asyncio.run(_main())
