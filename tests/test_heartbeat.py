"""The node's heartbeat: silent sockets are pinged once a period, and cut off if they stay silent."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from signaling.heartbeat import PING, SPREAD, Heartbeat, sweep
from tests.conftest import ORIGIN, NodeFactory, token, ws_url

PERIOD = 20.0


@dataclass(eq=False)
class Peer:
    """A socket as the heartbeat sees it, recording what was written to it."""

    seen: float = 0.0
    pinged: float = 0.0
    open: bool = True
    frames: list[bytes] = field(default_factory=list)
    cut_off: bool = False

    def write(self, frame: bytes) -> bool:
        if not self.open:
            return False
        self.frames.append(frame)
        return True

    def cut(self) -> None:
        self.cut_off = True
        self.open = False


@dataclass
class Counted:
    pings: int = 0
    timeouts: int = 0

    def heartbeat(self, pinged: int, timed_out: int) -> None:
        self.pings += pinged
        self.timeouts += timed_out


def test_a_socket_heard_within_the_period_is_not_pinged() -> None:
    peer = Peer(seen=100.0)
    assert sweep([peer], 100.0 + PERIOD * (1 - SPREAD) - 0.01, PERIOD) == (0, [])
    assert peer.frames == []


def test_a_silent_socket_is_pinged_once_per_period_with_the_shared_frame() -> None:
    peer = Peer(seen=100.0)
    assert sweep([peer], 100.0 + PERIOD, PERIOD) == (1, [])
    assert peer.frames == [PING]
    assert bytes((0x89, 0x00)) == PING  # FIN + ping, unmasked, no payload
    # Not pinged again while the pong is awaited.
    assert sweep([peer], 100.0 + PERIOD + 1, PERIOD) == (0, [])
    assert peer.frames == [PING]


def test_a_socket_that_answers_is_kept_and_pinged_again_a_period_later() -> None:
    peer = Peer(seen=100.0)
    sweep([peer], 120.0, PERIOD)
    peer.seen = 120.01  # the pong
    assert sweep([peer], 135.0, PERIOD) == (0, [])
    assert sweep([peer], 140.02, PERIOD) == (1, [])
    assert peer.frames == [PING, PING]


def test_a_socket_silent_half_a_period_after_its_ping_is_reported_silent() -> None:
    peer = Peer(seen=100.0)
    sweep([peer], 120.0, PERIOD)
    assert sweep([peer], 129.9, PERIOD) == (0, [])
    assert sweep([peer], 130.0, PERIOD) == (0, [peer])


def test_pings_of_sockets_heard_together_are_spread_over_the_last_quarter_period() -> None:
    peers = [Peer(seen=0.0) for _ in range(400)]
    due = []
    for step in range(201):
        now = PERIOD * (1 - SPREAD) + step * 0.025
        for peer in peers:
            before = len(peer.frames)
            sweep([peer], now, PERIOD)
            if len(peer.frames) > before:
                due.append(now)
    assert len(due) == len(peers)  # every one pinged, once
    assert min(due) < PERIOD * (1 - SPREAD) + 1.0
    assert max(due) > PERIOD - 1.0
    assert max(due) <= PERIOD


def test_a_socket_already_gone_is_not_counted_as_pinged() -> None:
    peer = Peer(seen=0.0, open=False)
    assert sweep([peer], PERIOD, PERIOD) == (0, [])


def test_a_beat_cuts_off_the_silent_and_counts_what_it_did() -> None:
    now = [0.0]
    quiet, talking = Peer(seen=0.0), Peer(seen=0.0)
    counted = Counted()
    heartbeat = Heartbeat(lambda: {quiet, talking}, PERIOD, counted, clock=lambda: now[0])
    now[0] = PERIOD
    assert heartbeat.beat() == (2, 0)
    talking.seen = PERIOD + 0.5
    now[0] = PERIOD * 1.5
    assert heartbeat.beat() == (0, 1)
    assert quiet.cut_off
    assert not talking.cut_off
    assert (counted.pings, counted.timeouts) == (2, 1)


def test_the_sweep_runs_a_few_times_a_period_and_at_least_once_a_second() -> None:
    assert Heartbeat(list, 20.0).tick == 1.0
    assert Heartbeat(list, 2.0).tick == 0.5


# On a running node, with real sockets: aiohttp's client can be told not to answer pings.


async def _joined(http: aiohttp.ClientSession, server: TestServer, *, answers_pings: bool) -> Any:
    ws = await http.ws_connect(ws_url(server), origin=ORIGIN, autoping=answers_pings)
    await ws.send_json({"type": "auth", "id": "a1", "token": token(), "session": "plenary"})
    while (await ws.receive_json(timeout=5))["type"] != "welcome":
        pass
    return ws


async def _closed_within(ws: Any, seconds: float) -> bool:
    """Reads (and drops) whatever arrives until the socket closes or ``seconds`` pass."""
    try:
        async with asyncio.timeout(seconds):
            while (await ws.receive()).type not in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                pass
    except TimeoutError:
        return False
    return True


async def test_a_node_cuts_off_a_socket_that_answers_no_ping_and_keeps_one_that_does(
    node_factory: NodeFactory,
) -> None:
    server = await node_factory(heartbeat=1.0)
    async with aiohttp.ClientSession() as http:
        deaf = await _joined(http, server, answers_pings=False)
        alive = await _joined(http, server, answers_pings=True)
        # Both read at once (aiohttp's client answers a ping only while it reads). The deaf one is
        # silent for a period (1 s, less its spread), pinged, then has half a period to answer.
        deaf_closed, alive_closed = await asyncio.gather(
            _closed_within(deaf, 3.0), _closed_within(alive, 3.5)
        )
        assert deaf_closed, "the deaf socket was not cut off"
        assert not alive_closed, "a socket answering pings was cut off"
        await alive.send_json({"type": "ping", "id": "p1"})
        reply = await alive.receive_json(timeout=5)
        assert reply["id"] == "p1"
        await alive.close()
    metrics = await _metric_values(server)
    assert metrics["podium_signaling_heartbeat_timeouts_total"] == 1.0
    assert metrics["podium_signaling_heartbeat_pings_total"] >= 3.0  # both once, alive again


async def test_a_ping_from_the_client_is_answered_before_and_after_auth(
    node_factory: NodeFactory,
) -> None:
    server = await node_factory()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(server), origin=ORIGIN, autoping=False)
        await ws.ping(b"before")
        pong = await ws.receive(timeout=5)
        assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"before")
        await ws.send_json({"type": "auth", "id": "a1", "token": token(), "session": "plenary"})
        while (await ws.receive_json(timeout=5))["type"] != "welcome":
            pass
        await ws.ping(b"after")
        while (msg := await ws.receive(timeout=5)).type is not aiohttp.WSMsgType.PONG:
            pass
        assert msg.data == b"after"
        await ws.close()


async def _metric_values(server: TestServer) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/metrics")) as resp:
        text = await resp.text()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
