"""Retried questions: an ask repeated with the asker's key is the same question, stored once."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from config.appkeys import QNA
from signaling.client import ClientError
from tests.conftest import ClientFactory, NodeFactory, app_of, token

pytestmark = pytest.mark.both_stores


async def _stored(server: TestServer) -> list[str]:
    questions = await app_of(server)[QNA].store.all("plenary")
    return [q.id for q in questions]


async def test_an_ask_retried_with_its_key_is_acknowledged_with_the_first_question_stored_once(
    node: TestServer, connect: ClientFactory
) -> None:
    asker = await connect(node, token(sub="asker"))
    first = await asker.request("qa.ask", text="Who pays for this?", key="ask-0001-retry")
    again = await asker.request("qa.ask", text="Who pays for this?", key="ask-0001-retry")
    assert again["question"] == first["question"]
    assert await _stored(node) == [first["question"]["id"]]


async def test_a_retry_on_another_node_is_the_same_question_too(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    one, two = await node_factory(), await node_factory()
    tok = token(sub="asker")
    first = await (await connect(one, tok)).request("qa.ask", text="And the budget?", key="k" * 12)
    again = await (await connect(two, tok)).request("qa.ask", text="And the budget?", key="k" * 12)
    assert again["question"]["id"] == first["question"]["id"]
    assert await _stored(one) == [first["question"]["id"]]


async def test_keys_belong_to_their_asker_and_new_keys_ask_new_questions(
    node: TestServer, connect: ClientFactory
) -> None:
    amina = await connect(node, token(sub="amina"))
    omar = await connect(node, token(sub="omar"))
    a = await amina.request("qa.ask", text="First question?", key="shared-key-1")
    b = await omar.request("qa.ask", text="First question?", key="shared-key-1")
    c = await amina.request("qa.ask", text="Second question?", key="shared-key-2")
    ids = {a["question"]["id"], b["question"]["id"], c["question"]["id"]}
    assert len(ids) == 3
    assert sorted(await _stored(node)) == sorted(ids)


@pytest.mark.parametrize("key", ["short", "has space in it", "x" * 65, "semi;colon-key"])
async def test_a_malformed_key_is_refused_and_nothing_is_stored(
    node: TestServer, connect: ClientFactory, key: str
) -> None:
    asker = await connect(node, token(sub="asker"))
    with pytest.raises(ClientError) as refused:
        await asker.request("qa.ask", text="Is this valid?", key=key)
    assert refused.value.code == "invalid_message"
    assert await _stored(node) == []
