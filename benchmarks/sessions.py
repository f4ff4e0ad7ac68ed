"""S3: many sessions on one node (100 sessions × 50 participants), and the harness S4, S6 and S7 share.

Run: ``python -m benchmarks.sessions [--quick] [--json] [--sessions 100] [--per-session 50]
[--events 10] [--interval 1.0]``. It starts a store and one podium node (pinned to the first core) with
a generated programme of ``--sessions`` sessions, joins ``--per-session`` participants to each with the
lean client (pinned, with the store, to the second core), then publishes one ``bench.tick`` event per
session every ``--interval`` seconds, the sessions' events spread evenly over the interval (100
sessions, 1 s: 100 events/s in all). It reports reach, kernel-timestamp delivery latency, the node's
CPU per delivery, the store subscriptions and connections the node holds (the design: one subscription
per session per node, whatever the number of sockets) and memory per connection.

The harness half of this module (``pinned``, ``cluster``, ``join``, ``programme``, ``render``…) is what
the other scenarios of issue 8 (``cross_node``, ``slow_readers``, ``votes``) start nodes and sockets
with; it only builds on ``benchmarks.node`` and ``benchmarks.wsclient``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import resource
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis

from benchmarks import broadcast
from benchmarks.broadcast import commit
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
from benchmarks.wsclient import (
    EVENT_NAME,
    AuthRefused,
    BenchSocket,
    CommandSocket,
    HandshakeError,
    Tally,
    open_command_socket,
    open_socket,
)
from config.embedded import EmbeddedStore
from signaling.identity import Identity, Role, TokenKeys, mint
from signaling.keys import SessionKeys
from signaling.store import SessionStore

ORIGIN = "http://bench.podium.test"
CONCURRENCY = 25
JOIN_TIMEOUT = 20.0
CONNECT_BUDGET = 120.0
SETTLE = 2.0
QUIET = 3.0
DRAIN_BUDGET = 30.0

_S = TypeVar("_S", bound=BenchSocket)

# ---- the harness ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not values:
        return 0.0
    rank = math.ceil(q / 100 * len(values)) - 1
    return values[min(len(values) - 1, max(0, rank))]


def session_ids(count: int) -> list[str]:
    """The ids of the generated programme's sessions."""
    return [f"bench-{i:03d}" for i in range(count)]


def programme(path: Path, sessions: int, *, premoderation: bool = True) -> Path:
    """Writes a programme of ``sessions`` sessions, all at the same time in rooms of their own.

    ``--demo`` moves the first session to have started half an hour ago, so every session is live.
    Each takes Q&A (pre-moderated by default: moderators approve what participants ask).
    """
    lines = [
        "[event]",
        'id = "bench-event"',
        'title = "podium benchmark"',
        'timezone = "Europe/Zurich"',
        'venue = "loopback"',
        'languages = ["en"]',
        'stakeholder_groups = ["civil-society"]',
        "",
    ]
    for i, ident in enumerate(session_ids(sessions)):
        lines += [
            "[[sessions]]",
            f'id = "{ident}"',
            f'title = "Benchmark session {i}"',
            f'room = "Room {i}"',
            "start = 2027-05-24T10:00:00",
            "end = 2027-05-24T12:00:00",
            'languages = ["en"]',
            "capacity = 20000",
            "",
            "[sessions.qna]",
            "enabled = true",
            f"premoderation = {'true' if premoderation else 'false'}",
            'order = "votes"',
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def token(keys: TokenKeys, sub: str, sessions: Sequence[str], role: Role = Role.PARTICIPANT) -> str:
    """A join token valid for an hour."""
    identity = Identity(
        sub=sub,
        name=sub,
        role=role,
        sessions=tuple(sessions),
        mode="remote",
        group="civil-society",
        country="CH",
    )
    return mint(keys, identity, now=int(time.time()), ttl=3600)


@dataclass(frozen=True, slots=True)
class Pinning:
    """The cores: every node's, and the load generator's (which the store shares)."""

    nodes: tuple[int | None, ...]
    loadgen: int | None

    def describe(self) -> str:
        """For table headings."""
        nodes = ", ".join(f"node {i + 1} on cpu {c}" for i, c in enumerate(self.nodes))
        return f"{nodes}; load generator and store on cpu {self.loadgen}"


@contextlib.contextmanager
def pinned(sockets: int, node_cores: Sequence[int] = (0,)) -> Any:
    """Pins this process (and the store it starts) to the second usable core, raises the open-file
    limit for ``sockets``, and restores both afterwards. Yields a ``Pinning``.

    ``node_cores`` are indexes into the usable cores (0: the first, 1: the second) for each node.
    """
    cpus = sorted(os.sched_getaffinity(0))
    affinity = set(cpus)
    limits = raise_open_files(sockets + 512)
    if len(cpus) >= 2:
        plan = Pinning(tuple(cpus[i] for i in node_cores), cpus[1])
        os.sched_setaffinity(0, {cpus[1]})
    else:
        plan = Pinning(tuple(None for _ in node_cores), None)
    try:
        yield plan
    finally:
        os.sched_setaffinity(0, affinity)
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)


@dataclass
class Cluster:
    """A store and the podium nodes on it, started by ``cluster``."""

    nodes: list[Node]
    store: SessionStore
    store_pid: int
    keys: TokenKeys
    prefix: str
    sockets: list[BenchSocket] = field(default_factory=list)

    def channel(self, session: str) -> str:
        """The store pub/sub channel of a session."""
        return SessionKeys(self.prefix, session).channel


@contextlib.asynccontextmanager
async def cluster(
    pinning: Pinning, *, sessions: int, env: dict[str, str] | None = None
) -> AsyncIterator[Cluster]:
    """Starts a store (``EmbeddedStore``) and one node per ``pinning.nodes`` core, on a generated
    programme of ``sessions`` sessions; stops them, and aborts every socket in ``Cluster.sockets``,
    whatever happened."""
    secret = secrets.token_urlsafe(48)
    prefix = "bench" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as name:
        tmp = Path(name)
        embedded = EmbeddedStore(tmp / "store")
        url = await embedded.start()
        client = aioredis.Redis.from_url(url)
        nodes: list[Node] = []
        bench: Cluster | None = None
        try:
            plan = programme(tmp / "programme.toml", sessions)
            for i, cpu in enumerate(pinning.nodes):
                nodes.append(
                    start_node(
                        data_dir=tmp / f"node{i + 1}",
                        store_url=url,
                        cpu=cpu,
                        env={
                            "PODIUM_JWT_SECRET": secret,
                            "PODIUM_ALLOWED_ORIGINS": ORIGIN,
                            "PODIUM_KEY_PREFIX": prefix,
                            "PODIUM_NODE_ID": f"bench-node-{i + 1}",
                            "PODIUM_LOG_LEVEL": "WARNING",
                            "PODIUM_PROGRAMME": str(plan),
                            "PODIUM_RATE": "10",
                            "PODIUM_BURST": "20",
                            "PODIUM_HEARTBEAT": "20",
                            **(env or {}),
                        },
                    )
                )
            for node in nodes:
                await wait_ready(node)
            assert embedded.process is not None
            bench = Cluster(
                nodes=nodes,
                store=SessionStore(client, prefix=prefix, history_size=10_000),
                store_pid=embedded.process.pid,
                keys=TokenKeys(secret),
                prefix=prefix,
            )
            yield bench
        finally:
            gc.enable()
            for node in nodes:
                await stop_node(node)
            if bench is not None:
                for sock in bench.sockets:
                    sock.abort()
            await client.aclose()
            await embedded.stop()


@dataclass(frozen=True, slots=True)
class JoinSpec:
    """One socket to open: which node, with which token, to which session."""

    port: int
    token: str
    session: str


async def join(
    specs: Sequence[JoinSpec],
    open_one: Callable[[JoinSpec], Awaitable[_S]],
    concurrency: int = CONCURRENCY,
) -> tuple[list[_S | None], Counter[str], float]:
    """Opens one socket per spec, ``concurrency`` at a time.

    Returns:
        The sockets in the specs' order (None where the join failed), the failures by reason and
        the join phase's wall time.
    """
    out: list[_S | None] = [None] * len(specs)
    failures: Counter[str] = Counter()
    pending = iter(range(len(specs)))
    deadline = time.monotonic() + CONNECT_BUDGET
    started = time.perf_counter()

    async def worker() -> None:
        for i in pending:  # one shared iterator: each spec is taken once
            if time.monotonic() > deadline:
                failures["connect budget exhausted"] += 1
                continue
            try:
                out[i] = await open_one(specs[i])
            except (OSError, TimeoutError, HandshakeError, AuthRefused) as exc:
                failures[f"{type(exc).__name__}: {exc}"[:80]] += 1

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return out, failures, time.perf_counter() - started


def plain(tally: Tally) -> Callable[[JoinSpec], Awaitable[BenchSocket]]:
    """An opener of ``BenchSocket``s counting into ``tally``."""

    def open_one(spec: JoinSpec) -> Awaitable[BenchSocket]:
        return open_socket(
            "127.0.0.1", spec.port, ORIGIN, spec.token, spec.session, tally, JOIN_TIMEOUT
        )

    return open_one


def commanding(
    tally: Tally, rcvbuf: int | None = None
) -> Callable[[JoinSpec], Awaitable[CommandSocket]]:
    """An opener of ``CommandSocket``s counting into ``tally``."""

    def open_one(spec: JoinSpec) -> Awaitable[CommandSocket]:
        return open_command_socket(
            "127.0.0.1",
            spec.port,
            ORIGIN,
            spec.token,
            spec.session,
            tally,
            JOIN_TIMEOUT,
            rcvbuf=rcvbuf,
        )

    return open_one


async def drain(tally: Tally, expected: int, quiet: float = QUIET) -> None:
    """Waits until ``expected`` deliveries arrived, nothing arrived for ``quiet`` s, or
    DRAIN_BUDGET."""
    await broadcast.drain(tally, expected, DRAIN_BUDGET, quiet)


def labelled(samples: dict[str, float], name: str) -> dict[str, float]:
    """The samples of one labelled metric, ``{labels}`` → value."""
    return {k[len(name) :]: v for k, v in samples.items() if k.startswith(name + "{")}


async def metric(node: Node, name: str) -> float:
    """The sum of a metric's samples (all labels) on one node."""
    samples = await scrape(node)
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


def verdict(value: float, op: str, target: float) -> str:
    """``met`` / ``NOT met`` for a figure against its target."""
    ok = value >= target if op == ">=" else value <= target
    return "met" if ok else "NOT met"


LOADGEN_WARN_PCT = 90.0


def render(
    head: str,
    rows: Sequence[tuple[str, str, str, str]],
    notes: Sequence[str] = (),
    loadgen_pct: float = 0.0,
) -> str:
    """A plain-text table: figure, measured, target (§5), verdict; with a warning under it when the
    load generator used more than 90 % of its core (``loadgen_pct``, its busiest phase)."""
    if loadgen_pct > LOADGEN_WARN_PCT:
        notes = [
            *notes,
            f"WARNING: the load generator used {loadgen_pct:.0f} % of its core: it may be the "
            "bottleneck, and part of the latency its own",
        ]
    rows = [("figure", "measured", "target (§5)", ""), *rows]
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [head, ""]
    for row in rows:
        lines.append("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines)


def provenance(r: dict[str, Any]) -> str:
    """The end of a table heading: the cores, the load average before the run and the commit."""
    return f"{r['pinning']}; load average before {r['loadavg_before'][0]:.1f}; commit {r['commit']}"


def join_notes(r: dict[str, Any]) -> list[str]:
    """A table note listing the join failures, if there were any."""
    return [f"join failures: {json.dumps(r['join_failures'])}"] if r["join_failures"] else []


Option = tuple[str, dict[str, Any]]
"""A command-line option: its flag and ``ArgumentParser.add_argument``'s keywords."""


def cli(
    argv: list[str] | None,
    module: str,
    doc: str | None,
    quick: str,
    options: Sequence[Option],
    run_: Callable[..., Coroutine[Any, Any, dict[str, Any]]],
    table_: Callable[[dict[str, Any]], str],
) -> int:
    """The ``main()`` of a scenario module: ``--quick`` (help ``quick``), ``--json``, then
    ``options``; runs ``run_(quick, **options)`` and prints ``table_(result)`` or the JSON."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{module}", description=doc)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    dests = [parser.add_argument(flag, **kwargs).dest for flag, kwargs in options]
    args = parser.parse_args(argv)
    result = asyncio.run(run_(args.quick, **{dest: getattr(args, dest) for dest in dests}))
    print(json.dumps(result, indent=2) if args.json else table_(result))
    return 0


async def store_view(cluster_: Cluster, sessions: Sequence[str]) -> dict[str, Any]:
    """What the store holds for the nodes: subscribers per session channel and client connections.

    Shard channels (``SSUBSCRIBE``) are counted with ``PUBSUB SHARDNUMSUB``; plain ones with
    ``PUBSUB NUMSUB``. The benchmark's own connections are taken off the client count.
    """
    client = cluster_.store.client
    channels = [cluster_.channel(s) for s in sessions]
    shard = await client.execute_command(  # type: ignore[no-untyped-call]
        "PUBSUB SHARDNUMSUB", *channels
    )
    plain_ = await client.execute_command("PUBSUB NUMSUB", *channels)  # type: ignore[no-untyped-call]

    def counts(reply: Any) -> list[int]:
        # redis-py answers with (channel, count) pairs, or a flat list for commands it does not know.
        items = list(reply)
        if items and isinstance(items[0], list | tuple):
            return [int(pair[1]) for pair in items]
        return [int(items[i + 1]) for i in range(0, len(items), 2)]

    subs = [a + b for a, b in zip(counts(shard), counts(plain_), strict=True)]
    rows = [{str(k): str(v) for k, v in row.items()} for row in await client.client_list()]
    # The benchmark names its own connection (``client_setname``); every other one is a node's.
    nodes = [row for row in rows if row.get("name") != "bench-loadgen"]
    subscribed = sum(1 for row in nodes if int(row.get("sub", "0")) + int(row.get("ssub", "0")) > 0)
    return {
        "subscribers_per_session_min": min(subs) if subs else 0,
        "subscribers_per_session_max": max(subs) if subs else 0,
        "subscriptions_total": sum(subs),
        "store_clients": len(nodes),
        "store_clients_subscribed": subscribed,
    }


# ---- S3 ---------------------------------------------------------------------------------------------

DEFAULTS = {"sessions": 100, "per_session": 50, "events": 10, "interval": 1.0}
QUICK = {"sessions": 20, "per_session": 25, "events": 5, "interval": 1.0}


async def _publish_spread(
    store: SessionStore, sessions: Sequence[str], events: int, interval: float
) -> int:
    """One event per session per ``interval``, the sessions' events spread evenly across it.

    A publisher that falls behind stretches the run; it never bursts to catch up. Returns the
    number of events appended.
    """
    loop = asyncio.get_running_loop()
    step = interval / max(1, len(sessions))
    due = loop.time()
    appended = 0
    for i in range(events):
        for session in sessions:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            due = max(due, loop.time()) + step
            await store.append(session, EVENT_NAME, {"i": i, "t": time.time()})
            appended += 1
    return appended


async def run(quick: bool = False, **options: Any) -> dict[str, Any]:
    """S3 once: ``sessions`` × ``per_session`` sockets on one node, ``events`` per session.

    Options (defaults: 100, 50, 10, 1.0; quick: 20, 25, 5, 1.0): ``sessions``, ``per_session``,
    ``events`` (per session), ``interval`` (seconds between one session's events),
    ``concurrency`` (joins in flight).
    """
    size = {**(QUICK if quick else DEFAULTS), **{k: v for k, v in options.items() if v is not None}}
    n_sessions, per = int(size["sessions"]), int(size["per_session"])
    events, interval = int(size["events"]), float(size["interval"])
    concurrency = int(size.get("concurrency", CONCURRENCY))
    loadavg = os.getloadavg()
    with pinned(n_sessions * per) as pins:
        async with cluster(pins, sessions=n_sessions) as bench:
            result = await _s3(bench, n_sessions, per, events, interval, concurrency)
    result.update(
        scenario="S3",
        sessions=n_sessions,
        per_session=per,
        events_per_session=events,
        interval_s=interval,
        pinning=pins.describe(),
        loadavg_before=loadavg,
        commit=commit(),
    )
    return result


async def _s3(
    bench: Cluster, n_sessions: int, per: int, events: int, interval: float, concurrency: int
) -> dict[str, Any]:
    node = bench.nodes[0]
    me = os.getpid()
    ids = session_ids(n_sessions)
    await bench.store.client.client_setname("bench-loadgen")
    tally = Tally()
    specs = [
        JoinSpec(node.port, token(bench.keys, f"p-{s}-{j:03d}", (s,)), s)
        for j in range(per)
        for s in ids  # interleaved: every session fills at once, as a morning's joins would
    ]
    await asyncio.sleep(SETTLE)
    rss0 = rss_bytes(node.pid)
    cpu0, gen0 = cpu_seconds(node.pid), cpu_seconds(me)
    sockets, failures, join_wall = await join(specs, plain(tally), concurrency)
    join_cpu, join_gen = cpu_seconds(node.pid) - cpu0, cpu_seconds(me) - gen0
    joined = [s for s in sockets if s is not None]
    bench.sockets.extend(joined)
    per_session = Counter(spec.session for spec, s in zip(specs, sockets, strict=True) if s)
    gc.collect()
    gc.freeze()
    await asyncio.sleep(SETTLE)
    rss1 = rss_bytes(node.pid)
    view = await store_view(bench, ids)

    expected = events * sum(per_session.values())
    gc.disable()
    cpu1, gen1, store1, t1 = (
        cpu_seconds(node.pid),
        cpu_seconds(me),
        cpu_seconds(bench.store_pid),
        time.perf_counter(),
    )
    before = await scrape(node)
    await _publish_spread(bench.store, ids, events, interval)
    await drain(tally, expected)
    wall = time.perf_counter() - t1
    server_cpu = cpu_seconds(node.pid) - cpu1
    gen_cpu = cpu_seconds(me) - gen1
    store_cpu = cpu_seconds(bench.store_pid) - store1
    gc.enable()
    gc.unfreeze()
    after = await scrape(node)
    latencies = sorted(tally.latencies)
    delivered = tally.delivered
    ms = 1000.0
    counted = after.get("podium_signaling_events_delivered_total", 0.0) - before.get(
        "podium_signaling_events_delivered_total", 0.0
    )
    return {
        "connected": len(joined),
        "expected_sockets": len(specs),
        "join_failures": dict(failures),
        "joins_per_s": len(joined) / join_wall if join_wall else 0.0,
        "server_cpu_us_per_join": join_cpu / len(joined) * 1e6 if joined else 0.0,
        "loadgen_cpu_pct_join": 100 * join_gen / join_wall if join_wall else 0.0,
        "sessions_short_of_sockets": sum(1 for s in ids if per_session[s] < per),
        "rss_before_kib": rss0 / 1024,
        "rss_after_kib": rss1 / 1024,
        "memory_per_connection_kib": (rss1 - rss0) / 1024 / len(joined) if joined else 0.0,
        **view,
        "expected": expected,
        "delivered": delivered,
        "server_counted_deliveries": counted,
        "reach": delivered / expected if expected else 0.0,
        "duplicates": tally.duplicates,
        "out_of_order": tally.out_of_order,
        "dropped_sockets": tally.dropped,
        "latency_p50_ms": percentile(latencies, 50) * ms,
        "latency_p99_ms": percentile(latencies, 99) * ms,
        "latency_max_ms": (latencies[-1] if latencies else 0.0) * ms,
        "unstamped": tally.unstamped,
        "publish_wall_s": wall,
        "events_per_s": events * n_sessions / wall if wall else 0.0,
        "deliveries_per_s": delivered / wall if wall else 0.0,
        "server_cpu_pct_publish": 100 * server_cpu / wall if wall else 0.0,
        "server_cpu_us_per_delivery": server_cpu / delivered * 1e6 if delivered else 0.0,
        "loadgen_cpu_pct_publish": 100 * gen_cpu / wall if wall else 0.0,
        "store_cpu_pct_publish": 100 * store_cpu / wall if wall else 0.0,
    }


def table(result: dict[str, Any]) -> str:
    """S3's figures as a plain-text table, §5 targets beside them."""
    r = result
    reach = float(r["reach"])
    mem = float(r["memory_per_connection_kib"])
    rows = [
        ("reach", f"{100 * reach:.3f} %", "100 %", verdict(reach, ">=", 1.0)),
        (
            "memory per connection",
            f"{mem:.1f} KiB",
            "<= 20 KiB",
            verdict(mem, "<=", 20.0),
        ),
        (
            "server CPU per delivery",
            f"{r['server_cpu_us_per_delivery']:.1f} µs",
            "(<= 12 µs is for one 10k session)",
            "",
        ),
        (
            "delivery latency p50 / p99 / max",
            f"{r['latency_p50_ms']:.1f} / {r['latency_p99_ms']:.1f} / {r['latency_max_ms']:.1f} ms",
            "(p99 <= 150 ms is for one 10k session)",
            "",
        ),
        (
            "store subscribers per session channel (min / max)",
            f"{r['subscribers_per_session_min']} / {r['subscribers_per_session_max']}",
            "1 per session per node (design)",
            "as designed"
            if r["subscribers_per_session_max"] == 1 == r["subscribers_per_session_min"]
            else "NOT as designed",
        ),
        ("store subscriptions in all", f"{r['subscriptions_total']:,}", "", ""),
        (
            "store connections: node's / of them subscribed",
            f"{r['store_clients']} / {r['store_clients_subscribed']}",
            "",
            "",
        ),
        ("connected", f"{r['connected']:,} of {r['expected_sockets']:,}", "", ""),
        (
            "delivered",
            f"{r['delivered']:,} of {r['expected']:,} "
            f"(node counted {r['server_counted_deliveries']:,.0f})",
            "",
            "",
        ),
        (
            "duplicates / out of order / dropped sockets",
            f"{r['duplicates']} / {r['out_of_order']} / {r['dropped_sockets']}",
            "",
            "",
        ),
        (
            "events / deliveries per second",
            f"{r['events_per_s']:.0f} / {r['deliveries_per_s']:,.0f}",
            "",
            "",
        ),
        ("server CPU in publish phase", f"{r['server_cpu_pct_publish']:.0f} % of a core", "", ""),
        (
            "server RSS before / after join",
            f"{r['rss_before_kib'] / 1024:.1f} / {r['rss_after_kib'] / 1024:.1f} MiB",
            "",
            "",
        ),
        (
            "joins per second / server CPU per join",
            f"{r['joins_per_s']:.0f} /s / {r['server_cpu_us_per_join']:,.0f} µs",
            ">= 2,500 /s",
            verdict(float(r["joins_per_s"]), ">=", 2500.0),
        ),
        (
            "load generator CPU: join / publish",
            f"{r['loadgen_cpu_pct_join']:.0f} % / {r['loadgen_cpu_pct_publish']:.0f} % of a core",
            "",
            "",
        ),
        ("store CPU (publish phase)", f"{r['store_cpu_pct_publish']:.0f} % of a core", "", ""),
    ]
    head = (
        f"S3 many sessions: {r['sessions']} sessions × {r['per_session']} sockets, one event per "
        f"session every {r['interval_s']:g} s ({r['events_per_session']} each), spread "
        f"({provenance(r)})"
    )
    notes = join_notes(r)
    busiest = max(float(r["loadgen_cpu_pct_join"]), float(r["loadgen_cpu_pct_publish"]))
    return render(head, rows, notes, busiest)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.sessions``."""
    return cli(
        argv,
        "sessions",
        __doc__,
        "20 sessions × 25, 5 events",
        [
            ("--sessions", {"type": int, "help": "sessions (default 100)"}),
            ("--per-session", {"type": int, "help": "sockets per session (default 50)"}),
            ("--events", {"type": int, "help": "events per session (default 10)"}),
            ("--interval", {"type": float, "help": "s between one session's events (1.0)"}),
            ("--concurrency", {"type": int, "help": f"joins in flight ({CONCURRENCY})"}),
        ],
        run,
        table,
    )


if __name__ == "__main__":
    sys.exit(main())
