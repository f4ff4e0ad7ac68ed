"""The operator dashboard in a real Chromium: figures that change live as clients join, ask and
leave, the per-session view with its chart and actions, its languages, phone layout and keyboard.

Clients are the Python protocol client on the same node; the page polls the overview, so every
change must appear without a reload. A test fails on any script error or CSP violation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Literal

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, ConsoleMessage, Dialog, Page, expect

from config.appkeys import SIGNALING, STREAMING
from reporting.series import SeriesStore
from signaling.identity import ALL_SESSIONS, Identity, Role
from signaling.routes import create_join_code
from streaming.channels import ChannelRecord, State, channel_of, channel_view
from tests.conftest import EXPECT_MS, ORIGIN, ClientFactory, app_of, token
from tests.test_pages import LOWEST_CONTRAST, missing_strings

expect.set_options(timeout=EXPECT_MS)

pytestmark = pytest.mark.browser


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A laptop-sized tab; the test fails on a script error, a CSP violation or a JS dialog."""
    context = await browser.new_context(
        locale="en-US", viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    tab = await context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            problems.append(message.text)

    async def on_dialog(dialog: Dialog) -> None:
        problems.append(f"dialog: {dialog.message}")
        await dialog.dismiss()

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on("dialog", on_dialog)
    yield tab
    await context.close()
    assert problems == [], problems


async def operator_link(
    node: TestServer, lang: str = "en", role: Role = Role.OPERATOR, session: str = ""
) -> str:
    """An operator's personal link, as ``podium link --role operator`` makes it (``session``: opened
    on that session's view, as after a reload)."""
    identity = Identity(sub="olu", name="Olu", role=role, sessions=(ALL_SESSIONS,))
    code = await create_join_code(app_of(node)[SIGNALING], identity, ttl=3600, code_ttl=600)
    opened = f"session={session}&" if session else ""
    return f"{ORIGIN}/operator?{opened}lang={lang}#code={code}"


def cell(page: Page, session: str, field: str) -> str:
    """A selector for one figure of a session's row."""
    return f'#session-rows tr[data-session="{session}"] [data-field="{field}"]'


async def test_online_and_waiting_questions_change_live_as_clients_join_ask_and_leave(
    node: TestServer, page: Page, connect: ClientFactory
) -> None:
    await page.goto(await operator_link(node))
    assert "#code=" not in page.url  # the code left the address bar
    online = page.locator(cell(page, "plenary", "online") + ' [data-part="total"]')
    waiting = page.locator(cell(page, "plenary", "waiting"))
    await expect(online).to_have_text("0")
    await expect(waiting).to_have_text("0")
    await expect(page.locator("#session-rows tr")).to_have_count(2)  # today's sessions only
    await page.evaluate("window.__stayed = true")

    amina = await connect(node, token(sub="amina", name="Amina", mode="remote"))
    li = await connect(node, token(sub="li", name="Li", mode="venue"))
    await expect(online).to_have_text("2")
    await expect(
        page.locator(cell(page, "plenary", "online") + ' [data-part="split"]')
    ).to_have_text("1 in the room · 1 remote")
    await expect(page.locator(cell(page, "plenary", "unique"))).to_have_text("2")

    await amina.request("qa.ask", text="How will remote delegates vote?", lang="en")
    await expect(waiting).to_have_text("1")
    await expect(page.locator("#op-status")).to_contain_text(
        "Opening plenary: questions waiting: 1."
    )

    await li.close()
    await expect(online).to_have_text("1")
    assert await page.evaluate("window.__stayed === true")  # never reloaded
    await expect(page.locator("#updated")).to_contain_text("Updated at")


async def test_the_session_view_draws_the_series_and_changes_the_status(
    node: TestServer, page: Page, connect: ClientFactory
) -> None:
    await connect(node, token(sub="amina", mode="venue"))
    await connect(node, token(sub="li", mode="remote"))
    store = app_of(node)[SIGNALING].store
    series = SeriesStore(store, period=15.0)
    now_ms = int(app_of(node)[SIGNALING].clock() * 1000)
    # The node's own sampler may already have taken this period's sample (before anyone joined);
    # the series starts afresh, so the samples below are the newest.
    await store.client.delete(store.keys("plenary").series)
    for back in (4, 3, 2, 1):
        await series.sample(["plenary"], now_ms - back * 15_000)

    await page.goto(await operator_link(node))
    details = page.locator('#session-rows tr[data-session="plenary"] .op-open')
    await details.click()
    await expect(page.locator("#detail-title")).to_have_text("Opening plenary")
    await expect(page.locator("#detail-title")).to_be_focused()
    assert "session=plenary" in page.url
    await expect(page.locator("#chart polyline")).to_have_count(2)
    label = await page.locator("#chart").get_attribute("aria-label")
    assert label is not None
    assert "2 now" in label
    points = await page.locator("#chart .op-line-online").get_attribute("points")
    assert points is not None
    assert len(points.split()) >= 4

    await page.select_option("#state-select", "closed")
    await page.get_by_role("button", name="Change the status").click()
    await expect(page.locator("#op-status")).to_have_text("The status is now: Closed.")
    badge = page.locator(cell(page, "plenary", "state") + " .badge")
    await expect(badge).to_have_text("Closed")
    lifecycle = await app_of(node)[SIGNALING].store.lifecycle("plenary")
    assert lifecycle.state.value == "closed"

    await page.keyboard.press("Escape")
    await expect(page.locator("#detail")).to_be_hidden()
    await expect(details).to_be_focused()


async def test_an_operator_forces_a_takeover_of_a_live_channel_from_the_session_view(
    node: TestServer, page: Page
) -> None:
    streaming = app_of(node)[STREAMING]
    spec = channel_of(("ar", "zh", "en", "fr", "ru", "es"), "fr")
    now_ms = streaming.now_ms()
    record = ChannelRecord().went_live("node-elsewhere", now_ms, 60_000, "http://10.0.0.9:8080")
    await streaming.store.write(
        "plenary", "fr", record, channel_view("plenary", spec, record, now_ms)
    )
    await page.goto(await operator_link(node, session="plenary"))
    row = page.locator('#channel-rows tr[data-channel="fr"]')
    await expect(row.locator('[data-field="state"]')).to_have_text("Live")
    await row.get_by_role("button", name="Force a takeover of the French channel").click()
    await expect(page.locator("#op-status")).to_have_text(
        "The French channel was released: a backup booth may publish now."
    )
    await expect(row.locator('[data-field="state"]')).to_have_text("Offline")
    stored = await streaming.store.record("plenary", "fr")
    assert (stored.state, stored.reason) == (State.OFFLINE, "released")


async def test_the_page_speaks_six_languages_and_arabic_right_to_left(
    node: TestServer, page: Page
) -> None:
    await page.goto(await operator_link(node, lang="ar"))
    assert await missing_strings(page, "strings-operator.js", "OPERATOR_STRINGS") == []
    await expect(page.locator("html")).to_have_attribute("dir", "rtl")
    await expect(page.locator("#sessions thead th").first).to_have_text("الجلسة")
    await expect(page.locator(cell(page, "plenary", "state") + " .badge")).to_have_text("مباشر")
    await page.select_option("#language", "zh")
    await expect(page.locator("html")).to_have_attribute("dir", "ltr")
    await expect(page.locator("#sessions thead th").first).to_have_text("会议")


async def test_a_link_for_another_role_or_no_link_shows_what_to_do(
    node: TestServer, page: Page
) -> None:
    await page.goto(await operator_link(node, role=Role.MODERATOR))
    await expect(page.locator("#notice-text")).to_have_text(
        "This link is not an operator’s link. Ask the organisers for one."
    )
    await expect(page.locator("#board")).to_be_hidden()
    await page.goto(f"{ORIGIN}/operator?lang=en")
    await expect(page.locator("#notice-text")).to_have_text(
        "Open the operator link you received to use this page."
    )


async def test_on_a_phone_each_session_is_a_card_with_labelled_figures(
    node: TestServer, browser: Browser
) -> None:
    context = await browser.new_context(locale="en-US", viewport={"width": 375, "height": 740})
    try:
        phone = await context.new_page()
        await phone.goto(await operator_link(node))
        waiting = phone.locator(cell(phone, "plenary", "waiting"))
        await expect(waiting).to_have_attribute("data-label", "Questions waiting")
        overflow = await phone.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        display = await waiting.evaluate("cell => getComputedStyle(cell).display")
        assert display == "block"
    finally:
        await context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_dashboard_text_meets_wcag_aa_contrast(
    node: TestServer, page: Page, scheme: Literal["light", "dark"]
) -> None:
    await page.emulate_media(color_scheme=scheme)
    await page.goto(await operator_link(node, session="plenary"))
    await expect(page.locator("#detail")).to_be_visible()
    ratio, text = await page.evaluate(LOWEST_CONTRAST)
    assert ratio >= 4.5, text


async def test_the_overview_the_page_reads_is_the_api_s(node: TestServer, page: Page) -> None:
    # The page's numbers come from the one API (no second source of truth in the page).
    await page.goto(await operator_link(node))
    await expect(page.locator("#session-rows tr")).to_have_count(2)
    body = await page.evaluate(
        """async () => {
          const token = sessionStorage.getItem('podium.token.operator');
          const r = await fetch('/api/v1/overview', {headers: {Authorization: `Bearer ${token}`}});
          return JSON.stringify(await r.json());
        }"""
    )
    ids = [row["id"] for row in json.loads(body)["sessions"]]
    rendered = await page.locator("#session-rows tr").evaluate_all(
        "rows => rows.map(row => row.dataset.session)"
    )
    assert rendered == ids


async def test_reports_download_with_the_operator_s_token(node: TestServer, page: Page) -> None:
    await page.goto(await operator_link(node, session="plenary"))
    await expect(page.locator("#detail")).to_be_visible()
    async with page.expect_download() as event:
        await page.locator('#detail [data-report="session"][data-format="json"]').click()
    download = await event.value
    path = await download.path()
    report = json.loads(path.read_text(encoding="utf-8"))
    assert "plenary" in json.dumps(report)
    await expect(page.locator("#op-status")).to_have_text("The report was downloaded.")
    async with page.expect_download() as event:
        await page.locator('.op-toolbar [data-report="event"][data-format="csv"]').click()
    csv_download = await event.value
    assert csv_download.suggested_filename.endswith(".csv")
    assert "plenary" in (await csv_download.path()).read_text(encoding="utf-8")
