"""Fault-test fixtures: the ``faults`` marker (long scenarios with real processes)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Registers the ``faults`` marker: ``-m faults`` runs only the fault scenarios, ``-m 'not
    faults'`` skips them; ``make test`` runs them with the rest."""
    config.addinivalue_line(
        "markers", "faults: a fault scenario with real store and podium processes (tens of seconds)"
    )
