"""A short run of the fan-out benchmark (S1 at N = 500) in the test suite: correctness, not speed.

The benchmark itself (``python -m benchmarks.fanout``, or ``python -m benchmarks.suite --only S1``)
starts its own store and node processes, joins its lean raw-socket clients and a probe process holding
32 of the sockets; here it checks that every published event reached every socket, the probes'
included, and that the figures it prints are there. The speed targets are measured by the benchmark
and recorded in docs/performance.md, never asserted in a test.
"""

from __future__ import annotations

from benchmarks.fanout import run, table


async def test_the_fanout_benchmark_at_500_sockets_delivers_every_event_to_every_socket() -> None:
    result = await run(500, 5, 0.1)
    assert result["reach"] == 1.0
    assert result["clients"] == 500
    assert result["connected"] == 500
    assert result["duplicates"] == 0
    assert result["out_of_order"] == 0
    # The probe process's 32 sockets got every event too, and their latency was measured.
    assert result["probes"] == 32
    assert result["probe_reach"] == 1.0
    assert 0.0 < result["probe_latency_p50_ms"] <= result["probe_latency_p99_ms"]
    printed = table(result)
    for label in ("reach", "server CPU per delivery", "delivery latency p99", "probe latency"):
        assert label in printed
