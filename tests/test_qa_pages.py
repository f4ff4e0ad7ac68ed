"""The question pages in a real Chromium: the participant's panel, the moderator console, the display.

Each page runs in a browser context of its own (as different people on different devices would) and
every change must arrive live, over the pages' own connections, with no reload. A test fails on any
script error, any CSP violation and any JavaScript dialog.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    WebSocket,
    expect,
)

from config.appkeys import QNA, SIGNALING
from pages.routes import CSP
from signaling.client import PodiumClient
from signaling.identity import Identity, Mode, Role
from signaling.routes import create_join_code
from tests.conftest import EXPECT_MS, ORIGIN, ClientFactory, app_of, token
from tests.test_pages import LOWEST_CONTRAST, with_token

expect.set_options(timeout=EXPECT_MS)

TabFactory = Callable[..., Awaitable[Page]]


@pytest.fixture
async def tabs(browser: Browser) -> AsyncIterator[TabFactory]:
    """Opens tabs, each in a browser context of its own (another person, another device).

    The test fails on a script error, a CSP violation or any JavaScript dialog (alert, confirm,
    prompt) in any of them.
    """
    contexts = []
    problems: list[str] = []
    dialogs: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            problems.append(message.text)

    async def open_tab(width: int = 1280, height: int = 900, locale: str = "en-US") -> Page:
        context = await browser.new_context(
            locale=locale, viewport={"width": width, "height": height}
        )
        contexts.append(context)
        tab = await context.new_page()
        tab.on("console", on_console)
        tab.on("pageerror", lambda error: problems.append(str(error)))
        tab.on("dialog", on_dialog)
        return tab

    yield open_tab
    for context in contexts:
        await context.close()
    assert problems == [], problems
    assert dialogs == [], dialogs


async def join_link(
    node: TestServer, page: str, role: Role, sub: str, name: str, mode: Mode = "venue"
) -> str:
    """A personal link to one of the session's pages, as the organisers would send it."""
    identity = Identity(sub=sub, name=name, role=role, sessions=("plenary",), mode=mode)
    code = await create_join_code(app_of(node)[SIGNALING], identity, ttl=3600, code_ttl=600)
    return f"{ORIGIN}/s/plenary{page}?lang=en#code={code}"


async def moderator_client(node: TestServer, connect: ClientFactory) -> PodiumClient:
    """A moderator working through the protocol (another moderator's laptop)."""
    return await connect(node, token(Role.MODERATOR, sub="mod-client", name="Maria"))


async def asked(client: PodiumClient, text: str, lang: str = "en") -> str:
    """Asks through the protocol and returns the question's id."""
    result: dict[str, Any] = await client.request("qa.ask", text=text, lang=lang)
    qid: str = result["question"]["id"]
    return qid


def card(page: Page, lane: str, qid: str) -> Locator:
    """A question's card in a lane of the moderator console."""
    return page.locator(f'#lane-{lane} .qcard-body[data-qid="{qid}"]')


async def no_reload_marker(page: Page) -> None:
    """Marks the loaded document: the mark survives only if the page is never reloaded."""
    await page.evaluate("window.__stayed = true")


async def stayed(page: Page) -> bool:
    """Whether the document marked by no_reload_marker is still the one shown."""
    return bool(await page.evaluate("window.__stayed === true"))


@pytest.mark.browser
async def test_markup_and_scripts_in_questions_are_shown_as_literal_text_on_console_and_display(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    script = "<script>alert(1)</script>"
    image = "<img src=x onerror=alert(1)>"
    asker = await connect(node, token(sub="mallory", name="Mallory"))
    ids = {raw: await asked(asker, raw) for raw in (script, image)}

    console = await tabs()
    response = await console.goto(
        await join_link(node, "/moderate", Role.MODERATOR, "mod-1", "Maria")
    )
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert policy == CSP
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    await expect(console.locator("#lane-pending .qcard")).to_have_count(2)
    for raw, qid in ids.items():
        text = card(console, "pending", qid).locator(".question-text")
        assert await text.text_content() == raw

    display = await tabs()
    response = await display.goto(
        await join_link(node, "/display", Role.DISPLAY, "screen-1", "Room screen")
    )
    assert response is not None
    assert response.headers["content-security-policy"] == CSP
    await expect(display.locator("#connection-status")).to_have_text("Connected")

    for raw, qid in ids.items():
        await card(console, "pending", qid).get_by_role("button", name="Approve").click()
        approved = card(console, "approved", qid)
        await approved.get_by_role("button", name="Show on screen").click()
        await expect(approved.get_by_role("button", name="Show on screen")).to_have_attribute(
            "aria-pressed", "true"
        )
        await expect(display.locator("#pinned-text")).to_have_text(raw)
        assert await display.locator("#pinned-text").text_content() == raw
        assert await console.locator("#onscreen-text").text_content() == raw
        assert await approved.locator(".question-text").text_content() == raw

    for page in (console, display):
        assert await page.evaluate("document.querySelectorAll('img').length") == 0
        assert await page.evaluate("document.querySelectorAll('script').length") == 1
        assert await page.evaluate("document.querySelectorAll('[onerror]').length") == 0


@pytest.mark.browser
async def test_arabic_question_travels_live_from_participant_to_console_display_and_back(
    node: TestServer, tabs: TabFactory
) -> None:
    arabic = "كيف سيتم تمويل خطة العمل في البلدان النامية؟"
    participant = await tabs(locale="ar")
    await with_token(participant, "plenary", token(sub="amina", name="أمينة"))
    await participant.goto(f"{ORIGIN}/s/plenary?lang=ar")
    await expect(participant.locator("#connection-status")).to_have_text("متصل")
    console = await tabs()
    await console.goto(await join_link(node, "/moderate", Role.MODERATOR, "mod-1", "Maria"))
    await expect(console.locator("#connection-status")).to_have_text("Connected")
    display = await tabs(width=1920, height=1080)
    await display.goto(await join_link(node, "/display", Role.DISPLAY, "screen-1", "Screen"))
    await expect(display.locator("#pinned-none")).to_be_visible()
    for page in (participant, console, display):
        await no_reload_marker(page)

    # The question's language follows the page's language unless the person picks another.
    assert await participant.locator("#ask-lang").input_value() == "ar"
    await participant.locator("#ask-text").fill(arabic)
    digits = "new Intl.NumberFormat('ar').format"
    n, most = [await participant.evaluate(f"{digits}({v})") for v in (len(arabic), 500)]
    await expect(participant.locator("#ask-count")).to_have_text(f"{n} / {most} حرفًا")
    await participant.locator("#ask-form button[type=submit]").click()
    mine = participant.locator("#mine-list li")
    await expect(mine).to_have_count(1)
    await expect(mine).to_have_attribute("data-state", "pending")
    await expect(mine.locator(".tag")).to_have_text("في انتظار المراجعة")

    pending = console.locator("#lane-pending .qcard-body")
    await expect(pending).to_have_count(1)
    text = pending.locator(".question-text")
    await expect(text).to_have_text(arabic)
    assert await text.get_attribute("lang") == "ar"
    assert await text.evaluate("el => getComputedStyle(el).direction") == "rtl"
    await pending.get_by_role("button", name="Approve").click()
    approved = console.locator("#lane-approved .qcard-body")
    await approved.get_by_role("button", name="Show on screen").click()

    shown = display.locator("#pinned-text")
    await expect(shown).to_have_text(arabic)
    assert await shown.get_attribute("lang") == "ar"
    assert await shown.get_attribute("dir") == "auto"
    assert await shown.evaluate("el => getComputedStyle(el).direction") == "rtl"
    assert await display.evaluate("document.documentElement.dir") == "ltr"  # an English screen
    await expect(display.locator("#pinned-votes")).to_have_text("Votes: 0")

    await expect(mine).to_have_attribute("data-state", "approved")
    await expect(mine.locator(".tag")).to_have_text("منشور")
    public = participant.locator("#public-list li")
    await expect(public).to_have_count(1)
    await expect(public.locator(".question-text")).to_have_text(arabic)
    await expect(public.locator(".tag-pinned")).to_have_text("على الشاشة")
    for page in (participant, console, display):
        assert await stayed(page)


@pytest.mark.browser
async def test_console_shortcuts_approve_and_reject_with_a_reason_and_a_second_console_sees_it(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    asker = await connect(node, token(sub="asker", name="Amina"))
    first = await asked(asker, "What is the funding plan?")
    second = await asked(asker, "Can we talk about something else?")
    one = await tabs()
    await one.goto(await join_link(node, "/moderate", Role.MODERATOR, "mod-1", "Maria"))
    two = await tabs()
    await two.goto(await join_link(node, "/moderate", Role.MODERATOR, "mod-2", "Chen"))
    await expect(one.locator("#lane-pending .qcard")).to_have_count(2)
    await expect(two.locator("#lane-pending .qcard")).to_have_count(2)
    await no_reload_marker(two)

    await one.locator("#lane-pending .lane-title").click()  # nothing focused
    await one.keyboard.press("j")
    await expect(card(one, "pending", first)).to_be_focused()
    # Typing in a field never triggers a shortcut, even with a question chosen.
    await one.locator("#filter-text").click()
    await one.keyboard.type("a")
    await one.keyboard.press("Backspace")
    await one.locator("#filter-held").focus()
    await one.keyboard.press("a")
    await one.locator("#sort").focus()
    await one.keyboard.press("r")
    await asyncio.sleep(0.3)
    await expect(one.locator("#lane-pending .qcard")).to_have_count(2)
    await expect(one.get_by_role("dialog")).to_have_count(0)

    await card(one, "pending", first).focus()
    await one.keyboard.press("a")
    await expect(card(two, "approved", first)).to_be_visible()
    await expect(card(two, "pending", first)).to_have_count(0)
    # Focus moved on to the next question waiting for a decision.
    await expect(card(one, "pending", second)).to_be_focused()

    await one.keyboard.press("r")
    dialog = one.get_by_role("dialog", name="Reject this question")
    await expect(dialog).to_be_visible()
    reason = dialog.get_by_label("Reason (the person who asked sees it)")
    await expect(reason).to_be_focused()
    await one.keyboard.press("Control+Enter")  # no reason yet: refused on the spot
    await expect(dialog.locator("#action-error")).to_have_text("Give a reason.")
    await one.keyboard.type("Please ask this in the workshop")
    await one.keyboard.press("Control+Enter")
    await expect(dialog).to_be_hidden()

    rejected = card(two, "rejected", second)
    await expect(rejected).to_be_visible()
    await expect(rejected.locator(".question-reason .note-text")).to_have_text(
        "Please ask this in the workshop"
    )
    await expect(two.locator("#lane-pending .qcard")).to_have_count(0)
    await expect(two.locator("#lane-approved-title")).to_have_text("Approved (1)")
    store = app_of(node)[QNA].store
    assert (await store.get("plenary", first)).state.value == "approved"
    assert (await store.get("plenary", second)).reason == "Please ask this in the workshop"
    assert await stayed(two)

    await one.keyboard.press("?")
    help_ = one.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_).to_be_visible()
    await expect(help_).to_contain_text("Reject (asks for a reason)")
    await one.keyboard.press("Escape")
    await expect(help_).to_be_hidden()


@pytest.mark.browser
async def test_console_edits_labels_replies_and_merges_a_duplicate_and_participants_see_it_live(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    asker = await connect(node, token(sub="asker", name="Amina"))
    moderator = await moderator_client(node, connect)
    original = await asked(asker, "How is the fund governed?")
    duplicate = await asked(asker, "Who governs the fund?")
    for qid in (original, duplicate):
        await moderator.request("qa.approve", question=qid)
    voter = await connect(node, token(sub="voter"))
    await voter.request("qa.vote", question=duplicate)

    participant = await tabs()
    await with_token(participant, "plenary", token(sub="viewer", name="Ana"))
    await participant.goto(f"{ORIGIN}/s/plenary?lang=en")
    seen = participant.locator(f'#public-list li[data-key="{original}"]')
    await expect(seen.locator(".question-text")).to_have_text("How is the fund governed?")
    console = await tabs()
    await console.goto(await join_link(node, "/moderate", Role.MODERATOR, "mod-1", "Maria"))
    await no_reload_marker(participant)
    target = card(console, "approved", original)
    await target.locator("summary").click()

    await target.get_by_role("button", name="Edit").click()
    dialog = console.get_by_role("dialog", name="Edit the question")
    await dialog.get_by_label("Text of the question").fill("How is the new fund governed?")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog).to_be_hidden()
    await expect(seen.locator(".question-text")).to_have_text("How is the new fund governed?")

    await target.get_by_role("button", name="Labels").click()
    dialog = console.get_by_role("dialog", name="Labels")
    await dialog.get_by_label("Labels, separated by commas").fill("governance, #finance")
    await dialog.get_by_role("button", name="Save").click()
    await expect(target.locator(".tag-label")).to_have_text(["#governance", "#finance"])
    await console.get_by_label("Label", exact=True).select_option("governance")
    await expect(console.locator("#lane-approved .qcard")).to_have_count(1)
    await expect(console.locator("#filters-summary")).to_have_text("Filters (active: 1)")
    await console.get_by_label("Label", exact=True).select_option("")

    await target.get_by_role("button", name="Reply").click()
    dialog = console.get_by_role("dialog", name="Reply in writing")
    await dialog.get_by_label("Reply (shown with the question)").fill("The chair takes it first.")
    await dialog.get_by_role("button", name="Send reply").click()
    await expect(seen.locator(".question-reply")).to_have_text(
        "Reply from the moderators: The chair takes it first."
    )

    source = card(console, "approved", duplicate)
    await source.locator("summary").click()
    await source.get_by_role("button", name="Merge…").click()
    dialog = console.get_by_role("dialog", name="Merge a duplicate")
    await dialog.get_by_label("Merge into").select_option(original)
    await dialog.get_by_role("button", name="Merge", exact=True).click()
    await expect(source).to_have_count(0)
    await expect(target.locator(".qcard-votes")).to_have_text("Votes: 1")
    await expect(participant.locator(f'#public-list li[data-key="{duplicate}"]')).to_have_count(0)
    await expect(seen.locator(".vote-count")).to_have_text("Votes: 1")
    store = app_of(node)[QNA].store
    merged = await store.get("plenary", duplicate)
    assert (merged.state.value, merged.merged_into) == ("archived", original)
    assert await store.voters("plenary", original) == ["voter"]
    assert await stayed(participant)


@pytest.mark.browser
async def test_participant_votes_and_unvotes_and_sees_the_reason_their_question_was_rejected(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    other = await connect(node, token(sub="other", name="Li"))
    moderator = await moderator_client(node, connect)
    qid = await asked(other, "How will the outcome be monitored?")
    await moderator.request("qa.approve", question=qid)

    page = await tabs()
    await with_token(page, "plenary", token(sub="voter", name="Ana"))
    await page.goto(f"{ORIGIN}/s/plenary?lang=en")
    item = page.locator(f'#public-list li[data-key="{qid}"]')
    vote = item.get_by_role("button", name="Upvote")
    await expect(vote).to_have_attribute("aria-pressed", "false")
    await expect(item.locator(".vote-count")).to_have_text("Votes: 0")
    await expect(item.locator(".question-meta")).to_have_text("Li · Civil society")

    await vote.click()
    await expect(vote).to_have_attribute("aria-pressed", "true")
    await expect(item.locator(".vote-count")).to_have_text("Votes: 1")
    await expect(vote).to_be_focused()
    someone = await connect(node, token(sub="someone"))
    await someone.request("qa.vote", question=qid)
    await expect(item.locator(".vote-count")).to_have_text("Votes: 2")  # live, coalesced
    await page.keyboard.press("Enter")  # the same button, from the keyboard
    await expect(vote).to_have_attribute("aria-pressed", "false")
    await expect(item.locator(".vote-count")).to_have_text("Votes: 1")
    assert (await app_of(node)[QNA].store.voters("plenary", qid)) == ["someone"]

    await page.get_by_label("Your question", exact=True).fill("Will the  panel   discuss my topic?")
    await expect(page.locator("#ask-count")).to_have_text("32 / 500 characters")
    await page.get_by_role("button", name="Send question").click()
    await expect(page.locator("#ask-status")).to_have_text(
        "Thank you. Your question will appear once a moderator has approved it."
    )
    await expect(page.get_by_label("Your question", exact=True)).to_have_value("")
    mine = page.locator("#mine-list li")
    await expect(mine.locator(".tag")).to_have_text("Waiting for review")
    own = next(q.id for q in await app_of(node)[QNA].store.all("plenary") if q.author == "voter")
    await moderator.request("qa.reject", question=own, reason="Off topic for this panel")
    await expect(mine).to_have_attribute("data-state", "rejected")
    await expect(mine.locator(".tag")).to_have_text("Not accepted")
    await expect(mine.locator(".question-reason")).to_have_text(
        "Reason given by the moderators: Off topic for this panel"
    )
    await expect(page.locator("#public-list li")).to_have_count(1)  # still only the other one


@pytest.mark.browser
async def test_participant_panel_explains_refusals_in_words(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    page = await tabs()
    asks: list[dict[str, Any]] = []

    def watch(socket: WebSocket) -> None:
        def sent(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("type") == "qa.ask":
                asks.append(frame)

        socket.on("framesent", sent)

    page.on("websocket", watch)
    await with_token(page, "plenary", token(sub="eager", name="Ana"))
    await page.goto(f"{ORIGIN}/s/plenary?lang=en")
    field = page.get_by_label("Your question", exact=True)
    await field.fill("x" * 501)
    await expect(page.locator("#ask-count")).to_have_text("501 / 500 characters")
    await page.get_by_role("button", name="Send question").click()
    await expect(page.locator("#ask-error")).to_have_text(
        "Your question is too long: 500 characters at most."
    )
    await expect(field).to_have_attribute("aria-invalid", "true")

    await field.fill("hidden\u202etext")  # a bidi override, refused by the server
    await page.get_by_role("button", name="Send question").click()
    await expect(page.locator("#ask-error")).to_contain_text("This text cannot be accepted")

    for i in range(5):
        await field.fill(f"Question number {i}")
        await page.get_by_role("button", name="Send question").click()
        await expect(page.locator("#mine-list li")).to_have_count(i + 1)
    await field.fill("One too many")
    for _ in range(2):  # refused, then sent again as it is: the same question, the same key
        await page.get_by_role("button", name="Send question").click()
        await expect(page.locator("#ask-error")).to_contain_text(
            "You have asked several questions in a short time. You can ask again in "
        )
    for _ in range(50):  # the browser reports sent frames on its own schedule
        if len(asks) >= 8:
            break
        await asyncio.sleep(0.1)
    keys = [frame["key"] for frame in asks]
    assert len(asks) == 8  # the bidi override, five questions, and the last one twice
    assert len(set(keys[:6])) == 6  # every new question its own key
    assert keys[6] == keys[7]  # a question sent again keeps its key: never asked twice

    moderator = await moderator_client(node, connect)
    await moderator.request("qa.lock", locked=True)
    await expect(page.locator("#qna-closed")).to_have_text(
        "The moderators are not taking new questions at the moment."
    )
    await expect(page.locator("#ask-form")).to_be_hidden()
    await moderator.request("qa.lock", locked=False)
    await expect(page.locator("#ask-form")).to_be_visible()


@pytest.mark.browser
async def test_console_on_a_360_px_phone_shows_lanes_as_tabs_without_horizontal_scroll(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    asker = await connect(node, token(sub="asker", name="Nomvula Dlamini-Hernández"))
    moderator = await moderator_client(node, connect)
    long_word = "Funding" + "x" * 180 + "?"
    await asked(asker, long_word)
    approved = await asked(asker, "Какие гарантии финансирования предусмотрены?", lang="ru")
    await moderator.request("qa.approve", question=approved)

    page = await tabs(width=360, height=780)
    await page.goto(await join_link(node, "/moderate", Role.MODERATOR, "mod-1", "Maria"))
    tabs_ = page.get_by_role("tab")
    await expect(tabs_).to_have_count(4)
    await expect(page.get_by_role("tab", name="Pending (1)")).to_have_attribute(
        "aria-selected", "true"
    )
    await expect(page.locator("#lane-pending")).to_be_visible()
    await expect(page.locator("#lane-approved")).to_be_hidden()
    assert await page.locator("#lane-pending").get_attribute("role") == "tabpanel"

    async def no_horizontal_scroll() -> None:
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, width

    await no_horizontal_scroll()
    await page.locator("#lane-pending summary").click()  # "More actions" opens in place
    await expect(
        page.locator("#lane-pending").get_by_role("button", name="Archive")
    ).to_be_visible()
    await no_horizontal_scroll()

    await page.get_by_role("tab", name="Approved (1)").click()
    await expect(page.locator("#lane-approved")).to_be_visible()
    await expect(page.locator("#lane-pending")).to_be_hidden()
    await expect(page.get_by_role("button", name="Show on screen")).to_be_visible()
    await no_horizontal_scroll()
    for button in await page.locator("#lane-approved button:visible").all():
        box = await button.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 360
        assert box["height"] >= 24  # a target a finger can hit (WCAG 2.2 target size)

    # The tabs follow the arrow keys, as tabs do.
    await page.get_by_role("tab", name="Approved (1)").focus()
    await page.keyboard.press("ArrowRight")
    await expect(page.get_by_role("tab", name="Answered (0)")).to_be_focused()
    await expect(page.locator("#lane-answered")).to_be_visible()

    await page.get_by_role("tab", name="Pending (1)").click()
    await page.locator("#lane-pending").get_by_role("button", name="Reject").click()
    dialog = page.get_by_role("dialog", name="Reject this question")
    await expect(dialog).to_be_visible()
    box = await dialog.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 360
    await no_horizontal_scroll()


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_console_and_display_text_meets_wcag_aa_contrast(
    node: TestServer,
    tabs: TabFactory,
    connect: ClientFactory,
    scheme: Literal["light", "dark"],
) -> None:
    asker = await connect(node, token(sub="asker", name="Amina"))
    moderator = await moderator_client(node, connect)
    shown = await asked(asker, "How is this funded?")
    await asked(asker, "A question waiting for review")
    await moderator.request("qa.approve", question=shown)
    await moderator.request("qa.pin", question=shown)
    for path, role, ready in (
        ("/moderate", Role.MODERATOR, "#lane-approved .qcard"),
        ("/display", Role.DISPLAY, "#pinned-text"),
    ):
        page = await tabs()
        await page.emulate_media(color_scheme=scheme)
        await page.goto(await join_link(node, path, role, f"{role}-1", "Sam"))
        await expect(page.locator(ready)).to_be_visible()
        ratio, text = await page.evaluate(LOWEST_CONTRAST)
        assert ratio >= 4.5, text
