"""S6: slow readers. Do 2 % of sockets that stop reading hurt the others, and are they cut off?

Run: ``python -m benchmarks.slow_readers [--quick] [--json] [--clients 2000] [--slow-share 0.02]
[--rate 10] [--event-bytes 16384] [--seconds 10] [--slow-budget 40]``. It starts a store and one
podium node (pinned to the first core), joins ``--clients`` participants to one session with the lean
client (pinned, with the store, to the second core), ``--slow-share`` of them with a 4 KiB receive
buffer, and publishes padded ``bench.tick`` events at ``--rate`` a second throughout three phases:

* **A, baseline** (``--seconds``): everybody reads.
* **B, slow** (until every slow socket is cut off, at least ``--seconds``, at most ``--slow-budget``):
  the slow sockets stop reading. Their kernel buffers fill (a few MiB on loopback: the node's send
  buffer grows with loopback's segments), then the node's own per-socket send buffer (256 KiB by
  default); past that the node drops the socket. A socket that reads nothing also answers no ping,
  so the node's heartbeat may drop it first (a period of silence plus half a period).
* **C, after** (``--seconds``): the slow sockets are gone (or still stalled), everybody else reads.

It reports, for the healthy sockets, delivery latency p50/p99 per phase (kernel receive time − send
time) and reach (must be 100 %), when the slow sockets were cut off (the node's
``podium_signaling_slow_disconnects_total`` and ``podium_signaling_heartbeat_timeouts_total``,
polled every 250 ms; each slow socket then reads what it
holds to see the node's close for itself), and the node's RSS and CPU per phase. Events are padded
so that a stalled socket fills its buffers within the run: ``rate × event-bytes`` a second per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import sys
import time
from typing import Any

from benchmarks.broadcast import commit
from benchmarks.node import Node, cpu_seconds, rss_bytes
from benchmarks.sessions import (
    Cluster,
    JoinSpec,
    cli,
    cluster,
    commanding,
    drain,
    join,
    join_notes,
    metric,
    percentile,
    pinned,
    provenance,
    render,
    session_ids,
    token,
    verdict,
)
from benchmarks.wsclient import EVENT_NAME, CommandSocket, Tally
from signaling.store import SessionStore

DEFAULTS = {
    "clients": 2000,
    "slow_share": 0.02,
    "rate": 10.0,
    "event_bytes": 16 * 1024,
    "seconds": 10.0,
    "slow_budget": 40.0,
}
QUICK = {
    "clients": 300,
    "slow_share": 0.02,
    "rate": 25.0,
    "event_bytes": 16 * 1024,
    "seconds": 5.0,
    "slow_budget": 20.0,
}
SLOW_RCVBUF = 4096
SLOW_METRIC = "podium_signaling_slow_disconnects_total"
# A socket that stops reading also stops answering pings: the heartbeat may cut it off first.
HEARTBEAT_METRIC = "podium_signaling_heartbeat_timeouts_total"


async def run(quick: bool = False, **options: Any) -> dict[str, Any]:
    """S6 once. Options: ``clients``, ``slow_share`` (fraction that stops reading), ``rate``
    (events/s), ``event_bytes`` (padding per event), ``seconds`` (phases A and C, and the least for
    B), ``slow_budget`` (the most for B), ``concurrency`` (joins in flight)."""
    size = {**(QUICK if quick else DEFAULTS), **{k: v for k, v in options.items() if v is not None}}
    clients = int(size["clients"])
    slow = max(1, round(clients * float(size["slow_share"])))
    loadavg = os.getloadavg()
    with pinned(clients) as pins:
        async with cluster(pins, sessions=1) as bench:
            result = await _s6(
                bench,
                clients,
                slow,
                float(size["rate"]),
                int(size["event_bytes"]),
                float(size["seconds"]),
                float(size["slow_budget"]),
            )
    result.update(
        scenario="S6",
        clients=clients,
        slow=slow,
        rate=float(size["rate"]),
        event_bytes=int(size["event_bytes"]),
        seconds=float(size["seconds"]),
        slow_budget=float(size["slow_budget"]),
        pinning=pins.describe(),
        loadavg_before=loadavg,
        commit=commit(),
    )
    return result


class _Publisher:
    """Appends padded events at a steady rate until stopped; a late publisher never bursts."""

    def __init__(self, store: SessionStore, session: str, rate: float, pad: int) -> None:
        self.store, self.session, self.rate = store, session, rate
        self.pad = "x" * pad
        self.appended = 0
        self.running = True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while self.running:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            due = max(due, loop.time()) + 1 / self.rate
            # "t" last: the lean client reads the send time up to the closing brace.
            data = {"i": self.appended, "pad": self.pad, "t": time.time()}
            await self.store.append(self.session, EVENT_NAME, data)
            self.appended += 1


async def _sample(node: Node, into: list[int]) -> None:
    """The node's RSS every 250 ms until cancelled."""
    while True:
        into.append(rss_bytes(node.pid))
        await asyncio.sleep(0.25)


async def _s6(
    bench: Cluster,
    clients: int,
    slow_count: int,
    rate: float,
    event_bytes: int,
    seconds: float,
    budget: float,
) -> dict[str, Any]:
    node = bench.nodes[0]
    me = os.getpid()
    session = session_ids(1)[0]
    # Slow sockets spread evenly among the others (every 50th at 2 %), so that they sit anywhere in
    # the node's fan-out loop.
    step = clients / slow_count
    slow_at = {int(k * step) for k in range(slow_count)}
    phase_tally = {"A": Tally(), "B": Tally(), "C": Tally()}
    slow_tally = Tally()
    specs = [
        JoinSpec(node.port, token(bench.keys, f"p-{i:05d}", (session,)), session)
        for i in range(clients)
    ]
    normal, small = commanding(phase_tally["A"]), commanding(slow_tally, SLOW_RCVBUF)

    index = {spec: i for i, spec in enumerate(specs)}

    async def open_indexed(spec: JoinSpec) -> CommandSocket:
        return await (small if index[spec] in slow_at else normal)(spec)

    sockets, failures, _ = await join(specs, open_indexed)
    healthy = [s for i, s in enumerate(sockets) if s is not None and i not in slow_at]
    slow = [s for i, s in enumerate(sockets) if s is not None and i in slow_at]
    bench.sockets.extend(healthy + slow)
    await asyncio.sleep(2.0)

    rss: dict[str, list[int]] = {"A": [], "B": [], "C": []}
    cpu: dict[str, float] = {}
    walls: dict[str, float] = {}
    appended: dict[str, int] = {}
    gen_cpu: dict[str, float] = {}
    publisher = _Publisher(bench.store, session, rate, event_bytes)
    cut_at: list[float] = []
    slow_metric0 = await metric(node, SLOW_METRIC)
    beat_metric0 = await metric(node, HEARTBEAT_METRIC)
    gc.collect()
    gc.disable()
    rss_before = rss_bytes(node.pid)
    for phase in ("A", "B", "C"):
        tally = phase_tally[phase]
        for sock in healthy:
            sock.tally = tally
        if phase == "B":
            for sock in slow:
                sock.stop_reading()
        sampler = asyncio.create_task(_sample(node, rss[phase]))
        cpu0, gen0, t0 = cpu_seconds(node.pid), cpu_seconds(me), time.perf_counter()
        start_count = publisher.appended
        publisher.running = True
        task = asyncio.create_task(publisher.run())
        if phase == "B":
            since = slow_metric0 + beat_metric0
            await _watch_cut(node, len(slow), since, cut_at, seconds, budget)
        else:
            await asyncio.sleep(seconds)
        publisher.running = False
        await task
        appended[phase] = publisher.appended - start_count
        await drain(tally, appended[phase] * len(healthy), quiet=2.0)
        walls[phase] = time.perf_counter() - t0
        cpu[phase] = cpu_seconds(node.pid) - cpu0
        gen_cpu[phase] = cpu_seconds(me) - gen0
        sampler.cancel()
    gc.enable()
    slow_metric = await metric(node, SLOW_METRIC) - slow_metric0
    beat_metric = await metric(node, HEARTBEAT_METRIC) - beat_metric0
    confirmed = sum(await asyncio.gather(*(_confirm_cut(sock) for sock in slow)))
    return _figures(
        phase_tally,
        appended,
        walls,
        cpu,
        gen_cpu,
        rss,
        rss_before,
        healthy,
        slow,
        cut_at,
        slow_metric,
        beat_metric,
        confirmed,
        dict(failures),
    )


async def _watch_cut(
    node: Node, count: int, since: float, cut_at: list[float], least: float, most: float
) -> None:
    """Polls the node's slow-disconnect and heartbeat-timeout counters every 250 ms, noting when
    each cut-off showed;
    returns once ``count`` were cut off (after ``least`` seconds at the earliest) or after ``most``.

    The socket's own TCP state cannot tell: a stalled socket advertises a zero window, so the
    node's close waits behind the unread data until somebody reads.
    """
    start = time.perf_counter()
    while True:
        now = time.perf_counter() - start
        cuts = await metric(node, SLOW_METRIC) + await metric(node, HEARTBEAT_METRIC)
        seen = int(cuts - since)
        cut_at.extend([now] * (seen - len(cut_at)))
        if now >= most or (now >= least and len(cut_at) >= count):
            return
        await asyncio.sleep(0.25)


async def _confirm_cut(sock: CommandSocket, timeout: float = 10.0) -> bool:
    """Reads what a stalled socket holds, with a large receive buffer now, until the node's close
    (end of stream) or reset shows; False if neither within ``timeout``.

    The node's close of a stalled socket is queued behind every byte the kernels still hold (a few
    MiB), so this reads them all.
    """
    raw = sock.sock
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError):
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    try:
        async with asyncio.timeout(timeout):
            while await loop.sock_recv(raw, 1 << 20):
                pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (TimeoutError, OSError):
        return False
    return True


def _figures(
    tallies: dict[str, Tally],
    appended: dict[str, int],
    walls: dict[str, float],
    cpu: dict[str, float],
    gen_cpu: dict[str, float],
    rss: dict[str, list[int]],
    rss_before: int,
    healthy: list[CommandSocket],
    slow: list[CommandSocket],
    cut_at: list[float],
    slow_metric: float,
    beat_metric: float,
    confirmed: int,
    failures: dict[str, int],
) -> dict[str, Any]:
    ms = 1000.0
    out: dict[str, Any] = {
        "healthy": len(healthy),
        "slow_joined": len(slow),
        "join_failures": failures,
        "slow_cut_off_in_b": len(cut_at),
        "slow_cut_off_by_node_metric": slow_metric,
        "slow_cut_off_by_heartbeat": beat_metric,
        "slow_cut_off_confirmed_by_client": confirmed,
        "cut_off_after_s_min": min(cut_at, default=0.0),
        "cut_off_after_s_max": max(cut_at, default=0.0),
        "healthy_dropped": sum(1 for s in healthy if not s.is_open),
        "rss_before_mib": rss_before / 2**20,
    }
    for phase, tally in tallies.items():
        latencies = sorted(tally.latencies)
        expected = appended[phase] * len(healthy)
        out[f"{phase}_events"] = appended[phase]
        out[f"{phase}_wall_s"] = walls[phase]
        out[f"{phase}_reach"] = tally.delivered / expected if expected else 0.0
        out[f"{phase}_p50_ms"] = percentile(latencies, 50) * ms
        out[f"{phase}_p99_ms"] = percentile(latencies, 99) * ms
        out[f"{phase}_max_ms"] = (latencies[-1] if latencies else 0.0) * ms
        out[f"{phase}_server_cpu_pct"] = 100 * cpu[phase] / walls[phase] if walls[phase] else 0.0
        out[f"{phase}_loadgen_cpu_pct"] = (
            100 * gen_cpu[phase] / walls[phase] if walls[phase] else 0.0
        )
        out[f"{phase}_rss_max_mib"] = max(rss[phase], default=0) / 2**20
        out[f"{phase}_duplicates_out_of_order"] = tally.duplicates + tally.out_of_order
    delivered = sum(t.delivered for t in tallies.values())
    expected = sum(appended.values()) * len(healthy)
    out["healthy_reach"] = delivered / expected if expected else 0.0
    out["p99_change_pct"] = (
        100 * (out["B_p99_ms"] / out["A_p99_ms"] - 1) if out["A_p99_ms"] else 0.0
    )
    return out


def table(result: dict[str, Any]) -> str:
    """S6's figures as a plain-text table, the §5 reach target beside the healthy sockets' reach."""
    r = result
    reach = float(r["healthy_reach"])
    rows = [
        ("reach, healthy sockets (all phases)", f"{100 * reach:.3f} %", "100 %", verdict(reach, ">=", 1.0)),
        (
            "healthy p99: A without / B with slow readers",
            f"{r['A_p99_ms']:.1f} / {r['B_p99_ms']:.1f} ms ({r['p99_change_pct']:+.0f} %)",
            "", "",
        ),
        (
            "slow sockets cut off: send buffer bound / heartbeat / seen by the client",
            f"{r['slow_cut_off_by_node_metric']:.0f} / {r.get('slow_cut_off_by_heartbeat', 0):.0f}"
            f" / {r['slow_cut_off_confirmed_by_client']} "
            f"of {r['slow_joined']}",
            "", "",
        ),
        (
            "cut off after (from B's start, ±0.25 s) first / last",
            f"{r['cut_off_after_s_min']:.1f} / {r['cut_off_after_s_max']:.1f} s "
            f"({r['slow_cut_off_in_b']} within B)",
            "", "",
        ),
        ("healthy sockets dropped", f"{r['healthy_dropped']} of {r['healthy']}", "0", verdict(-float(r["healthy_dropped"]), ">=", 0.0)),
    ]  # fmt: skip
    for phase, what in (("A", "baseline"), ("B", "slow readers stalled"), ("C", "after")):
        rows += [
            (
                f"{phase} ({what}): healthy p50 / p99 / max",
                f"{r[f'{phase}_p50_ms']:.1f} / {r[f'{phase}_p99_ms']:.1f} / "
                f"{r[f'{phase}_max_ms']:.1f} ms",
                "",
                "",
            ),
            (
                f"{phase}: events / s / reach",
                f"{r[f'{phase}_events']} / {r[f'{phase}_wall_s']:.1f} s / "
                f"{100 * r[f'{phase}_reach']:.3f} %",
                "",
                "",
            ),
            (
                f"{phase}: node CPU / node RSS max / load generator CPU",
                f"{r[f'{phase}_server_cpu_pct']:.0f} % / {r[f'{phase}_rss_max_mib']:.1f} MiB / "
                f"{r[f'{phase}_loadgen_cpu_pct']:.0f} %",
                "",
                "",
            ),
        ]
    rows.append(("node RSS before the phases", f"{r['rss_before_mib']:.1f} MiB", "", ""))
    head = (
        f"S6 slow readers: {r['healthy'] + r['slow_joined']:,} sockets in one session, "
        f"{r['slow']} stop reading in phase B (SO_RCVBUF {SLOW_RCVBUF}); {r['rate']:g} events/s of "
        f"{r['event_bytes'] / 1024:g} KiB ({provenance(r)})"
    )
    notes = [
        "latency: kernel receive time at the client − send time in the event; A/B/C are consecutive "
        "phases of one run (a drift of the machine's load between them shows as a difference too)",
    ]
    notes += join_notes(r)
    busiest = max(float(r[f"{phase}_loadgen_cpu_pct"]) for phase in "ABC")
    return render(head, rows, notes, busiest)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.slow_readers``."""
    return cli(
        argv,
        "slow_readers",
        __doc__,
        "300 sockets, 25 events/s, 5 s phases",
        [
            ("--clients", {"type": int, "help": "sockets (default 2000)"}),
            ("--slow-share", {"type": float, "help": "fraction that stops reading (0.02)"}),
            ("--rate", {"type": float, "help": "events per second (default 10)"}),
            ("--event-bytes", {"type": int, "help": "padding per event (default 16384)"}),
            ("--seconds", {"type": float, "help": "phase length (default 10)"}),
            ("--slow-budget", {"type": float, "help": "longest slow phase (default 40)"}),
        ],
        run,
        table,
    )


if __name__ == "__main__":
    sys.exit(main())
