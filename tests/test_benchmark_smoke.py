"""A short run of the fan-out benchmark (S1 at N = 500) in the test suite: correctness, not speed.

The benchmark itself (``python -m benchmarks.fanout``) starts its own store and node processes and
joins its lean raw-socket clients; here it checks that every published event reached every socket
and that the figures it prints are there. The speed targets are measured by the benchmark and
recorded in docs/performance.md, never asserted in a test.
"""

from __future__ import annotations

from benchmarks.fanout import run, table


async def test_the_fanout_benchmark_at_500_sockets_delivers_every_event_to_every_socket() -> None:
    result = await run(500, 5, 0.1)
    assert result["reach"] == 1.0
    assert result["clients"] == 500
    printed = table(result)
    for label in ("reach", "server CPU per delivery", "delivery latency p99"):
        assert label in printed
