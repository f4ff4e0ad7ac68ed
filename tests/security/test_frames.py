"""Frames a client should never send: nested too deep, numbers out of range, duplicate keys,
invalid UTF-8, half a UTF-16 pair, missing fields. Each gets a typed error or close code, changes nothing, and leaves
the node and everyone else on it unharmed.

Oversized, binary, malformed, unknown-type and extra-field frames: ``tests/test_bad_input.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from config.appkeys import QNA, SIGNALING
from signaling.client import ClientError
from signaling.lifecycle import State
from tests.conftest import ClientFactory, app_of, token
from tests.security.wire import auth, exchange, next_error, online, still_served

DEPTH = 30_000  # 60 KB of brackets: inside the 64 KiB frame cap, far past any parser's stack


def _nested(depth: int = DEPTH) -> str:
    return "[" * depth + "]" * depth


def _auth_twice(tok: str, first: str, last: str) -> str:
    """An ``auth`` frame naming two sessions under the same key."""
    head = '{"type": "auth", "id": "a", "token": ' + json.dumps(tok)
    return head + ', "session": ' + json.dumps(first) + ', "session": ' + json.dumps(last) + "}"


async def _lifecycle(server: TestServer) -> State:
    return (await app_of(server)[SIGNALING].store.lifecycle("plenary")).state


@pytest.mark.parametrize(
    "frame",
    [
        _nested(),
        '{"type": "ping", "id": "deep", "x": ' + _nested() + "}",
        '{"type": "qa.ask", "id": "deep", "text": "Hi", "lang": ' + _nested() + "}",
    ],
    ids=["bare-array", "in-an-extra-field", "in-a-known-field"],
)
async def test_deeply_nested_frames_are_malformed_and_the_socket_and_node_carry_on(
    node: TestServer, connect: ClientFactory, frame: str
) -> None:
    bystander = await connect(node, token(sub="bystander"))
    client = await connect(node, token(sub="nester"))
    await client.send_raw(frame)
    error = await next_error(client)
    assert (error["type"], error["code"]) == ("error", "malformed_frame")
    await still_served(client)
    await still_served(bystander)
    assert len(app_of(node)[SIGNALING].connections) == 2
    assert await app_of(node)[QNA].store.all("plenary") == []


async def test_a_deeply_nested_first_frame_is_refused_as_malformed_and_closed(
    node: TestServer,
) -> None:
    received, closed = await exchange(node, _nested())
    assert (received[0]["code"], closed) == ("malformed_frame", 4500)
    assert await online(node) == 0


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ('"rank": 1e400', "malformed_frame"),  # no double holds it
        ('"rank": ' + "9" * 5000, "malformed_frame"),  # an integer of 5,000 digits
        ('"rank": 1e16', "invalid_message"),  # a double, but outside the rank's range
        ('"rank": -1e16', "invalid_message"),
    ],
    ids=["float-overflow", "5000-digits", "over-range", "under-range"],
)
async def test_numbers_out_of_range_get_a_typed_error_and_move_nothing(
    node: TestServer, connect: ClientFactory, fields: str, code: str
) -> None:
    moderator = await connect(node, token("moderator", sub="mod"))
    asked = await moderator.request("qa.ask", text="Where is the budget?")
    qid = asked["question"]["id"]
    before = await app_of(node)[QNA].store.get("plenary", qid)
    await moderator.send_raw(
        '{"type": "qa.move", "id": "m1", "question": "' + qid + '", ' + fields + "}"
    )
    error = await next_error(moderator)
    assert (error["type"], error["code"]) == ("error", code)
    assert await app_of(node)[QNA].store.get("plenary", qid) == before
    await still_served(moderator)


async def test_a_resume_position_past_two_to_the_53_is_refused_at_auth(node: TestServer) -> None:
    frame = auth(token(), resume={"epoch": "e1", "seq": 10**30})
    received, closed = await exchange(node, frame)
    assert (received[0]["code"], closed) == ("invalid_message", 4500)
    assert await online(node) == 0


async def test_duplicate_keys_are_read_once_last_wins_the_same_for_the_check_and_the_action(
    node: TestServer,
) -> None:
    # One decoder reads every frame, so what is checked is what is acted on: no parser
    # differential can smuggle a second value past a check.
    received, _ = await exchange(
        node,
        auth(token(sub="dup")),
        '{"type": "ping", "id": "first", "id": "second"}',
        '{"type": "ping", "type": "session.set_state", "id": "t", "state": "closed"}',
        wait=1.0,
    )
    answers = [m for m in received if m["type"] in ("pong", "error")]
    assert answers[0] == {"type": "pong", "id": "second"}
    assert (answers[1]["code"], answers[1]["id"]) == ("invalid_message", "t")
    assert await _lifecycle(node) is State.LIVE


async def test_a_duplicate_session_key_in_auth_cannot_reach_a_session_the_token_does_not_grant(
    node: TestServer,
) -> None:
    tok = token(sessions=("plenary",))
    granted_last = _auth_twice(tok, "workshop", "plenary")
    received, closed = await exchange(node, granted_last, wait=0.5)
    assert received[0]["type"] == "welcome"
    assert received[0]["session"]["id"] == "plenary"
    forbidden_last = _auth_twice(tok, "plenary", "workshop")
    received, closed = await exchange(node, forbidden_last)
    assert (received[0]["code"], closed) == ("session_forbidden", 4504)


async def test_invalid_utf8_in_a_text_frame_closes_with_1007_and_others_carry_on(
    node: TestServer, connect: ClientFactory
) -> None:
    bystander = await connect(node, token(sub="bystander"))
    bad = b'{"type": "qa.ask", "id": "u", "text": "caf\xc3\x28 \xff\xfe"}'
    received, closed = await exchange(node, auth(token(sub="mangler")), bad, as_text=True)
    assert received[0]["type"] == "welcome"
    assert closed == 1007
    await still_served(bystander)
    assert await app_of(node)[QNA].store.all("plenary") == []
    assert len(app_of(node)[SIGNALING].connections) == 1


async def test_invalid_utf8_instead_of_auth_closes_with_1007(node: TestServer) -> None:
    _, closed = await exchange(node, b"\xff\xfe\xfd", as_text=True)
    assert closed == 1007
    assert await online(node) == 0


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("qa.ask", {}),
        ("qa.vote", {}),
        ("qa.merge", {"source": "q00001"}),
        ("floor.grant", {}),
        ("rtc.candidate", {"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host"}),
        ("session.set_state", {}),
    ],
)
async def test_missing_fields_are_an_invalid_message_naming_the_field(
    node: TestServer, connect: ClientFactory, kind: str, fields: dict[str, Any]
) -> None:
    client = await connect(node, token("operator", ("*",), sub="op"))
    with pytest.raises(ClientError) as refused:
        await client.request(kind, **fields)
    assert refused.value.code == "invalid_message"
    assert "missing required field" in refused.value.message
    assert await _lifecycle(node) is State.LIVE
    assert await app_of(node)[QNA].store.all("plenary") == []


async def test_a_frame_of_only_whitespace_or_a_json_scalar_is_malformed(
    node: TestServer, connect: ClientFactory
) -> None:
    client = await connect(node)
    for frame in ("   ", "null", '"ping"', "42", "true"):
        await client.send_raw(frame)
        error = await next_error(client)
        assert error["code"] == "malformed_frame", frame
    await still_served(client)
    assert len(app_of(node)[SIGNALING].connections) == 1
    assert await app_of(node)[QNA].store.all("plenary") == []


async def test_a_lone_surrogate_escape_is_malformed_before_and_after_auth(
    node: TestServer, connect: ClientFactory
) -> None:
    # Valid UTF-8 on the wire, but "\ud800" names half a character: no string can hold it.
    received, closed = await exchange(node, auth("\ud800.\udfff.x"))
    assert (received[0]["code"], closed) == ("malformed_frame", 4500)
    client = await connect(node, token(sub="halfway"))
    await client.send_raw('{"type": "qa.ask", "id": "s", "text": "why \\ud800?"}')
    error = await next_error(client)
    assert error["code"] == "malformed_frame"
    await still_served(client)
    assert await app_of(node)[QNA].store.all("plenary") == []
