"""Metric-label abuse: every kind of junk this checklist sends — bad tokens, junk message types,
question and entry ids, media ids, channels, query parameters, guest names, join floods — leaves
the number of ``/metrics`` series where it was after one round of each, and no junk in a label.

Junk sessions at the socket and message types, junk WHIP/WHEP sessions and channels:
``tests/test_metrics.py::test_series_count_does_not_grow_with_thousands_of_junk_values`` and
``::test_streaming_series_stay_fixed_whatever_sessions_and_channels_are_asked_for``.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import jwt
from aiohttp.test_utils import TestServer

from config.appkeys import FLOOR, QNA, RELAY, SIGNALING
from signaling.identity import Role
from tests.conftest import SECRET, ClientFactory, app_of, operator_headers, token
from tests.security.wire import auth, exchange


async def _series(server: TestServer) -> set[str]:
    app = app_of(server)
    await app[SIGNALING].maintain()
    await app[QNA].refresh_metrics()
    await app[FLOOR].refresh_metrics()
    await app[RELAY].refresh_metrics()
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/metrics")) as resp:
        text = await resp.text()
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and line[0] != "#"}


async def _abuse(server: TestServer, connect: ClientFactory, tag: str, n: int) -> None:
    """``n`` rounds of junk, each value unique (``tag`` + the round)."""
    for start in range(0, n, 6):  # 18 frames and a ping per socket: inside the burst of 20
        client = await connect(server, token(Role.MODERATOR, sub=f"{tag}-mod-{start}"))
        for i in range(start, min(n, start + 6)):
            junk = f"{tag}{i}"
            for frame in (
                {"type": "qa.approve", "id": f"a{i}", "question": f"q{junk}zzzz"},
                {"type": "floor.grant", "id": f"g{i}", "entry": f"f{junk}zzzz"},
                {"type": "rtc.hangup", "id": f"h{i}", "media": "m" + "0" * 16},
            ):
                await client.send_raw(json.dumps(frame))
        await client.request("ping")
        await client.close()
    claims = {"iss": "podium", "aud": "podium", "sub": "x", "exp": 2**31, "sessions": ["*"]}
    bad_tokens = [
        jwt.encode({**claims, "role": f"{tag}{i}", "mode": tag}, SECRET) for i in range(n)
    ]
    for start in range(0, n, 25):
        await asyncio.gather(
            *(exchange(server, auth(t), wait=1.0) for t in bad_tokens[start : start + 25])
        )
    flood = token(sub=f"{tag}-flooder")
    await asyncio.gather(*(exchange(server, auth(flood), wait=0.3) for _ in range(25)))
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            for path in (
                f"/api/v1/overview?{tag}{i}=1",
                f"/api/v1/sessions/{tag}{i}/series",
                f"/api/v1/sessions/plenary/channels/{tag}{i}/release",
                f"/api/v1/sessions/{tag}{i}/report",
            ):
                method = "POST" if path.endswith("/release") else "GET"
                async with http.request(
                    method, server.make_url(path), headers=operator_headers()
                ) as resp:
                    assert resp.status in (400, 404), (path, resp.status)


async def test_series_count_stays_fixed_under_every_kind_of_label_abuse(
    node: TestServer, connect: ClientFactory
) -> None:
    await _abuse(node, connect, "warmup", 8)
    before = await _series(node)
    await _abuse(node, connect, "junk", 200)
    after = await _series(node)
    assert after == before
    assert not [series for series in after if "junk" in series or "warmup" in series]
