"""S7: a vote storm, 5,000 votes a second in one session; are the vote counts coalesced?

Run: ``python -m benchmarks.votes [--quick] [--json] [--rate 5000] [--seconds 10] [--questions 4]
[--per-socket 9]``. It starts a store and one podium node (pinned to the first core; ``PODIUM_RATE``
10/s, ``PODIUM_BURST`` 20 as in the fan-out benchmark), joins a moderator, who asks ``--questions``
questions and approves them, and ``rate ÷ per-socket`` participants, each voting at ``--per-socket``
votes a second (under the node's limit of 10/s) on one question, alternately ``qa.vote`` and
``qa.unvote`` so that every vote changes a count. The votes are sent evenly: vote k goes to socket
k mod N at k ÷ rate seconds.

It reports the node's CPU per vote, votes acknowledged per second, vote errors by code, the ack
latency, and what PRODUCT.md §5 asks: the ``qa.votes`` frames each client receives per second (target
≤ 5/s: the node coalesces vote broadcasts, about four a second per session), with the time from a
vote's ack to the first ``qa.votes`` frame carrying its question on the voter's socket.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.broadcast import commit
from benchmarks.node import CLOCK_TICKS, cpu_seconds, scrape
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

DEFAULTS = {"rate": 5000.0, "seconds": 10.0, "questions": 4, "per_socket": 9.0}
QUICK = {"rate": 1000.0, "seconds": 6.0, "questions": 2, "per_socket": 9.0}
FRAMES_TARGET = 5.0  # PRODUCT.md §5: vote-count frames per client per second
REPLY_GRACE = 5.0
VOTES_EVENT = "qa.votes"


async def run(quick: bool = False, **options: Any) -> dict[str, Any]:
    """S7 once. Options: ``rate`` (votes/s), ``seconds``, ``questions``, ``per_socket`` (votes/s
    each participant sends; keep it under the node's 10/s), ``concurrency`` (joins in flight)."""
    size = {**(QUICK if quick else DEFAULTS), **{k: v for k, v in options.items() if v is not None}}
    rate, seconds = float(size["rate"]), float(size["seconds"])
    questions, per_socket = int(size["questions"]), float(size["per_socket"])
    voters = math.ceil(rate / per_socket)
    loadavg = os.getloadavg()
    with pinned(voters + 1) as pins:
        async with cluster(pins, sessions=1) as bench:
            result = await _s7(bench, rate, seconds, questions, voters, pins.nodes[0])
    result.update(
        scenario="S7",
        rate=rate,
        seconds=seconds,
        questions=questions,
        per_socket=per_socket,
        voters=voters,
        pinning=pins.describe(),
        loadavg_before=loadavg,
        commit=commit(),
    )
    return result


async def _setup_questions(mod: CommandSocket, count: int) -> list[str]:
    """The moderator asks ``count`` questions and approves each (pre-moderated session)."""
    ids: list[str] = []
    for i in range(count):
        reply = await mod.command("qa.ask", text=f"Benchmark question {i}?", lang="en")
        if reply.get("type") != "ack":
            raise RuntimeError(f"qa.ask refused: {reply}")
        question = reply["result"]["question"]
        ids.append(str(question["id"]))
        if question.get("state") == "pending":
            approved = await mod.command("qa.approve", question=question["id"])
            if approved.get("type") != "ack":
                raise RuntimeError(f"qa.approve refused: {approved}")
    return ids


async def _s7(
    bench: Cluster, rate: float, seconds: float, questions: int, voters: int, core: int | None
) -> dict[str, Any]:
    node = bench.nodes[0]
    me = os.getpid()
    session = session_ids(1)[0]
    tally = Tally()
    opener = commanding(tally)
    mod = await opener(
        JoinSpec(node.port, token(bench.keys, "moderator", (session,), Role.MODERATOR), session)
    )
    bench.sockets.append(mod)
    qids = await _setup_questions(mod, questions)
    specs = [
        JoinSpec(node.port, token(bench.keys, f"voter-{i:05d}", (session,)), session)
        for i in range(voters)
    ]
    sockets, failures, join_wall = await join(specs, opener)
    socks = [s for s in sockets if s is not None]
    bench.sockets.extend(socks)
    for sock in socks:
        sock.watch = frozenset((VOTES_EVENT,))
    await asyncio.sleep(2.0)  # presence settles

    # The storm.
    loop = asyncio.get_running_loop()
    voted = [False] * len(socks)
    sends: list[tuple[int, str, float, asyncio.Future[dict[str, Any]]]] = []
    before = await scrape(node)
    delayed0 = await _delayed_fsyncs(bench)
    gc.disable()
    cpu0, gen0, store0 = cpu_seconds(node.pid), cpu_seconds(me), cpu_seconds(bench.store_pid)
    by_second: list[tuple[float, float]] = []
    sampler = asyncio.create_task(_node_cpu_by_second(node.pid, core, by_second))
    start = loop.time()
    wall0 = time.time()
    total = int(rate * seconds)
    k = 0
    while k < total:
        due = min(total, int((loop.time() - start) * rate) + 1)
        while k < due:
            i = k % len(socks)
            sock = socks[i]
            if sock.is_open:
                question = qids[i % len(qids)]
                kind = "qa.unvote" if voted[i] else "qa.vote"
                voted[i] = not voted[i]
                sends.append((i, question, time.time(), sock.send_command(kind, question=question)))
            k += 1
        await asyncio.sleep(0.005)
    storm = loop.time() - start
    futures = [f for *_, f in sends]
    if futures:
        await asyncio.wait(futures, timeout=REPLY_GRACE)
    answered_in = loop.time() - start
    server_cpu = cpu_seconds(node.pid) - cpu0
    sampler.cancel()
    gen_cpu = cpu_seconds(me) - gen0
    store_cpu = cpu_seconds(bench.store_pid) - store0
    await asyncio.sleep(1.0)  # the last coalesced counts arrive
    gc.enable()
    after = await scrape(node)
    figures = _figures(
        socks,
        sends,
        qids,
        wall0,
        storm,
        answered_in,
        server_cpu,
        gen_cpu,
        store_cpu,
        failures,
        len(specs),
        join_wall,
        before,
        after,
    )
    figures["node_cpu_pct_by_second"] = [round(node_) for node_, _ in by_second]
    figures["others_on_node_core_pct_by_second"] = [round(other) for _, other in by_second]
    figures["store_delayed_fsyncs"] = await _delayed_fsyncs(bench) - delayed0
    return figures


async def _delayed_fsyncs(bench: Cluster) -> int:
    """The store's ``aof_delayed_fsync``: times its once-a-second AOF fsync was late and Redis held
    writes back for it (a slow or busy disk stalls every node's store calls)."""
    info = await bench.store.client.info("persistence")
    return int(info.get("aof_delayed_fsync", 0))


def _core_busy(core: int | None) -> float:
    """Seconds one core spent on anything but idle and iowait since boot (``/proc/stat``)."""
    if core is None:
        return 0.0
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(v) for v in line.split()[1:]]
            return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLOCK_TICKS
    return 0.0


async def _node_cpu_by_second(pid: int, core: int | None, into: list[tuple[float, float]]) -> None:
    """Each second until cancelled: the node's CPU and everything else's on the node's core (% of
    the core). A stall of the acks with the node's share down and the others' up is the machine's
    neighbours taking the core; with both down, the node is waiting on something."""
    last, last_core = cpu_seconds(pid), _core_busy(core)
    while True:
        await asyncio.sleep(1.0)
        now, now_core = cpu_seconds(pid), _core_busy(core)
        mine = now - last
        into.append((100 * mine, max(0.0, 100 * (now_core - last_core - mine))))
        last, last_core = now, now_core


def _figures(
    socks: list[CommandSocket],
    sends: list[tuple[int, str, float, asyncio.Future[dict[str, Any]]]],
    qids: list[str],
    wall0: float,
    storm: float,
    answered_in: float,
    server_cpu: float,
    gen_cpu: float,
    store_cpu: float,
    failures: Counter[str],
    wanted: int,
    join_wall: float,
    before: dict[str, float],
    after: dict[str, float],
) -> dict[str, Any]:
    """The storm's figures from what every socket received."""
    codes: Counter[str] = Counter()
    acked = 0
    ack_latency: list[float] = []
    acks_at: dict[int, list[tuple[float, str]]] = {}
    by_second: dict[int, list[float]] = {}
    for i, question, sent_at, future in sends:
        if not future.done():
            codes["no reply"] += 1
            continue
        reply = future.result()
        if reply.get("type") == "ack":
            acked += 1
            received = float(reply["_received"])
            ack_latency.append(received - sent_at)
            by_second.setdefault(int(sent_at - wall0), []).append(received - sent_at)
            acks_at.setdefault(i, []).append((received, question))
        else:
            codes[str(reply.get("code"))] += 1
    # qa.votes frames per client: over the storm (first send → last reply), and the busiest second.
    end = wall0 + answered_in
    per_client: list[float] = []
    busiest: list[int] = []
    to_count: list[float] = []
    for i, sock in enumerate(socks):
        frames = [(at, body) for name, at, body in sock.seen if name == VOTES_EVENT]
        inside = [at for at, _ in frames if wall0 <= at <= end]
        per_client.append(len(inside) / (end - wall0) if end > wall0 else 0.0)
        busiest.append(_busiest_second(inside))
        # From each acked vote to the first qa.votes frame after it that names its question.
        j = 0
        for acked_at, question in acks_at.get(i, []):
            needle = f'"{question}"'.encode()
            while j < len(frames) and frames[j][0] < acked_at:
                j += 1
            for at, body in frames[j:]:
                if needle in body:
                    to_count.append(at - acked_at)
                    break
    per_client.sort()
    ack_latency.sort()
    to_count.sort()
    ms = 1000.0
    events = after.get("podium_signaling_events_delivered_total", 0.0) - before.get(
        "podium_signaling_events_delivered_total", 0.0
    )
    return {
        "connected": len(socks),
        "wanted_sockets": wanted,
        "join_failures": dict(failures),
        "joins_per_s": len(socks) / join_wall if join_wall else 0.0,
        "votes_sent": len(sends),
        "votes_acked": acked,
        "vote_errors": dict(codes),
        "storm_s": storm,
        "votes_sent_per_s": len(sends) / storm if storm else 0.0,
        "votes_acked_per_s": acked / answered_in if answered_in else 0.0,
        "server_cpu_us_per_vote": server_cpu / acked * 1e6 if acked else 0.0,
        "server_cpu_pct": 100 * server_cpu / answered_in if answered_in else 0.0,
        "loadgen_cpu_pct": 100 * gen_cpu / answered_in if answered_in else 0.0,
        "store_cpu_pct": 100 * store_cpu / answered_in if answered_in else 0.0,
        "ack_latency_p50_ms": percentile(ack_latency, 50) * ms,
        "ack_latency_p99_ms": percentile(ack_latency, 99) * ms,
        "vote_frames_per_client_per_s_mean": sum(per_client) / len(per_client)
        if per_client
        else 0.0,
        "vote_frames_per_client_per_s_max": per_client[-1] if per_client else 0.0,
        "vote_frames_busiest_second_max": max(busiest, default=0),
        # Per second of the storm (by send time): where a long tail comes from.
        "ack_latency_p99_ms_by_second": [
            round(percentile(sorted(v), 99) * ms, 1) for _, v in sorted(by_second.items())
        ],
        "ack_to_count_frame_p50_ms": percentile(to_count, 50) * ms,
        "ack_to_count_frame_p99_ms": percentile(to_count, 99) * ms,
        "ack_to_count_frame_samples": len(to_count),
        "dropped_sockets": sum(1 for s in socks if not s.is_open),
        "node_events_delivered": events,
        "node_store_errors": {
            k: v for k, v in after.items() if k.startswith("podium_store_errors_total{")
        },
    }


def _busiest_second(times: list[float]) -> int:
    """The most frames in any one-second window (sliding) of sorted receive times."""
    best, j = 0, 0
    for i, at in enumerate(times):
        while times[j] < at - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def table(result: dict[str, Any]) -> str:
    """S7's figures as a plain-text table, the §5 target beside the vote-frame rate."""
    r = result
    frames = float(r["vote_frames_per_client_per_s_max"])
    errors = r["vote_errors"]
    rows = [
        (
            "qa.votes frames per client per second (max over clients)",
            f"{frames:.2f} /s (mean {r['vote_frames_per_client_per_s_mean']:.2f})",
            f"<= {FRAMES_TARGET:g} /s",
            verdict(frames, "<=", FRAMES_TARGET),
        ),
        ("qa.votes frames in a client's busiest second", f"{r['vote_frames_busiest_second_max']}", "", ""),
        (
            "votes acked per second",
            f"{r['votes_acked_per_s']:,.0f} /s (sent {r['votes_sent_per_s']:,.0f} /s)",
            f"({r['rate']:,.0f} /s asked)",
            "",
        ),
        ("node CPU per vote (inbound, all work)", f"{r['server_cpu_us_per_vote']:,.0f} µs", "", ""),
        ("node CPU during the storm", f"{r['server_cpu_pct']:.0f} % of a core", "", ""),
        ("votes sent / acked", f"{r['votes_sent']:,} / {r['votes_acked']:,}", "", ""),
        ("vote errors by code", json.dumps(errors) if errors else "none", "(none expected)", "" if not errors else "refusals"),
        (
            "vote ack latency p50 / p99",
            f"{r['ack_latency_p50_ms']:.1f} / {r['ack_latency_p99_ms']:.1f} ms",
            "",
            "",
        ),
        (
            "vote ack latency p99, each second of the storm",
            " ".join(f"{v:.0f}" for v in r["ack_latency_p99_ms_by_second"]) + " ms",
            "",
            "",
        ),
        (
            "node CPU, each second of the storm",
            " ".join(f"{v:.0f}" for v in r["node_cpu_pct_by_second"]) + " %",
            "",
            "",
        ),
        (
            "other processes on the node's core, each second",
            " ".join(f"{v:.0f}" for v in r["others_on_node_core_pct_by_second"]) + " %",
            "",
            "",
        ),
        ("store: AOF fsyncs late (writes held back)", f"{r['store_delayed_fsyncs']}", "", ""),
        (
            "ack → first qa.votes frame with the question p50 / p99",
            f"{r['ack_to_count_frame_p50_ms']:.0f} / {r['ack_to_count_frame_p99_ms']:.0f} ms "
            f"({r['ack_to_count_frame_samples']:,} votes)",
            "",
            "",
        ),
        ("sockets: joined / wanted / dropped", f"{r['connected']} / {r['wanted_sockets']} / {r['dropped_sockets']}", "", ""),
        ("load generator CPU / store CPU", f"{r['loadgen_cpu_pct']:.0f} % / {r['store_cpu_pct']:.0f} % of a core", "", ""),
    ]  # fmt: skip
    head = (
        f"S7 vote storm: {r['rate']:,.0f} votes/s for {r['seconds']:g} s in one session, "
        f"{r['voters']} voters at {r['per_socket']:g}/s each (node limit 10/s, burst 20) on "
        f"{r['questions']} approved questions, vote/unvote alternately "
        f"({provenance(r)})"
    )
    notes = join_notes(r)
    if r["node_store_errors"]:
        notes.append(f"node's store errors: {json.dumps(r['node_store_errors'])}")
    return render(head, rows, notes, float(r["loadgen_cpu_pct"]))


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.votes``."""
    return cli(
        argv,
        "votes",
        __doc__,
        "1,000 votes/s for 6 s",
        [
            ("--rate", {"type": float, "help": "votes per second (default 5000)"}),
            ("--seconds", {"type": float, "help": "storm length (default 10)"}),
            ("--questions", {"type": int, "help": "approved questions voted on (default 4)"}),
            ("--per-socket", {"type": float, "help": "votes/s per participant (default 9)"}),
        ],
        run,
        table,
    )


if __name__ == "__main__":
    sys.exit(main())
