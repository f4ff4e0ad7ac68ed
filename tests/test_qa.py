"""The question queue end to end: through the protocol, against a real store, on one and two nodes."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from config.appkeys import QNA
from signaling.client import ClientError, PodiumClient
from signaling.identity import Role
from tests.conftest import ClientFactory, NodeFactory, app_of, token

# Scenario 8 of issue 7: the same tests on one store server and on a three-primary Redis Cluster.
pytestmark = pytest.mark.both_stores


async def _moderator(server: TestServer, connect: ClientFactory, sub: str = "mod") -> PodiumClient:
    return await connect(server, token(Role.MODERATOR, sub=sub, name="Maria"))


async def _asked(client: PodiumClient, text: str = "How is this funded?", **kw: Any) -> str:
    result = await client.request("qa.ask", text=text, lang="en", **kw)
    qid: str = result["question"]["id"]
    return qid


async def _approved(server: TestServer, connect: ClientFactory) -> tuple[str, PodiumClient]:
    asker = await connect(server, token(sub="asker", name="Amina"))
    qid = await _asked(asker)
    moderator = await _moderator(server, connect)
    await moderator.request("qa.approve", question=qid)
    return qid, moderator


async def _events(client: PodiumClient, name: str, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        event = await client.next_event(timeout)
        if event.get("name") == name:
            return event


async def test_participant_asks_moderator_approves_and_everyone_sees_it_live(
    node: TestServer, connect: ClientFactory
) -> None:
    asker = await connect(node, token(sub="amina", name="Amina"))
    other = await connect(node, token(sub="li", name="Li"))
    moderator = await _moderator(node, connect)
    qid = await _asked(asker, "ما هي خطة التمويل؟", anonymous=True)
    pending = await _events(moderator, "qa.question")
    assert pending["data"]["question"]["state"] == "pending"
    assert pending["data"]["question"]["author_name"] == "Amina"  # moderators know who asked
    mine = await _events(asker, "qa.question")
    assert mine["data"]["question"]["state"] == "pending"
    await moderator.request("qa.approve", question=qid)
    seen = await _events(other, "qa.question")
    assert seen["data"]["question"]["text"] == "ما هي خطة التمويل؟"
    assert seen["data"]["question"]["author_name"] == ""  # anonymous to participants
    assert "author" not in seen["data"]["question"]
    assert other.events.empty() or all(
        e.get("data", {}).get("question", {}).get("state") != "pending"
        for e in list(other.events._queue)  # type: ignore[attr-defined]
    )


async def test_a_participant_sees_public_questions_and_only_their_own_pending_ones(
    node: TestServer, connect: ClientFactory
) -> None:
    qid, _ = await _approved(node, connect)
    amina = await connect(node, token(sub="amina2"))
    own = await _asked(amina, "My pending question")
    someone = await connect(node, token(sub="someone"))
    await _asked(someone, "Someone else's pending question")
    late = await connect(node, token(sub="amina2"))
    assert late.welcome is not None
    seen = {q["id"]: q["state"] for q in late.welcome["parts"]["qa"]["questions"]}
    assert seen == {qid: "approved", own: "pending"}
    staff = await _moderator(node, connect, "mod2")
    assert staff.welcome is not None
    assert len(staff.welcome["parts"]["qa"]["questions"]) == 3


async def test_rejection_reason_reaches_the_asker_only(
    node: TestServer, connect: ClientFactory
) -> None:
    asker = await connect(node, token(sub="amina"))
    moderator = await _moderator(node, connect)
    qid = await _asked(asker)
    await moderator.request("qa.reject", question=qid, reason="Please ask in the next session")
    while True:
        event = await _events(asker, "qa.question")
        if event["data"]["question"]["state"] == "rejected":
            break
    assert event["data"]["question"]["reason"] == "Please ask in the next session"


async def test_two_hundred_identical_votes_by_one_person_on_two_nodes_count_once(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    qid, _ = await _approved(first, connect)
    tok = token(sub="eager-voter")
    tabs = [await connect(server, tok) for server in (first, second) for _ in range(10)]
    results = await asyncio.gather(
        *(tab.request("qa.vote", question=qid) for tab in tabs for _ in range(10))
    )
    assert len(results) == 200
    assert {r["votes"] for r in results} == {1}
    store = app_of(first)[QNA].store
    assert await store.voters("plenary", qid) == ["eager-voter"]
    assert (await store.get("plenary", qid)).votes == 1


async def test_five_hundred_people_voting_once_count_five_hundred(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    qid, _ = await _approved(first, connect)
    voters = [await connect((first, second)[i % 2], token(sub=f"v{i}")) for i in range(500)]
    await asyncio.gather(*(v.request("qa.vote", question=qid) for v in voters))
    assert (await app_of(second)[QNA].store.get("plenary", qid)).votes == 500
    await asyncio.gather(*(v.request("qa.unvote", question=qid) for v in voters[:100]))
    assert (await app_of(first)[QNA].store.get("plenary", qid)).votes == 400


async def test_approve_and_reject_raced_on_two_nodes_end_in_one_state_the_audit_agrees(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    one = await _moderator(first, connect, "mod-a")
    two = await _moderator(second, connect, "mod-b")
    for round_ in range(10):
        asker = await connect(first, token(sub=f"asker-{round_}"))
        qid = await _asked(asker, f"Question number {round_}")
        outcomes = await asyncio.gather(
            one.request("qa.approve", question=qid),
            two.request("qa.reject", question=qid, reason="Duplicate"),
            return_exceptions=True,
        )
        won = [o for o in outcomes if isinstance(o, dict)]
        lost = [o for o in outcomes if isinstance(o, ClientError)]
        assert len(won) == 1
        assert [e.code for e in lost] == ["question_conflict"]
        store = app_of(first)[QNA].store
        final = (await store.get("plenary", qid)).state.value
        assert final == won[0]["question"]["state"]
        decisions = [
            a for a in await store.audit("plenary") if a["question"] == qid and a["action"] != "ask"
        ]
        assert [d["detail"]["to"] for d in decisions] == [final]


async def test_merge_under_concurrent_voting_loses_and_doubles_no_vote(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    asker = await connect(first, token(sub="asker"))
    moderator = await _moderator(second, connect)
    source = await _asked(asker, "Duplicate question")
    target = await _asked(asker, "Original question")
    for qid in (source, target):
        await moderator.request("qa.approve", question=qid)
    voters = [await connect((first, second)[i % 2], token(sub=f"m{i}")) for i in range(60)]
    # Everyone votes for the duplicate, the first twenty for the original too, while the merge runs.
    votes = [v.request("qa.vote", question=source) for v in voters]
    votes += [v.request("qa.vote", question=target) for v in voters[:20]]
    merge = moderator.request("qa.merge", source=source, target=target)
    outcomes = await asyncio.gather(merge, *votes, return_exceptions=True)
    assert isinstance(outcomes[0], dict)
    refused = [o for o in outcomes[1:] if isinstance(o, ClientError)]
    assert all(e.code == "question_conflict" for e in refused)  # voted after the merge
    store = app_of(first)[QNA].store
    counted_on_source = set(await store.voters("plenary", source))
    united = set(await store.voters("plenary", target))
    assert counted_on_source <= united
    assert {f"m{i}" for i in range(20)} <= united
    assert (await store.get("plenary", target)).votes == len(united)
    assert (await store.get("plenary", source)).state.value == "archived"


async def test_vote_counts_reach_clients_coalesced(
    node: TestServer, connect: ClientFactory
) -> None:
    qid, moderator = await _approved(node, connect)
    watcher = await connect(node, token(sub="watcher"))
    voters = [await connect(node, token(sub=f"c{i}")) for i in range(40)]
    await asyncio.gather(*(v.request("qa.vote", question=qid) for v in voters))
    frames = []
    while True:
        event = await _events(watcher, "qa.votes", timeout=3)
        frames.append(event)
        if event["data"]["votes"].get(qid) == 40:
            break
    assert len(frames) <= 4
    assert moderator is not None


@pytest.mark.parametrize(
    ("command", "fields", "code"),
    [
        ("qa.ask", {"text": "", "lang": "en"}, "text_refused"),
        ("qa.ask", {"text": "evil\u202etxt", "lang": "en"}, "text_refused"),
        ("qa.ask", {"text": "ctrl\x07", "lang": "en"}, "text_refused"),
        ("qa.ask", {"text": "x" * 501, "lang": "en"}, "text_refused"),
        ("qa.ask", {"text": "Hi", "lang": "de"}, "invalid_message"),
        ("qa.approve", {"question": "q0000nothere"}, "not_allowed"),
        ("qa.edit", {"question": "q0000nothere", "text": "Changed"}, "not_allowed"),
        ("qa.vote", {"question": "q0000nothere"}, "question_not_found"),
        ("qa.lock", {"locked": True}, "not_allowed"),
        ("qa.pin", {"question": None}, "not_allowed"),
    ],
)
async def test_bad_qa_input_gets_a_typed_error_and_changes_nothing(
    node: TestServer, connect: ClientFactory, command: str, fields: dict[str, Any], code: str
) -> None:
    participant = await connect(node, token(sub="p"))
    store = app_of(node)[QNA].store
    before = await store.all("plenary"), await store.audit("plenary")
    with pytest.raises(ClientError) as refused:
        await participant.request(command, **fields)
    assert refused.value.code == code
    assert (await store.all("plenary"), await store.audit("plenary")) == before


async def test_votes_on_pending_or_rejected_questions_are_refused(
    node: TestServer, connect: ClientFactory
) -> None:
    asker = await connect(node, token(sub="asker"))
    moderator = await _moderator(node, connect)
    pending = await _asked(asker, "Pending one")
    rejected = await _asked(asker, "Rejected one")
    await moderator.request("qa.reject", question=rejected, reason="No")
    voter = await connect(node, token(sub="voter"))
    for qid in (pending, rejected):
        with pytest.raises(ClientError) as refused:
            await voter.request("qa.vote", question=qid)
        assert refused.value.code == "question_conflict"
    assert (await app_of(node)[QNA].store.get("plenary", pending)).votes == 0


async def test_actions_on_a_question_of_another_session_are_refused(
    node: TestServer, connect: ClientFactory
) -> None:
    qid, _ = await _approved(node, connect)
    elsewhere = await connect(
        node, token(Role.MODERATOR, sessions=("open-forum",), sub="mod-forum"), session="open-forum"
    )
    with pytest.raises(ClientError) as refused:
        await elsewhere.request("qa.archive", question=qid)
    assert refused.value.code == "question_not_found"
    assert (await app_of(node)[QNA].store.get("plenary", qid)).state.value == "approved"


async def test_a_flood_of_questions_is_refused_over_the_per_person_limit(
    node: TestServer, connect: ClientFactory
) -> None:
    asker = await connect(node, token(sub="flooder"))
    for i in range(5):
        await _asked(asker, f"Question {i}")
    with pytest.raises(ClientError) as refused:
        await _asked(asker, "One too many")
    assert refused.value.code == "too_many_questions"
    assert refused.value.retry_after is not None
    mine = [q for q in await app_of(node)[QNA].store.all("plenary") if q.author == "flooder"]
    assert len(mine) == 5


async def test_locked_queue_refuses_new_questions_until_unlocked(
    node: TestServer, connect: ClientFactory
) -> None:
    moderator = await _moderator(node, connect)
    asker = await connect(node, token(sub="asker"))
    await moderator.request("qa.lock", locked=True)
    with pytest.raises(ClientError) as refused:
        await _asked(asker)
    assert refused.value.code == "qna_closed"
    await moderator.request("qa.lock", locked=False)
    await _asked(asker)


async def test_export_holds_the_question_its_votes_and_every_action_with_actor_and_time(
    node: TestServer, connect: ClientFactory
) -> None:
    qid, moderator = await _approved(node, connect)
    voter = await connect(node, token(sub="voter-1"))
    await voter.request("qa.vote", question=qid)
    await moderator.request("qa.edit", question=qid, text="How is this funded, exactly?")
    await moderator.request("qa.pin", question=qid)
    await moderator.request("qa.answer", question=qid)
    headers = {"Authorization": "Bearer " + token(Role.MODERATOR, sub="mod")}
    async with aiohttp.ClientSession() as http:
        url = node.make_url("/api/v1/sessions/plenary/questions/export")
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 200
            data = await resp.json()
        async with http.get(
            url, params={"format": "csv", "table": "audit"}, headers=headers
        ) as resp:
            rows = list(csv.DictReader(io.StringIO(await resp.text())))
        participant = {"Authorization": "Bearer " + token(sub="voter-1")}
        async with http.get(url, headers=participant) as resp:
            assert resp.status == 403
    question = next(q for q in data["questions"] if q["id"] == qid)
    assert question["text"] == "How is this funded, exactly?"
    assert question["voters"] == ["voter-1"]
    assert question["state"] == "answered"
    actions = [a["action"] for a in data["audit"] if a["question"] in (qid, "")]
    assert actions == ["ask", "approve", "edit", "pin", "answer"]
    edit = next(a for a in data["audit"] if a["action"] == "edit")
    assert edit["detail"]["original"] == "How is this funded?"
    assert all(a["at"] > 0 and a["name"] for a in data["audit"])
    assert [r["action"] for r in rows if r["question"] in (qid, "")] == actions


async def test_a_pinned_question_that_is_rejected_leaves_the_screen(
    node: TestServer, connect: ClientFactory
) -> None:
    qid, moderator = await _approved(node, connect)
    display = await connect(node, token(Role.DISPLAY, sub="screen"))
    await moderator.request("qa.pin", question=qid)
    assert (await _events(display, "qa.pinned"))["data"]["question"] == qid
    await moderator.request("qa.reject", question=qid, reason="Off topic after all")
    assert (await _events(display, "qa.pinned"))["data"]["question"] is None
    assert (await app_of(node)[QNA].store.settings("plenary")).pinned == ""


async def test_a_moderator_can_take_a_written_reply_back(
    node: TestServer, connect: ClientFactory
) -> None:
    qid, moderator = await _approved(node, connect)
    await moderator.request("qa.reply", question=qid, text="See annex 2")
    result = await moderator.request("qa.reply", question=qid, text="")
    assert result["question"]["reply"] == ""
