"""The system under test, as the broadcast scenarios (S1, S2, S5) see it: podium or a peer server.

The same load generator drives either. A ``System`` starts its server process pinned to one core,
opens participant sockets that count deliveries into a shared ``Tally`` (``benchmarks.wsclient``), and
publishes one broadcast event through its own store path (podium: ``SessionStore.append`` → sharded
pub/sub → the node's fan-out; python-socketio: its Redis manager's emitter → pub/sub → the server's
``emit`` to a room). Every event carries ``{"i": <index>, "t": <send time, epoch seconds>}``; a
delivery is tallied under the key ``publish`` returned, which must increase by one per event.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

from benchmarks.wsclient import Tally
from signaling.identity import TokenKeys


class Socket(Protocol):
    """One joined participant socket of the load generator."""

    def abort(self) -> None:
        """Closes the socket at once."""


class System(Protocol):
    """A broadcast server under test, with its own client protocol and publish path."""

    name: str

    @property
    def pid(self) -> int:
        """The server process (its CPU and RSS are read from ``/proc``)."""
        ...

    async def start(self, tmp: Path, store_url: str, cpu: int | None) -> None:
        """Starts the server pinned to ``cpu`` against the store at ``store_url``; waits until ready."""

    async def open(self, index: int, tally: Tally, timeout: float) -> Socket:
        """Joins participant ``index`` (its own identity, token checked), counting into ``tally``.

        Returns once the server has admitted the socket (podium: ``welcome``; socket.io: the
        namespace ``connect`` answer). Raises ``OSError``, ``TimeoutError`` or the client's own
        handshake/auth error.
        """
        ...

    async def publish(self, i: int, t: float) -> int:
        """Broadcasts event ``i`` sent at ``t`` to every joined socket; returns its tally key."""
        ...

    async def stop(self) -> None:
        """Stops the server (whatever happened) and releases what ``start`` opened."""


class Attachable:
    """What podium's and the peer's ``System`` share on the participant side: the token secret and
    keys, the port, and a client-only copy for another process (``client_spec`` / ``attach``)."""

    factory: ClassVar[str]
    """``module:Class.attach``, the callable the probe process builds its copy with."""

    def __init__(self) -> None:
        self.secret = secrets.token_urlsafe(48)
        self.port = 0
        self._keys = TokenKeys(self.secret)
        self._now = int(time.time())

    def client_spec(self) -> dict[str, Any]:
        """What another process needs to open sockets of this system (see ``attach``)."""
        return {"factory": self.factory, "port": self.port, "secret": self.secret}

    @classmethod
    def attach(cls, spec: dict[str, Any]) -> Self:
        """A client-only copy (``open`` works; ``start``/``publish`` do not) from ``client_spec``."""
        system = cls()
        system.port = int(spec["port"])
        system.secret = str(spec["secret"])
        system._keys = TokenKeys(system.secret)
        return system
