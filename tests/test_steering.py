"""Loopback receive steering for the benchmarks: set for the run, restored whatever happens."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.steering import STEERED_BACKLOG, SteeringUnavailable, mask_of, steered


def _knobs(tmp_path: Path) -> tuple[Path, Path]:
    mask, backlog = tmp_path / "rps_cpus", tmp_path / "netdev_max_backlog"
    mask.write_text("0\n")
    backlog.write_text("1000\n")
    return mask, backlog


def test_steering_to_the_second_core_sets_its_mask_and_a_deep_backlog_then_restores_both(
    tmp_path: Path,
) -> None:
    mask, backlog = _knobs(tmp_path)
    seen: list[str] = []

    def run_that_fails() -> None:
        with steered(1, path=mask, backlog_path=backlog) as applied:
            seen.extend((applied, mask.read_text().strip(), backlog.read_text().strip()))
            raise RuntimeError("the benchmark failed")

    with pytest.raises(RuntimeError):
        run_that_fails()
    assert seen == ["2", "2", str(STEERED_BACKLOG)]
    assert mask.read_text().strip() == "0"
    assert backlog.read_text().strip() == "1000"


def test_no_core_leaves_the_machine_as_it_is(tmp_path: Path) -> None:
    mask, backlog = _knobs(tmp_path)
    with steered(None, path=mask, backlog_path=backlog) as applied:
        assert applied == "0"
    assert backlog.read_text().strip() == "1000"


def test_a_mask_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    _, backlog = _knobs(tmp_path)
    with (
        pytest.raises(SteeringUnavailable),
        steered(1, path=tmp_path / "missing" / "rps_cpus", backlog_path=backlog),
    ):
        pass
    assert backlog.read_text().strip() == "1000"


def test_masks_are_hexadecimal_bit_sets() -> None:
    assert [mask_of(cpu) for cpu in (0, 1, 4, 9)] == ["1", "2", "10", "200"]
