"""Small helpers the client- and node-side fault scenarios share: percentiles, tables, scrapes."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

import aiohttp

from tests.faults.processes import PodiumProcess


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0.0 of nothing)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def print_table(title: str, rows: list[tuple[str, object]]) -> None:
    """Prints figures as a two-column table (``pytest -s`` shows them)."""
    width = max(len(k) for k, _ in rows)
    print(f"\n{title}")
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")


async def scrape(node: PodiumProcess, name: str) -> float:
    """The sum of one metric family's samples on a node's ``/metrics``."""
    async with aiohttp.ClientSession() as http, http.get(node.url + "/metrics") as resp:
        text = await resp.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name)] in " {"
    )


async def wait_for(predicate: Callable[[], Awaitable[bool]], budget: float) -> float | None:
    """Polls ``predicate`` every 100 ms; the seconds until it held, or None within ``budget``."""
    started = time.monotonic()
    while time.monotonic() - started < budget:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


def peak_per_window(times: list[float], window: float = 0.1) -> int:
    """The most of ``times`` (seconds) that fall in one window of ``window`` seconds."""
    counts: dict[int, int] = {}
    for t in times:
        bucket = math.floor(t / window)
        counts[bucket] = counts.get(bucket, 0) + 1
    return max(counts.values(), default=0)
