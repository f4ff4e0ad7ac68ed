"""The heap keeper: the long-lived heap is frozen as connections grow and thawed when half left."""

from __future__ import annotations

import gc

from signaling.heap import HeapKeeper, HeapPolicy, Step


def test_a_node_freezes_its_heap_each_time_500_more_connections_are_open() -> None:
    policy = HeapPolicy(growth=500)
    assert [policy.step(n) for n in (0, 10, 499, 500, 700, 999, 1000)] == [
        Step.NOTHING,
        Step.NOTHING,
        Step.NOTHING,
        Step.FREEZE,
        Step.NOTHING,
        Step.NOTHING,
        Step.FREEZE,
    ]


def test_at_large_sizes_it_freezes_after_a_tenth_more_not_every_500() -> None:
    policy = HeapPolicy(growth=500)
    assert policy.step(10_000) is Step.FREEZE
    assert policy.step(10_900) is Step.NOTHING
    assert policy.step(11_000) is Step.FREEZE


def test_when_half_the_connections_frozen_with_it_have_closed_the_heap_is_thawed() -> None:
    policy = HeapPolicy(growth=500)
    policy.step(10_000)
    assert policy.step(5_001) is Step.NOTHING
    assert policy.step(5_000) is Step.THAW
    assert policy.frozen_at == 0
    # ... and frozen again once it has grown back by the step.
    assert policy.step(5_200) is Step.FREEZE


def test_the_keeper_moves_the_live_heap_out_of_the_collectors_sight_and_back() -> None:
    open_now = [0]
    keeper = HeapKeeper(lambda: open_now[0], policy=HeapPolicy(growth=2))
    before = gc.get_freeze_count()
    try:
        open_now[0] = 2
        assert keeper.check() is Step.FREEZE
        assert gc.get_freeze_count() > before
        open_now[0] = 1
        assert keeper.check() is Step.THAW
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()


def test_each_collection_is_timed_by_generation() -> None:
    pauses: list[tuple[int, float]] = []

    class Pauses:
        def gc_pause(self, generation: int, seconds: float) -> None:
            pauses.append((generation, seconds))

    keeper = HeapKeeper(lambda: 0, Pauses())
    gc.callbacks.append(keeper._timed)
    try:
        gc.collect(2)
    finally:
        gc.callbacks.remove(keeper._timed)
    assert pauses
    assert pauses[-1][0] == 2
    assert pauses[-1][1] >= 0.0
