"""Fault-test fixtures: the ``faults`` marker (long scenarios with real processes), and podium nodes
started as processes on the module's own ``store`` fixture (each module says how its store syncs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.faults.processes import PodiumProcess, StoreProcess

NodeStarter = Callable[..., Awaitable[PodiumProcess]]


def pytest_configure(config: pytest.Config) -> None:
    """Registers the ``faults`` marker: ``-m faults`` runs only the fault scenarios, ``-m 'not
    faults'`` skips them; ``make test`` runs them with the rest."""
    config.addinivalue_line(
        "markers", "faults: a fault scenario with real store and podium processes (tens of seconds)"
    )


@pytest.fixture
async def start_node(store: StoreProcess, tmp_path: Path) -> AsyncIterator[NodeStarter]:
    """Starts podium nodes as processes on the test's store (``PODIUM_*`` settings as keywords)."""
    nodes: list[PodiumProcess] = []

    async def start(**env: str) -> PodiumProcess:
        process = PodiumProcess(
            0, store.url, f"node-{len(nodes) + 1}", dir=tmp_path / "nodes", env=env
        )
        nodes.append(process)
        await process.start()
        await process.ready()
        return process

    yield start
    for process in nodes:
        await process.stop()
