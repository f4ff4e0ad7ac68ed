"""Health and readiness: ``/readyz`` follows the store and the drain."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer

from config.appkeys import SIGNALING
from tests.conftest import NodeFactory, app_of


async def _status(server: TestServer, path: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(server.make_url(path)) as resp:
        return resp.status, await resp.json()


async def test_a_node_with_a_store_that_answers_is_ready(node: TestServer) -> None:
    assert await _status(node, "/healthz") == (200, {"status": "ok"})
    status, body = await _status(node, "/readyz")
    assert (status, body["store"]) == (200, True)


async def test_a_node_whose_store_does_not_answer_is_alive_but_not_ready(
    node_factory: NodeFactory,
) -> None:
    node = await node_factory(redis_url="redis://127.0.0.1:1/0")
    assert (await _status(node, "/healthz"))[0] == 200
    status, body = await _status(node, "/readyz")
    assert (status, body["status"], body["store"]) == (503, "not_ready", False)


async def test_a_draining_node_is_not_ready_and_refuses_new_sockets(node: TestServer) -> None:
    app_of(node)[SIGNALING].draining = True
    status, body = await _status(node, "/readyz")
    assert (status, body["draining"]) == (503, True)
    async with aiohttp.ClientSession() as http:
        resp = await http.get(
            node.make_url("/ws"),
            headers={"Origin": "http://podium.test", "Upgrade": "websocket", "Connection": "Upgrade",
                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"},
        )  # fmt: skip
        assert resp.status == 503
