"""The benchmark suite of issue 8: every scenario in order, every table, podium beside python-socketio.

``python -m benchmarks.suite`` runs S1 (broadcast latency at N = 1k, 5k, 10k), S2 (sustained rate),
S3 (100 sessions × 50), S4 (two nodes), S5 (join storm), S6 (slow readers) and S7 (vote storm). S1, S2
and S5 run against podium and then against the python-socketio peer (``benchmarks.peer``) with the
same load generator, and print both side by side with the ratio (python-socketio ÷ podium for costs
and latencies, podium ÷ python-socketio for rates: above 1 means podium is better) and the
PRODUCT.md §5 target with podium's verdict. S3, S4, S6 and S7 are podium only (their modules'
``run(quick)`` and ``table``); a scenario module that is not there is skipped with a note.

Options: ``--quick`` (small sizes: a check that everything works, a few minutes), ``--only S1,S5``,
``--json FILE`` (every figure, written after each scenario), ``--no-peer`` (podium only),
``--detail`` (each system's full table as well), ``--s1 N:events:interval,…`` (other S1 sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import broadcast, joins, rate
from benchmarks.broadcast import cpu_plan, make_system, pinning_line, ratio, verdict
from benchmarks.steering import steered

ORDER = ("S1", "S2", "S3", "S4", "S5", "S6", "S7")
PEER = "python-socketio"
OTHERS = {
    "S3": "benchmarks.sessions",
    "S4": "benchmarks.cross_node",
    "S6": "benchmarks.slow_readers",
    "S7": "benchmarks.votes",
}


@dataclass(frozen=True)
class Sizes:
    """The sizes of S1, S2 and S5 for one mode (full or quick)."""

    s1: tuple[tuple[int, int, float], ...]  # (sockets, events, interval)
    s2_clients: int
    s2_rates: tuple[int, ...]
    s2_step: float
    s5_joins: int
    s5_concurrency: int


# S1 offers each broadcast about the time a core needs for it (10k sockets, 1 s apart: one broadcast
# at a time, the latency figure of §5); python-socketio gets the same offered load.
FULL = Sizes(
    s1=((1000, 50, 0.1), (5000, 30, 0.5), (10000, 30, 1.0)),
    s2_clients=rate.CLIENTS,
    s2_rates=rate.RATES,
    s2_step=rate.STEP_SECONDS,
    s5_joins=joins.JOINS,
    s5_concurrency=joins.CONCURRENCY,
)
QUICK = Sizes(
    s1=((500, 20, 0.1),),
    s2_clients=500,
    s2_rates=(5, 10, 20, 40, 80, 160),
    s2_step=2.0,
    s5_joins=800,
    s5_concurrency=100,
)

# Side-by-side rows: (label, key, unit, cost (True), rate (False) or no ratio (None), §5 target).
Row = tuple[str, str, str, bool | None, tuple[str, float] | None]
S1_ROWS: tuple[Row, ...] = (
    ("reach", "reach", "%", None, (">=", 1.0)),
    ("server CPU per delivery", "server_cpu_us_per_delivery", "µs", True, ("<=", 12.0)),
    ("delivery latency p50", "latency_p50_ms", "ms", True, None),
    ("delivery latency p99 (target at 10k)", "latency_p99_ms", "ms", True, ("<=", 150.0)),
    ("delivery latency max", "latency_max_ms", "ms", True, None),
    ("probe latency p50", "probe_latency_p50_ms", "ms", True, None),
    ("probe latency p99", "probe_latency_p99_ms", "ms", True, None),
    ("probe latency max", "probe_latency_max_ms", "ms", True, None),
    ("fan-out: send → last socket p50", "fanout_complete_p50_ms", "ms", True, None),
    ("fan-out: first → last socket p50", "fanout_spread_p50_ms", "ms", True, None),
    ("deliveries per second (publish phase)", "deliveries_per_s", "/s", False, None),
    ("server CPU in publish phase", "server_cpu_pct_publish", "%", None, None),
    ("memory per idle connection", "memory_per_connection_kib", "KiB", True, ("<=", 20.0)),
    ("server CPU idle with N sockets", "server_idle_cpu_pct", "%", None, None),
    ("joins per second (25 in flight)", "joins_per_s", "/s", False, None),
    ("server CPU per join", "server_cpu_us_per_join", "µs", True, None),
    ("duplicates + out of order", "duplicates", "", None, None),
    ("load generator CPU: join", "loadgen_cpu_pct_join", "%", None, None),
    ("load generator CPU: publish (probes incl.)", "loadgen_cpu_pct_publish", "%", None, None),
)
S5_ROWS: tuple[Row, ...] = (
    ("joined", "joined", "", None, None),
    ("joins per second", "joins_per_s", "/s", False, (">=", 2500.0)),
    ("server CPU per join", "server_cpu_us_per_join", "µs", True, None),
    ("server CPU during the storm", "server_cpu_pct", "%", None, None),
    ("handshake p50", "handshake_p50_ms", "ms", True, None),
    ("handshake p99", "handshake_p99_ms", "ms", True, None),
    ("handshake max", "handshake_max_ms", "ms", True, None),
    ("load generator CPU", "loadgen_cpu_pct", "%", None, None),
)
CPU_RATIO_TARGET = 10.0


def _value(result: dict[str, Any] | None, key: str, unit: str) -> str:
    if result is None:
        return "—"
    value = float(result[key])
    if key == "duplicates":
        return f"{int(result['duplicates']) + int(result['out_of_order'])}"
    if key == "reach":
        return f"{100 * value:.3f} %"
    if unit in ("/s", "µs", ""):
        return (
            f"{value:,.0f}{' ' + unit if unit else ''}" if value >= 100 else f"{value:,.1f} {unit}"
        )
    return f"{value:,.1f} {unit}"


def _ratio_text(podium: dict[str, Any], peer: dict[str, Any] | None, key: str, cost: bool) -> str:
    if peer is None:
        return ""
    value = ratio(float(podium[key]), float(peer[key]), cost=cost)
    return "∞" if math.isinf(value) else f"{value:,.1f}×"


def side_by_side(
    title: str, rows: tuple[Row, ...], podium: dict[str, Any], peer: dict[str, Any] | None
) -> str:
    """A table of figure | podium | python-socketio | ratio | §5 target | podium's verdict."""
    lines_: list[tuple[str, ...]] = [("figure", "podium", PEER, "ratio", "target (§5)", "")]
    for label, key, unit, cost, target in rows:
        if key not in podium:
            continue
        target_text, met = "", ""
        if target is not None:
            op, bound = target
            shown = "100 %" if key == "reach" else f"{op} {bound:,.0f} {unit}"
            target_text, met = shown, verdict(float(podium[key]), op, bound)
        lines_.append(
            (
                label,
                _value(podium, key, unit),
                _value(peer, key, unit),
                "" if cost is None else _ratio_text(podium, peer, key, cost),
                target_text,
                met,
            )
        )
    if peer is not None and "server_cpu_us_per_delivery" in podium:
        times = ratio(
            float(podium["server_cpu_us_per_delivery"]),
            float(peer["server_cpu_us_per_delivery"]),
            cost=True,
        )
        lines_.append(
            (
                "CPU per delivery: podium better by",
                "",
                "",
                f"{times:,.1f}×",
                f">= {CPU_RATIO_TARGET:.0f}×",
                verdict(times, ">=", CPU_RATIO_TARGET),
            )
        )
    width = [max(len(row[i]) for row in lines_) for i in range(6)]
    out = [title, ""]
    for row in lines_:
        out.append("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(out)


def _notes(*results: dict[str, Any] | None) -> list[str]:
    """Warnings of either run: a busy load generator, join failures, missing probes."""
    notes = []
    for r in results:
        if r is None:
            continue
        busy = [
            float(r[k])
            for k in ("loadgen_cpu_pct_join", "loadgen_cpu_pct_publish", "loadgen_cpu_pct")
            if k in r
        ]
        warning = broadcast.loadgen_warning(*busy)
        if warning:
            notes.append(f"{r['system']}: {warning}")
        failures = r.get("join_failures") or r.get("failures")
        if failures:
            notes.append(f"{r['system']}: join failures {json.dumps(failures)}")
        if r.get("probe_note"):
            notes.append(f"{r['system']}: {r['probe_note']}")
    return notes


def _s2_summary(podium: dict[str, Any], peer: dict[str, Any] | None) -> str:
    best = podium["best_deliveries_per_s"]
    other = peer["best_deliveries_per_s"] if peer else None
    rows = [("figure", "podium", PEER, "ratio", "target (§5)", "")]
    rows.append(
        (
            f"highest deliveries/s, reach 100 %, probe p99 < {rate.P99_LIMIT_MS:.0f} ms",
            f"{best:,.0f}",
            "—" if other is None else f"{other:,.0f}",
            "" if other is None else _fmt_ratio(ratio(best, other, cost=False)),
            f">= {rate.TARGET:,.0f}",
            verdict(best, ">=", rate.TARGET),
        )
    )
    rows.append(
        (
            "at events per second",
            str(podium["best_rate"]),
            "—" if peer is None else str(peer["best_rate"]),
            "",
            "",
            "",
        )
    )
    width = [max(len(row[i]) for row in rows) for i in range(6)]
    return "\n".join(
        "  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


def _fmt_ratio(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:,.1f}×"


class Suite:
    """Runs the chosen scenarios in order, prints their tables, keeps every figure."""

    def __init__(self, quick: bool, only: set[str], peer: bool, detail: bool, out: Path | None):
        self.sizes = QUICK if quick else FULL
        self.quick = quick
        self.only = only
        self.peer = peer
        self.detail = detail
        self.out = out
        self.results: dict[str, Any] = {"machine": broadcast.machine(), "quick": quick}

    def _save(self) -> None:
        if self.out is not None:
            self.out.write_text(json.dumps(self.results, indent=2, default=str))

    async def _pair(
        self, call: Callable[[Any], Any]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Runs one scenario on podium, then on the peer (when asked for and installed)."""
        podium: dict[str, Any] = await call(make_system("podium"))
        peer: dict[str, Any] | None = None
        if self.peer:
            try:
                system = make_system(PEER)
            except ImportError as exc:
                print(f"(python-socketio peer skipped: {exc})")
            else:
                peer = await call(system)
        return podium, peer

    async def s1(self) -> None:
        """S1 at each size."""
        runs = []
        for clients, events, interval in self.sizes.s1:
            podium, peer = await self._pair(
                partial(broadcast.run, clients=clients, events=events, interval=interval)
            )
            runs.append({"podium": podium, PEER: peer})
            self._detail(broadcast.table, podium, peer)
            title = (
                f"S1 broadcast, one session, N = {clients:,} ({podium['probes']} of them probes), "
                f"{events} events every {interval * 1000:.0f} ms ({pinning_line(podium['pinning'])})"
            )
            print(side_by_side(title, S1_ROWS, podium, peer))
            for note in _notes(podium, peer):
                print(note)
            print()
        self.results["S1"] = runs

    async def s2(self) -> None:
        """S2 with the sizes of the mode."""
        s = self.sizes
        podium, peer = await self._pair(
            lambda system: rate.run(system, s.s2_clients, s.s2_rates, s.s2_step)
        )
        self.results["S2"] = {"podium": podium, PEER: peer}
        print(rate.table(podium))
        print()
        if peer is not None:
            print(rate.table(peer))
            print()
        print(_s2_summary(podium, peer))
        print()

    async def s5(self) -> None:
        """S5 with the sizes of the mode."""
        s = self.sizes
        podium, peer = await self._pair(
            lambda system: joins.run(system, s.s5_joins, s.s5_concurrency)
        )
        self.results["S5"] = {"podium": podium, PEER: peer}
        self._detail(joins.table, podium, peer)
        title = (
            f"S5 join storm: {s.s5_joins:,} joins, {s.s5_concurrency} in flight "
            f"({pinning_line(podium['pinning'])})"
        )
        print(side_by_side(title, S5_ROWS, podium, peer))
        for note in _notes(podium, peer):
            print(note)
        print()

    async def other(self, name: str) -> None:
        """One of S3, S4, S6, S7 (podium only), when its module is there."""
        try:
            module = importlib.import_module(OTHERS[name])
        except ModuleNotFoundError as exc:
            print(f"{name}: skipped, {OTHERS[name]} is not there yet ({exc})\n")
            self.results[name] = {"skipped": str(exc)}
            return
        result = await module.run(quick=self.quick)
        self.results[name] = result
        print(module.table(result))
        print()

    def _detail(
        self,
        render: Callable[[dict[str, Any]], str],
        podium: dict[str, Any],
        peer: dict[str, Any] | None,
    ) -> None:
        if self.detail:
            for result in (podium, peer):
                if result is not None:
                    print(render(result))
                    print()

    async def run(self) -> int:
        """Every chosen scenario, in order; a scenario that fails is reported and the rest go on."""
        print(describe(self.results["machine"]))
        print()
        failed = 0
        for name in ORDER:
            if name not in self.only:
                continue
            print(f"=== {name} " + "=" * 60)
            started = time.monotonic()
            try:
                if name == "S1":
                    await self.s1()
                elif name == "S2":
                    await self.s2()
                elif name == "S5":
                    await self.s5()
                else:
                    await self.other(name)
            except Exception as exc:  # one broken scenario must not lose the others' figures
                failed += 1
                traceback.print_exc()
                self.results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"{name}: FAILED ({type(exc).__name__}: {exc})\n")
            print(f"({name} took {time.monotonic() - started:.0f} s)\n")
            self._save()
        return 1 if failed else 0


def describe(host: dict[str, Any]) -> str:
    """The machine, once, at the top of the output."""
    libs = ", ".join(f"{name} {version}" for name, version in host.get("libraries", {}).items())
    load = ", ".join(f"{x:.2f}" for x in host["loadavg"])
    return "\n".join(
        (
            f"machine: {host['cpu']}, {host['nproc']} cpus, Linux {host['kernel']}, "
            f"Python {host['python']}",
            f"libraries: {libs}",
            f"commit: {host['commit']}   load average at start: {load}",
            f"loopback receive steering (rps_cpus of lo): {host.get('lo_rps_cpus', '0')}"
            + (
                " (off: each segment's receive half runs on the sending core)"
                if host.get("lo_rps_cpus", "0").strip("0,") == ""
                else " (on)"
            ),
        )
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.suite``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a check, not figures)")
    parser.add_argument("--only", default=",".join(ORDER), help="scenarios, e.g. S1,S5")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to FILE")
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run S1, S2, S5 against python-socketio (default on)",
    )
    parser.add_argument("--detail", action="store_true", help="each system's full table too")
    parser.add_argument(
        "--steer",
        action="store_true",
        help="steer loopback receive processing to the load generator's core (root; see "
        "benchmarks/steering.py)",
    )
    parser.add_argument(
        "--s1",
        default=None,
        help="S1 sizes as N:events:interval,… (default 1000:50:0.1,5000:30:0.5,10000:30:1)",
    )
    args = parser.parse_args(argv)
    only = {name.strip().upper() for name in args.only.split(",") if name.strip()}
    unknown = only - set(ORDER)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    suite = Suite(args.quick, only, args.peer, args.detail, args.json)
    if args.s1:
        try:
            sizes = tuple(
                (int(n), int(e), float(i))
                for n, e, i in (part.split(":") for part in args.s1.split(",") if part)
            )
        except ValueError:
            parser.error("--s1 wants N:events:interval,… e.g. 1000:50:0.1")
        suite.sizes = replace(suite.sizes, s1=sizes)
    with steered(cpu_plan()[1] if args.steer else None):
        return asyncio.run(suite.run())


if __name__ == "__main__":
    sys.exit(main())
