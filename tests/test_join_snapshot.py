"""The welcome read in the join's one store script is the welcome read part by part.

A fresh join reads the presence join, the snapshot and the parts that are ``JoinRead`` (the Q&A
queue) in one script. A resume that must resync reads the snapshot and every part by its own calls.
Both must give a person the same welcome.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from config.appkeys import SIGNALING
from signaling.client import PodiumClient
from signaling.identity import Role
from signaling.service import JoinRead
from tests.conftest import ORIGIN, ClientFactory, app_of, token, ws_url

pytestmark = pytest.mark.both_stores


async def _resynced(server: TestServer, tok: str) -> tuple[PodiumClient, dict[str, Any]]:
    """A client resuming from an epoch the session never had: told to resync, then welcomed."""
    client = PodiumClient(ws_url(server), tok, "plenary", origin=ORIGIN)
    client.epoch, client.seq = "0123456789abcdef", 3
    welcome = await client.connect(resume=True)
    assert client.resyncs == 1
    return client, welcome


async def test_a_fresh_join_and_a_resync_welcome_a_person_alike(
    node: TestServer, connect: ClientFactory
) -> None:
    moderator = await connect(node, token(Role.MODERATOR, sub="mod", name="Maria"))
    asker = await connect(node, token(sub="asker", name="Amina"))
    public = (await asker.request("qa.ask", text="How is this funded?", lang="en"))["question"]
    await moderator.request("qa.approve", question=public["id"])
    li_token = token(sub="li", name="Li")
    li = await connect(node, li_token)
    await li.request("qa.vote", question=public["id"])
    own = (await li.request("qa.ask", text="And the second phase?", lang="en"))["question"]
    other = await connect(node, token(sub="other", name="Olu"))
    await other.request("qa.ask", text="Someone else's pending one", lang="en")
    await moderator.request("qa.pin", question=public["id"])
    await moderator.request("qa.lock", locked=True)

    fresh = await connect(node, li_token)
    assert fresh.welcome is not None
    resync_client, resynced = await _resynced(node, li_token)
    try:
        qa = fresh.welcome["parts"]["qa"]
        assert [q["id"] for q in qa["questions"]] == [public["id"], own["id"]]
        assert qa["voted"] == [public["id"]]
        assert (qa["pinned"], qa["locked"]) == (public["id"], True)
        # The same parts, in the same order, whichever way they were read.
        assert list(resynced["parts"]) == list(fresh.welcome["parts"])
        assert resynced["parts"] == fresh.welcome["parts"]
        assert resynced["you"] == fresh.welcome["you"]
        assert resynced["state"] == fresh.welcome["state"]
        # Li's two sockets and the others are one person each: four people online.
        assert fresh.welcome["presence"]["online"] == 4
        assert resynced["presence"]["online"] == 4
    finally:
        await resync_client.close()
    assert isinstance(app_of(node)[SIGNALING].snapshot_parts["qa"], JoinRead)  # read by the join


async def test_a_moderator_s_join_reads_every_question_and_their_own_votes_only(
    node: TestServer, connect: ClientFactory
) -> None:
    moderator = await connect(node, token(Role.MODERATOR, sub="mod", name="Maria"))
    asker = await connect(node, token(sub="asker", name="Amina"))
    first = (await asker.request("qa.ask", text="First?", lang="en"))["question"]
    second = (await asker.request("qa.ask", text="Second?", lang="en"))["question"]
    await moderator.request("qa.approve", question=first["id"])
    await moderator.request("qa.reject", question=second["id"], reason="off_topic")
    voter = await connect(node, token(sub="voter", name="Vo"))
    await voter.request("qa.vote", question=first["id"])

    again = await connect(node, token(Role.MODERATOR, sub="mod", name="Maria"))
    assert again.welcome is not None
    qa = again.welcome["parts"]["qa"]
    states = {q["id"]: q["state"] for q in qa["questions"]}
    assert states == {first["id"]: "approved", second["id"]: "rejected"}
    assert qa["voted"] == []  # the voter's vote is not the moderator's
    mine = await connect(node, token(sub="voter", name="Vo"))
    assert mine.welcome is not None
    assert mine.welcome["parts"]["qa"]["voted"] == [first["id"]]
    assert [q["id"] for q in mine.welcome["parts"]["qa"]["questions"]] == [first["id"]]
