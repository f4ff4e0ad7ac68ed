"""Receive steering on loopback: the receiving half of each loopback TCP segment on the client's core.

On loopback, the kernel does the receiving socket's TCP work inside the sender's ``send()``: the
segment is handed to the loopback device, whose receive processing (IP, TCP, queueing to the reader,
waking it) runs as a softirq on the sending core. A server writing to 10k loopback sockets is charged
for its clients' receive path as well as its own transmit path, which no server pays in production,
where the clients are other machines. Receive Packet Steering (RPS) moves that processing to another
core: with ``/sys/class/net/lo/queues/rx-0/rps_cpus`` set to the load generator's core, the server's
core does the transmit half and the client's core the receive half, as on a real network.

The benchmarks report both ways (``--steer``): the default leaves the machine as it is. Steering
also raises the per-core receive backlog (``netdev_max_backlog``), which a steered burst to 10k
sockets overflows at its default. Writing either needs root; ``steered`` restores both whatever
happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

RPS_CPUS = Path("/sys/class/net/lo/queues/rx-0/rps_cpus")
BACKLOG = Path("/proc/sys/net/core/netdev_max_backlog")
STEERED_BACKLOG = 65536
"""Packets one core's receive backlog holds while steered. The default (1,000) overflows when a
server writes one segment to each of 10,000 sockets in a burst, and every dropped segment waits
for TCP's retransmission timeout (at least 200 ms): seen as 104,181 drops and a 251 ms p99 in a
10k broadcast run before this was raised."""


class SteeringUnavailable(RuntimeError):
    """The loopback RPS mask cannot be written here (not root, or no RPS in this kernel)."""


def mask_of(cpu: int) -> str:
    """The hexadecimal CPU mask holding one core."""
    return format(1 << cpu, "x")


@contextlib.contextmanager
def steered(
    cpu: int | None, *, path: Path = RPS_CPUS, backlog_path: Path = BACKLOG
) -> Iterator[str]:
    """Steers loopback receive processing to ``cpu`` (None: leaves it as it is) for the block.

    Yields the mask in force. Raises ``SteeringUnavailable`` when the mask cannot be written.
    """
    if cpu is None:
        yield path.read_text().strip() if path.exists() else "0"
        return
    try:
        previous = path.read_text().strip()
        backlog = backlog_path.read_text().strip()
        path.write_text(mask_of(cpu) + "\n")
    except OSError as exc:
        raise SteeringUnavailable(f"cannot write {path}: {exc}") from exc
    try:
        backlog_path.write_text(f"{max(int(backlog), STEERED_BACKLOG)}\n")
    except OSError as exc:
        path.write_text(previous + "\n")
        raise SteeringUnavailable(f"cannot write {backlog_path}: {exc}") from exc
    try:
        yield mask_of(cpu)
    finally:
        path.write_text(previous + "\n")
        backlog_path.write_text(backlog + "\n")
