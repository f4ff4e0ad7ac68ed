"""Text people type — questions, edits, replies, rejection reasons, venue speakers' and guests'
names: empty, control and bidi-override characters, zero-width characters, 10,000 characters and
floods of combining marks are refused with a typed error on a running node; nothing is stored and
nobody else sees an event.

The rules themselves, character by character: ``tests/test_questions.py::
test_text_hygiene_refuses_what_could_mislead_or_flood``; HTML and scripts shown as text under the
CSP: ``tests/test_qa_pages.py``.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from config.appkeys import FLOOR, QNA
from signaling.client import ClientError, PodiumClient
from signaling.identity import Role, verify
from tests.conftest import KEYS, ClientFactory, app_of, token
from tests.security.wire import drained, still_served

BAD_TEXTS: dict[str, str] = {
    "empty": "",
    "only-spaces-and-newlines": "  \n\n \t ",
    "nul": "before\x00after",
    "escape-sequence": "red \x1b[31malert\x1b[0m",
    "bidi-override": "approve \u202eetelep\u202c now",
    "bidi-isolate": "name \u2066hidden\u2069",
    "zero-width-space": "pass\u200bword",
    "zero-width-joiner": "a\u200db",
    "word-joiner": "a\u2060b",
    "byte-order-mark": "\ufeffhello",
    "ten-thousand-characters": "x" * 10_000,
    "combining-flood": "Z" + "\u0301\u0316\u0317\u0318\u0319" * 40,
    "private-use": "icon \ue000",
    "unassigned": "odd \U000e0fff",
    "only-a-zero-width-non-joiner": "\u200c",
}
# Beyond 8,000 characters the wire format's own cap answers first.
CODE = {"ten-thousand-characters": "invalid_message"}
GUEST = "/api/v1/sessions/open-forum/guest"


async def _moderator(node: TestServer, connect: ClientFactory) -> PodiumClient:
    return await connect(node, token(Role.MODERATOR, sub="mod", name="Maria"))


async def _quiet(client: PodiumClient) -> list[dict[str, Any]]:
    """What reached a client apart from the answers to its own commands, after a round trip."""
    await still_served(client)
    return [m for m in drained(client) if m.get("type") == "event"]


@pytest.mark.parametrize("text", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
async def test_bad_text_in_every_text_field_is_refused_and_nothing_is_stored_or_sent(
    node: TestServer, connect: ClientFactory, text: str, request: pytest.FixtureRequest
) -> None:
    name = request.node.callspec.id
    expected = CODE.get(name, "text_refused")
    moderator = await _moderator(node, connect)
    asker = await connect(node, token(sub="asker"))
    qid = (await asker.request("qa.ask", text="How is this funded?"))["question"]["id"]
    await moderator.request("qa.approve", question=qid)
    bystander = await connect(node, token(sub="bystander"))
    store, floor = app_of(node)[QNA].store, app_of(node)[FLOOR]
    await _quiet(moderator)
    await _quiet(bystander)
    before = (await store.all("plenary"), await store.audit("plenary"))
    list_before = await floor.store.read("plenary")

    attempts: list[tuple[PodiumClient, str, dict[str, Any]]] = [
        (asker, "qa.ask", {"text": text}),
        (moderator, "qa.edit", {"question": qid, "text": text}),
        (moderator, "qa.reject", {"question": qid, "reason": text}),
        (moderator, "floor.add", {"name": text}),
    ]
    if text.strip():  # a blank reply takes a written reply back, by design
        attempts.append((moderator, "qa.reply", {"question": qid, "text": text}))
    for client, kind, fields in attempts:
        with pytest.raises(ClientError) as refused:
            await client.request(kind, **fields)
        assert (kind, refused.value.code) == (kind, expected)

    assert (await store.all("plenary"), await store.audit("plenary")) == before
    assert await floor.store.read("plenary") == list_before
    assert await _quiet(bystander) == []


@pytest.mark.parametrize("text", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
async def test_bad_text_as_a_guest_name_is_refused_and_no_token_is_issued(
    node: TestServer, text: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(node.make_url(GUEST), json={"name": text}) as resp,
    ):
        assert resp.status == 400
        body = await resp.json()
    assert body["code"] == "invalid_message"
    assert "token" not in body


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("می\u200cخواهم", "می\u200cخواهم"),  # Persian needs its zero-width non-joiner
        ("  Amina \t  Diallo \n", "Amina Diallo"),
        ("Jose\u0301", "Jos\u00e9"),  # decomposed accents are composed (NFC)
        ("李雷", "李雷"),
        ("<b>Eve</b>", "<b>Eve</b>"),  # markup is text, shown as typed under the CSP
    ],
)
async def test_a_guest_name_in_any_script_is_accepted_and_carried_in_the_token_normalised(
    node: TestServer, connect: ClientFactory, typed: str, shown: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(node.make_url(GUEST), json={"name": typed}) as resp,
    ):
        assert resp.status == 200
        tok = (await resp.json())["token"]
    assert verify(KEYS, tok, now=int(time.time())).name == shown
    guest = await connect(node, tok, session="open-forum")
    entry = await guest.request("floor.request")
    assert entry["entry"]
    floor = await app_of(node)[FLOOR].store.read("open-forum")
    assert [e.name for e in floor.queue] == [shown]


async def test_text_in_arabic_chinese_and_with_a_zero_width_non_joiner_is_accepted_as_typed(
    node: TestServer, connect: ClientFactory
) -> None:
    asker = await connect(node, token(sub="asker"))
    for text in (
        "ما هي الميزانية؟",
        "预算是多少？",
        "می\u200cخواهم بپرسم",
        "<script>alert(1)</script>",
    ):
        result = await asker.request("qa.ask", text=text, lang="en")
        assert result["question"]["text"] == text
