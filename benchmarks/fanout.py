"""The fan-out benchmark (S1 for podium alone): N sockets in one session, E events, each delivery's cost.

Run: ``python -m benchmarks.fanout --clients 1000 --events 50``. It is ``benchmarks.broadcast.run``
with ``benchmarks.podium.Podium`` as the system under test: a store and one podium node (pinned to
the first core), N participants joined by the lean raw-socket client and the probe process (pinned,
with the store, to the second core), E events through ``SessionStore.append``; it prints reach,
delivery latency (bulk and probes), the node's CPU per delivery, memory per idle connection and the
join rate beside the PRODUCT.md §5 targets. ``run()`` is the same benchmark as a coroutine, for tests.
The side-by-side comparison with python-socketio is ``python -m benchmarks.suite --only S1``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from benchmarks import broadcast
from benchmarks.broadcast import CONCURRENCY, TARGETS, machine
from benchmarks.podium import Podium
from benchmarks.probe import PROBES
from benchmarks.steering import steered

__all__ = ["CONCURRENCY", "TARGETS", "machine", "run", "table"]


async def run(
    clients: int,
    events: int,
    interval: float,
    *,
    concurrency: int = CONCURRENCY,
    probes: int = PROBES,
) -> dict[str, Any]:
    """Runs S1 once against a fresh podium node and returns its figures (see ``broadcast.run``)."""
    return await broadcast.run(
        Podium(), clients, events, interval, concurrency=concurrency, probes=probes
    )


def table(result: dict[str, Any]) -> str:
    """The figures as a plain-text table, targets beside them."""
    return broadcast.table(result)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.fanout``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000, help="sockets, probes included (1000)")
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
    parser.add_argument(
        "--probes", type=int, default=PROBES, help=f"sockets in the probe process ({PROBES})"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--steer",
        action="store_true",
        help="steer loopback receive processing to the load generator's core (root)",
    )
    args = parser.parse_args(argv)
    with steered(broadcast.cpu_plan()[1] if args.steer else None):
        result = asyncio.run(
            run(
                args.clients,
                args.events,
                args.interval,
                concurrency=args.concurrency,
                probes=args.probes,
            )
        )
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
