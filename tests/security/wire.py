"""Helpers the security tests share: raw sockets, auth frames, and what a bystander still gets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestServer
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from config.appkeys import SIGNALING
from signaling.client import PodiumClient
from tests.conftest import ORIGIN, app_of, ws_url


async def exchange(
    server: TestServer,
    *frames: str | bytes,
    origin: str | None = ORIGIN,
    wait: float = 3.0,
    as_text: bool = False,
) -> tuple[list[dict[str, Any]], int | None]:
    """Sends frames on a fresh socket; returns what the server sent and its close code.

    Args:
        server: the node.
        frames: sent in order; ``bytes`` go as binary frames unless ``as_text``.
        origin: the upgrade's Origin header.
        wait: how long to wait for each further frame from the server.
        as_text: send ``bytes`` as text frames without checking they are UTF-8.
    """
    received: list[dict[str, Any]] = []
    async with ws_connect(
        ws_url(server), origin=Origin(origin) if origin else None, max_size=None
    ) as ws:
        for frame in frames:
            if isinstance(frame, bytes) and as_text:
                await ws.send(frame, text=True)
            else:
                await ws.send(frame)
        try:
            while True:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), wait)))
        except ConnectionClosed as exc:
            return received, exc.rcvd.code if exc.rcvd else None
        except TimeoutError:
            return received, None


def auth(tok: str, session: str = "plenary", rid: str = "a1", **extra: Any) -> str:
    """An ``auth`` frame."""
    return json.dumps({"type": "auth", "id": rid, "token": tok, "session": session, **extra})


async def still_served(client: PodiumClient) -> None:
    """Asserts a bystander's socket still answers commands."""
    assert await client.request("ping") == {}


async def online(server: TestServer, session: str = "plenary") -> int:
    """How many people the store counts online in a session."""
    return (await app_of(server)[SIGNALING].counts(session)).online


def drained(client: PodiumClient) -> list[dict[str, Any]]:
    """Everything queued on a client's event queue, without waiting."""
    items = []
    while not client.events.empty():
        items.append(client.events.get_nowait())
    return items


async def next_error(client: PodiumClient, timeout: float = 5.0) -> dict[str, Any]:
    """The next error or pong frame a client was sent (events on the way are skipped)."""
    while True:
        message = await client.next_event(timeout)
        if message.get("type") in ("error", "pong"):
            return message
