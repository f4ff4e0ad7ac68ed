"""Bad input at the socket: each case gets a typed error or close code, and changes nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
from typing import Any

import jwt
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from config.appkeys import SIGNALING
from signaling.client import ClientError
from signaling.identity import Role, TokenKeys
from signaling.lifecycle import State
from tests.conftest import ORIGIN, SECRET, ClientFactory, NodeFactory, app_of, token, ws_url


async def _exchange(
    server: TestServer, *frames: str | bytes, origin: str | None = ORIGIN, wait: float = 3.0
) -> tuple[list[dict[str, Any]], int | None]:
    """Sends frames on a fresh socket; returns what the server sent and its close code."""
    received: list[dict[str, Any]] = []
    async with ws_connect(ws_url(server), origin=origin, max_size=None) as ws:  # type: ignore[arg-type]
        for frame in frames:
            await ws.send(frame)
        try:
            while True:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), wait)))
        except ConnectionClosed as exc:
            return received, exc.rcvd.code if exc.rcvd else None
        except TimeoutError:
            return received, None


def _auth(tok: str, session: str = "plenary", **extra: Any) -> str:
    return json.dumps({"type": "auth", "id": "a1", "token": tok, "session": session, **extra})


async def _state(server: TestServer, session: str = "plenary") -> State:
    return (await app_of(server)[SIGNALING].store.lifecycle(session)).state


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "malformed_frame"),
        ("[1, 2]", "malformed_frame"),
        ('{"type": "teleport", "id": "x"}', "unknown_type"),
        ('{"type": "ping"}', "invalid_message"),
        ('{"type": "ping", "id": "p", "role": "operator"}', "invalid_message"),
        ('{"type": "session.set_state", "id": "s", "state": "exploded"}', "invalid_message"),
    ],
)
async def test_bad_frames_after_auth_get_a_typed_error_and_the_connection_stays(
    node: TestServer, connect: ClientFactory, frame: str, code: str
) -> None:
    client = await connect(node)
    await client.send_raw(frame)
    error = await client.next_event()
    assert error["type"] == "error"
    assert error["code"] == code
    assert await client.request("ping") == {}


async def test_error_names_the_request_it_answers(node: TestServer, connect: ClientFactory) -> None:
    client = await connect(node)
    with pytest.raises(ClientError) as refused:
        await client.request("ping", surprise=True)
    assert refused.value.code == "invalid_message"


async def test_too_many_bad_frames_close_the_socket_for_good(node: TestServer) -> None:
    frames = [_auth(token()), *["{bad"] * 12]
    received, code = await _exchange(node, *frames)
    assert code == 4500
    assert [m["code"] for m in received if m["type"] == "error"][:3] == ["malformed_frame"] * 3


async def test_oversized_frame_closes_with_message_too_big(node: TestServer) -> None:
    _, code = await _exchange(node, _auth(token()), "x" * (200 * 1024))
    assert code == 1009


async def test_binary_frame_closes_with_unsupported_data(node: TestServer) -> None:
    _, code = await _exchange(node, _auth(token()), b"\x00\x01binary")
    assert code == 1003


async def test_binary_frame_instead_of_auth_closes_with_unsupported_data(node: TestServer) -> None:
    _, code = await _exchange(node, b"\x00\x01binary")
    assert code == 1003


def _forge(claims: dict[str, Any], key: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "podium",
        "aud": "podium",
        "sub": "mallory",
        "exp": now + 600,
        "name": "Mallory",
        "role": "participant",
        "sessions": ["plenary"],
        "mode": "remote",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _alg_none(claims: dict[str, Any]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


@pytest.mark.parametrize(
    ("tok", "code", "close"),
    [
        ("", "invalid_message", 4500),
        ("not.a.token", "unauthorized", 4502),
        (_forge(_claims(exp=int(time.time()) - 3600)), "token_expired", 4503),
        (_forge(_claims(), key="another-secret-" + "0" * 40), "unauthorized", 4502),
        (_alg_none(_claims()), "unauthorized", 4502),
        (_forge(_claims(aud="someone-else")), "unauthorized", 4502),
        (_forge(_claims(iss="someone-else")), "unauthorized", 4502),
        (_forge(_claims(exp=None)), "unauthorized", 4502),
        (_forge(_claims(sub=None)), "unauthorized", 4502),
        (_forge(_claims(role="emperor")), "unauthorized", 4502),
        (_forge(_claims(sessions=["workshop"])), "session_forbidden", 4504),
        (_forge(_claims(nbf=int(time.time()) + 3600)), "unauthorized", 4502),
    ],
    ids=[
        "no-token",
        "garbage",
        "expired",
        "forged",
        "alg-none",
        "wrong-audience",
        "wrong-issuer",
        "no-exp",
        "no-sub",
        "unknown-role",
        "session-not-in-token",
        "not-yet-valid",
    ],
)
async def test_bad_tokens_are_refused_with_a_typed_error_and_a_do_not_reconnect_close(
    node: TestServer, tok: str, code: str, close: int
) -> None:
    received, closed = await _exchange(node, _auth(tok))
    assert received[0]["type"] == "error"
    assert received[0]["code"] == code
    assert closed == close
    assert 4500 <= close < 5000
    assert (await app_of(node)[SIGNALING].counts("plenary")).online == 0


async def test_unknown_session_is_refused(node: TestServer) -> None:
    received, closed = await _exchange(node, _auth(token(sessions=("*",)), session="atlantis"))
    assert (received[0]["code"], closed) == ("unknown_session", 4505)


async def test_a_command_before_auth_is_refused(node: TestServer) -> None:
    received, closed = await _exchange(node, json.dumps({"type": "ping", "id": "1"}))
    assert (received[0]["code"], closed) == ("not_authenticated", 4500)


async def test_no_auth_within_the_deadline_closes_the_socket(node: TestServer) -> None:
    received, closed = await _exchange(node, wait=5.0)
    assert (received[0]["code"], closed) == ("auth_timeout", 4501)


@pytest.mark.parametrize("origin", ["http://evil.example", None])
async def test_foreign_or_missing_origin_is_refused_at_the_upgrade(
    node: TestServer, origin: str | None
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await _exchange(node, _auth(token()), origin=origin)
    assert refused.value.response.status_code == 403


async def test_participant_cannot_change_the_session_state(
    node: TestServer, connect: ClientFactory
) -> None:
    before = await _state(node)
    client = await connect(node)
    with pytest.raises(ClientError) as refused:
        await client.request("session.set_state", state="archived")
    assert refused.value.code == "forbidden"
    assert await _state(node) == before


async def test_participant_cannot_change_the_session_state_over_http(node: TestServer) -> None:
    before = await _state(node)
    async with ClientSession() as http:
        resp = await http.post(
            node.make_url("/api/v1/sessions/plenary/state"),
            json={"state": "archived"},
            headers={"Authorization": "Bearer " + token()},
        )
        assert resp.status == 403
        assert (await resp.json())["code"] == "forbidden"
    assert await _state(node) == before


async def test_client_supplied_identity_fields_are_ignored_and_refused(
    node: TestServer,
) -> None:
    frame = _auth(token(), role="operator")
    received, closed = await _exchange(node, frame)
    assert received[0]["code"] == "invalid_message"
    assert closed == 4500


async def test_flood_over_the_rate_limit_is_refused_then_cut_off(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node)
    for i in range(80):
        await client.send_raw(json.dumps({"type": "ping", "id": f"f{i}"}))
    closed = await client.wait_closed()
    assert closed.code == 4506
    refused = [m for m in _queued(client) if m.get("code") == "rate_limited"]
    assert refused
    assert all(m["retry_after"] > 0 for m in refused)


async def test_refusals_are_forgiven_over_time_so_an_honest_client_is_not_closed_later(
    node: TestServer, connect: ClientFactory
) -> None:
    # Twice, a burst of 45 (as when a node that fell behind reads seconds of messages at once):
    # 20 pass, 25 are refused each time. 50 refusals in all, but not 30 within a few seconds.
    client = await connect(node)
    for burst in range(2):
        for i in range(45):
            await client.send_raw(json.dumps({"type": "ping", "id": f"b{burst}-{i}"}))
        await asyncio.sleep(3.5)  # what a client at the limit's rate would have sent meanwhile
    assert client.closed is None or not client.closed.done()
    assert (await client.request("ping")) is not None
    refused = [m for m in _queued(client) if m.get("code") == "rate_limited"]
    assert len(refused) >= 40


def _queued(client: Any) -> list[dict[str, Any]]:
    items = []
    while not client.events.empty():
        items.append(client.events.get_nowait())
    return items


def _client_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    header = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0xFE, n)
    return header + mask + masked


async def test_socket_that_stops_reading_is_cut_off_and_others_get_every_event(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    server = await node_factory(send_buffer_bytes=64 * 1024)
    healthy = await connect(server)
    # A raw client with a tiny receive buffer that authenticates, then never reads again.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port or 0))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n\r\n"
        ).encode()
    )
    await asyncio.sleep(0.2)
    sock.sendall(_client_frame(_auth(token(sub="sleepy")).encode()))
    await asyncio.sleep(0.5)
    service = app_of(server)[SIGNALING]
    assert len(service.connections) == 2
    payload = {"blob": "x" * 8000}
    for _ in range(400):
        await service.store.append("plenary", "test.bulk", payload)
    received = 0
    while received < 400:
        event = await healthy.next_event()
        received += event["name"] == "test.bulk"
    await asyncio.sleep(0.2)
    assert service.metrics.slow_disconnects._value.get() == 1
    assert len(service.connections) == 1
    for conn in service.connections:
        assert conn.identity.sub != "sleepy"
        assert conn.transport is not None
        assert conn.transport.get_write_buffer_size() <= 64 * 1024
    sock.close()


async def test_token_expiring_while_connected_closes_the_socket(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node, token(ttl=1))
    closed = await client.wait_closed(timeout=5)
    assert closed.code == 4503


async def test_guest_join_is_refused_where_the_session_does_not_allow_guests(
    node: TestServer,
) -> None:
    async with ClientSession() as http:
        resp = await http.post(node.make_url("/api/v1/sessions/plenary/guest"), json={"name": "X"})
        assert resp.status == 403
        assert (await resp.json())["code"] == "guest_closed"
        ok = await http.post(
            node.make_url("/api/v1/sessions/open-forum/guest"), json={"name": "Yu"}
        )
        assert ok.status == 200
        for body in ({}, {"name": ""}, {"name": "a" * 61}, {"name": "Yu", "role": "operator"}):
            bad = await http.post(node.make_url("/api/v1/sessions/open-forum/guest"), json=body)
            assert bad.status == 400, body


def test_tokens_signed_with_another_key_family_are_refused() -> None:
    from signaling.errors import AuthError
    from signaling.identity import verify

    forged = _forge(_claims(), key="x" * 64, alg="HS512")
    with pytest.raises(AuthError):
        verify(TokenKeys(SECRET), forged, now=int(time.time()))
    assert Role.OPERATOR.value == "operator"
