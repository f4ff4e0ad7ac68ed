"""The python-socketio peer the benchmarks compare podium with works: correctness, not speed.

A real ``benchmarks.sio_server`` process on the test store, joined by the lean Socket.IO client: every
socket gets every event once and in order, and a socket whose token is not signed with the server's
secret is refused. (The comparison figures come from the benchmarks, never from a test.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from benchmarks.peer import ORIGIN, SocketIO, participant_token
from benchmarks.sioclient import SioSocket, open_socket
from benchmarks.wsclient import AuthRefused, Tally
from signaling.identity import TokenKeys

SOCKETS = 200
EVENTS = 5


async def test_the_socketio_peer_delivers_every_event_to_every_socket_and_refuses_a_bad_token(
    store_url: str, tmp_path: Path
) -> None:
    system = SocketIO()
    tally = Tally()
    sockets: list[SioSocket] = []
    await system.start(tmp_path, store_url, None)
    try:
        for start in range(0, SOCKETS, 25):
            sockets += await asyncio.gather(
                *(system.open(i, tally, 10.0) for i in range(start, start + 25))
            )

        keys = TokenKeys("not-the-server-secret-0123456789abcdef")
        forged = participant_token(keys, 0, int(time.time()))
        with pytest.raises(AuthRefused, match="Signature verification failed"):
            await open_socket("127.0.0.1", system.port, ORIGIN, forged, Tally(), 10.0)

        for i in range(EVENTS):
            assert await system.publish(i, time.time()) == i
        async with asyncio.timeout(10.0):
            while tally.delivered < SOCKETS * EVENTS:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # a duplicate would arrive now

        assert tally.delivered == SOCKETS * EVENTS
        assert (tally.duplicates, tally.out_of_order, tally.dropped) == (0, 0, 0)
        assert all(sock.last_seq == EVENTS - 1 for sock in sockets)
    finally:
        for sock in sockets:
            sock.abort()
        await system.stop()
