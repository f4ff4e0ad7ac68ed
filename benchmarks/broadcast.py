"""S1, broadcast latency in one session, for any system under test (``benchmarks.system.System``).

``run(system, clients, events, interval, concurrency=…, probes=…)`` pins itself (the load generator)
to the second core, starts a store there (``config.embedded.EmbeddedStore``), starts the system's
server pinned to the first core, and measures three phases:

1. **join**: ``clients − probes`` participants join, ``concurrency`` in flight; then the probe process
   (``benchmarks.probe``) joins the last ``probes`` participants, so they are the last-joined sockets;
2. **idle**: the server's memory per idle connection and its idle CPU with every socket open;
3. **publish**: ``events`` events ``interval`` apart through the system's own publish path; reach,
   duplicates, order, kernel-timestamp latency (bulk and probes apart), the server's CPU per delivery
   (``utime + stime`` of its process over the phase ÷ deliveries), fan-out wall time and the CPU of
   the load generator (this process + the probe process) and of the store.

``Bench`` (the pinned store + server, used as ``async with Bench(system, sockets) as bench``),
``join`` and ``drain`` are shared with S2 (``benchmarks.rate``) and S5 (``benchmarks.joins``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import platform
import resource
import subprocess
import tempfile
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from benchmarks.node import cpu_seconds, raise_open_files, rss_bytes
from benchmarks.probe import PROBES, ProbeProcess, percentile
from benchmarks.steering import RPS_CPUS
from benchmarks.system import Socket, System
from benchmarks.wsclient import Tally
from config.embedded import EmbeddedStore

# Joins in flight. podium's node is CPU-bound from ~5 in flight on; more only lengthens each join.
CONCURRENCY = 25
JOIN_TIMEOUT = 20.0
CONNECT_BUDGET = 120.0
SETTLE = 2.0
IDLE_WINDOW = 2.0
QUIET = 3.0
# The drain waits for the backlog the publish phase left: a slow server (python-socketio at 10k
# sockets takes ~150 µs × 10k per event) can be far behind when the last event is sent.
DRAIN_BASE = 15.0
DRAIN_PER_DELIVERY = 300e-6
LOADGEN_BUSY = 90.0
MS = 1000.0

# PRODUCT.md §5: (result key, label, comparison, target, unit).
TARGETS: tuple[tuple[str, str, str, float, str], ...] = (
    ("reach", "reach", ">=", 1.0, ""),
    ("server_cpu_us_per_delivery", "server CPU per delivery", "<=", 12.0, "µs"),
    ("latency_p99_ms", "delivery latency p99 (target at 10k)", "<=", 150.0, "ms"),
    ("memory_per_connection_kib", "memory per idle connection", "<=", 20.0, "KiB"),
    ("joins_per_s", "joins per second", ">=", 2500.0, "/s"),
)


def cpu_plan() -> tuple[int | None, int | None]:
    """(server core, load-generator core): the first two cores this process may use."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def machine() -> dict[str, Any]:
    """The machine the figures were measured on (its load average is what else it was doing)."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    versions = {}
    for package in ("aiohttp", "redis", "hiredis", "msgspec", "python-socketio", "python-engineio"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "libraries": versions,
        "aiohttp": versions.get("aiohttp", ""),
        "loadavg": os.getloadavg(),
        "commit": commit(),
        # Loopback receive steering (benchmarks/steering.py): "0" = off, the receiving half of
        # every loopback segment is done on the sending (server's) core.
        "lo_rps_cpus": RPS_CPUS.read_text().strip() if RPS_CPUS.exists() else "0",
    }


def commit() -> str:
    """The checked-out commit, with ``+dirty`` when the server's packages have uncommitted changes
    (figures from a tree others are editing are not the commit's)."""
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
    return (head or "unknown") + ("+dirty" if dirty else "")


class Bench:
    """A pinned run: the load generator and a fresh store on the second core, the server on the first.

    ``async with Bench(system, sockets) as bench`` raises the open-file limit for ``sockets``, pins
    this process (before the store starts, so the store inherits the core), starts the store and the
    system; on exit it stops both whatever happened and restores the affinity and the limit.
    """

    def __init__(self, system: System, sockets: int) -> None:
        self.system = system
        self.sockets = sockets
        self.server_cpu, self.loadgen_cpu = cpu_plan()
        self.store_pid = 0
        self.opened: list[Socket] = []
        self._affinity = os.sched_getaffinity(0)
        self._limits: tuple[int, int] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._store: EmbeddedStore | None = None
        self._started = False

    @property
    def pinning(self) -> dict[str, int | str | None]:
        """Which core runs what."""
        return {
            "server_cpu": self.server_cpu,
            "loadgen_store_probe_cpu": self.loadgen_cpu,
            "lo_rps_cpus": RPS_CPUS.read_text().strip() if RPS_CPUS.exists() else "0",
        }

    async def __aenter__(self) -> Bench:
        self._limits = raise_open_files(self.sockets + 256)
        if self.loadgen_cpu is not None:
            os.sched_setaffinity(0, {self.loadgen_cpu})
        self._tmp = tempfile.TemporaryDirectory(prefix="podium-bench-")
        try:
            tmp = Path(self._tmp.name)
            self._store = EmbeddedStore(tmp / "store")
            url = await self._store.start()
            assert self._store.process is not None
            self.store_pid = self._store.process.pid
            self._started = True
            await self.system.start(tmp, url, self.server_cpu)
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        gc.enable()
        gc.unfreeze()
        try:
            if self._started:
                await self.system.stop()
            for sock in self.opened:
                sock.abort()
            self.opened.clear()
            if self._store is not None:
                await self._store.stop()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
            os.sched_setaffinity(0, self._affinity)
            if self._limits is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, self._limits)


async def join(
    system: System,
    indexes: range,
    tally: Tally,
    concurrency: int,
    opened: list[Socket],
    budget: float = CONNECT_BUDGET,
) -> tuple[list[float], Counter[str]]:
    """Joins one participant per index, ``concurrency`` in flight, within ``budget`` seconds.

    Appends each joined socket to ``opened``; returns each join's time (TCP connect → admitted) and
    the failures by kind.
    """
    join_times: list[float] = []
    failures: Counter[str] = Counter()
    pending = iter(indexes)
    deadline = time.monotonic() + budget

    async def worker() -> None:
        for index in pending:  # one shared iterator: each index is taken once
            if time.monotonic() > deadline:
                failures["connect budget exhausted"] += 1
                continue
            started = time.perf_counter()
            try:
                sock = await system.open(index, tally, JOIN_TIMEOUT)
            except Exception as exc:  # every refusal and timeout is a figure, not a crash
                failures[f"{type(exc).__name__}: {exc}"[:80]] += 1
                continue
            join_times.append(time.perf_counter() - started)
            opened.append(sock)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return join_times, failures


async def publish(
    system: System, events: int, interval: float, first: int = 0, *, catch_up: bool = False
) -> dict[int, float]:
    """Publishes ``events`` events ``interval`` apart; returns each one's key → send time.

    By default a publisher that falls behind (its loop busy reading) stretches the run: it never
    catches up with a burst, which would measure its own lateness as the server's queueing. With
    ``catch_up`` (S2, a sustained rate) it keeps the schedule on average: a late event goes out at
    once. Either way an event's send time is taken just before it is published.
    """
    loop = asyncio.get_running_loop()
    sent: dict[int, float] = {}
    due = loop.time()
    for i in range(first, first + events):
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        due = (due if catch_up else max(due, loop.time())) + interval
        at = time.time()
        sent[await system.publish(i, at)] = at
    return sent


async def drain(tally: Tally, expected: int, budget: float, quiet: float = QUIET) -> None:
    """Waits until ``expected`` deliveries arrived, none arrived for ``quiet`` s, or ``budget`` s."""
    deadline = time.monotonic() + budget
    seen, since = tally.delivered, time.monotonic()
    while tally.delivered < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        if tally.delivered != seen:
            seen, since = tally.delivered, time.monotonic()
        elif time.monotonic() - since > quiet:
            return


def drain_budget(deliveries: int) -> float:
    """How long to wait for ``deliveries`` outstanding deliveries of the slowest system measured."""
    return DRAIN_BASE + deliveries * DRAIN_PER_DELIVERY


async def run(
    system: System,
    clients: int,
    events: int,
    interval: float,
    *,
    concurrency: int = CONCURRENCY,
    probes: int = PROBES,
) -> dict[str, Any]:
    """Runs S1 once against ``system`` (not yet started) and returns its figures.

    Args:
        system: the system under test; started and stopped here.
        clients: sockets in the session, the probes included.
        events: events published once every socket joined.
        interval: seconds between events.
        concurrency: joins in flight at once.
        probes: sockets of the ``clients`` held by the probe process (0: none).

    Raises:
        RuntimeError: the server or the probe process did not start, or the open-file limit is low.
    """
    host = machine()  # before the run, so that its load average is what else the machine was doing
    probes = max(0, min(probes, clients))
    async with Bench(system, clients) as bench:
        result = await _measure(bench, clients, events, interval, concurrency, probes)
    result.update(
        system=system.name,
        clients=clients,
        probes=probes,
        events=events,
        interval_s=interval,
        concurrency=concurrency,
        pinning=bench.pinning,
        machine=host,
    )
    return result


async def _metrics(system: System) -> dict[str, float]:
    """The system's own counters when it has them (podium's /metrics), else nothing."""
    reader = getattr(system, "metrics", None)
    if reader is None:
        return {}
    samples: dict[str, float] = await reader()
    return samples


def _client_spec(system: System) -> dict[str, Any] | None:
    spec = getattr(system, "client_spec", None)
    return None if spec is None else dict(spec())


async def _measure(
    bench: Bench, clients: int, events: int, interval: float, concurrency: int, probes: int
) -> dict[str, Any]:
    """The three phases (join, idle, publish) against a started system."""
    system = bench.system
    me, server = os.getpid(), system.pid
    bulk = clients - probes
    tally = Tally()
    await asyncio.sleep(SETTLE)  # the server's start-up work (podium: schedule tick) is done
    rss_before = rss_bytes(server)

    # Join phase: the bulk, then the probe process (the last-joined sockets).
    cpu0, gen0, t0 = cpu_seconds(server), cpu_seconds(me), time.perf_counter()
    join_times, failures = await join(system, range(bulk), tally, concurrency, bench.opened)
    join_wall = time.perf_counter() - t0
    join_cpu, join_gen = cpu_seconds(server) - cpu0, cpu_seconds(me) - gen0
    joined = len(join_times)
    probe: ProbeProcess | None = None
    spec = _client_spec(system)
    probe_note = ""
    if probes and spec is not None:
        probe = await ProbeProcess.start(spec, bulk, probes, JOIN_TIMEOUT, bench.loadgen_cpu)
    elif probes:
        probe_note = f"{system.name} has no client_spec(): no probe process"
    try:
        connected = joined + (probe.joined if probe else 0)

        # Idle phase: presence settles, then the idle cost and memory of every open socket.
        gc.collect()
        gc.freeze()
        await asyncio.sleep(SETTLE)
        rss_after = rss_bytes(server)
        idle0, ti = cpu_seconds(server), time.perf_counter()
        await asyncio.sleep(IDLE_WINDOW)
        idle_rate = (cpu_seconds(server) - idle0) / (time.perf_counter() - ti)
        pings_before = tally.pings

        # Publish phase: gc off in the load generator so its pauses do not show up as latency.
        before = await _metrics(system)
        gc.disable()
        probe_cpu0 = cpu_seconds(probe.pid) if probe else 0.0
        cpu1, gen1, store1, t1 = (
            cpu_seconds(server),
            cpu_seconds(me),
            cpu_seconds(bench.store_pid),
            time.perf_counter(),
        )
        sent = await publish(system, events, interval)
        await drain(tally, joined * events, drain_budget(connected * events))
        wall = time.perf_counter() - t1
        server_cpu = cpu_seconds(server) - cpu1
        gen_cpu = cpu_seconds(me) - gen1
        store_cpu = cpu_seconds(bench.store_pid) - store1
        segment = await probe.mark(events) if probe else {}
        probe_cpu = cpu_seconds(probe.pid) - probe_cpu0 if probe else 0.0
        gc.enable()
        after = await _metrics(system)
        pings = tally.pings - pings_before
    finally:
        if probe is not None:
            await probe.stop()

    delivered = tally.delivered + int(segment.get("delivered", 0))
    latencies = sorted(tally.latencies)
    lags = sorted(tally.lags)
    read = sorted(a + b for a, b in zip(tally.latencies, tally.lags, strict=True))
    join_times.sort()
    complete = sorted(tally.last[s] - at for s, at in sent.items() if s in tally.last)
    spread = sorted(tally.last[s] - tally.first[s] for s in sent if s in tally.last)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    fanned = delta("podium_signaling_fanout_latency_seconds_count")
    expected = clients * events
    return {
        "connected": connected,
        "server_metrics": bool(after),
        "join_failures": dict(failures),
        "probe_join_failures": probe.failures if probe else {},
        "probe_note": probe_note,
        "node_join_results": _labelled(before, "podium_signaling_joins_total"),
        "node_store_errors": _labelled(after, "podium_store_errors_total"),
        "joins_per_s": joined / join_wall if join_wall else 0.0,
        "join_wall_s": join_wall,
        "join_p50_ms": percentile(join_times, 50) * MS,
        "join_p99_ms": percentile(join_times, 99) * MS,
        "server_cpu_us_per_join": join_cpu / joined * 1e6 if joined else 0.0,
        "server_cpu_pct_join": 100 * join_cpu / join_wall if join_wall else 0.0,
        "loadgen_cpu_pct_join": 100 * join_gen / join_wall if join_wall else 0.0,
        "rss_before_kib": rss_before / 1024,
        "rss_after_kib": rss_after / 1024,
        "memory_per_connection_kib": (rss_after - rss_before) / 1024 / connected
        if connected
        else 0.0,
        "server_idle_cpu_pct": 100 * idle_rate,
        "expected": expected,
        "delivered": delivered,
        "reach": delivered / expected if expected else 0.0,
        "bulk_reach": tally.delivered / (bulk * events) if bulk * events else 0.0,
        "duplicates": tally.duplicates + int(segment.get("duplicates", 0)),
        "out_of_order": tally.out_of_order + int(segment.get("out_of_order", 0)),
        "dropped_sockets": tally.dropped + int(segment.get("dropped", 0)),
        "heartbeat_pings_during_publish": pings,
        "server_counted_deliveries": delta("podium_signaling_events_delivered_total"),
        "latency_p50_ms": percentile(latencies, 50) * MS,
        "latency_p99_ms": percentile(latencies, 99) * MS,
        "latency_max_ms": (latencies[-1] if latencies else 0.0) * MS,
        "probe_delivered": int(segment.get("delivered", 0)),
        "probe_reach": int(segment.get("delivered", 0)) / (probes * events)
        if probe and probes * events
        else 0.0,
        "probe_latency_p50_ms": float(segment.get("latency_p50_ms", 0.0)),
        "probe_latency_p99_ms": float(segment.get("latency_p99_ms", 0.0)),
        "probe_latency_max_ms": float(segment.get("latency_max_ms", 0.0)),
        "unstamped": tally.unstamped,
        "read_latency_p50_ms": percentile(read, 50) * MS,
        "read_latency_p99_ms": percentile(read, 99) * MS,
        "loadgen_lag_p50_ms": percentile(lags, 50) * MS,
        "loadgen_lag_p99_ms": percentile(lags, 99) * MS,
        "fanout_complete_p50_ms": percentile(complete, 50) * MS,
        "fanout_complete_max_ms": (complete[-1] if complete else 0.0) * MS,
        "fanout_spread_p50_ms": percentile(spread, 50) * MS,
        "fanout_spread_max_ms": (spread[-1] if spread else 0.0) * MS,
        "server_fanout_mean_ms": delta("podium_signaling_fanout_latency_seconds_sum") / fanned * MS
        if fanned
        else 0.0,
        "publish_wall_s": wall,
        "deliveries_per_s": delivered / wall if wall else 0.0,
        "server_cpu_s": server_cpu,
        "server_cpu_pct_publish": 100 * server_cpu / wall if wall else 0.0,
        "server_cpu_us_per_delivery": server_cpu / delivered * 1e6 if delivered else 0.0,
        # One event's fan-out is one loop over the sockets: first → last socket per socket is the
        # server's cost per delivery, free of the idle work (heartbeats) the CPU figure includes.
        "fanout_loop_us_per_socket": percentile(spread, 50) / bulk * 1e6 if bulk else 0.0,
        "loadgen_cpu_pct_publish": 100 * (gen_cpu + probe_cpu) / wall if wall else 0.0,
        "probe_cpu_pct_publish": 100 * probe_cpu / wall if wall else 0.0,
        "store_cpu_pct_publish": 100 * store_cpu / wall if wall else 0.0,
    }


def _labelled(samples: dict[str, float], name: str) -> dict[str, float]:
    """The samples of one labelled counter, ``{labels}`` → value."""
    return {k[len(name) :]: v for k, v in samples.items() if k.startswith(name + "{")}


def verdict(value: float, op: str, target: float) -> str:
    """``met`` or ``NOT met``."""
    ok = value >= target if op == ">=" else value <= target
    return "met" if ok else "NOT met"


def pinning_line(pinning: dict[str, Any]) -> str:
    """The pinning, as every table states it."""
    steering = str(pinning.get("lo_rps_cpus", "0"))
    steered = steering.strip("0,") != ""
    return (
        f"server on cpu {pinning.get('server_cpu')}, load generator, store and probes on cpu "
        f"{pinning.get('loadgen_store_probe_cpu')}; loopback receive "
        + (f"steered (rps_cpus {steering})" if steered else "not steered")
    )


def loadgen_warning(*percents: float) -> str:
    """A warning line when the load generator was busy enough to be the bottleneck, else ''."""
    busy = max(percents, default=0.0)
    if busy < LOADGEN_BUSY:
        return ""
    return (
        f"WARNING: the load generator's core was {busy:.0f} % busy (load generator, probes and, "
        "where counted, the store): the client side may be the bottleneck"
    )


def table(result: dict[str, Any]) -> str:
    """One system's S1 figures as a plain-text table, the §5 targets beside them."""
    r = result
    rows: list[tuple[str, str, str, str]] = []
    for key, label, op, target, unit in TARGETS:
        value = float(r[key])
        if key == "reach":
            rows.append((label, f"{100 * value:.3f} %", "100 %", verdict(value, op, target)))
        else:
            rows.append(
                (
                    label,
                    f"{value:,.1f} {unit}",
                    f"{op} {target:,.0f} {unit}",
                    verdict(value, op, target),
                )
            )
    counted = (
        f" (server counted {r['server_counted_deliveries']:,.0f})" if r["server_metrics"] else ""
    )
    extra = (
        ("connected", f"{r['connected']:,} of {r['clients']:,} ({r['probes']} in the probe process)"),
        ("delivered", f"{r['delivered']:,} of {r['expected']:,}" + counted),
        ("duplicates / out of order / dropped", f"{r['duplicates']} / {r['out_of_order']} / {r['dropped_sockets']}"),
        ("delivery latency p50 / max", f"{r['latency_p50_ms']:.1f} / {r['latency_max_ms']:.1f} ms"),
        ("probe latency p50 / p99 / max", f"{r['probe_latency_p50_ms']:.1f} / {r['probe_latency_p99_ms']:.1f} / {r['probe_latency_max_ms']:.1f} ms (reach {100 * r['probe_reach']:.1f} %)"),
        ("latency as read by the load generator p50 / p99", f"{r['read_latency_p50_ms']:.1f} / {r['read_latency_p99_ms']:.1f} ms"),
        ("load generator read lag p50 / p99", f"{r['loadgen_lag_p50_ms']:.1f} / {r['loadgen_lag_p99_ms']:.1f} ms"),
        ("fan-out per event: send → last socket p50 / max", f"{r['fanout_complete_p50_ms']:.1f} / {r['fanout_complete_max_ms']:.1f} ms"),
        ("fan-out per event: first → last socket p50 / max", f"{r['fanout_spread_p50_ms']:.1f} / {r['fanout_spread_max_ms']:.1f} ms"),
        ("fan-out per event: server's own histogram, mean", f"{r['server_fanout_mean_ms']:.1f} ms"),
        ("fan-out loop per socket (first → last p50 ÷ N)", f"{r['fanout_loop_us_per_socket']:.1f} µs"),
        ("server CPU in publish phase", f"{r['server_cpu_s']:.2f} s ({r['server_cpu_pct_publish']:.0f} % of a core)"),
        ("server CPU idle with N sockets (2 s sample)", f"{r['server_idle_cpu_pct']:.1f} % of a core"),
        ("heartbeat pings answered in publish phase", f"{r['heartbeat_pings_during_publish']:,}"),
        ("deliveries per second (publish phase)", f"{r['deliveries_per_s']:,.0f}"),
        ("server RSS before / after join", f"{r['rss_before_kib'] / 1024:.1f} / {r['rss_after_kib'] / 1024:.1f} MiB"),
        ("join latency p50 / p99", f"{r['join_p50_ms']:.1f} / {r['join_p99_ms']:.1f} ms"),
        ("server CPU per join", f"{r['server_cpu_us_per_join']:,.0f} µs ({r['server_cpu_pct_join']:.0f} % of a core)"),
        ("load generator CPU: join / publish (probe)", f"{r['loadgen_cpu_pct_join']:.0f} % / {r['loadgen_cpu_pct_publish']:.0f} % ({r['probe_cpu_pct_publish']:.0f} %) of a core"),
        ("store CPU (publish phase)", f"{r['store_cpu_pct_publish']:.0f} % of a core"),
    )  # fmt: skip
    # The server's own counters are podium's /metrics: python-socketio has none.
    rows.extend(
        (label, value, "", "")
        for label, value in extra
        if r["server_metrics"] or "server's own" not in label
    )
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    head = (
        f"S1 {r['system']}: {r['clients']:,} sockets in one session, {r['events']} events every "
        f"{r['interval_s'] * 1000:.0f} ms ({pinning_line(r['pinning'])})"
    )
    lines = [head, ""]
    for row in [("figure", "measured", "target (§5)", ""), *rows]:
        lines.append("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())
    warning = loadgen_warning(
        r["loadgen_cpu_pct_join"], r["loadgen_cpu_pct_publish"] + r["store_cpu_pct_publish"]
    )
    for note in (warning, r.get("probe_note", "")):
        if note:
            lines.append(note)
    if r["join_failures"] or r["probe_join_failures"]:
        lines.append("")
        lines.append("join failures: " + json.dumps(r["join_failures"]))
        lines.append("probe join failures: " + json.dumps(r["probe_join_failures"]))
        if r["node_join_results"]:
            lines.append("node's joins by result: " + json.dumps(r["node_join_results"]))
    if r["node_store_errors"]:
        lines.append("node's store errors: " + json.dumps(r["node_store_errors"]))
    return "\n".join(lines)


def make_system(name: str) -> System:
    """A fresh, unstarted system under test by name: ``podium`` or ``python-socketio``.

    Raises:
        ValueError: an unknown name.
        ImportError: python-socketio is not installed (``pip install -e '.[bench]'``).
    """
    if name == "podium":
        from benchmarks.podium import Podium

        return Podium()
    if name in ("python-socketio", "socketio"):
        from benchmarks.peer import SocketIO

        return SocketIO()
    raise ValueError(f"unknown system {name!r}: podium or python-socketio")


def ratio(podium: float, peer: float, *, cost: bool) -> float:
    """How many times better podium is: peer/podium for costs and latencies, podium/peer for rates."""
    if cost:
        return peer / podium if podium else math.inf
    return podium / peer if peer else math.inf
