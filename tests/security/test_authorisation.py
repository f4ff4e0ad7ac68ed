"""Authorisation on every message: a role acting beyond itself, a moderator of one session acting
on another, identity or role sent by the client, and ids of other people's things (IDOR). Each is
refused with a typed error and changes nothing.

Also proven elsewhere: a participant changing the session state (``tests/test_bad_input.py``),
people off the floor sending media signaling (``tests/test_relay.py::
test_people_not_holding_the_floor_cannot_offer_answer_trickle_restart_or_get_ice``), operator routes
(``tests/security/test_http.py``), the pure rules role by role (``tests/test_questions.py``,
``tests/test_floor_rules.py``).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from config.appkeys import FLOOR, QNA, SIGNALING
from signaling.client import ClientError, PodiumClient
from signaling.identity import Role
from signaling.lifecycle import State
from tests.conftest import ClientFactory, app_of, token
from tests.security.wire import auth, exchange

NOT_MODERATORS = (Role.PARTICIPANT, Role.SPEAKER, Role.DISPLAY, Role.INTERPRETER)


async def _refused(client: PodiumClient, kind: str, **fields: Any) -> str:
    with pytest.raises(ClientError) as refused:
        await client.request(kind, **fields)
    return refused.value.code


async def _world(node: TestServer, connect: ClientFactory) -> dict[str, Any]:
    """A plenary with a pending and an approved question, and a queued floor request."""
    chair = await connect(node, token(Role.MODERATOR, sub="chair", name="Maria"))
    asker = await connect(node, token(sub="asker", name="Amina"))
    pending = (await asker.request("qa.ask", text="Still pending?"))["question"]["id"]
    approved = (await asker.request("qa.ask", text="Approved one?"))["question"]["id"]
    await chair.request("qa.approve", question=approved)
    entry = (await asker.request("floor.request"))["entry"]
    return {
        "chair": chair,
        "asker": asker,
        "pending": pending,
        "approved": approved,
        "entry": entry,
    }


async def _state(node: TestServer) -> tuple[Any, ...]:
    app = app_of(node)
    store = app[QNA].store
    return (
        await store.all("plenary"),
        await store.audit("plenary"),
        await store.settings("plenary"),
        await app[FLOOR].store.read("plenary"),
        (await app[SIGNALING].store.lifecycle("plenary")).state,
    )


def _moderator_actions(world: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    pending, approved, entry = world["pending"], world["approved"], world["entry"]
    return [
        ("qa.approve", {"question": pending}),
        ("qa.reject", {"question": approved, "reason": "No"}),
        ("qa.answer", {"question": approved}),
        ("qa.archive", {"question": approved}),
        ("qa.edit", {"question": approved, "text": "Rewritten"}),
        ("qa.label", {"question": approved, "labels": ["budget"]}),
        ("qa.reply", {"question": approved, "text": "See annex"}),
        ("qa.move", {"question": approved, "rank": -1}),
        ("qa.pin", {"question": approved}),
        ("qa.merge", {"source": pending, "target": approved}),
        ("qa.lock", {"locked": True}),
        ("floor.add", {"name": "Someone"}),
        ("floor.grant", {"entry": entry}),
        ("floor.skip", {"entry": entry}),
        ("floor.move", {"entry": entry, "position": 0}),
        ("floor.revoke", {"entry": entry}),
        ("floor.close", {"closed": True}),
        ("session.set_state", {"state": "closed"}),
    ]


@pytest.mark.parametrize("role", NOT_MODERATORS)
async def test_no_role_but_moderators_and_operators_takes_a_moderator_action(
    node: TestServer, connect: ClientFactory, role: Role
) -> None:
    world = await _world(node, connect)
    before = await _state(node)
    intruder = await connect(node, token(role, sub="intruder", name="Eve"))
    for kind, fields in _moderator_actions(world):
        assert await _refused(intruder, kind, **fields) in ("not_allowed", "forbidden"), kind
    assert await _state(node) == before


async def test_a_moderator_cannot_change_the_session_state_only_an_operator(
    node: TestServer, connect: ClientFactory
) -> None:
    chair = await connect(node, token(Role.MODERATOR, sub="chair"))
    assert await _refused(chair, "session.set_state", state="closed") == "forbidden"
    assert (await app_of(node)[SIGNALING].store.lifecycle("plenary")).state is State.LIVE


async def test_a_moderator_of_another_session_cannot_act_on_this_one_s_questions_or_list(
    node: TestServer, connect: ClientFactory
) -> None:
    world = await _world(node, connect)
    before = await _state(node)
    elsewhere = await connect(
        node, token(Role.MODERATOR, ("open-forum",), sub="forum-chair"), session="open-forum"
    )
    for kind, fields in _moderator_actions(world):
        if kind in ("qa.lock", "floor.add", "floor.close", "session.set_state"):
            continue  # these act on the socket's own session: nothing here names the plenary
        code = await _refused(elsewhere, kind, **fields)
        assert code in ("question_not_found", "floor_conflict", "not_allowed"), (kind, code)
    assert await _state(node) == before


async def test_a_moderator_token_for_one_session_does_not_open_another(node: TestServer) -> None:
    tok = token(Role.MODERATOR, ("open-forum",), sub="forum-chair")
    received, closed = await exchange(node, auth(tok, session="plenary"))
    assert (received[0]["code"], closed) == ("session_forbidden", 4504)


async def test_staff_http_routes_refuse_a_moderator_or_operator_of_another_session(
    node: TestServer, connect: ClientFactory
) -> None:
    await _world(node, connect)
    before = await _state(node)
    forum_mod = token(Role.MODERATOR, ("open-forum",), sub="forum-chair")
    forum_op = token(Role.OPERATOR, ("open-forum",), sub="forum-op")
    base = "/api/v1/sessions/plenary"
    async with aiohttp.ClientSession() as http:
        for method, path, tok, body in (
            ("GET", base + "/questions/export", forum_mod, None),
            ("GET", base + "/questions", forum_mod, None),
            ("POST", base + "/state", forum_op, {"state": "closed"}),
            ("GET", base + "/report", forum_op, None),
            ("GET", base + "/series", forum_op, None),
        ):
            headers = {"Authorization": "Bearer " + tok}
            async with http.request(method, node.make_url(path), json=body, headers=headers) as r:
                assert r.status == 403, path
                assert (await r.json())["code"] in ("session_forbidden", "forbidden"), path
    assert await _state(node) == before


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("qa.ask", {"text": "Hi", "author": "someone-else"}),
        ("qa.ask", {"text": "Hi", "name": "The Chair"}),
        ("qa.ask", {"text": "Hi", "role": "moderator"}),
        ("qa.vote", {"question": "q00000000", "sub": "someone-else"}),
        ("floor.request", {"name": "The Secretary-General"}),
        ("floor.request", {"mode": "venue"}),
        ("floor.request", {"group": "member-states"}),
        ("ping", {"session": "workshop"}),
    ],
)
async def test_identity_or_role_sent_by_a_client_is_refused_never_used(
    node: TestServer, connect: ClientFactory, kind: str, fields: dict[str, Any]
) -> None:
    client = await connect(node, token(sub="amina", name="Amina"))
    before = await _state(node)
    assert await _refused(client, kind, **fields) == "invalid_message"
    assert await _state(node) == before


async def test_what_a_person_does_carries_the_token_s_identity_whatever_they_claim(
    node: TestServer, connect: ClientFactory
) -> None:
    chair = await connect(node, token(Role.MODERATOR, sub="chair"))
    client = await connect(node, token(sub="amina", name="Amina", mode="remote"))
    qid = (await client.request("qa.ask", text="Who am I?", anonymous=False))["question"]["id"]
    question = await app_of(node)[QNA].store.get("plenary", qid)
    assert (question.author, question.author_name) == ("amina", "Amina")
    await client.request("floor.request")
    floor = await app_of(node)[FLOOR].store.read("plenary")
    entry = floor.queue[0]
    assert (entry.sub, entry.name, entry.mode) == ("amina", "Amina", "remote")
    assert await chair.request("ping") == {}


async def test_another_person_s_pending_question_cannot_be_read_voted_or_unvoted_by_id(
    node: TestServer, connect: ClientFactory
) -> None:
    world = await _world(node, connect)
    other = await connect(node, token(sub="other"))
    voter = await connect(node, token(sub="voter"))
    await voter.request("qa.vote", question=world["approved"])
    before = await _state(node)
    assert await _refused(other, "qa.vote", question=world["pending"]) == "question_conflict"
    # Unvoting is one's own vote only: the voter's vote stays.
    await other.request("qa.unvote", question=world["approved"])
    assert await app_of(node)[QNA].store.voters("plenary", world["approved"]) == ["voter"]
    assert await _state(node) == before
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": "Bearer " + token(sub="other")}
        url = node.make_url("/api/v1/sessions/plenary/questions")
        async with http.get(url, headers=headers) as resp:
            ids = [q["id"] for q in (await resp.json())["questions"]]
    assert world["approved"] in ids
    assert world["pending"] not in ids


async def test_a_person_withdraws_only_their_own_floor_request(
    node: TestServer, connect: ClientFactory
) -> None:
    world = await _world(node, connect)
    other = await connect(node, token(sub="other"))
    before = await _state(node)
    assert await _refused(other, "floor.withdraw") == "floor_conflict"
    assert await _refused(other, "floor.withdraw", entry=world["entry"]) == "invalid_message"
    assert await _state(node) == before
