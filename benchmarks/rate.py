"""S2, sustained rate: the most deliveries per second one server core carries with reach 100 % and probe p99 < 250 ms.

``python -m benchmarks.rate --system podium --clients 2000``. One session of N sockets (the probe
process's included) joins once; then the event rate steps up (``--rates``, events per second, each
step ``--step`` seconds). After each step the harness waits for the step's deliveries (so the steps do
not overlap) and reports the deliveries per second, reach, the probes' latency p99 and the server's
CPU. The result is the highest deliveries/s of a step with reach 100 % and probe p99 < 250 ms; the
steps stop at the first step that misses either (or whose publishing could not keep the rate).
PRODUCT.md §5: ≥ 80,000 deliveries per second on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
from typing import Any

from benchmarks.broadcast import (
    CONCURRENCY,
    JOIN_TIMEOUT,
    MS,
    SETTLE,
    Bench,
    drain,
    drain_budget,
    join,
    loadgen_warning,
    machine,
    make_system,
    pinning_line,
    publish,
)
from benchmarks.node import cpu_seconds
from benchmarks.probe import PROBES, ProbeProcess, percentile
from benchmarks.system import System
from benchmarks.wsclient import Tally

CLIENTS = 2000
RATES = (1, 2, 5, 10, 20, 30, 40, 50, 60, 80, 100, 120)
STEP_SECONDS = 5.0
P99_LIMIT_MS = 250.0
TARGET = 80_000.0
STEP_QUIET = 1.0


async def run(
    system: System,
    clients: int = CLIENTS,
    rates: tuple[int, ...] = RATES,
    step_seconds: float = STEP_SECONDS,
    *,
    concurrency: int = CONCURRENCY,
    probes: int = PROBES,
) -> dict[str, Any]:
    """Runs S2 against ``system`` (not yet started) and returns every step and the best one.

    Raises:
        RuntimeError: the server or the probe process did not start.
    """
    host = machine()
    probes = max(0, min(probes, clients))
    async with Bench(system, clients) as bench:
        steps, connected = await _steps(bench, clients, rates, step_seconds, concurrency, probes)
    passing = [s for s in steps if s["passed"]]
    best = max(passing, key=lambda s: s["deliveries_per_s"]) if passing else None
    return {
        "system": system.name,
        "clients": clients,
        "connected": connected,
        "probes": probes,
        "step_seconds": step_seconds,
        "steps": steps,
        "best_deliveries_per_s": best["deliveries_per_s"] if best else 0.0,
        "best_rate": best["rate"] if best else 0,
        "pinning": bench.pinning,
        "machine": host,
    }


async def _steps(
    bench: Bench,
    clients: int,
    rates: tuple[int, ...],
    step_seconds: float,
    concurrency: int,
    probes: int,
) -> tuple[list[dict[str, Any]], int]:
    system = bench.system
    me, server = os.getpid(), system.pid
    bulk = clients - probes
    tally = Tally()
    await asyncio.sleep(SETTLE)
    join_times, _ = await join(system, range(bulk), tally, concurrency, bench.opened)
    joined = len(join_times)
    spec_of = getattr(system, "client_spec", None)
    probe = None
    if probes and spec_of is not None:
        probe = await ProbeProcess.start(spec_of(), bulk, probes, JOIN_TIMEOUT, bench.loadgen_cpu)
    steps: list[dict[str, Any]] = []
    try:
        connected = joined + (probe.joined if probe else 0)
        gc.collect()
        gc.freeze()
        await asyncio.sleep(SETTLE)
        gc.disable()
        published = 0
        for rate in rates:
            events = max(1, round(rate * step_seconds))
            mark = len(tally.latencies)
            delivered0 = tally.delivered
            cpu0, gen0 = cpu_seconds(server), cpu_seconds(me)
            store0 = cpu_seconds(bench.store_pid)
            probe0 = cpu_seconds(probe.pid) if probe else 0.0
            t0 = time.perf_counter()
            await publish(system, events, 1.0 / rate, first=published, catch_up=True)
            sending = time.perf_counter() - t0
            published += events
            await drain(
                tally, joined * published, drain_budget(connected * events), quiet=STEP_QUIET
            )
            wall = time.perf_counter() - t0
            server_cpu, gen_cpu = cpu_seconds(server) - cpu0, cpu_seconds(me) - gen0
            store_cpu = cpu_seconds(bench.store_pid) - store0
            segment = await probe.mark(published) if probe else {}
            probe_cpu = cpu_seconds(probe.pid) - probe0 if probe else 0.0
            bulk_latencies = sorted(tally.latencies[mark:])
            delivered = tally.delivered - delivered0 + int(segment.get("delivered", 0))
            expected = connected * events
            p99 = float(
                segment.get("latency_p99_ms", percentile(bulk_latencies, 99) * MS)
                if probe
                else percentile(bulk_latencies, 99) * MS
            )
            kept_rate = sending <= step_seconds * 1.2
            reach = delivered / expected if expected else 0.0
            step = {
                "rate": rate,
                "events": events,
                "offered_per_s": rate * connected,
                "published_events_per_s": events / sending if sending else 0.0,
                "deliveries_per_s": delivered / wall if wall else 0.0,
                "reach": reach,
                "probe_p99_ms": p99,
                "probe_max_ms": float(segment.get("latency_max_ms", 0.0)),
                "bulk_p50_ms": percentile(bulk_latencies, 50) * MS,
                "bulk_p99_ms": percentile(bulk_latencies, 99) * MS,
                "server_cpu_pct": 100 * server_cpu / wall if wall else 0.0,
                "server_cpu_us_per_delivery": server_cpu / delivered * 1e6 if delivered else 0.0,
                "loadgen_cpu_pct": 100 * (gen_cpu + probe_cpu) / wall if wall else 0.0,
                "store_cpu_pct": 100 * store_cpu / wall if wall else 0.0,
                "wall_s": wall,
                "kept_rate": kept_rate,
                "passed": reach >= 1.0 and p99 < P99_LIMIT_MS,
            }
            steps.append(step)
            if not step["passed"] or not kept_rate:
                break
    finally:
        gc.enable()
        if probe is not None:
            await probe.stop()
    return steps, connected


def table(result: dict[str, Any]) -> str:
    """One system's steps as a plain-text table, and the result beside the §5 target."""
    r = result
    head = (
        f"S2 {r['system']}: sustained rate, {r['connected']:,} of {r['clients']:,} sockets in one "
        f"session ({r['probes']} probes), {r['step_seconds']:.0f} s per step ({pinning_line(r['pinning'])})"
    )
    cols = (
        "events/s",
        "sent/s",
        "deliveries/s",
        "reach",
        "probe p99",
        "bulk p99",
        "server CPU",
        "µs/delivery",
        "loadgen CPU",
        "store CPU",
        "",
    )
    rows = [cols]
    for s in r["steps"]:
        rows.append(
            (
                f"{s['rate']}",
                f"{s['published_events_per_s']:.0f}",
                f"{s['deliveries_per_s']:,.0f}",
                f"{100 * s['reach']:.2f} %",
                f"{s['probe_p99_ms']:.1f} ms",
                f"{s['bulk_p99_ms']:.1f} ms",
                f"{s['server_cpu_pct']:.0f} %",
                f"{s['server_cpu_us_per_delivery']:.1f}",
                f"{s['loadgen_cpu_pct']:.0f} %",
                f"{s['store_cpu_pct']:.0f} %",
                "ok"
                if s["passed"]
                else ("missed" + ("" if s["kept_rate"] else " (rate not kept)")),
            )
        )
    width = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = [head, ""]
    lines += ["  ".join(c.rjust(width[i]) for i, c in enumerate(row)).rstrip() for row in rows]
    best = r["best_deliveries_per_s"]
    lines.append("")
    lines.append(
        f"highest deliveries/s with reach 100 % and probe p99 < {P99_LIMIT_MS:.0f} ms: {best:,.0f} "
        f"(target ≥ {TARGET:,.0f}: {'met' if best >= TARGET else 'NOT met'})"
    )
    # The store shares the load generator's core: their sum is what that core had to give.
    warning = loadgen_warning(*(s["loadgen_cpu_pct"] + s["store_cpu_pct"] for s in r["steps"]))
    if warning:
        lines.append(warning)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.rate``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rate", description=__doc__)
    parser.add_argument("--system", default="podium", help="podium or python-socketio")
    parser.add_argument("--clients", type=int, default=CLIENTS, help=f"sockets ({CLIENTS})")
    parser.add_argument(
        "--rates",
        default=",".join(map(str, RATES)),
        help="events per second, one step each (default %(default)s)",
    )
    parser.add_argument("--step", type=float, default=STEP_SECONDS, help="seconds per step (5)")
    parser.add_argument("--probes", type=int, default=PROBES, help=f"probe sockets ({PROBES})")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    rates = tuple(int(x) for x in args.rates.split(",") if x)
    result = asyncio.run(
        run(make_system(args.system), args.clients, rates, args.step, probes=args.probes)
    )
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
