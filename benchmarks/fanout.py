"""The fan-out benchmark: N sockets in one session, E events published, what each delivery costs.

Run: ``python -m benchmarks.fanout --clients 1000 --events 50``. It starts a store and one podium node
(pinned to the first core), joins N participants with a lean raw-socket client (pinned, with the store,
to the second core), publishes E events through ``SessionStore.append`` and reports reach, delivery
latency, the node's CPU per delivery, memory per idle connection and the join rate beside the
PRODUCT.md §5 targets. ``run()`` is the same benchmark as a coroutine, for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from benchmarks.node import (
    Node,
    cpu_seconds,
    raise_open_files,
    rss_bytes,
    scrape,
    start_node,
    stop_node,
    wait_ready,
)
from benchmarks.wsclient import EVENT_NAME, AuthRefused, BenchSocket, HandshakeError, Tally
from benchmarks.wsclient import open_socket as open_bench_socket
from config.embedded import EmbeddedStore
from signaling.identity import Identity, Role, TokenKeys, mint
from signaling.store import SessionStore

SESSION = "opening-plenary"
ORIGIN = "http://bench.podium.test"
# Joins in flight. The node is CPU-bound from ~5 in flight on; more only lengthens each join. (Before
# commit 572362c the node's store pool failed calls at once when full: from ~50 in flight some joins
# were refused with store_unavailable. See docs/performance.md.)
CONCURRENCY = 25
JOIN_TIMEOUT = 20.0
CONNECT_BUDGET = 90.0
SETTLE = 2.0
IDLE_WINDOW = 2.0
QUIET = 3.0
DRAIN_BUDGET = 30.0

# PRODUCT.md §5: (result key, label, comparison, target, unit).
TARGETS: tuple[tuple[str, str, str, float, str], ...] = (
    ("reach", "reach", ">=", 1.0, ""),
    ("server_cpu_us_per_delivery", "server CPU per delivery", "<=", 12.0, "µs"),
    ("latency_p99_ms", "delivery latency p99 (target at 10k)", "<=", 150.0, "ms"),
    ("memory_per_connection_kib", "memory per idle connection", "<=", 20.0, "KiB"),
    ("joins_per_s", "joins per second", ">=", 2500.0, "/s"),
)


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not values:
        return 0.0
    rank = math.ceil(q / 100 * len(values)) - 1
    return values[min(len(values) - 1, max(0, rank))]


def _tokens(keys: TokenKeys, count: int) -> list[str]:
    now = int(time.time())
    tokens = []
    for i in range(count):
        identity = Identity(
            sub=f"bench-{i:06d}",
            name=f"Bench {i}",
            role=Role.PARTICIPANT,
            sessions=(SESSION,),
            mode="venue" if i % 4 == 0 else "remote",
            group="civil-society",
            country="CH",
        )
        tokens.append(mint(keys, identity, now=now, ttl=3600))
    return tokens


def _cpu_plan() -> tuple[int | None, int | None]:
    """(node core, load-generator core): the first two cores this process may use."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def machine() -> dict[str, Any]:
    """The machine the figures were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "aiohttp": aiohttp.__version__,
        "loadavg": os.getloadavg(),
        "commit": _commit(),
    }


def _commit() -> str:
    """The checked-out commit, with ``+dirty`` when the node's packages have uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "signaling", "config", "moderation"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return head + ("+dirty" if dirty else "")


async def _connect(
    node: Node, tokens: list[str], tally: Tally, concurrency: int
) -> tuple[list[BenchSocket], list[float], Counter[str]]:
    """Joins one socket per token, at most ``concurrency`` in flight, within CONNECT_BUDGET."""
    sockets: list[BenchSocket] = []
    join_times: list[float] = []
    failures: Counter[str] = Counter()
    pending = iter(tokens)
    deadline = time.monotonic() + CONNECT_BUDGET

    async def worker() -> None:
        for token in pending:  # one shared iterator: each token is taken once
            if time.monotonic() > deadline:
                failures["connect budget exhausted"] += 1
                continue
            started = time.perf_counter()
            try:
                sock = await open_bench_socket(
                    "127.0.0.1", node.port, ORIGIN, token, SESSION, tally, JOIN_TIMEOUT
                )
            except (OSError, TimeoutError, HandshakeError, AuthRefused) as exc:
                failures[f"{type(exc).__name__}: {exc}"[:80]] += 1
                continue
            join_times.append(time.perf_counter() - started)
            sockets.append(sock)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return sockets, join_times, failures


async def _publish(store: SessionStore, events: int, interval: float) -> dict[int, float]:
    """Appends ``events`` events at least ``interval`` apart; returns each one's seq → send time.

    A load generator that falls behind stretches the run; it never catches up with a burst, which
    would measure its own lateness as the node's queueing.
    """
    loop = asyncio.get_running_loop()
    sent: dict[int, float] = {}
    due = loop.time()
    for i in range(events):
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        due = max(due, loop.time()) + interval
        at = time.time()
        _, seq = await store.append(SESSION, EVENT_NAME, {"i": i, "t": at})
        sent[seq] = at
    return sent


async def _drain(tally: Tally, expected: int) -> None:
    """Waits until every expected delivery arrived, nothing arrived for QUIET s, or DRAIN_BUDGET."""
    deadline = time.monotonic() + DRAIN_BUDGET
    seen, since = tally.delivered, time.monotonic()
    while tally.delivered < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        if tally.delivered != seen:
            seen, since = tally.delivered, time.monotonic()
        elif time.monotonic() - since > QUIET:
            return


async def run(
    clients: int, events: int, interval: float, *, concurrency: int = CONCURRENCY
) -> dict[str, Any]:
    """Runs the fan-out benchmark once and returns its figures.

    Args:
        clients: sockets to join to the session.
        events: events to publish once every socket joined.
        interval: seconds between events.
        concurrency: joins in flight at once.

    Raises:
        RuntimeError: the node did not start, or the open-file limit is too low.
    """
    host = machine()  # before the run, so that its load average is what else the machine was doing
    node_cpu, gen_cpu = _cpu_plan()
    affinity = os.sched_getaffinity(0)
    limits = raise_open_files(clients + 256)
    if gen_cpu is not None:
        # Before the store starts, so that it runs beside the load generator, away from the node.
        os.sched_setaffinity(0, {gen_cpu})
    try:
        with tempfile.TemporaryDirectory(prefix="podium-bench-") as tmp:
            result = await _run_in(Path(tmp), node_cpu, clients, events, interval, concurrency)
    finally:
        os.sched_setaffinity(0, affinity)
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
    result.update(
        clients=clients,
        events=events,
        interval_s=interval,
        concurrency=concurrency,
        pinning={"node_cpu": node_cpu, "loadgen_and_store_cpu": gen_cpu},
        machine=host,
    )
    return result


async def _run_in(
    tmp: Path, node_cpu: int | None, clients: int, events: int, interval: float, concurrency: int
) -> dict[str, Any]:
    """Starts a store and a node under ``tmp``, measures, and stops both whatever happened."""
    secret = secrets.token_urlsafe(48)
    prefix = "bench" + secrets.token_hex(4)
    embedded = EmbeddedStore(tmp / "store")
    url = await embedded.start()
    client = aioredis.Redis.from_url(url)
    node: Node | None = None
    sockets: list[BenchSocket] = []
    try:
        node = start_node(
            data_dir=tmp / "node",
            store_url=url,
            cpu=node_cpu,
            env={
                "PODIUM_JWT_SECRET": secret,
                "PODIUM_ALLOWED_ORIGINS": ORIGIN,
                "PODIUM_KEY_PREFIX": prefix,
                "PODIUM_NODE_ID": "bench-node",
                "PODIUM_LOG_LEVEL": "WARNING",
                "PODIUM_RATE": "10",
                "PODIUM_BURST": "20",
                "PODIUM_HEARTBEAT": "20",
            },
        )
        await wait_ready(node)
        store = SessionStore(client, prefix=prefix, history_size=10_000)
        assert embedded.process is not None
        tokens = _tokens(TokenKeys(secret), clients)
        return await _measure(
            node, embedded.process.pid, store, tokens, events, interval, concurrency, sockets
        )
    finally:
        gc.enable()
        gc.unfreeze()
        if node is not None:
            await stop_node(node)  # it drains first, closing every socket (bounded, then killed)
        for sock in sockets:
            sock.abort()
        await client.aclose()
        await embedded.stop()


async def _measure(
    node: Node,
    store_pid: int,
    store: SessionStore,
    tokens: list[str],
    events: int,
    interval: float,
    concurrency: int,
    sockets: list[BenchSocket],
) -> dict[str, Any]:
    """The three phases (join, idle, publish) against a ready node; fills ``sockets`` as it joins."""
    me = os.getpid()
    clients = len(tokens)
    tally = Tally()
    await asyncio.sleep(SETTLE)  # the node's first schedule tick and presence broadcast are done
    rss_before = rss_bytes(node.pid)

    # Join phase.
    opened0 = (await store.client.info("stats"))["total_connections_received"]
    cpu0, gen0, t0 = cpu_seconds(node.pid), cpu_seconds(me), time.perf_counter()
    joined, join_times, failures = await _connect(node, tokens, tally, concurrency)
    sockets.extend(joined)
    join_wall = time.perf_counter() - t0
    join_cpu, join_gen = cpu_seconds(node.pid) - cpu0, cpu_seconds(me) - gen0
    connected = len(joined)
    store_clients = (await store.client.info("clients"))["connected_clients"]
    store_opened = (await store.client.info("stats"))["total_connections_received"] - opened0

    # Idle phase: presence settles, then the idle cost and memory of N open sockets.
    gc.collect()
    gc.freeze()
    await asyncio.sleep(SETTLE)
    rss_after = rss_bytes(node.pid)
    idle0, ti = cpu_seconds(node.pid), time.perf_counter()
    await asyncio.sleep(IDLE_WINDOW)
    idle_rate = (cpu_seconds(node.pid) - idle0) / (time.perf_counter() - ti)
    pings_before = tally.pings

    # Publish phase: gc off in the load generator so its pauses do not show up as latency.
    before = await scrape(node)
    gc.disable()
    cpu1, gen1, store1, t1 = (
        cpu_seconds(node.pid),
        cpu_seconds(me),
        cpu_seconds(store_pid),
        time.perf_counter(),
    )
    sent = await _publish(store, events, interval)
    await _drain(tally, connected * events)
    wall = time.perf_counter() - t1
    pings = tally.pings - pings_before
    server_cpu = cpu_seconds(node.pid) - cpu1
    gen_cpu = cpu_seconds(me) - gen1
    store_cpu = cpu_seconds(store_pid) - store1
    gc.enable()
    after = await scrape(node)

    delivered = tally.delivered
    latencies = sorted(tally.latencies)
    lags = sorted(tally.lags)
    read = sorted(a + b for a, b in zip(tally.latencies, tally.lags, strict=True))
    join_times.sort()
    complete = sorted(tally.last[s] - at for s, at in sent.items() if s in tally.last)
    spread = sorted(tally.last[s] - tally.first[s] for s in sent if s in tally.last)
    fanned = after.get("podium_signaling_fanout_latency_seconds_count", 0.0) - before.get(
        "podium_signaling_fanout_latency_seconds_count", 0.0
    )
    fan_sum = after.get("podium_signaling_fanout_latency_seconds_sum", 0.0) - before.get(
        "podium_signaling_fanout_latency_seconds_sum", 0.0
    )
    server_counted = after.get("podium_signaling_events_delivered_total", 0.0) - before.get(
        "podium_signaling_events_delivered_total", 0.0
    )
    ms = 1000.0
    return {
        "connected": connected,
        "join_failures": dict(failures),
        "node_join_results": _labelled(before, "podium_signaling_joins_total"),
        "node_store_errors": _labelled(after, "podium_store_errors_total"),
        "joins_per_s": connected / join_wall if join_wall else 0.0,
        "join_wall_s": join_wall,
        "join_p50_ms": _percentile(join_times, 50) * ms,
        "join_p99_ms": _percentile(join_times, 99) * ms,
        "store_connections_opened_during_join": store_opened,
        "store_clients_after_join": store_clients,
        "server_cpu_us_per_join": join_cpu / connected * 1e6 if connected else 0.0,
        "server_cpu_pct_join": 100 * join_cpu / join_wall if join_wall else 0.0,
        "loadgen_cpu_pct_join": 100 * join_gen / join_wall if join_wall else 0.0,
        "rss_before_kib": rss_before / 1024,
        "rss_after_kib": rss_after / 1024,
        "memory_per_connection_kib": (rss_after - rss_before) / 1024 / connected
        if connected
        else 0.0,
        "server_idle_cpu_pct": 100 * idle_rate,
        "expected": clients * events,
        "delivered": delivered,
        "reach": delivered / (clients * events) if clients * events else 0.0,
        "duplicates": tally.duplicates,
        "out_of_order": tally.out_of_order,
        "dropped_sockets": tally.dropped,
        "heartbeat_pings_during_publish": pings,
        "server_counted_deliveries": server_counted,
        "latency_p50_ms": _percentile(latencies, 50) * ms,
        "latency_p99_ms": _percentile(latencies, 99) * ms,
        "latency_max_ms": (latencies[-1] if latencies else 0.0) * ms,
        "unstamped": tally.unstamped,
        "read_latency_p50_ms": _percentile(read, 50) * ms,
        "read_latency_p99_ms": _percentile(read, 99) * ms,
        "loadgen_lag_p50_ms": _percentile(lags, 50) * ms,
        "loadgen_lag_p99_ms": _percentile(lags, 99) * ms,
        "fanout_complete_p50_ms": _percentile(complete, 50) * ms,
        "fanout_complete_max_ms": (complete[-1] if complete else 0.0) * ms,
        "fanout_spread_p50_ms": _percentile(spread, 50) * ms,
        "fanout_spread_max_ms": (spread[-1] if spread else 0.0) * ms,
        "server_fanout_mean_ms": fan_sum / fanned * ms if fanned else 0.0,
        "publish_wall_s": wall,
        "deliveries_per_s": delivered / wall if wall else 0.0,
        "server_cpu_s": server_cpu,
        "server_cpu_pct_publish": 100 * server_cpu / wall if wall else 0.0,
        "server_cpu_us_per_delivery": server_cpu / delivered * 1e6 if delivered else 0.0,
        # One event's fan-out is one synchronous loop over the sockets: its length per socket is
        # the node's cost per delivery, free of the idle work (heartbeats) the CPU figure includes.
        "fanout_loop_us_per_socket": _percentile(spread, 50) / connected * 1e6
        if connected
        else 0.0,
        "loadgen_cpu_pct_publish": 100 * gen_cpu / wall if wall else 0.0,
        "store_cpu_pct_publish": 100 * store_cpu / wall if wall else 0.0,
    }


def _labelled(samples: dict[str, float], name: str) -> dict[str, float]:
    """The samples of one labelled counter, ``{labels}`` → value."""
    return {k[len(name) :]: v for k, v in samples.items() if k.startswith(name + "{")}


def _verdict(value: float, op: str, target: float) -> str:
    ok = value >= target if op == ">=" else value <= target
    return "met" if ok else "NOT met"


def table(result: dict[str, Any]) -> str:
    """The figures as a plain-text table, targets beside them."""
    r = result
    rows: list[tuple[str, str, str, str]] = []
    shown = {key for key, *_ in TARGETS}
    for key, label, op, target, unit in TARGETS:
        value = float(r[key])
        if key == "reach":
            rows.append((label, f"{100 * value:.3f} %", "100 %", _verdict(value, op, target)))
        else:
            rows.append(
                (
                    label,
                    f"{value:,.1f} {unit}",
                    f"{op} {target:,.0f} {unit}",
                    _verdict(value, op, target),
                )
            )
    extra = (
        ("connected", f"{r['connected']:,} of {r['clients']:,}"),
        ("delivered", f"{r['delivered']:,} of {r['expected']:,} (node counted {r['server_counted_deliveries']:,.0f})"),
        ("duplicates / out of order / dropped", f"{r['duplicates']} / {r['out_of_order']} / {r['dropped_sockets']}"),
        ("delivery latency p50 / max", f"{r['latency_p50_ms']:.1f} / {r['latency_max_ms']:.1f} ms"),
        ("latency as read by the load generator p50 / p99", f"{r['read_latency_p50_ms']:.1f} / {r['read_latency_p99_ms']:.1f} ms"),
        ("load generator read lag p50 / p99", f"{r['loadgen_lag_p50_ms']:.1f} / {r['loadgen_lag_p99_ms']:.1f} ms"),
        ("fan-out per event: send → last socket p50 / max", f"{r['fanout_complete_p50_ms']:.1f} / {r['fanout_complete_max_ms']:.1f} ms"),
        ("fan-out per event: first → last socket p50 / max", f"{r['fanout_spread_p50_ms']:.1f} / {r['fanout_spread_max_ms']:.1f} ms"),
        ("fan-out per event: node's own histogram, mean", f"{r['server_fanout_mean_ms']:.1f} ms"),
        ("fan-out loop per socket (first → last p50 ÷ N)", f"{r['fanout_loop_us_per_socket']:.1f} µs"),
        ("server CPU in publish phase", f"{r['server_cpu_s']:.2f} s ({r['server_cpu_pct_publish']:.0f} % of a core)"),
        ("server CPU idle with N sockets (2 s sample)", f"{r['server_idle_cpu_pct']:.1f} % of a core"),
        ("heartbeat pings answered in publish phase", f"{r['heartbeat_pings_during_publish']:,}"),
        ("deliveries per second (publish phase)", f"{r['deliveries_per_s']:,.0f}"),
        ("server RSS before / after join", f"{r['rss_before_kib'] / 1024:.1f} / {r['rss_after_kib'] / 1024:.1f} MiB"),
        ("join latency p50 / p99", f"{r['join_p50_ms']:.1f} / {r['join_p99_ms']:.1f} ms"),
        ("server CPU per join", f"{r['server_cpu_us_per_join']:,.0f} µs ({r['server_cpu_pct_join']:.0f} % of a core)"),
        ("store connections: opened during join / open after", f"{r['store_connections_opened_during_join']} / {r['store_clients_after_join']}"),
        ("load generator CPU: join / publish", f"{r['loadgen_cpu_pct_join']:.0f} % / {r['loadgen_cpu_pct_publish']:.0f} % of a core"),
        ("store CPU (publish phase)", f"{r['store_cpu_pct_publish']:.0f} % of a core"),
    )  # fmt: skip
    rows.extend((label, value, "", "") for label, value in extra if label not in shown)
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    head = (
        f"podium fan-out: {r['clients']:,} sockets, {r['events']} events every "
        f"{r['interval_s'] * 1000:.0f} ms (node on cpu {r['pinning']['node_cpu']}, "
        f"load generator and store on cpu {r['pinning']['loadgen_and_store_cpu']})"
    )
    lines = [head, ""]
    for row in [("figure", "measured", "target (§5)", ""), *rows]:
        lines.append("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())
    if r["join_failures"]:
        lines.append("")
        lines.append("join failures: " + json.dumps(r["join_failures"]))
        lines.append("node's joins by result: " + json.dumps(r["node_join_results"]))
    if r["node_store_errors"]:
        lines.append("node's store errors: " + json.dumps(r["node_store_errors"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.fanout``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000, help="sockets (default 1000)")
    parser.add_argument("--events", type=int, default=50, help="events published (default 50)")
    parser.add_argument(
        "--interval", type=float, default=0.1, help="seconds between events (default 0.1)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENCY,
        help=f"joins in flight at once (default {CONCURRENCY})",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = asyncio.run(
        run(args.clients, args.events, args.interval, concurrency=args.concurrency)
    )
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
