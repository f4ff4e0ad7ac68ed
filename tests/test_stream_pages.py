"""The livestream pages in a real Chromium: the interpreter booth publishes its (fake) microphone to
the ``fr`` channel, a participant who picks ``fr`` plays it; an offline channel with an external URL
offers that URL; a second booth on a live channel is told another booth is live.

Every page runs in a browser context of its own (another person, another device) and fails on any
script error, CSP violation or JavaScript dialog (the ``tabs`` fixture of the Q&A page tests).
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect

from config.appkeys import SIGNALING, STREAMING
from pages.routes import CSP
from signaling.identity import Identity, Role
from signaling.routes import create_join_code
from tests import test_floor_pages, test_qa_pages
from tests.conftest import ORIGIN, NodeFactory, app_of, operator_headers, token
from tests.contract_streaming import interpreter
from tests.test_floor_pages import MEDIA_MS, RECORD_PEERS, frames_decoded
from tests.test_pages import missing_strings, with_token
from tests.test_qa_pages import TabFactory, join_link

pytestmark = pytest.mark.browser

browser = test_floor_pages.browser
tabs = test_qa_pages.tabs


@pytest.fixture
async def node(node_factory: NodeFactory, request: pytest.FixtureRequest) -> TestServer:
    """A node that takes this machine's own candidates; a test may change settings (indirect)."""
    changes = getattr(request, "param", None) or {}
    return await node_factory(allow_private_candidates=True, **changes)


# Audio packets the page's live peer connections received (getStats).
AUDIO_RECEIVED = """async () => {
  let received = 0;
  for (const pc of window.__peers) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') received += s.packetsReceived || 0;
    });
  }
  return received;
}"""


async def booth_link(node: TestServer, sub: str, name: str, lang: str = "fr") -> str:
    """An interpreter's link to the booth page, as ``podium link --role interpreter`` makes it."""
    identity = Identity(
        sub=sub, name=name, role=Role.INTERPRETER, sessions=("plenary",), mode="venue", lang=lang
    )
    code = await create_join_code(app_of(node)[SIGNALING], identity, ttl=3600, code_ttl=600)
    return f"{ORIGIN}/s/plenary/booth?lang=en#code={code}"


async def booth_tab(tabs: TabFactory, node: TestServer, sub: str, name: str) -> Page:
    """A booth page, joined and connected, showing the ``fr`` channel."""
    page = await tabs()
    response = await page.goto(await booth_link(node, sub, name))
    assert response is not None
    assert response.headers["content-security-policy"] == CSP
    await expect(page.locator("#connection-status")).to_have_text("Connected")
    await expect(page.locator("#booth-channel")).to_have_text("French")
    return page


async def listener_tab(tabs: TabFactory, sub: str) -> Page:
    """A remote participant's page that records its peer connections."""
    page = await tabs()
    await page.add_init_script(RECORD_PEERS)
    await with_token(page, "plenary", token(sub=sub, name="Listener", mode="remote"))
    await page.goto(f"{ORIGIN}/s/plenary?lang=en")
    await expect(page.locator("#connection-status")).to_have_text("Connected")
    await expect(page.locator("#stream")).to_be_visible()
    return page


async def live(node: TestServer, channel: str) -> None:
    """Waits until the node carries ``channel`` of the plenary live."""
    service = app_of(node)[STREAMING]
    deadline = time.monotonic() + MEDIA_MS / 1000
    while not ((c := service.channels.get(("plenary", channel))) and c.live):
        assert time.monotonic() < deadline, f"{channel} never went live"
        await asyncio.sleep(0.1)


async def test_booth_publishes_its_microphone_to_fr_and_a_participant_who_picks_fr_hears_it(
    node: TestServer, tabs: TabFactory
) -> None:
    booth = await booth_tab(tabs, node, "booth-fr", "Booth FR")
    await expect(booth.locator("#channel-state")).to_have_text("Offline")
    await expect(booth.locator("#booth-status")).to_have_text("Your microphone is off.")
    await booth.get_by_role("button", name="Turn on microphone").click()
    await expect(booth.locator("#booth-status")).to_have_text(
        "Your microphone is on. Press Go live to be heard."
    )
    # The meter moves with the fake microphone's beeps.
    await booth.wait_for_function(
        "() => document.getElementById('booth-level').value > 0", timeout=MEDIA_MS
    )
    await booth.get_by_role("button", name="Go live").click()
    await expect(booth.locator("#booth-status")).to_have_text(
        "You are live: the French listeners hear you.", timeout=MEDIA_MS
    )
    await expect(booth.get_by_role("button", name="Stop")).to_be_focused()
    await live(node, "fr")
    await expect(booth.locator("#channel-state")).to_have_text("Live")

    listener = await listener_tab(tabs, "amina")
    select = listener.get_by_label("Listen in")
    options = await select.locator("option").all_text_contents()
    assert options == [
        "Floor (original sound)", "Arabic", "Chinese", "English", "French", "Russian", "Spanish"
    ]  # fmt: skip
    await select.select_option("fr")
    await expect(listener.locator("#stream-badge")).to_have_text("Live")
    await listener.get_by_role("button", name="Play").click()
    await expect(listener.locator("#stream-status")).to_have_text(
        "Playing: French.", timeout=MEDIA_MS
    )
    await expect(listener.locator("#stream-audio")).to_be_visible()
    await expect(listener.locator("#stream-video")).to_be_hidden()
    async with asyncio.timeout(MEDIA_MS / 1000):
        while await listener.evaluate(AUDIO_RECEIVED) < 50:  # a second of Opus packets
            await asyncio.sleep(0.2)
    service = app_of(node)[STREAMING]
    assert len(service.channels[("plenary", "fr")].listeners) == 1
    # Listener totals reach the booth (stream.listeners, coalesced to one a second).
    await expect(booth.locator("#listener-count")).to_have_text("1", timeout=MEDIA_MS)
    assert await listener.evaluate("localStorage.getItem('podium.stream.channel')") == "fr"

    # Stop DELETEs the WHEP session; the booth's Stop takes the channel offline for everyone.
    await listener.get_by_role("button", name="Stop").click()
    await expect(listener.locator("#stream-audio")).to_be_hidden()
    async with asyncio.timeout(5):
        while service.channels[("plenary", "fr")].listeners:
            await asyncio.sleep(0.1)
    await listener.get_by_role("button", name="Play").click()
    await expect(listener.locator("#stream-status")).to_have_text(
        "Playing: French.", timeout=MEDIA_MS
    )
    await booth.get_by_role("button", name="Stop").click()
    await expect(booth.locator("#booth-status")).to_have_text(
        "You stopped. Press Go live to continue."
    )
    await expect(booth.locator("#channel-state")).to_have_text("Offline")
    await expect(listener.locator("#stream-badge")).to_have_text("Offline")
    await expect(listener.locator("#stream-status")).to_have_text(
        "French is not live at the moment. It plays by itself once it is."
    )
    # The remembered choice survives a reload.
    await listener.reload()
    await expect(listener.locator("#connection-status")).to_have_text("Connected")
    await expect(listener.get_by_label("Listen in")).to_have_value("fr")


async def test_participant_page_offers_the_external_url_when_the_channel_has_one_and_is_offline(
    node: TestServer, tabs: TabFactory
) -> None:
    url = "https://webtv.example.org/live/plenary-fr.m3u8"
    async with (
        ClientSession() as http,
        http.put(
            node.make_url("/api/v1/sessions/plenary/channels/fr/external"),
            json={"url": url},
            headers=operator_headers(),
        ) as response,
    ):
        assert response.status == 200, await response.text()
    listener = await listener_tab(tabs, "bruno")
    await listener.get_by_label("Listen in").select_option("fr")
    external = listener.get_by_role("link", name="Open the external player (new tab)")
    await expect(external).to_be_visible()
    await expect(external).to_have_attribute("href", url)
    await expect(listener.locator("#stream-status")).to_have_text(
        "French is not live here at the moment: use the external player."
    )
    # Play asks podium first: the channel is offline (409), so the page keeps offering the URL.
    await listener.get_by_role("button", name="Play").click()
    await expect(listener.locator("#stream-status")).to_have_text(
        "French is not live here at the moment: use the external player."
    )
    await expect(listener.get_by_role("button", name="Stop")).to_be_visible()
    await expect(external).to_be_visible()
    assert await listener.evaluate("window.__peers.every((pc) => pc.connectionState === 'closed')")
    # The floor has no external URL: no link.
    await listener.get_by_label("Listen in").select_option("floor")
    await expect(external).to_be_hidden()


async def test_a_second_booth_on_a_live_channel_is_told_another_booth_is_live(
    node: TestServer, tabs: TabFactory
) -> None:
    first = await booth_tab(tabs, node, "booth-fr-1", "Booth FR 1")
    await first.get_by_role("button", name="Go live").click()
    await expect(first.locator("#booth-status")).to_have_text(
        "You are live: the French listeners hear you.", timeout=MEDIA_MS
    )
    await live(node, "fr")
    second = await booth_tab(tabs, node, "booth-fr-2", "Booth FR 2")
    await expect(second.locator("#channel-state")).to_have_text("Live")
    await second.get_by_role("button", name="Go live").click()
    error = second.locator("#booth-error")
    await expect(error).to_have_text(
        "Another booth is live on the French channel. Wait until it stops, or ask an operator "
        "to take over."
    )
    await expect(error).to_have_attribute("role", "alert")
    await expect(second.get_by_role("button", name="Go live")).to_be_visible()
    # The first booth is still the one on air.
    await expect(first.locator("#booth-status")).to_have_text(
        "You are live: the French listeners hear you."
    )
    assert app_of(node)[STREAMING].channels[("plenary", "fr")].publisher.sub == "booth-fr-1"

    # A reload of the first booth goes live again by itself and replaces its own connection.
    await first.reload()
    await expect(first.locator("#booth-status")).to_have_text(
        "You are live: the French listeners hear you.", timeout=MEDIA_MS
    )
    assert app_of(node)[STREAMING].channels[("plenary", "fr")].publisher.sub == "booth-fr-1"


async def test_desk_in_operator_mode_publishes_the_floor_feed_and_a_participant_watches_it(
    node: TestServer, tabs: TabFactory
) -> None:
    clean = await tabs(width=960, height=540)
    link = await join_link(node, "/desk", Role.PRODUCTION, "desk-obs", "OBS source")
    await clean.goto(link.replace("?lang=en", "?clean=1&lang=en"))
    await expect(clean.locator("#connection-status")).to_be_hidden()  # the bar is hidden
    assert await clean.locator("#feed").is_hidden()

    desk = await tabs(width=1280, height=720)
    await desk.goto(await join_link(node, "/desk", Role.PRODUCTION, "desk-1", "Desk Hall A"))
    await expect(desk.locator("#connection-status")).to_have_text("Connected")
    feed = desk.locator("#feed-status")
    await expect(feed).to_have_text("Not published")
    await desk.get_by_role("button", name="Publish the floor feed").click()
    await expect(feed).to_have_text("Live on the floor channel", timeout=MEDIA_MS)
    await live(node, "floor")

    listener = await listener_tab(tabs, "chen")
    await listener.get_by_label("Listen in").select_option("floor")
    await listener.get_by_role("button", name="Play").click()
    await expect(listener.locator("#stream-status")).to_have_text(
        "Playing: Floor (original sound).", timeout=MEDIA_MS
    )
    await expect(listener.locator("#stream-video")).to_be_visible()
    assert await frames_decoded(listener) > 0

    await desk.get_by_role("button", name="Stop the floor feed").click()
    await expect(feed).to_have_text("Not published")
    await expect(listener.locator("#stream-badge")).to_have_text("Offline")
    await expect(listener.locator("#stream-video")).to_be_hidden()


async def test_player_and_booth_speak_arabic_right_to_left_and_every_stream_string_has_six_languages(
    node: TestServer, tabs: TabFactory
) -> None:
    page = await tabs(width=390, height=844, locale="ar")
    await with_token(page, "plenary", token(sub="amina", name="أمينة", mode="remote"))
    await page.goto(f"{ORIGIN}/s/plenary?lang=ar")
    await expect(page.locator("#connection-status")).to_have_text("متصل")
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    await expect(page.locator("#stream-title")).to_have_text("البث المباشر")
    await expect(page.get_by_role("button", name="تشغيل")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    booth = await tabs(width=390, height=844, locale="ar")
    await booth.goto((await booth_link(node, "booth-ar", "مقصورة")).replace("lang=en", "lang=ar"))
    await expect(booth.locator("#connection-status")).to_have_text("متصل")
    await expect(booth.get_by_role("button", name="بدء البث")).to_be_visible()
    assert await booth.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    assert await missing_strings(page, "strings-stream.js", "STREAM_STRINGS") == []


async def test_candidates_found_after_the_offer_are_trickled_by_patch_with_the_etag(
    node: TestServer, tabs: TabFactory
) -> None:
    page = await tabs()
    await page.goto(f"{ORIGIN}/")
    statuses = await page.evaluate(
        """async (token) => {
          const { StreamSession } = await import('/static/js/stream.js');
          const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
          const pc = new RTCPeerConnection();
          pc.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendonly' });
          const session = new StreamSession(pc, '/whip/plenary/fr', token);
          await session.open();
          const mid = pc.getTransceivers()[0].mid;
          session._trickle({ candidate: 'candidate:9 1 udp 2130706431 127.0.0.1 9 typ host', sdpMid: mid });
          const patched = await session._patching;
          session._trickle(null);
          const ended = await session._patching;
          const resource = session.resource;
          await session.close();
          const gone = await fetch(resource, {
            method: 'DELETE', headers: { Authorization: 'Bearer ' + token },
          });
          return [patched.status, ended.status, resource.startsWith(location.origin), gone.status];
        }""",
        interpreter("fr"),
    )
    assert statuses == [204, 204, True, 404]


@pytest.mark.parametrize("node", [{"stream_max_listeners": 1}], indirect=True)
async def test_a_listener_past_the_node_s_cap_is_told_when_the_player_tries_again(
    node: TestServer, tabs: TabFactory
) -> None:
    booth = await booth_tab(tabs, node, "booth-fr", "Booth FR")
    await booth.get_by_role("button", name="Go live").click()
    await live(node, "fr")
    first = await listener_tab(tabs, "amina")
    await first.get_by_label("Listen in").select_option("fr")
    await first.get_by_role("button", name="Play").click()
    await expect(first.locator("#stream-status")).to_have_text("Playing: French.", timeout=MEDIA_MS)

    second = await listener_tab(tabs, "bruno")
    await second.get_by_label("Listen in").select_option("fr")
    await second.get_by_role("button", name="Play").click()
    # 503 with Retry-After: 30; the page says when it tries again, and nothing is left open.
    await expect(second.locator("#stream-status")).to_have_text(
        re.compile(r"^The server is busy\. Trying again in (30|29) s\.$")
    )
    assert await second.evaluate("window.__peers.every((pc) => pc.connectionState === 'closed')")
    # Stop cancels the retry.
    await second.get_by_role("button", name="Stop").click()
    await expect(second.locator("#stream-status")).to_have_text(
        "Press Play to follow the session: French."
    )


async def test_booth_turns_away_links_for_another_role_or_a_language_the_session_lacks(
    node: TestServer, tabs: TabFactory
) -> None:
    page = await tabs()
    await page.goto(await booth_link(node, "booth-de", "Booth DE", lang="de"))
    await expect(page.locator("#notice-text")).to_have_text(
        "This session has no German interpretation channel."
    )
    await expect(page.locator("#booth")).to_be_hidden()
    other = await tabs()
    await other.goto(await join_link(node, "/booth", Role.PARTICIPANT, "amina", "Amina"))
    await expect(other.locator("#notice-text")).to_have_text(
        "This link is not an interpreter’s link."
    )
    await expect(other.locator("#booth")).to_be_hidden()
