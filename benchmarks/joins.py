"""S5, join storm: how many participants a server admits per second, token check and presence included.

``python -m benchmarks.joins --system podium --joins 3000 --concurrency 100``. A fresh server (first
core) and store (second core, with the load generator); ``--joins`` participants, each with its own
token, join one session with ``--concurrency`` joins in flight. A join is timed from the TCP connect
to the server's admission (podium: ``welcome``, after the upgrade, the token check, the presence write
and the session state; python-socketio: the namespace ``connect`` answer, after its token check and
presence write). Reported: joins per second (joined ÷ wall time of the storm), the server's CPU per
join and its CPU share, p50/p99/max handshake time, failures by kind and the load generator's CPU.
PRODUCT.md §5: ≥ 2,500 joins per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from benchmarks.broadcast import (
    MS,
    SETTLE,
    Bench,
    join,
    loadgen_warning,
    machine,
    make_system,
    pinning_line,
)
from benchmarks.node import cpu_seconds
from benchmarks.probe import percentile
from benchmarks.system import System
from benchmarks.wsclient import Tally

JOINS = 3000
CONCURRENCY = 100
TARGET = 2500.0


async def run(system: System, joins: int = JOINS, concurrency: int = CONCURRENCY) -> dict[str, Any]:
    """Runs S5 against ``system`` (not yet started) and returns its figures.

    Raises:
        RuntimeError: the server did not start, or the open-file limit is too low.
    """
    host = machine()
    async with Bench(system, joins) as bench:
        server, me = system.pid, os.getpid()
        await asyncio.sleep(SETTLE)
        cpu0, gen0, store0 = cpu_seconds(server), cpu_seconds(me), cpu_seconds(bench.store_pid)
        t0 = time.perf_counter()
        times, failures = await join(system, range(joins), Tally(), concurrency, bench.opened)
        wall = time.perf_counter() - t0
        server_cpu, gen_cpu = cpu_seconds(server) - cpu0, cpu_seconds(me) - gen0
        store_cpu = cpu_seconds(bench.store_pid) - store0
    times.sort()
    joined = len(times)
    return {
        "system": system.name,
        "joins": joins,
        "concurrency": concurrency,
        "joined": joined,
        "failures": dict(failures),
        "wall_s": wall,
        "joins_per_s": joined / wall if wall else 0.0,
        "server_cpu_us_per_join": server_cpu / joined * 1e6 if joined else 0.0,
        "server_cpu_pct": 100 * server_cpu / wall if wall else 0.0,
        "handshake_p50_ms": percentile(times, 50) * MS,
        "handshake_p99_ms": percentile(times, 99) * MS,
        "handshake_max_ms": (times[-1] if times else 0.0) * MS,
        "loadgen_cpu_pct": 100 * gen_cpu / wall if wall else 0.0,
        "store_cpu_pct": 100 * store_cpu / wall if wall else 0.0,
        "pinning": bench.pinning,
        "machine": host,
    }


def table(result: dict[str, Any]) -> str:
    """One system's join storm as a plain-text table."""
    r = result
    rows = (
        ("joined", f"{r['joined']:,} of {r['joins']:,} ({r['concurrency']} in flight)"),
        ("joins per second", f"{r['joins_per_s']:,.0f} /s   (target ≥ {TARGET:,.0f}: "
         f"{'met' if r['joins_per_s'] >= TARGET else 'NOT met'})"),
        ("server CPU per join", f"{r['server_cpu_us_per_join']:,.0f} µs ({r['server_cpu_pct']:.0f} % of a core)"),
        ("handshake p50 / p99 / max", f"{r['handshake_p50_ms']:.1f} / {r['handshake_p99_ms']:.1f} / {r['handshake_max_ms']:.1f} ms"),
        ("load generator / store CPU", f"{r['loadgen_cpu_pct']:.0f} % / {r['store_cpu_pct']:.0f} % of a core"),
        ("failures", json.dumps(r["failures"]) if r["failures"] else "none"),
    )  # fmt: skip
    width = max(len(label) for label, _ in rows)
    lines = [f"S5 {r['system']}: join storm ({pinning_line(r['pinning'])})", ""]
    lines += [f"{label.ljust(width)}  {value}" for label, value in rows]
    warning = loadgen_warning(r["loadgen_cpu_pct"])
    if warning:
        lines.append(warning)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.joins``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.joins", description=__doc__)
    parser.add_argument("--system", default="podium", help="podium or python-socketio")
    parser.add_argument("--joins", type=int, default=JOINS, help=f"participants ({JOINS})")
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help=f"in flight ({CONCURRENCY})"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = asyncio.run(run(make_system(args.system), args.joins, args.concurrency))
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
