"""A first end-to-end pass: a participant joins a live session and sees an operator's change."""

from __future__ import annotations

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import ClientFactory, operator_headers


async def test_participant_joins_and_sees_the_operator_close_the_session(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node)
    assert client.welcome is not None
    assert client.welcome["state"] in ("scheduled", "live")
    async with ClientSession() as http:
        resp = await http.post(
            node.make_url("/api/v1/sessions/plenary/state"),
            json={"state": "closed"},
            headers=operator_headers(),
        )
        assert resp.status == 200, await resp.text()
    event = await client.next_event()
    while event["data"]["state"] != "closed":
        event = await client.next_event()
    assert event["name"] == "session.state"
