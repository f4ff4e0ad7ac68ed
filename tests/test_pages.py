"""The pages in a real Chromium: joining, live presence, right-to-left, CSP, guests, reconnecting.

Chromium reaches the test node under the allowed Origin ``http://podium.test`` (a host-resolver rule
maps that name to the node's loopback port), so the WebSocket Origin check runs exactly as in a
deployment with a public hostname.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal
from urllib.parse import urljoin

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, ConsoleMessage, Page, expect

from config.appkeys import REGISTRY, SIGNALING
from pages.routes import CSP
from signaling.identity import Identity, Role
from signaling.lifecycle import State
from signaling.routes import create_join_code
from tests.conftest import (
    EXPECT_MS,
    ORIGIN,
    ClientFactory,
    app_of,
    operator_headers,
    token,
)

expect.set_options(timeout=EXPECT_MS)


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh tab in an English browser; the test fails on a script error or a CSP violation."""
    context = await browser.new_context(locale="en-US", viewport={"width": 1024, "height": 800})
    tab = await context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            problems.append(message.text)

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    yield tab
    await context.close()
    assert problems == [], problems


async def with_token(page: Page, session: str, tok: str) -> None:
    """Puts a token where the participant page keeps it, as if the person had joined before."""
    await page.add_init_script(f"sessionStorage.setItem('podium.token.{session}', {tok!r});")


async def missing_strings(page: Page, module: str, table: str) -> list[str]:
    """Keys of a string table that some UN language lacks (``ar:key``) or has in excess (``ar+key``)."""
    gaps: list[str] = await page.evaluate(
        """async ([module, table]) => {
          const strings = (await import(`/static/js/${module}`))[table];
          const english = Object.keys(strings.en);
          const gaps = [];
          for (const lang of ['ar', 'zh', 'fr', 'ru', 'es']) {
            const own = strings[lang] || {};
            for (const key of english) if (!own[key]) gaps.push(`${lang}:${key}`);
            for (const key of Object.keys(own)) if (!(key in strings.en)) gaps.push(`${lang}+${key}`);
          }
          return gaps;
        }""",
        [module, table],
    )
    return gaps


async def until_state(node: TestServer, session: str, state: State) -> None:
    """Waits until the schedule has moved a session to ``state``."""
    store = app_of(node)[SIGNALING].store
    deadline = time.monotonic() + 5
    while (await store.lifecycle(session)).state is not state:
        assert time.monotonic() < deadline, f"{session} never became {state}"
        await asyncio.sleep(0.05)


@pytest.mark.browser
async def test_participant_page_joins_with_a_join_code_shows_the_live_session_and_drops_the_code(
    node: TestServer, page: Page
) -> None:
    app = app_of(node)
    await until_state(node, "plenary", State.LIVE)
    amina = Identity(
        sub="amina-1", name="Amina", role=Role.PARTICIPANT, sessions=("plenary",), mode="remote"
    )
    code = await create_join_code(app[SIGNALING], amina, ttl=3600, code_ttl=600)

    await page.goto(f"{ORIGIN}/s/plenary#code={code}")

    await expect(page.get_by_role("heading", level=1)).to_have_text("Opening plenary")
    await expect(page.locator("#session-state")).to_have_text("Live")
    await expect(page.locator("#connection-status")).to_have_text("Connected")
    await expect(page.locator("#you")).to_have_text("You are taking part as Amina (remote)")
    await expect(page.locator("#session-room")).to_have_text("Plenary Hall")
    assert page.url == f"{ORIGIN}/s/plenary"
    stored = await page.evaluate("sessionStorage.getItem('podium.token.plenary')")
    assert isinstance(stored, str)
    assert stored.count(".") == 2  # a JWT
    assert code not in page.url
    assert stored not in page.url
    assert [c.identity.sub for c in app[SIGNALING].connections] == ["amina-1"]


@pytest.mark.browser
async def test_participant_page_online_count_changes_live_when_a_second_client_joins(
    node: TestServer, page: Page, connect: ClientFactory
) -> None:
    await with_token(page, "plenary", token(sub="first-person", mode="venue"))
    await page.goto(f"{ORIGIN}/s/plenary?lang=en")
    await expect(page.locator("#online-count")).to_have_text("1 online")
    await expect(page.locator("#online-split")).to_have_text("1 in the room · 0 remote")

    await connect(node, token(sub="someone-else"))

    await expect(page.locator("#online-count")).to_have_text("2 online")
    await expect(page.locator("#online-split")).to_have_text("1 in the room · 1 remote")


@pytest.mark.browser
async def test_participant_page_in_arabic_renders_right_to_left_on_a_phone(
    node: TestServer, page: Page, tmp_path: Path
) -> None:
    await until_state(node, "plenary", State.LIVE)
    await page.set_viewport_size({"width": 360, "height": 780})
    await with_token(page, "plenary", token())
    await page.goto(f"{ORIGIN}/s/plenary?lang=ar")

    await expect(page.locator("#connection-status")).to_have_text("متصل")
    await expect(page.locator("#session-state")).to_have_text("مباشر")
    await expect(page.locator("#online-count")).to_have_text(re.compile("^المتصلون الآن: "))
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    assert await page.evaluate("document.documentElement.lang") == "ar"
    assert await page.locator("label[for=language]").text_content() == "اللغة"
    assert await page.locator("#language").input_value() == "ar"
    # Logical properties put the brand at the right edge and the language picker at the left.
    brand = await page.locator(".brand").bounding_box()
    picker = await page.locator(".language-picker").bounding_box()
    assert brand is not None
    assert picker is not None
    assert brand["x"] > picker["x"]
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    shot = tmp_path / "participant-ar.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert shot.stat().st_size > 1000


class _Markup(HTMLParser):
    """Collects what a strict CSP cares about: scripts, styles, handlers and what is loaded."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.loads: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.inline += [f"{tag}[{name}]" for name in named if name.startswith("on")]
        if "style" in named:
            self.inline.append(f"{tag}[style]")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            self.scripts.append(named)
            self._in_script = True
        for name in ("src", "href"):
            value = named.get(name)
            if value and tag in ("script", "link", "img"):
                self.loads.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("<script> body")


async def test_pages_are_served_under_the_csp_with_no_inline_script_or_style(
    node: TestServer,
) -> None:
    async with ClientSession() as http:
        modules: set[str] = set()
        pages = ("moderate", "display", "desk", "booth")
        for path in ("/", "/s/plenary", *(f"/s/plenary/{page}" for page in pages)):
            resp = await http.get(node.make_url(path))
            assert resp.status == 200
            assert resp.headers["Content-Security-Policy"] == CSP
            assert "unsafe-inline" not in CSP
            assert "script-src 'self'" in CSP
            markup = _Markup()
            markup.feed(await resp.text())
            assert markup.inline == []
            assert markup.scripts, "each page loads its module"
            for script in markup.scripts:
                assert script.get("type") == "module"
                assert (script.get("src") or "").startswith("/static/js/")
            assert all(load.startswith("/static/") for load in markup.loads), markup.loads
            modules.update(load for load in markup.loads if load.endswith(".js"))
            for load in markup.loads:
                asset = await http.get(node.make_url(load))
                assert asset.status == 200, load
        # Every module the pages import is served as JavaScript (nosniff makes the type matter).
        seen: set[str] = set()
        while modules - seen:
            path = (modules - seen).pop()
            seen.add(path)
            resp = await http.get(node.make_url(path))
            assert resp.status == 200, path
            assert resp.content_type in ("text/javascript", "application/javascript"), path
            source = await resp.text()
            for spec in re.findall(r"^import[^'\"]*['\"](\./[^'\"]+)['\"]", source, re.MULTILINE):
                modules.add(urljoin(path, spec))
        assert {"/static/js/connection.js", "/static/js/i18n.js"} <= seen


@pytest.mark.browser
async def test_guest_joins_the_open_forum_with_the_name_form_using_only_the_keyboard(
    node: TestServer, page: Page
) -> None:
    await page.goto(f"{ORIGIN}/s/open-forum?lang=en")
    await expect(page.get_by_role("heading", name="Join as a guest")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0

    await page.keyboard.press("Tab")
    await expect(page.locator(".skip-link")).to_be_focused()
    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Your name")).to_be_focused()
    await page.keyboard.type("Léa Dupont")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Online, from elsewhere")).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(page.get_by_label("In the room")).to_be_checked()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Join")).to_be_focused()
    await page.keyboard.press("Enter")

    await expect(page.locator("#connection-status")).to_have_text("Connected")
    await expect(page.locator("#you")).to_have_text(
        "You are taking part as Léa Dupont (in the room)"
    )
    await expect(page.locator("#guest")).to_be_hidden()
    await expect(page.locator("#online-split")).to_have_text("1 in the room · 0 remote")
    (guest,) = app_of(node)[SIGNALING].connections
    assert guest.identity.name == "Léa Dupont"
    assert guest.identity.sub.startswith("guest-")
    assert guest.identity.mode == "venue"
    assert guest.session == "open-forum"


@pytest.mark.browser
async def test_participant_page_reconnects_by_itself_after_a_4000_close_and_catches_up(
    node: TestServer, page: Page
) -> None:
    app = app_of(node)
    service = app[SIGNALING]
    await until_state(node, "plenary", State.LIVE)
    await with_token(page, "plenary", token())
    await page.goto(f"{ORIGIN}/s/plenary?lang=en")
    await expect(page.locator("#connection-status")).to_have_text("Connected")
    await expect(page.locator("#session-state")).to_have_text("Live")

    # Refuse new sockets for a moment, so the page has to wait and retry with its backoff.
    service.draining = True
    for conn in list(service.connections):
        await conn.ws.close(code=4000)
    await expect(page.locator("#connection-status")).to_have_text("Reconnecting…")
    # While the page is away, an operator closes the session: resuming must bring that event.
    async with ClientSession() as http:
        resp = await http.post(
            node.make_url("/api/v1/sessions/plenary/state"),
            json={"state": "closed"},
            headers=operator_headers(),
        )
        assert resp.status == 200, await resp.text()
    service.draining = False

    await expect(page.locator("#connection-status")).to_have_text("Connected", timeout=12000)
    await expect(page.locator("#session-state")).to_have_text("Closed")
    resumed = app[REGISTRY].get_sample_value("podium_signaling_joins_total", {"result": "resumed"})
    assert resumed == 1.0
    assert len(service.connections) == 1


@pytest.mark.browser
async def test_participant_page_stops_and_asks_to_rejoin_when_its_token_expires(
    node: TestServer, page: Page
) -> None:
    registry = app_of(node)[REGISTRY]
    await with_token(page, "plenary", token(ttl=2))
    await page.goto(f"{ORIGIN}/s/plenary?lang=en")
    await expect(page.locator("#connection-status")).to_have_text("Connected")

    # The server closes with 4503 at expiry: a "do not reconnect" code.
    await expect(page.locator("#notice-text")).to_have_text(
        "Your access has expired. Open your join link again to rejoin."
    )
    await expect(page.locator("#connection-status")).to_have_text("Disconnected")
    assert await page.evaluate("sessionStorage.getItem('podium.token.plenary')") is None
    await asyncio.sleep(1)
    joins = registry.get_sample_value
    assert joins("podium_signaling_joins_total", {"result": "ok"}) == 1.0
    assert joins("podium_signaling_joins_total", {"result": "token_expired"}) is None
    assert app_of(node)[SIGNALING].connections == set()


@pytest.mark.browser
async def test_participant_page_explains_a_bad_join_link_and_offers_no_guest_form_when_invited_only(
    page: Page,
) -> None:
    await page.goto(f"{ORIGIN}/s/plenary?lang=en#code={'x' * 32}")

    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.locator("#notice-text")).to_have_text(
        "This join link is invalid or has expired. Ask the organisers for a new one."
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text("Opening plenary")
    await expect(page.locator("#guest")).to_be_hidden()
    await expect(page.get_by_role("button", name="Try again")).to_be_hidden()
    await expect(page.locator("#connection-status")).to_have_text("Not connected")
    assert page.url == f"{ORIGIN}/s/plenary?lang=en"


@pytest.mark.browser
async def test_index_lists_the_event_sessions_with_their_states_in_french(
    node: TestServer, page: Page
) -> None:
    await until_state(node, "plenary", State.LIVE)
    await page.goto(f"{ORIGIN}/?lang=fr")

    await expect(page.get_by_role("heading", level=1)).to_have_text("Test Summit")
    items = page.locator(".session-item")
    await expect(items).to_have_count(3)
    plenary = items.filter(has_text="Opening plenary")
    await expect(plenary.locator(".badge")).to_have_text("En direct")
    await expect(items.filter(has_text="Workshop tomorrow").locator(".badge")).to_have_text(
        "Programmée"
    )
    await expect(items.filter(has_text="Open forum")).to_contain_text("Ouverte aux invités")
    link = plenary.get_by_role("link", name="Opening plenary")
    assert await link.get_attribute("href") == "/s/plenary?lang=fr"
    assert await page.evaluate("document.documentElement.lang") == "fr"
    await expect(page.get_by_label("Langue")).to_have_value("fr")


# The lowest contrast ratio (WCAG 2.x formula) of any visible text against the background behind it.
LOWEST_CONTRAST = """() => {
  const rgba = (css) => css.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const behind = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  let lowest = [Infinity, ''];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    const el = walker.currentNode.parentElement;
    if (!text || !el.checkVisibility()) continue;
    const [hi, lo] = [luminance(rgba(getComputedStyle(el).color)), luminance(behind(el))]
      .sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < lowest[0]) lowest = [ratio, text];
  }
  return lowest;
}"""


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_pages_text_meets_wcag_aa_contrast(
    node: TestServer, page: Page, scheme: Literal["light", "dark"]
) -> None:
    await until_state(node, "plenary", State.LIVE)
    await page.emulate_media(color_scheme=scheme)
    await with_token(page, "plenary", token())
    await page.goto(f"{ORIGIN}/s/plenary?lang=en")
    await expect(page.locator("#connection-status")).to_have_text("Connected")
    await expect(page.locator("#online-count")).to_be_visible()
    ratio, text = await page.evaluate(LOWEST_CONTRAST)
    assert ratio >= 4.5, text
    await page.goto(f"{ORIGIN}/?lang=en")
    await expect(page.locator(".session-item")).to_have_count(3)
    ratio, text = await page.evaluate(LOWEST_CONTRAST)
    assert ratio >= 4.5, text
