"""``/metrics``: valid exposition format, only for allowed callers, and a fixed number of series."""

from __future__ import annotations

import asyncio
import json
import subprocess

import aiohttp
from aiohttp.test_utils import TestServer
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from config.appkeys import FLOOR, QNA, RELAY, SIGNALING
from tests.conftest import (
    ORIGIN,
    ClientFactory,
    NodeFactory,
    app_of,
    require_program,
    token,
    ws_url,
)


async def _metrics(server: TestServer) -> str:
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/metrics")) as resp:
        assert resp.status == 200
        return await resp.text()


async def _settled(server: TestServer) -> None:
    """Runs the node's periodic metric refreshers once, so no series appears later by the clock."""
    app = app_of(server)
    await app[SIGNALING].maintain()
    await app[QNA].refresh_metrics()
    await app[FLOOR].refresh_metrics()
    await app[RELAY].refresh_metrics()


def _series(text: str) -> set[str]:
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and line[0] != "#"}


async def _junk_round(server: TestServer, n: int, tag: str) -> None:
    async def one(i: int) -> None:
        junk = f"{tag}-{i}"
        async with ws_connect(ws_url(server), origin=Origin(ORIGIN)) as ws:
            auth = {"type": "auth", "id": junk, "token": token(sessions=("*",)), "session": junk}
            await ws.send(json.dumps(auth))
            try:
                while True:
                    await ws.recv()
            except ConnectionClosed:
                pass

    for start in range(0, n, 50):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 50))))
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            async with http.get(server.make_url(f"/api/v1/sessions/{tag}-{i}")) as resp:
                assert resp.status == 404


async def test_series_count_does_not_grow_with_thousands_of_junk_values(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node)
    for junk in ("{bad", '{"type":"warp","id":"w"}', '{"type":"ping","id":"p","x":1}'):
        await client.send_raw(junk)
    await _junk_round(node, 5, "warmup")
    await _settled(node)
    before = _series(await _metrics(node))
    for batch in range(0, 300, 9):  # 9 per socket: the 10th bad frame would close it
        sender = await connect(node)
        for i in range(batch, batch + 9):
            await sender.send_raw(json.dumps({"type": f"junk-type-{i}", "id": f"j{i}"}))
        await sender.request("ping")
        await sender.close()
    await _junk_round(node, 1000, "junk")
    after = _series(await _metrics(node))
    assert after == before
    assert not any("junk" in series for series in after)


async def test_streaming_series_stay_fixed_whatever_sessions_and_channels_are_asked_for(
    node: TestServer,
) -> None:
    from signaling.identity import Role

    headers = {
        "Content-Type": "application/sdp",
        "Authorization": "Bearer " + token(Role.OPERATOR, ("*",)),
    }

    async def junk_round(tag: str, n: int) -> None:
        async with aiohttp.ClientSession() as http:
            for i in range(n):
                for path in (f"/whip/{tag}-{i}/floor", f"/whip/plenary/{tag}{i}",
                             f"/whep/plenary/{tag}{i}", f"/whep/{tag}-{i}/fr"):  # fmt: skip
                    async with http.post(node.make_url(path), data="x", headers=headers) as r:
                        assert r.status == 404

    await junk_round("warmup", 1)
    await _settled(node)
    before = _series(await _metrics(node))
    await junk_round("junk", 300)
    text = await _metrics(node)
    assert _series(text) == before
    assert "junk" not in text
    for name in (
        "podium_stream_channel_live",
        "podium_stream_listeners",
        "podium_stream_publishers",
        "podium_stream_inbound_bits_per_second",
        "podium_stream_packets_lost_total",
        "podium_stream_jitter_seconds",
        "podium_stream_round_trip_seconds",
        "podium_stream_offline_transitions_total",
        'podium_stream_refusals_total{code="unknown_session"}',
    ):
        assert name in text, name


async def test_metrics_pass_promtool_check(node: TestServer, connect: ClientFactory) -> None:
    promtool = require_program("promtool")
    await connect(node)
    text = await _metrics(node)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    for name in (
        "podium_signaling_connections",
        "podium_signaling_joins_total",
        "podium_presence_online_participants",
        "podium_signaling_events_delivered_total",
        "podium_signaling_slow_disconnects_total",
        "podium_signaling_fanout_latency_seconds_bucket",
        "podium_event_loop_lag_seconds",
        "podium_session_state",
        "podium_floor_queue_length",
    ):
        assert name in text, name


async def test_metrics_are_refused_to_callers_outside_the_allowed_networks(
    node_factory: NodeFactory,
) -> None:
    closed = await node_factory(metrics_allow=("10.99.0.0/16",), metrics_token="m" * 32)
    async with aiohttp.ClientSession() as http:
        async with http.get(closed.make_url("/metrics")) as resp:
            assert resp.status == 403
        headers = {"Authorization": "Bearer " + "m" * 32}
        async with http.get(closed.make_url("/metrics"), headers=headers) as resp:
            assert resp.status == 200
            assert "podium_signaling_joins_total" in await resp.text()


async def test_qa_metrics_count_questions_by_state_votes_and_actions(
    node: TestServer, connect: ClientFactory
) -> None:
    from config.appkeys import QNA
    from signaling.identity import Role
    from tests.conftest import app_of

    asker = await connect(node, token(sub="asker"))
    moderator = await connect(node, token(Role.MODERATOR, sub="mod"))
    first = (await asker.request("qa.ask", text="First?", lang="en"))["question"]["id"]
    await asker.request("qa.ask", text="Second?", lang="en")
    await moderator.request("qa.approve", question=first)
    await asker.request("qa.vote", question=first)
    await app_of(node)[QNA].refresh_metrics()
    text = await _metrics(node)
    assert 'podium_qa_questions{session="plenary",state="approved"} 1.0' in text
    assert 'podium_qa_questions{session="plenary",state="pending"} 1.0' in text
    assert 'podium_qa_queue_depth{session="plenary"} 1.0' in text
    assert 'podium_qa_votes_total{session="plenary"} 1.0' in text
    assert 'podium_qa_moderator_actions_total{action="approve"} 1.0' in text
    assert "podium_qa_decision_seconds_count 1.0" in text


async def test_floor_metrics_count_requests_grants_speaking_time_and_the_queue(
    node: TestServer, connect: ClientFactory
) -> None:
    from config.appkeys import FLOOR
    from signaling.identity import Role
    from tests.conftest import app_of

    amina = await connect(node, token(sub="amina"))
    li = await connect(node, token(sub="li"))
    chair = await connect(node, token(Role.MODERATOR, sub="chair"))
    entry = (await amina.request("floor.request"))["entry"]
    await li.request("floor.request")
    await chair.request("floor.add", name="Dr Haddad")
    await chair.request("floor.grant", entry=entry)
    await chair.request("floor.revoke")
    floor = app_of(node)[FLOOR]
    await floor.refresh_metrics()
    text = await _metrics(node)
    assert 'podium_floor_requests_total{session="plenary"} 3.0' in text
    assert 'podium_floor_grants_total{session="plenary"} 1.0' in text
    assert 'podium_floor_queue_length{session="plenary"} 2.0' in text
    assert 'podium_floor_queue_length{session="workshop"} 0.0' in text
    spoken = next(
        line for line in text.splitlines() if line.startswith("podium_floor_speaking_seconds_total")
    )
    assert 0 <= float(spoken.rsplit(" ", 1)[1]) < 5
