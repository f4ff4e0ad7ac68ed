"""S4: two nodes on one store; how much later does a broadcast reach the other node's participants?

Run: ``python -m benchmarks.cross_node [--quick] [--json] [--clients 1000] [--broadcasts 50]
[--interval 0.2] [--layout split|shared]``. It starts a store and two podium nodes on it, joins a
moderator and half the participants to node 1 and the other half to node 2, all in one session. The
moderator asks two questions and approves them, then pins them in turn (``qa.pin``) ``--broadcasts``
times, ``--interval`` seconds apart: each pin is one ``qa.pinned`` event to everyone, appended by
node 1 and carried to node 2 by the store. For every participant it takes the kernel receive time
of each ``qa.pinned`` frame minus the time just before the moderator sent the command.

It reports latency p50/p99 for recipients on node 1 (same node as the moderator) and on node 2, the
extra latency of node 2 (the difference of the p50s; PRODUCT.md §5: ≤ 2 ms), and, freer of the
fan-out loop's length, the same for the first socket served on each node per broadcast.

Layouts: ``split`` (default) pins node 1 to the first core and node 2 to the second, beside the
load generator and the store, as two nodes on two machines would each have a core of their own;
``shared`` pins both nodes to the first core, leaving the second to the load generator, so that the
two nodes' fan-outs of one broadcast run one after the other on the same core.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from typing import Any

from benchmarks.broadcast import commit
from benchmarks.node import cpu_seconds
from benchmarks.sessions import (
    Cluster,
    JoinSpec,
    cli,
    cluster,
    commanding,
    join,
    join_notes,
    percentile,
    pinned,
    provenance,
    render,
    session_ids,
    token,
    verdict,
)
from benchmarks.wsclient import CommandSocket, Tally
from signaling.identity import Role

DEFAULTS = {"clients": 1000, "broadcasts": 50, "interval": 0.2, "layout": "split"}
QUICK = {"clients": 200, "broadcasts": 20, "interval": 0.2, "layout": "split"}
EXTRA_TARGET_MS = 2.0  # PRODUCT.md §5: extra latency for a participant on another node, p50
PINNED = "qa.pinned"
GRACE = 3.0


async def run(quick: bool = False, **options: Any) -> dict[str, Any]:
    """S4 once. Options: ``clients`` (participants, half per node), ``broadcasts``, ``interval``
    (seconds between them), ``layout`` (``split``: a core per node; ``shared``: both nodes on the
    first core), ``concurrency`` (joins in flight)."""
    size = {**(QUICK if quick else DEFAULTS), **{k: v for k, v in options.items() if v is not None}}
    clients, broadcasts = int(size["clients"]), int(size["broadcasts"])
    interval, layout = float(size["interval"]), str(size["layout"])
    if layout not in ("split", "shared"):
        raise ValueError(f"layout must be split or shared, not {layout!r}")
    loadavg = os.getloadavg()
    with pinned(clients + 1, (0, 1) if layout == "split" else (0, 0)) as pins:
        async with cluster(pins, sessions=1) as bench:
            result = await _s4(bench, clients, broadcasts, interval)
    result.update(
        scenario="S4",
        clients=clients,
        broadcasts=broadcasts,
        interval_s=interval,
        layout=layout,
        pinning=pins.describe(),
        loadavg_before=loadavg,
        commit=commit(),
    )
    return result


async def _s4(bench: Cluster, clients: int, broadcasts: int, interval: float) -> dict[str, Any]:
    one, two = bench.nodes
    session = session_ids(1)[0]
    tally = Tally()
    opener = commanding(tally)
    mod = await opener(
        JoinSpec(one.port, token(bench.keys, "moderator", (session,), Role.MODERATOR), session)
    )
    bench.sockets.append(mod)
    qids: list[str] = []
    for i in range(2):
        asked = await mod.command("qa.ask", text=f"Question to pin {i}?", lang="en")
        question = asked["result"]["question"]
        qids.append(str(question["id"]))
        if question.get("state") == "pending":
            approved = await mod.command("qa.approve", question=question["id"])
            if approved.get("type") != "ack":
                raise RuntimeError(f"qa.approve refused: {approved}")
    specs = [
        JoinSpec(
            (one if i % 2 == 0 else two).port,
            token(bench.keys, f"p-{i:05d}", (session,)),
            session,
        )
        for i in range(clients)
    ]
    sockets, failures, _ = await join(specs, opener)
    on_node: dict[int, list[CommandSocket]] = {1: [], 2: []}
    for i, sock in enumerate(sockets):
        if sock is not None:
            sock.watch = frozenset((PINNED,))
            on_node[1 if i % 2 == 0 else 2].append(sock)
            bench.sockets.append(sock)
    await asyncio.sleep(2.0)

    loop = asyncio.get_running_loop()
    sent: list[float] = []
    refused: list[str] = []
    gc.disable()
    cpu = {n: cpu_seconds(node.pid) for n, node in ((1, one), (2, two))}
    gen0 = cpu_seconds(os.getpid())
    t0 = time.perf_counter()
    due = loop.time()
    for k in range(broadcasts):
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        due = max(due, loop.time()) + interval
        sent.append(time.time())
        reply = await mod.command("qa.pin", question=qids[k % 2])
        if reply.get("type") != "ack":
            refused.append(str(reply.get("code")))
    await asyncio.sleep(GRACE)
    wall = time.perf_counter() - t0
    busy = {n: (cpu_seconds(node.pid) - cpu[n]) / wall for n, node in ((1, one), (2, two))}
    busy[0] = (cpu_seconds(os.getpid()) - gen0) / wall
    gc.enable()
    return _figures(on_node, sent, refused, failures, busy, clients)


def _figures(
    on_node: dict[int, list[CommandSocket]],
    sent: list[float],
    refused: list[str],
    failures: Any,
    busy: dict[int, float],  # node number → share of a core; 0: the load generator
    clients: int,
) -> dict[str, Any]:
    """Latency per node from each socket's ``qa.pinned`` frames, matched to broadcasts in order."""
    ms = 1000.0
    out: dict[str, Any] = {
        "connected": sum(len(v) for v in on_node.values()),
        "wanted_sockets": clients,
        "join_failures": dict(failures),
        "pins_refused": refused,
        "loadgen_cpu_pct": 100 * busy[0],
    }
    for n, socks in on_node.items():
        latencies: list[float] = []
        firsts: dict[int, float] = {}
        received = 0
        for sock in socks:
            frames = [at for name, at, _ in sock.seen if name == PINNED]
            received += len(frames)
            # Each pin is one event to everyone, in order: the k-th frame answers the k-th pin.
            for k, at in enumerate(frames[: len(sent)]):
                latency = at - sent[k]
                latencies.append(latency)
                firsts[k] = min(firsts.get(k, latency), latency)
        latencies.sort()
        first = sorted(firsts.values())
        expected = len(socks) * len(sent)
        out[f"node{n}_sockets"] = len(socks)
        out[f"node{n}_reach"] = received / expected if expected else 0.0
        out[f"node{n}_p50_ms"] = percentile(latencies, 50) * ms
        out[f"node{n}_p99_ms"] = percentile(latencies, 99) * ms
        out[f"node{n}_max_ms"] = (latencies[-1] if latencies else 0.0) * ms
        out[f"node{n}_first_p50_ms"] = percentile(first, 50) * ms
        out[f"node{n}_first_p99_ms"] = percentile(first, 99) * ms
        out[f"node{n}_cpu_pct"] = 100 * busy[n]
    out["extra_p50_ms"] = out["node2_p50_ms"] - out["node1_p50_ms"]
    out["extra_p99_ms"] = out["node2_p99_ms"] - out["node1_p99_ms"]
    out["extra_first_p50_ms"] = out["node2_first_p50_ms"] - out["node1_first_p50_ms"]
    return out


def table(result: dict[str, Any]) -> str:
    """S4's figures as a plain-text table, the §5 target beside the extra latency."""
    r = result
    extra = float(r["extra_p50_ms"])
    rows = [
        (
            "extra latency on the other node, p50",
            f"{extra:+.2f} ms",
            f"<= {EXTRA_TARGET_MS:g} ms",
            verdict(extra, "<=", EXTRA_TARGET_MS),
        ),
        ("extra latency on the other node, p99", f"{r['extra_p99_ms']:+.2f} ms", "", ""),
        (
            "extra latency, first socket per node and broadcast, p50",
            f"{r['extra_first_p50_ms']:+.2f} ms",
            "",
            "",
        ),
    ]
    for n, where in ((1, "same node as the moderator"), (2, "other node")):
        rows += [
            (
                f"node {n} ({where}): latency p50 / p99 / max",
                f"{r[f'node{n}_p50_ms']:.2f} / {r[f'node{n}_p99_ms']:.2f} / "
                f"{r[f'node{n}_max_ms']:.2f} ms",
                "",
                "",
            ),
            (
                f"node {n}: first socket per broadcast p50 / p99",
                f"{r[f'node{n}_first_p50_ms']:.2f} / {r[f'node{n}_first_p99_ms']:.2f} ms",
                "",
                "",
            ),
            (
                f"node {n}: reach / sockets / CPU",
                f"{100 * r[f'node{n}_reach']:.2f} % / {r[f'node{n}_sockets']} / "
                f"{r[f'node{n}_cpu_pct']:.0f} % of a core",
                "100 %",
                verdict(float(r[f"node{n}_reach"]), ">=", 1.0),
            ),
        ]
    rows.append(
        ("pins refused", json.dumps(r["pins_refused"]) if r["pins_refused"] else "none", "", "")
    )
    rows.append(("load generator CPU", f"{r['loadgen_cpu_pct']:.0f} % of a core", "", ""))
    head = (
        f"S4 two nodes: {r['clients']} participants split across 2 nodes, {r['broadcasts']} "
        f"qa.pin broadcasts {r['interval_s'] * 1000:.0f} ms apart from a moderator on node 1 "
        f"(layout {r['layout']}: {provenance(r)})"
    )
    notes = [
        "latency: kernel receive time at the participant − time just before the moderator sent "
        "qa.pin (includes the command's handling on node 1 and the store hop)",
        "the load generator's CPU is not in the latency (kernel timestamps); "
        + (
            "layout split: node 2 shares its core with the load generator and the store"
            if r["layout"] == "split"
            else "layout shared: the two nodes' fan-outs of one broadcast share one core"
        ),
    ]
    notes += join_notes(r)
    return render(head, rows, notes, float(r["loadgen_cpu_pct"]))


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.cross_node``."""
    return cli(
        argv,
        "cross_node",
        __doc__,
        "200 participants, 20 broadcasts",
        [
            ("--clients", {"type": int, "help": "participants, half per node (default 1000)"}),
            ("--broadcasts", {"type": int, "help": "qa.pin broadcasts (default 50)"}),
            ("--interval", {"type": float, "help": "seconds between broadcasts (0.2)"}),
            ("--layout", {"choices": ("split", "shared"), "help": "node cores (split)"}),
        ],
        run,
        table,
    )


if __name__ == "__main__":
    sys.exit(main())
