"""WebRTC signaling under abuse: a 1 MB SDP, 10,000 candidates (in one offer, trickled one by one,
or PATCHed to a WHIP resource) are refused or cut off; nothing reaches the other end beyond the
rate limit, and the floor, the desk and the node carry on.

Malformed candidates, candidates to internal addresses, non-speaker signaling and TURN credentials
for non-speakers: ``tests/test_relay.py`` (``test_bad_sdp_and_candidates_are_refused_with_typed_
errors_and_nothing_is_relayed``, ``test_people_not_holding_the_floor_cannot_offer_answer_trickle_
restart_or_get_ice``), ``tests/test_media_rules.py``, ``tests/test_streaming_rules.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from websockets.exceptions import ConnectionClosed

from config.appkeys import STREAMING
from signaling.client import ClientError, PodiumClient
from signaling.identity import Role
from tests.conftest import ClientFactory, NodeFactory, app_of, token
from tests.contract_streaming import FRAG
from tests.security.wire import still_served
from tests.streaming_helpers import SDP, bearer, publish
from tests.test_media_rules import offer as sample_offer
from tests.test_relay import nothing_relayed, relayed

MEGABYTE = 1024 * 1024


def _candidate(i: int) -> str:
    return f"candidate:{i} 1 udp 2130706431 192.0.2.{i % 250 + 1} {10_000 + i % 50_000} typ host"


async def _on_the_floor(
    node: TestServer, connect: ClientFactory
) -> tuple[PodiumClient, PodiumClient, PodiumClient]:
    speaker = await connect(node, token(Role.SPEAKER, sub="amina", name="Amina"))
    desk = await connect(node, token(Role.PRODUCTION, sub="desk", name="Desk"))
    chair = await connect(node, token(Role.MODERATOR, sub="chair", name="Chair"))
    entry = (await speaker.request("floor.request"))["entry"]
    await chair.request("floor.grant", entry=entry)
    return speaker, desk, chair


async def test_a_one_megabyte_sdp_closes_the_sender_with_1009_and_relays_nothing(
    node: TestServer, connect: ClientFactory
) -> None:
    speaker, desk, chair = await _on_the_floor(node, connect)
    huge = sample_offer(*("a=x-padding:" + "y" * 1000 for _ in range(MEGABYTE // 1000)))
    assert len(huge) > MEGABYTE
    with contextlib.suppress(ConnectionClosed):
        await speaker.send_raw(json.dumps({"type": "rtc.offer", "id": "big", "sdp": huge}))
    assert (await speaker.wait_closed()).code == 1009
    assert await nothing_relayed(desk) == []
    await still_served(desk)
    await still_served(chair)


async def test_an_offer_carrying_ten_thousand_candidates_is_refused_for_its_size(
    node: TestServer, connect: ClientFactory
) -> None:
    speaker, desk, _ = await _on_the_floor(node, connect)
    lines = [f"a={_candidate(i)}" for i in range(10_000)]
    fitting = lines[: 60_000 // len(lines[0])]  # as many as one 64 KiB frame carries
    with pytest.raises(ClientError) as refused:
        await speaker.request("rtc.offer", sdp=sample_offer(*fitting)[:61_000])
    assert refused.value.code in ("sdp_invalid", "invalid_message")
    with contextlib.suppress(ConnectionClosed):
        await speaker.send_raw(
            json.dumps({"type": "rtc.offer", "id": "all", "sdp": "\r\n".join(lines)})
        )
    assert (await speaker.wait_closed()).code == 1009
    assert await nothing_relayed(desk) == []


async def test_ten_thousand_trickled_candidates_are_rate_limited_cut_off_and_barely_relayed(
    node: TestServer, connect: ClientFactory
) -> None:
    speaker, desk, chair = await _on_the_floor(node, connect)
    media = (await speaker.request("rtc.offer", sdp=sample_offer()))["media"]
    await relayed(desk, "rtc.offer")
    await desk.request("rtc.answer", media=media, sdp=sample_offer())
    start = time.monotonic()
    with contextlib.suppress(ConnectionClosed):
        for i in range(10_000):
            frame = {
                "type": "rtc.candidate",
                "id": f"c{i}",
                "media": media,
                "candidate": _candidate(i),
            }
            await speaker.send_raw(json.dumps(frame))
    closed = await speaker.wait_closed()
    elapsed = time.monotonic() - start
    assert closed.code == 4506
    trickled = [m for m in await nothing_relayed(desk, wait=0.5) if m["type"] == "rtc.candidate"]
    # The burst (20), and the 10 a second the frame rate refills while the flood lasted.
    assert len(trickled) <= 20 + 10 * elapsed + 1
    await still_served(desk)
    await still_served(chair)


async def test_a_whip_offer_of_a_megabyte_is_refused_with_a_typed_error_and_nothing_streams(
    node: TestServer,
) -> None:
    huge = sample_offer(*("a=x-padding:" + "y" * 1000 for _ in range(MEGABYTE // 1000)))
    headers = {"Content-Type": SDP, **bearer(token(Role.PRODUCTION, sub="desk"))}
    url = node.make_url("/whip/plenary/floor")

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 64 * 1024):
            yield huge[start : start + 64 * 1024].encode()

    async with aiohttp.ClientSession() as http:
        for body in (io.BytesIO(huge.encode()), chunked()):
            async with http.post(url, data=body, headers=headers) as resp:
                assert resp.status in (400, 413)
                if resp.status == 400:
                    assert (await resp.json())["code"] == "malformed_sdp"
    assert app_of(node)[STREAMING].channels == {}
    assert app_of(node)[STREAMING].resources == {}


async def test_a_whip_patch_of_ten_thousand_candidates_is_refused_and_the_stream_goes_on(
    node_factory: NodeFactory,
) -> None:
    node = await node_factory(allow_private_candidates=True)
    desk = token(Role.PRODUCTION, sub="desk")
    async with aiohttp.ClientSession() as http:
        client = await publish(http, node, "/whip/plenary/floor", desk)
        try:
            url = node.make_url(client.location)
            many = "\r\n".join(f"a={_candidate(i)}" for i in range(10_000)) + "\r\n"
            few_too_many = "\r\n".join(f"a={_candidate(i)}" for i in range(65)) + "\r\n"
            for body in (io.BytesIO(many.encode()), few_too_many):
                headers = {"Content-Type": FRAG, "If-Match": client.etag, **bearer(desk)}
                async with http.patch(url, data=body, headers=headers) as resp:
                    assert resp.status in (400, 413)
                    if resp.status == 400:
                        assert (await resp.json())["code"] == "malformed_sdp"
            assert list(app_of(node)[STREAMING].resources)  # the publisher is still there
        finally:
            await client.pc.close()
