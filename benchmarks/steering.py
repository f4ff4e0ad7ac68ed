"""Receive steering on loopback: the receiving half of each loopback TCP segment on the client's core.

On loopback, the kernel does the receiving socket's TCP work inside the sender's ``send()``: the
segment is handed to the loopback device, whose receive processing (IP, TCP, queueing to the reader,
waking it) runs as a softirq on the sending core. A server writing to 10k loopback sockets is charged
for its clients' receive path as well as its own transmit path, which no server pays in production,
where the clients are other machines. Receive Packet Steering (RPS) moves that processing to another
core: with ``/sys/class/net/lo/queues/rx-0/rps_cpus`` set to the load generator's core, the server's
core does the transmit half and the client's core the receive half, as on a real network.

The benchmarks report both ways (``--steer``): the default leaves the machine as it is. Writing the
mask needs root; ``steered`` restores the previous mask whatever happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

RPS_CPUS = Path("/sys/class/net/lo/queues/rx-0/rps_cpus")


class SteeringUnavailable(RuntimeError):
    """The loopback RPS mask cannot be written here (not root, or no RPS in this kernel)."""


def mask_of(cpu: int) -> str:
    """The hexadecimal CPU mask holding one core."""
    return format(1 << cpu, "x")


@contextlib.contextmanager
def steered(cpu: int | None, *, path: Path = RPS_CPUS) -> Iterator[str]:
    """Steers loopback receive processing to ``cpu`` (None: leaves it as it is) for the block.

    Yields the mask in force. Raises ``SteeringUnavailable`` when the mask cannot be written.
    """
    if cpu is None:
        yield path.read_text().strip() if path.exists() else "0"
        return
    try:
        previous = path.read_text().strip()
        path.write_text(mask_of(cpu) + "\n")
    except OSError as exc:
        raise SteeringUnavailable(f"cannot write {path}: {exc}") from exc
    try:
        yield mask_of(cpu)
    finally:
        path.write_text(previous + "\n")
