"""docs/asyncapi.yaml against the code and against real WebSocket traffic."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any, Final, get_args

import msgspec
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from jsonschema import Draft202012Validator
from websockets.exceptions import ConnectionClosed

from config.appkeys import FLOOR, SIGNALING
from moderation import messages as qa_messages
from moderation.errors import ModerationError
from moderation.questions import (
    LANGUAGES,
    MAX_LABELS,
    MAX_REASON,
    MAX_REPLY,
    PUBLIC,
    QState,
    Question,
)
from signaling.errors import CloseCode
from signaling.identity import Role, TokenKeys
from signaling.messages import SERVER_TYPES, Position
from signaling.programme import QuestionOrder
from tests.conftest import NodeFactory, app_of, operator_headers, token
from tests.contract_helpers import (
    CLIENT_TYPES,
    Side,
    Tap,
    Wire,
    assert_schema_mirrors_struct,
    asyncapi,
    error_tree,
    escape,
    event_names,
    http_failures,
    keys_by_side,
    message_keys,
    operation_types,
    outage_node,
    payload_ref,
    structs,
)
from tests.contract_streaming import stream_traffic

NEVER_SENT: Final = {
    CloseCode.SLOW_CONSUMER: "a slow socket is aborted without a close frame (clients see 1006)",
    CloseCode.SERVER_ERROR: "no code path sends it",
    CloseCode.STORE_UNAVAILABLE: "needs a store outage (see the outage test)",
}
NEVER_RAISED: Final = {ModerationError.code: "the base of the Q&A refusals; only they are raised"}
UNACKED: Final = frozenset({"auth", "ping"})  # answered by welcome/resumed/resync, and pong


# ---- (a) the AsyncAPI document and the code ------------------------------------------------------


def test_asyncapi_document_parses_and_lists_exactly_the_server_s_message_types() -> None:
    doc = asyncapi().doc
    assert doc["asyncapi"] == "3.0.0"
    assert list(doc["channels"]) == ["ws"]
    assert doc["channels"]["ws"]["address"] == "/ws"
    received, sent = operation_types()
    assert received == CLIENT_TYPES
    assert sent == set(SERVER_TYPES)
    channel_types = {
        asyncapi().resolve(ref)["payload"]["properties"]["type"]["const"]
        for ref in doc["channels"]["ws"]["messages"].values()
    }
    assert channel_types == CLIENT_TYPES | set(SERVER_TYPES) == set(message_keys())
    client_keys = set(keys_by_side()["client"].values())
    for key, message in doc["components"]["messages"].items():
        Draft202012Validator.check_schema(message["payload"])
        for example in message.get("examples", []):
            ref = f"#/components/messages/{escape(key)}/payload"
            assert asyncapi().errors(ref, example["payload"]) == []
        kind = message["payload"]["properties"]["type"]["const"]
        acked = key in client_keys and kind not in UNACKED
        assert ("x-ack-result" in message) == acked, f"{kind}: x-ack-result"
        if acked:  # every documented result is one the ack message itself allows
            assert (
                message["x-ack-result"]
                in asyncapi().at(payload_ref("ack", "server"))["properties"]["result"]["oneOf"]
            )


@pytest.mark.parametrize(
    ("kind", "side"),
    [(kind, "client") for kind in sorted(CLIENT_TYPES)]
    + [(kind, "server") for kind in sorted(set(SERVER_TYPES) - {"event"})],
)
def test_message_schema_has_exactly_its_struct_s_fields_and_requires_those_without_default(
    kind: str, side: Side
) -> None:
    contract = asyncapi()
    payload = contract.at(payload_ref(kind, side))
    assert payload["additionalProperties"] is False
    assert payload["properties"]["type"] == {"const": kind}
    assert_schema_mirrors_struct(
        payload, structs(side)[kind], extra={"type"}, exact=side == "client"
    )
    if kind == "auth":
        resume = payload["properties"]["resume"]["oneOf"]
        assert resume == [{"$ref": "#/components/schemas/Position"}, {"type": "null"}]
        position = contract.at("#/components/schemas/Position")
        assert position["additionalProperties"] is False
        assert_schema_mirrors_struct(position, Position, extra=set(), exact=True)


def test_question_schemas_mirror_the_rules_and_the_views_of_the_code() -> None:
    schemas = asyncapi().doc["components"]["schemas"]
    assert set(schemas["QuestionState"]["enum"]) == {state.value for state in QState}
    assert set(schemas["Language"]["enum"]) == LANGUAGES == set(get_args(qa_messages.Language))
    question_id = msgspec.inspect.type_info(qa_messages.QuestionId)
    assert isinstance(question_id, msgspec.inspect.StrType)
    assert schemas["QuestionId"]["pattern"] == question_id.pattern
    orders = set(get_args(QuestionOrder))
    assert set(schemas["QaSnapshot"]["properties"]["order"]["enum"]) == orders
    assert set(schemas["QnaSettings"]["properties"]["order"]["enum"]) == orders
    assert schemas["Labels"]["maxItems"] == MAX_LABELS
    public, author, staff = (
        schemas[n] for n in ("PublicQuestion", "AuthorQuestion", "StaffQuestion")
    )
    assert set(public["properties"]["state"]["enum"]) == {state.value for state in PUBLIC}
    assert public["properties"]["reply"]["maxLength"] == MAX_REPLY
    assert author["properties"]["reason"]["maxLength"] == staff["properties"]["reason"]["maxLength"]
    assert staff["properties"]["reason"]["maxLength"] == MAX_REASON
    question = Question("q00001", "Why?", "en", "amina", "Amina", "", False, QState.PENDING, 1.0)
    for schema, view in (
        (public, question.public_view()),
        (author, question.author_view()),
        (staff, question.staff_view()),
    ):
        assert schema["additionalProperties"] is False
        assert set(schema["properties"]) == set(schema["required"]) == set(view)


# ---- (b) close codes and error codes -------------------------------------------------------------


def test_documented_close_codes_are_exactly_the_server_s_close_codes() -> None:
    channel = asyncapi().doc["channels"]["ws"]
    documented = channel["x-close-codes"]
    assert all(set(entry) == {"code", "name", "reconnect"} for entry in documented)
    assert len(documented) == len(CloseCode)
    assert sorted((e["code"], e["name"], e["reconnect"]) for e in documented) == sorted(
        (int(code), code.name, code.reconnect) for code in CloseCode
    )
    for code in CloseCode:
        row = rf"^\| {int(code)} \| {code.name} \| {'yes' if code.reconnect else 'no'} \|"
        assert re.search(row, channel["description"], re.MULTILINE), f"no table row for {code!r}"


def test_documented_error_codes_are_exactly_the_codes_of_the_signaling_error_tree() -> None:
    tree = error_tree()
    assert ModerationError in tree  # the Q&A branch is part of the same tree
    assert len({cls.code for cls in tree}) == len(tree), "two errors share a code"
    expected = {
        cls.code: {
            "code": cls.code,
            "http_status": cls.http_status,
            "close_code": None if cls.close_code is None else int(cls.close_code),
            "retryable": cls.retryable,
        }
        for cls in tree
    }
    documented = asyncapi().doc["channels"]["ws"]["x-error-codes"]
    assert len(documented) == len(expected)
    assert {entry["code"]: entry for entry in documented} == expected
    assert set(asyncapi().at("#/components/schemas/ErrorCode")["enum"]) == set(expected)
    table = asyncapi().doc["components"]["messages"]["error"]["description"]
    for code in expected:
        assert re.search(rf"^\| {code} \|", table, re.MULTILINE), f"no table row for {code}"


# ---- (c) real WebSocket traffic ------------------------------------------------------------------


async def test_real_websocket_traffic_matches_the_asyncapi_document_and_shows_every_server_type(
    node: TestServer, node_factory: NodeFactory
) -> None:
    wire = Wire()
    try:
        await _converse(node, wire)
        await _questions(node, wire)
        await _floor(node, wire)
        await stream_traffic(node, wire)
        await _media(node, wire)
        await asyncio.gather(*(_refused(node, wire, *case) for case in _refusal_cases()))
        await asyncio.gather(_expires(node, wire), _bad_frames(node, wire), _oversized(node, wire))
        await _going_away(node_factory, wire)
    finally:
        await wire.close_all()
    assert wire.failures() == []
    assert {message["type"] for message in wire.received} == set(SERVER_TYPES)
    assert wire.kinds("event", "name") == event_names()
    moderation = {cls.code for cls in error_tree() if issubclass(cls, ModerationError)}
    assert moderation - set(NEVER_RAISED) <= wire.kinds("error", "code")
    assert {command for command, _ in wire.acks} == CLIENT_TYPES - UNACKED
    assert set(wire.closes) == {int(code) for code in CloseCode} - {int(c) for c in NEVER_SENT}


async def _converse(node: TestServer, wire: Wire) -> None:
    """Operators and participants at work: commands, refusals, resume and the three resyncs."""
    await app_of(node)[SIGNALING].tick()  # the plenary started ten minutes ago: live from now on
    op = await wire.open(node)
    assert (await op.auth(token(Role.OPERATOR, ("*",), name="Olu")))["state"] == "live"
    amina = token(mode="venue")
    alice = await wire.open(node)
    assert (await alice.auth(amina))["type"] == "welcome"
    await op.next("presence", online=2)
    await op.send({"type": "ping", "id": "p1"})
    await op.next("pong", id="p1")
    await op.send({"type": "session.set_state", "id": "s1", "state": "open"})
    assert (await op.next("ack", id="s1"))["result"] == {"state": "open"}
    seen = await alice.next("event", name="session.state")
    assert seen["data"]["state"] == "open"
    await alice.send({"type": "session.set_state", "id": "s2", "state": "live"})
    assert (await alice.next("error", id="s2"))["code"] == "forbidden"
    await op.send({"type": "session.set_state", "id": "s3", "state": "open"})
    assert (await op.next("error", id="s3"))["code"] == "invalid_transition"
    refused: list[tuple[dict[str, Any] | str, bool, str, str | None]] = [
        ("{nope", False, "malformed_frame", None),
        ("[1, 2]", False, "malformed_frame", None),
        ({"type": "shout", "id": "u1"}, False, "unknown_type", "u1"),
        ({"type": "ping", "id": "x1", "extra": True}, False, "invalid_message", "x1"),
        (_auth(amina, rid="a2"), True, "not_authenticated", "a2"),
    ]
    for frame, valid, code, rid in refused:
        await alice.send(frame, valid=valid)
        error = await alice.next("error", code=code)
        assert error.get("id") == rid

    # Away for two events, then back: exactly those two, then presence, then live.
    await alice.ws.close()
    for rid, state in (("s4", "live"), ("s5", "open")):
        await op.send({"type": "session.set_state", "id": rid, "state": state})
        await op.next("ack", id=rid)
    alice = await wire.open(node)
    resumed = await alice.auth(amina, resume={"epoch": seen["epoch"], "seq": seen["seq"]})
    assert (resumed["type"], resumed["missed"]) == ("resumed", 2)
    missed = [await alice.next("event"), await alice.next("event")]
    assert [e["seq"] for e in missed] == [seen["seq"] + 1, seen["seq"] + 2]
    await alice.next("presence")

    # Away for 60 events (the test node keeps 50): the history is gone.
    await alice.ws.close()
    async with ClientSession() as http:
        for n in range(60):
            body = {"state": "live" if n % 2 == 0 else "open"}
            url = node.make_url("/api/v1/sessions/plenary/state")
            response = await http.post(url, json=body, headers=operator_headers())
            assert response.status == 200, await response.text()
            route = "/api/v1/sessions/{session}/state"
            assert http_failures("POST", route, response, await response.read(), body) == []
    for _ in range(60):
        await op.next("event")
    last = missed[-1]
    for resume, reason in (
        ({"epoch": last["epoch"], "seq": last["seq"]}, "history_gone"),
        ({"epoch": "0000feedbeef0000", "seq": 1}, "epoch_changed"),
        ({"epoch": last["epoch"], "seq": last["seq"] + 1000}, "ahead_of_stream"),
    ):
        alice = await wire.open(node)
        assert await alice.auth(amina, resume=resume) == {
            "type": "resync",
            "id": "auth-1",
            "reason": reason,
        }
        assert (await alice.next("welcome"))["id"] == "auth-1"
        await alice.ws.close()

    # A flood: rate-limited errors with retry_after, then the socket is closed.
    flooder = await wire.open(node)
    await flooder.auth(token())
    with contextlib.suppress(ConnectionClosed):
        for n in range(60):
            await flooder.send({"type": "ping", "id": f"f{n}"})
    assert await flooder.closed() == CloseCode.FLOOD
    assert all(e["code"] == "rate_limited" and e["retry_after"] >= 0 for e in flooder.errors())
    assert len(flooder.errors()) == 30  # the 30th rate-limited frame closes the socket


def _question(qid: str, **fields: Any) -> Any:
    """Accepts the ``data`` of a ``qa.question`` event about ``qid`` with those field values."""
    return lambda data: (
        data["question"]["id"] == qid
        and all(data["question"].get(k) == v for k, v in fields.items())
    )


async def _questions(node: TestServer, wire: Wire) -> None:
    """The question queue at work: two moderators, four participants and a room display."""
    maria = await wire.join(node, token(Role.MODERATOR, sub="maria", name="Maria"))
    kofi = await wire.join(node, token(Role.MODERATOR, sub="kofi", name="Kofi"))
    amina = await wire.join(node, token(sub="amina", name="Amina"))
    li = await wire.join(node, token(sub="li", name="Li"))
    ben = await wire.join(node, token(sub="ben", name="Ben"))
    screen = await wire.join(node, token(Role.DISPLAY, sub="screen", name="Room XX"))
    empty: dict[str, Any] = {"questions": [], "pinned": None, "locked": False, "voted": []}
    assert amina.welcome["parts"]["qa"] == {**empty, "order": "votes", "enabled": True}

    # The plenary is pre-moderated: the question waits, seen by its asker and the moderators.
    asked = await amina.ok("qa.ask", text="  How will the   fund be governed? ", lang="fr")
    q1 = asked["question"]["id"]
    assert asked["question"]["text"] == "How will the fund be governed?"
    assert (asked["question"]["state"], asked["question"]["author_name"]) == ("pending", "Amina")
    assert asked["question"]["mine"] is True
    await kofi.event("qa.question", _question(q1, state="pending", author="amina"))
    await amina.event("qa.question", _question(q1, state="pending", reason=""))
    await li.refused("qa.approve", "not_allowed", question=q1)
    await li.refused("qa.vote", "question_conflict", question=q1)

    # Approved: public. Kofi sees Maria's decision live; everyone sees the question.
    assert (await maria.ok("qa.approve", question=q1))["question"]["state"] == "approved"
    await kofi.event("qa.question", _question(q1, state="approved", author="amina"))
    await screen.event("qa.question", _question(q1, state="approved", author_name="Amina"))

    # One vote per person, taken back and given again; counts reach everyone coalesced.
    assert await li.ok("qa.vote", question=q1) == {"question": q1, "votes": 1, "voted": True}
    assert await li.ok("qa.vote", question=q1) == {"question": q1, "votes": 1, "voted": True}
    assert (await ben.ok("qa.vote", question=q1))["votes"] == 2
    assert await li.ok("qa.unvote", question=q1) == {"question": q1, "votes": 1, "voted": False}
    assert (await li.ok("qa.vote", question=q1))["votes"] == 2
    await screen.event("qa.votes", lambda data: data["votes"].get(q1) == 2)

    # A duplicate merged: voters united (Li voted for both and counts once), its asker told.
    q2 = (await ben.ok("qa.ask", text="Who governs the fund?"))["question"]["id"]
    await kofi.ok("qa.approve", question=q2)
    await amina.ok("qa.vote", question=q2)
    await li.ok("qa.vote", question=q2)
    merged = await maria.ok("qa.merge", source=q2, target=q1)
    assert merged == {"source": q2, "target": q1, "votes": 3}
    await ben.event("qa.merged", lambda data: data == {"source": q2, "target": q1})
    await kofi.event("qa.question", _question(q2, state="archived", merged_into=q1))
    await screen.event("qa.withdrawn", lambda data: data == {"id": q2, "state": "archived"})
    await screen.event("qa.votes", lambda data: data["votes"].get(q1) == 3)
    again = await wire.join(node, token(sub="li", name="Li"))  # a second tab: the snapshot
    snapshot = again.welcome["parts"]["qa"]
    assert ([q["id"] for q in snapshot["questions"]], snapshot["voted"]) == ([q1], [q1])

    # On screen and off; locked and open again.
    assert await maria.ok("qa.pin", question=q1) == {"pinned": q1}
    await screen.event("qa.pinned", lambda data: data == {"question": q1})
    assert await maria.ok("qa.pin", question=None) == {"pinned": None}
    await screen.event("qa.pinned", lambda data: data == {"question": None})
    assert await kofi.ok("qa.lock", locked=True) == {"locked": True}
    await ben.event("qa.locked", lambda data: data == {"locked": True})
    await ben.refused("qa.ask", "qna_closed", text="Is the queue still open?")
    assert await kofi.ok("qa.lock", locked=False) == {"locked": False}
    await ben.event("qa.locked", lambda data: data == {"locked": False})

    # Rejected with a reason only its asker (and the staff) see.
    q3 = (await amina.ok("qa.ask", text="What is for lunch?"))["question"]["id"]
    reason = "Off topic: please ask the help desk"
    assert (await kofi.ok("qa.reject", question=q3, reason=reason))["question"]["reason"] == reason
    await amina.event("qa.question", _question(q3, state="rejected", reason=reason))

    # The moderators' tools on the public question, until it is answered and archived.
    edited = await maria.ok("qa.edit", question=q1, text="How will the new fund be governed?")
    assert edited["question"]["edited"] is True
    labels = ["funding", "governance"]
    assert (await maria.ok("qa.label", question=q1, labels=labels))["question"]["labels"] == labels
    reply = "Its board publishes the terms of reference in June."
    assert (await maria.ok("qa.reply", question=q1, text=reply))["question"]["reply"] == reply
    assert (await maria.ok("qa.move", question=q1, rank=1.5))["question"]["rank"] == 1.5
    await li.event("qa.question", _question(q1, rank=1.5, reply=reply, edited=True))
    assert (await maria.ok("qa.reply", question=q1, text=" "))["question"]["reply"] == ""
    assert (await maria.ok("qa.answer", question=q1))["question"]["state"] == "answered"
    await li.event("qa.question", _question(q1, state="answered", reply=""))
    await maria.ok("qa.pin", question=q1)
    await screen.event("qa.pinned", lambda data: data == {"question": q1})
    assert (await maria.ok("qa.archive", question=q1))["question"]["state"] == "archived"
    await li.event("qa.withdrawn", lambda data: data == {"id": q1, "state": "archived"})
    await screen.event("qa.pinned", lambda data: data == {"question": None})  # off screen too

    # Anonymous: no name for participants, the name for the moderators; then withdrawn.
    arabic = "ما هي خطة التمويل للدول الجزرية الصغيرة؟"
    q4 = (await li.ok("qa.ask", text=arabic, lang="ar", anonymous=True))["question"]["id"]
    await maria.ok("qa.approve", question=q4)
    await ben.event("qa.question", _question(q4, text=arabic, anonymous=True, author_name=""))
    await maria.event("qa.question", _question(q4, author_name="Li", author="li"))
    await maria.ok("qa.reject", question=q4, reason="Answered in the opening remarks")
    await ben.event("qa.withdrawn", lambda data: data == {"id": q4, "state": "rejected"})

    # Refusals: a typed error each, nothing changed.
    await maria.refused("qa.approve", "question_not_found", question="q0000nothere")
    await maria.refused("qa.approve", "question_conflict", question=q1)  # archived
    await maria.refused("qa.label", "text_refused", question=q3, labels=["not a label!"])
    await ben.refused("qa.ask", "text_refused", text="   ")
    eager = await wire.join(node, token(sub="eager", name="Eager"))
    for n in range(5):
        await eager.ok("qa.ask", text=f"Question number {n + 1}")
    assert (await eager.refused("qa.ask", "too_many_questions", text="One more?"))[
        "retry_after"
    ] > 0
    malformed: list[tuple[str, dict[str, Any]]] = [
        ("qa.ask", {"text": "Hallo", "lang": "de"}),
        ("qa.ask", {"text": "x" * 8001}),
        ("qa.vote", {"question": "Q1"}),
        ("qa.move", {"question": q3, "rank": 1e16}),
        ("qa.label", {"question": q3, "labels": ["a"] * 17}),
        ("qa.pin", {}),
        ("qa.lock", {"locked": True, "why": "lunch"}),
    ]
    for command, fields in malformed:
        answer = await ben.answer(command, valid=False, **fields)
        assert answer.get("code") == "invalid_message", answer

    participants = (amina, li, ben, screen, again, eager)
    await asyncio.gather(*(tap.drain() for tap in participants))
    for tap in participants:
        assert _staff_views_leaked(tap, participants) == []


SDP = (
    "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 AB:CD\r\n"
)
HOST = "candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host"


async def _media(node: TestServer, wire: Wire) -> None:
    """The media relay: a speaker with the floor, two desks, every rtc command and relayed type."""
    sam = await wire.join(node, token(Role.SPEAKER, sub="sam", name="Sam"))
    desk = await wire.join(node, token(Role.PRODUCTION, sub="desk", name="Desk"))
    late = await wire.join(node, token(Role.PRODUCTION, sub="late", name="Late desk"))
    await sam.refused("rtc.offer", "not_allowed", sdp=SDP)  # not granted yet
    chair = await wire.join(node, token(Role.MODERATOR, sub="chair", name="Chair"))
    await chair.ok("floor.grant", entry=(await sam.ok("floor.request"))["entry"])
    assert await sam.ok("rtc.ice") == {"ice_servers": [], "ttl": 600}
    await sam.refused("rtc.offer", "sdp_invalid", sdp="v=0\r\n")
    media = (await sam.ok("rtc.offer", sdp=SDP))["media"]
    assert (await desk.next("rtc.offer", media=media))["name"] == "Sam"
    await late.next("rtc.offer", media=media)
    await desk.refused("rtc.answer", "media_not_found", media="m" + "0" * 20, sdp=SDP)
    assert await desk.ok("rtc.answer", media=media, sdp=SDP) == {"media": media}
    await sam.next("rtc.answer", media=media)
    await late.refused("rtc.answer", "media_conflict", media=media, sdp=SDP)
    await sam.refused("rtc.candidate", "candidate_invalid", media=media, candidate="candidate:x")
    loopback = HOST.replace("192.0.2.10", "127.0.0.1")
    assert await sam.ok("rtc.candidate", media=media, candidate=loopback) == {"dropped": True}
    trickled = {"media": media, "candidate": HOST, "mid": "0", "mline": 0}
    assert await sam.ok("rtc.candidate", **trickled) == {"dropped": False}
    await desk.next("rtc.candidate", **trickled)
    assert await desk.ok("rtc.restart", media=media) == {}
    await sam.next("rtc.restart", media=media)
    assert await sam.ok("rtc.offer", media=media, sdp=SDP) == {"media": media}
    await desk.next("rtc.offer", media=media)
    assert await desk.ok("rtc.state", media=media, state="connected") == {}
    await sam.next("rtc.state", media=media, state="connected")
    assert await sam.ok("rtc.hangup", media=media) == {}
    await desk.next("rtc.hangup", media=media, reason="hangup")
    await desk.refused("rtc.state", "media_not_found", media=media, state="closed")
    await chair.ok("floor.revoke")  # the floor is free again for what follows


def _staff_views_leaked(tap: Tap, taps: tuple[Tap, ...]) -> list[dict[str, Any]]:
    """Question views a non-staff socket got that it should not: staff views, others' unpublished."""
    sub = tap.welcome["you"]["sub"]
    own = {  # asked by the same person, from any of their sockets
        m["result"]["question"]["id"]
        for other in taps
        if other.welcome["you"]["sub"] == sub
        for m in other.seen
        if m["type"] == "ack" and isinstance(m.get("result", {}).get("question"), dict)
    }
    views = [m["data"]["question"] for m in tap.seen if m.get("name") == "qa.question"]
    views += tap.welcome["parts"]["qa"]["questions"]
    return [
        view
        for view in views
        if "author" in view
        or (view["id"] not in own and ("reason" in view or view["state"] not in PUBLIC))
    ]


async def _floor(node: TestServer, wire: Wire) -> None:
    """The speakers' list at work: a chair, three people asking for the floor and a room display."""
    chair = await wire.join(node, token(Role.MODERATOR, sub="claire", name="Claire"))
    amina = await wire.join(node, token(sub="amina", name="Amina"))
    li = await wire.join(node, token(sub="li", name="Li", mode="venue"))
    ben = await wire.join(node, token(sub="ben", name="Ben"))
    screen = await wire.join(node, token(Role.DISPLAY, sub="screen", name="Room XX"))
    assert screen.welcome["parts"]["floor"] == {"open": True, "queue": [], "expired": False}

    first = (await amina.ok("floor.request"))["entry"]
    second = (await li.ok("floor.request"))["entry"]
    await screen.event("floor.list", lambda data: len(data["queue"]) == 2)
    venue = (await chair.ok("floor.add", name="Ambassador Okafor", group="government"))["entry"]
    assert await chair.ok("floor.move", entry=venue, position=0) == {"entry": venue, "position": 0}
    assert await chair.ok("floor.skip", entry=venue) == {"entry": venue, "position": 2}
    granted = await chair.ok("floor.grant", entry=first)
    assert granted["entry"] == first
    await screen.event("floor.list", lambda data: data.get("speaker", {}).get("entry") == first)
    again = await wire.join(node, token(sub="amina", name="Amina"))  # a second tab: mine
    assert again.welcome["parts"]["floor"]["mine"] == first

    await chair.ok("floor.grant", entry=second)  # Amina's turn ends: replaced
    await screen.event("floor.ended", lambda data: data == {"entry": first, "reason": "replaced"})
    service = app_of(node)[FLOOR]
    service.clock = lambda: time.time() + 3600  # Li's time has run out
    try:
        assert await service.check_expiry() == 1
    finally:
        service.clock = time.time
    await screen.event("floor.expired", lambda data: data == {"entry": second})
    await screen.event("floor.list", lambda data: data["expired"] is True)
    assert await li.ok("floor.withdraw") == {"entry": second}
    await screen.event("floor.ended", lambda data: data == {"entry": second, "reason": "yielded"})
    assert await chair.ok("floor.revoke", entry=venue) == {"entry": venue}
    assert await chair.ok("floor.close", closed=True) == {"closed": True}
    await ben.refused("floor.request", "floor_closed")
    assert await chair.ok("floor.close", closed=False) == {"closed": False}

    # Refusals: a typed error each.
    await amina.refused("floor.grant", "not_allowed", entry=first)
    await chair.refused("floor.revoke", "floor_conflict")  # nobody speaks
    await chair.refused("floor.add", "text_refused", name="Okafor", group="youth")
    for _ in range(5):
        await ben.ok("floor.request")
        await ben.ok("floor.withdraw")
    assert (await ben.refused("floor.request", "too_many_floor_requests"))["retry_after"] > 0
    malformed: list[tuple[str, dict[str, Any]]] = [
        ("floor.request", {"mode": "venue"}),
        ("floor.grant", {"entry": "F1"}),
        ("floor.move", {"entry": first, "position": -1}),
        ("floor.add", {"name": "x" * 2001}),
        ("floor.close", {}),
    ]
    for command, fields in malformed:
        answer = await ben.answer(command, valid=False, **fields)
        assert answer.get("code") == "invalid_message", answer
    await asyncio.gather(*(tap.drain() for tap in (amina, li, ben, screen, again)))


def _auth(tok: str, session: str = "plenary", rid: str = "a1", **extra: Any) -> dict[str, Any]:
    return {"type": "auth", "id": rid, "token": tok, "session": session, **extra}


def _refusal_cases() -> list[tuple[dict[str, Any] | str | bytes | None, bool, str | None]]:
    """First frames the server refuses at auth: (frame, meant to be valid, error code)."""
    expired = token(now=int(time.time()) - 7200, ttl=3600)
    forged = token(keys=TokenKeys("another-secret-another-secret-another-secret"))
    return [
        (_auth(expired), True, "token_expired"),
        (_auth(forged), True, "unauthorized"),
        (_auth(token(Role.OPERATOR, ("*",)), "nowhere"), True, "unknown_session"),
        (_auth(token(sessions=("workshop",))), True, "session_forbidden"),
        ({"type": "ping", "id": "early"}, True, "not_authenticated"),
        ("{nope", False, "malformed_frame"),
        (_auth(token(), role="operator"), False, "invalid_message"),
        (None, True, "auth_timeout"),
        (b"\x00binary", True, None),
    ]


async def _refused(
    node: TestServer,
    wire: Wire,
    first: dict[str, Any] | str | bytes | None,
    valid: bool,
    code: str | None,
) -> None:
    """Sends one first frame (or nothing); the error and the close must be the documented ones."""
    tap = await wire.open(node)
    if first is not None:
        await tap.send(first, valid=valid)
    closed = await tap.closed()
    if code is None:
        assert (tap.errors(), closed) == ([], CloseCode.UNSUPPORTED_DATA)
        return
    assert [e["code"] for e in tap.errors()] == [code]
    documented = {
        e["code"]: e["close_code"] for e in asyncapi().doc["channels"]["ws"]["x-error-codes"]
    }
    assert closed == (documented[code] or CloseCode.PROTOCOL_VIOLATION)


async def _expires(node: TestServer, wire: Wire) -> None:
    tap = await wire.open(node)
    assert (await tap.auth(token(ttl=2)))["type"] == "welcome"
    assert await tap.closed() == CloseCode.TOKEN_EXPIRED
    assert [(e["code"], "id" in e) for e in tap.errors()] == [("token_expired", False)]


async def _bad_frames(node: TestServer, wire: Wire) -> None:
    tap = await wire.open(node)
    await tap.auth(token())
    for _ in range(10):
        await tap.send("{nope", valid=False)
    assert await tap.closed() == CloseCode.PROTOCOL_VIOLATION
    assert [e["code"] for e in tap.errors()] == ["malformed_frame"] * 10


async def _oversized(node: TestServer, wire: Wire) -> None:
    for frame, code in (
        (b"\x00binary", CloseCode.UNSUPPORTED_DATA),
        ("x" * 70_000, CloseCode.MESSAGE_TOO_BIG),
    ):
        tap = await wire.open(node)
        await tap.auth(token())
        await tap.send(frame, valid=False)
        assert await tap.closed() == code


async def _going_away(node_factory: NodeFactory, wire: Wire) -> None:
    other = await node_factory()
    tap = await wire.open(other)
    assert (await tap.auth(token()))["type"] == "welcome"
    closing = asyncio.create_task(other.close())
    assert await tap.closed() == CloseCode.GOING_AWAY
    await closing


async def test_clients_joining_during_a_store_outage_get_store_unavailable_and_4002(
    node_factory: NodeFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    node, store = await outage_node(node_factory, tmp_path_factory)
    wire = Wire()
    try:
        first = await wire.open(node)
        assert (await first.auth(token()))["type"] == "welcome"  # the node now follows the plenary
        await store.stop()
        for session in ("plenary", "open-forum"):  # one the node follows, one it does not yet
            late = await wire.open(node)
            assert await late.auth(token(sessions=("*",)), session) == {
                "type": "error",
                "code": "store_unavailable",
                "message": "the store is unavailable",
                "id": "auth-1",
            }
            assert await late.closed() == CloseCode.STORE_UNAVAILABLE
    finally:
        await wire.close_all()
        await store.stop()
    assert wire.failures() == []
