"""The floor in a real Chromium: the participant's request, the console's grant, the display's timer,
and a remote speaker's camera reaching the production desk page through podium.

Chromium runs with a fake camera and microphone (and no permission prompt); every page runs in a
browser context of its own, as on different devices, and every change must arrive live. A test fails
on any script error, CSP violation or JavaScript dialog (the ``tabs`` fixture of the Q&A page tests).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright, expect

from config.appkeys import SIGNALING
from pages.routes import CSP
from signaling.client import ClientError, PodiumClient
from signaling.identity import Role
from signaling.programme import Programme
from tests import test_qa_pages
from tests.conftest import (
    BROWSER_ARGS,
    HOST,
    ORIGIN,
    ClientFactory,
    NodeFactory,
    app_of,
    make_programme,
    require_program,
    token,
)
from tests.test_pages import missing_strings, with_token
from tests.test_qa_pages import TabFactory, join_link, no_reload_marker, stayed

MEDIA_ARGS = (
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # The desk has no camera permission, so Chromium would hide its host addresses behind mDNS
    # names, which nothing resolves in a test container.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    # The test Origin is plain http; cameras need a secure context (https in a deployment).
    f"--unsafely-treat-insecure-origin-as-secure={ORIGIN}",
)
MEDIA_MS = 20000

# Keeps every RTCPeerConnection a page makes, so the test can read its statistics.
RECORD_PEERS = """
window.__peers = [];
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) {
    super(...args);
    window.__peers.push(this);
  }
};
"""

# Keeps every camera/microphone stream a page opens, to check they are stopped.
RECORD_STREAMS = """
window.__streams = [];
const nativeGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  const stream = await nativeGetUserMedia(constraints);
  window.__streams.push(stream);
  return stream;
};
"""
CAPTURING = "window.__streams.some((s) => s.getTracks().some((t) => t.readyState === 'live'))"

FRAMES_DECODED = """async () => {
  let frames = 0;
  for (const pc of window.__peers) {
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') frames = Math.max(frames, s.framesDecoded || 0);
    });
  }
  return frames;
}"""

tabs = test_qa_pages.tabs


@pytest.fixture
def programme(request: pytest.FixtureRequest) -> Programme:
    """The test programme; a test may give the plenary a speaking time (indirect parameter)."""
    base = make_programme()
    seconds = getattr(request, "param", None)
    if seconds is None:
        return base
    return replace(
        base,
        sessions=tuple(
            replace(s, floor=replace(s.floor, speaking_seconds=seconds)) if s.id == "plenary" else s
            for s in base.sessions
        ),
    )


@pytest.fixture
async def node(node_factory: NodeFactory) -> TestServer:
    """A node whose relay passes this machine's own ICE candidates (the browsers share it)."""
    return await node_factory(allow_private_candidates=True)


@pytest.fixture
async def browser(node: TestServer) -> AsyncIterator[Browser]:
    """A headless Chromium with a fake camera and microphone, resolving the Origin to the node."""
    chromium = require_program("chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=[
                *BROWSER_ARGS,
                *MEDIA_ARGS,
                f"--host-resolver-rules=MAP {HOST} 127.0.0.1:{node.port}",
            ],
        )
        yield browser
        await browser.close()


async def participant_tab(
    tabs: TabFactory, name: str, sub: str, role: Role = Role.PARTICIPANT, script: str = ""
) -> Page:
    """A remote participant's page, joined and connected (``script`` runs before the page's own)."""
    page = await tabs()
    if script:
        await page.add_init_script(script)
    await with_token(page, "plenary", token(role, sub=sub, name=name, mode="remote"))
    await page.goto(f"{ORIGIN}/s/plenary?lang=en")
    await expect(page.locator("#connection-status")).to_have_text("Connected")
    return page


async def chair(node: TestServer, connect: ClientFactory) -> PodiumClient:
    """A moderator working through the protocol."""
    return await connect(node, token(Role.MODERATOR, sub="chair", name="Chair", mode="venue"))


async def frames_decoded(desk: Page, timeout: float = MEDIA_MS / 1000) -> int:
    """Video frames the desk page has decoded, once there are some (or 0 after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    frames = 0
    while frames == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        frames = int(await desk.evaluate(FRAMES_DECODED))
    return frames


async def granted(
    node: TestServer, tabs: TabFactory, connect: ClientFactory, name: str, sub: str
) -> tuple[Page, PodiumClient]:
    """A remote speaker's page that asked for the floor and got it from the chair (a client)."""
    speaker = await participant_tab(tabs, name, sub, Role.SPEAKER, RECORD_STREAMS)
    await speaker.get_by_role("button", name="Request the floor").click()
    await expect(speaker.locator("#floor-status")).to_have_text(
        "You are number 1 on the speakers’ list."
    )
    moderator = await chair(node, connect)
    [entry] = queued(moderator)
    assert entry["name"] == name
    await moderator.request("floor.grant", entry=entry["entry"])
    await expect(speaker.locator("#floor-status")).to_contain_text("You have the floor")
    return speaker, moderator


def queued(client: PodiumClient) -> list[dict[str, Any]]:
    """The queue in a client's welcome snapshot."""
    assert client.welcome is not None
    queue: list[dict[str, Any]] = client.welcome["parts"]["floor"]["queue"]
    return queue


@pytest.mark.browser
async def test_remote_speakers_camera_reaches_the_desk_page_through_podium_and_a_revoke_ends_it(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    desk = await tabs(width=1280, height=720)
    await desk.add_init_script(RECORD_PEERS)
    link = await join_link(node, "/desk", Role.PRODUCTION, "desk-1", "Desk Hall A")
    response = await desk.goto(link.replace("?lang=en", "?clean=1&lang=en"))
    assert response is not None
    assert response.headers["content-security-policy"] == CSP
    # Clean mode: nothing but the stage, black while nobody speaks.
    await expect(desk.locator("#desk-bar")).to_be_hidden()
    await expect(desk.locator("#desk-idle")).to_be_hidden()
    await expect(desk.locator("#desk-video")).to_be_hidden()

    speaker, moderator = await granted(node, tabs, connect, "Kwame Mensah", "kwame")
    # Given the floor, the speaker sees their own camera before anyone else does.
    await expect(speaker.locator("#floor-preview")).to_be_visible()
    await expect(speaker.locator("#floor-media-status")).to_contain_text("what the room will see")
    await speaker.get_by_role("button", name="Speak").click()
    await expect(speaker.locator("#floor-media-status")).to_have_text(
        "You are live: the room sees and hears you.", timeout=MEDIA_MS
    )

    await expect(desk.locator("#desk-video")).to_be_visible(timeout=MEDIA_MS)
    await expect(desk.locator("#desk-name")).to_have_text("Kwame Mensah")
    await expect(desk.locator("#desk-group")).to_have_text("Civil society")
    assert await frames_decoded(desk) > 0
    width = await desk.evaluate("document.getElementById('desk-video').videoWidth")
    assert width > 0

    await moderator.request("floor.revoke")
    await expect(desk.locator("#desk-video")).to_be_hidden()
    await expect(speaker.locator("#floor-media")).to_be_hidden()
    await expect(speaker.locator("#floor-status")).to_have_text("The chair ended your turn.")
    # The camera and the microphone are off once the turn is over.
    await speaker.wait_for_function(f"() => !({CAPTURING})")
    assert await speaker.evaluate("window.__streams.length") == 1


@pytest.mark.browser
async def test_participant_requests_the_floor_the_console_grants_it_and_the_display_counts_down(
    node: TestServer, tabs: TabFactory
) -> None:
    participant = await participant_tab(tabs, "Amina Diallo", "amina")
    console = await tabs(width=390, height=844)  # the chair's phone
    await console.goto(await join_link(node, "/moderate", Role.MODERATOR, "mod-1", "Maria"))
    await expect(console.locator("#connection-status")).to_have_text("Connected")
    display = await tabs(width=1920, height=1080)
    await display.goto(await join_link(node, "/display", Role.DISPLAY, "screen-1", "Screen"))
    await expect(display.locator("#connection-status")).to_have_text("Connected")
    await expect(display.locator("#floor-now")).to_be_hidden()
    for page in (participant, console, display):
        await no_reload_marker(page)

    await expect(console.locator("#floor-empty")).to_be_visible()
    await participant.get_by_role("button", name="Request the floor").click()
    await expect(participant.locator("#floor-status")).to_have_text(
        "You are number 1 on the speakers’ list."
    )
    mine = participant.locator("#floor-queue li")
    await expect(mine).to_have_count(1)
    await expect(mine.locator(".tag-mine")).to_have_text("You")
    # The request button gave way to its opposite, and the keyboard went with it.
    await expect(participant.get_by_role("button", name="Withdraw my request")).to_be_focused()

    row = console.locator("#floor-queue li")
    await expect(row).to_have_count(1)
    await expect(row.locator(".floor-name")).to_have_text("Amina Diallo")
    await expect(row.locator(".floor-details")).to_have_text("Civil society · remote")
    await expect(console.locator("#floor-queue-title")).to_have_text("Waiting to speak (1)")
    await row.get_by_role("button", name="Give the floor").click()

    await expect(participant.locator("#floor-status")).to_have_text(
        "You have the floor. Check your camera and microphone, then press Speak."
    )
    await expect(participant.get_by_role("button", name="End my turn")).to_be_visible()
    await expect(participant.get_by_role("button", name="Speak")).to_be_visible()
    await expect(console.locator("#floor-now-name")).to_have_text("Amina Diallo")
    await expect(console.locator("#console-status")).to_have_text("Amina Diallo has the floor.")

    await expect(display.locator("#floor-now-name")).to_have_text("Amina Diallo")
    await expect(display.locator("#floor-now-details")).to_have_text("Civil society · remote")
    timer = display.locator("#floor-now-timer")
    await expect(timer).to_have_text(re.compile(r"^[23]:\d\d$"))  # 180 s by default
    first = await timer.text_content()
    await expect(timer).not_to_have_text(first or "")  # it counts down by itself
    await expect(console.locator("#floor-now-timer")).to_have_text(re.compile(r"^[23]:\d\d$"))

    await console.get_by_role("button", name="End this turn").click()
    await expect(display.locator("#floor-now")).to_be_hidden()
    await expect(participant.locator("#floor-status")).to_have_text("The chair ended your turn.")
    await expect(participant.get_by_role("button", name="Request the floor")).to_be_visible()
    for page in (participant, console, display):
        assert await stayed(page)


@pytest.mark.browser
async def test_chair_runs_the_list_on_a_phone_and_every_change_reaches_the_participant_live(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    for sub, name in (("bruno", "Bruno Costa"), ("chen", "Chen Wei")):
        client = await connect(node, token(sub=sub, name=name))
        await client.request("floor.request")
    console = await tabs(width=390, height=844)
    await console.goto(await join_link(node, "/moderate", Role.MODERATOR, "mod-1", "Maria"))
    names = console.locator("#floor-queue .floor-name")
    await expect(names).to_have_text(["Bruno Costa", "Chen Wei"])

    await console.get_by_text("Add a speaker in the room").click()
    await console.get_by_label("Name").fill("Daniela Ruiz")
    await console.get_by_label("Stakeholder group").select_option("government")
    await console.get_by_role("button", name="Add to the list").click()
    await expect(names).to_have_text(["Bruno Costa", "Chen Wei", "Daniela Ruiz"])
    await expect(console.locator("#floor-queue li").nth(2).locator(".floor-details")).to_have_text(
        "Government"
    )
    await expect(console.get_by_label("Name")).to_have_value("")

    participant = await participant_tab(tabs, "Amina Diallo", "amina")
    await no_reload_marker(participant)
    await participant.get_by_role("button", name="Request the floor").click()
    status = participant.locator("#floor-status")
    await expect(status).to_have_text("You are number 4 on the speakers’ list.")
    await expect(names).to_have_count(4)

    def row(name: str) -> Any:
        return console.locator("#floor-queue li").filter(has_text=name)

    await row("Amina Diallo").get_by_role("button", name="Move up").click()
    await expect(status).to_have_text("You are number 3 on the speakers’ list.")
    await expect(row("Amina Diallo").get_by_role("button", name="Move up")).to_be_focused()
    await row("Bruno Costa").get_by_role("button", name="Pass over").click()
    await expect(names).to_have_text(["Chen Wei", "Amina Diallo", "Daniela Ruiz", "Bruno Costa"])
    await expect(status).to_have_text("You are number 2 on the speakers’ list.")
    await row("Chen Wei").get_by_role("button", name="Remove").click()
    await expect(status).to_have_text("You are number 1 on the speakers’ list.")
    await expect(participant.locator("#floor-queue .floor-name")).to_have_text(
        ["Amina Diallo", "Daniela Ruiz", "Bruno Costa"]
    )
    # The first entry cannot move up: the button says so and does nothing.
    top = row("Amina Diallo").get_by_role("button", name="Move up")
    await expect(top).to_have_attribute("aria-disabled", "true")

    close = console.get_by_role("button", name="Close the list")
    await close.click()
    await expect(close).to_have_attribute("aria-pressed", "true")
    await expect(console.locator("#floor-open-state")).to_have_text("Closed to requests")
    await expect(participant.locator("#floor-closed")).to_have_text(
        "The chair is not taking new requests for the floor at the moment."
    )
    late = await connect(node, token(sub="late", name="Late Comer"))
    with pytest.raises(ClientError) as refused:
        await late.request("floor.request")
    assert refused.value.code == "floor_closed"
    await close.click()
    await expect(participant.locator("#floor-closed")).to_be_hidden()
    await expect(console.locator("#floor-open-state")).to_have_text("Open to requests")

    # Nothing on the phone's console is wider than the phone.
    assert await console.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert await stayed(participant)


@pytest.mark.browser
async def test_floor_panel_speaks_arabic_right_to_left_and_every_floor_string_has_six_languages(
    node: TestServer, tabs: TabFactory
) -> None:
    page = await tabs(width=390, height=844, locale="ar")
    await with_token(page, "plenary", token(sub="amina", name="أمينة", mode="remote"))
    await page.goto(f"{ORIGIN}/s/plenary?lang=ar")
    await expect(page.locator("#connection-status")).to_have_text("متصل")
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    await expect(page.locator("#floor-title")).to_have_text("قائمة المتحدثين")
    await page.get_by_role("button", name="طلب الكلمة").click()
    one = await page.evaluate("new Intl.NumberFormat('ar').format(1)")
    await expect(page.locator("#floor-status")).to_have_text(f"ترتيبك {one} في قائمة المتحدثين.")
    await expect(page.locator("#floor-queue .floor-name")).to_have_text("أمينة")
    await expect(page.get_by_role("button", name="سحب طلبي")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    assert await missing_strings(page, "strings-floor.js", "FLOOR_STRINGS") == []


@pytest.mark.browser
async def test_desk_operator_restarts_ice_hangs_up_the_speaker_speaks_again_and_a_reload_brings_video_back(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    desk = await tabs(width=1280, height=720)
    await desk.add_init_script(RECORD_PEERS)
    await desk.goto(await join_link(node, "/desk", Role.PRODUCTION, "desk-1", "Desk Hall A"))
    state = desk.locator("#media-status")
    await expect(state).to_have_text("Waiting for a speaker")
    await expect(desk.locator("#desk-idle")).to_be_visible()
    speaker, _ = await granted(node, tabs, connect, "Lucía Fernández", "lucia")
    await expect(desk.locator("#floor-now-name")).to_have_text("Lucía Fernández")
    speak = speaker.get_by_role("button", name="Speak")
    await speak.click()
    await expect(state).to_have_text("Live: Lucía Fernández", timeout=MEDIA_MS)
    assert await frames_decoded(desk) > 0

    # Reconnect the video: an ICE restart, negotiated through podium on the same call.
    ufrag = "() => /a=ice-ufrag:(\\S+)/.exec(window.__peers.at(-1).remoteDescription.sdp)[1]"
    before = await desk.evaluate(ufrag)
    await desk.get_by_role("button", name="Reconnect the video").click()
    await desk.wait_for_function(f"(old) => ({ufrag})() !== old", arg=before, timeout=MEDIA_MS)
    await expect(state).to_have_text("Live: Lucía Fernández", timeout=MEDIA_MS)
    assert await desk.evaluate("window.__peers.length") == 1

    await desk.get_by_role("button", name="Hang up").click()
    await expect(speaker.locator("#floor-media-status")).to_have_text(
        "The production desk ended the call. Press Speak to try again."
    )
    await expect(state).to_have_text(
        "The video of Lucía Fernández has ended. Waiting for a speaker."
    )
    await expect(desk.locator("#desk-video")).to_be_hidden()

    await speak.click()
    await expect(state).to_have_text("Live: Lucía Fernández", timeout=MEDIA_MS)
    # A reload of the desk (a browser source refreshed in OBS) drops its calls; the speaker, who
    # still has the floor, offers again by themselves and the video comes back.
    await desk.reload()
    await expect(desk.locator("#connection-status")).to_have_text("Connected")
    await expect(state).to_have_text("Live: Lucía Fernández", timeout=MEDIA_MS)
    assert await frames_decoded(desk) > 0
    await expect(speaker.locator("#floor-media-status")).to_have_text(
        "You are live: the room sees and hears you."
    )


@pytest.mark.browser
@pytest.mark.parametrize("programme", [10], indirect=True)
async def test_when_the_speaking_time_runs_out_console_display_and_speaker_all_say_so(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    console = await tabs(width=390, height=844)
    await console.goto(await join_link(node, "/moderate", Role.MODERATOR, "mod-1", "Maria"))
    display = await tabs(width=1920, height=1080)
    await display.goto(await join_link(node, "/display", Role.DISPLAY, "screen-1", "Screen"))
    participant = await participant_tab(tabs, "Amina Diallo", "amina")
    await participant.get_by_role("button", name="Request the floor").click()
    await console.locator("#floor-queue li").get_by_role("button", name="Give the floor").click()
    await expect(display.locator("#floor-now-timer")).to_have_text(re.compile(r"^0:(10|0\d)$"))
    await expect(display.locator("#floor-now-expired")).to_be_hidden()

    alert = console.locator("#floor-expired-alert")
    await expect(alert).to_have_text("Speaking time is up for Amina Diallo.", timeout=15000)
    await expect(alert).to_have_attribute("role", "alert")
    await expect(console.locator("#floor-now-timer")).to_have_text("0:00")
    await expect(console.locator("#floor-now-timer")).to_have_attribute("data-over", "true")
    await expect(display.locator("#floor-now-expired")).to_have_text("Time is up")
    await expect(display.locator("#floor-now-timer")).to_have_text("0:00")
    await expect(participant.locator("#floor-status")).to_contain_text("Your speaking time is up.")
    # Expiry only tells the chair: the turn goes on until the chair ends it.
    await expect(participant.get_by_role("button", name="End my turn")).to_be_visible()
    await console.get_by_role("button", name="End this turn").click()
    await expect(alert).to_be_hidden()
    await expect(display.locator("#floor-now")).to_be_hidden()


@pytest.mark.browser
async def test_two_desks_open_on_a_session_the_first_to_answer_takes_the_speaker_the_other_says_so(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    desks = []
    for sub, name in (("desk-a", "Desk A"), ("desk-b", "Desk B")):
        desk = await tabs(width=960, height=540)
        await desk.add_init_script(RECORD_PEERS)
        await desk.goto(await join_link(node, "/desk", Role.PRODUCTION, sub, name))
        await expect(desk.locator("#media-status")).to_have_text("Waiting for a speaker")
        desks.append(desk)
    speaker, _ = await granted(node, tabs, connect, "Chen Wei", "chen")
    await speaker.get_by_role("button", name="Speak").click()
    await expect(speaker.locator("#floor-media-status")).to_have_text(
        "You are live: the room sees and hears you.", timeout=MEDIA_MS
    )
    taken = "Another desk took the video of Chen Wei."
    states = [desk.locator("#media-status") for desk in desks]
    for state in states:
        await expect(state).to_have_text(re.compile(f"^(Live: Chen Wei|{re.escape(taken)})$"))
    texts = [await state.text_content() or "" for state in states]
    assert sorted(texts) == sorted(["Live: Chen Wei", taken])
    winner = desks[texts.index("Live: Chen Wei")]
    assert await frames_decoded(winner) > 0
    await expect(desks[texts.index(taken)].locator("#desk-video")).to_be_hidden()


@pytest.mark.browser
async def test_speaker_who_speaks_before_any_desk_is_open_appears_once_a_desk_opens(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    speaker, _ = await granted(node, tabs, connect, "Olga Ivanova", "olga")
    await speaker.get_by_role("button", name="Speak").click()
    await expect(speaker.locator("#floor-media-status")).to_have_text(
        "Connecting to the production desk…"
    )
    desk = await tabs(width=960, height=540)
    await desk.add_init_script(RECORD_PEERS)
    await desk.goto(await join_link(node, "/desk", Role.PRODUCTION, "desk-1", "Desk Hall A"))
    # The speaker's page offers again until a desk answers.
    await expect(desk.locator("#media-status")).to_have_text("Live: Olga Ivanova", timeout=MEDIA_MS)
    assert await frames_decoded(desk) > 0
    await expect(speaker.locator("#floor-media-status")).to_have_text(
        "You are live: the room sees and hears you."
    )


@pytest.mark.browser
async def test_speaker_whose_connection_drops_while_live_comes_back_on_the_desk_by_themselves(
    node: TestServer, tabs: TabFactory, connect: ClientFactory
) -> None:
    desk = await tabs(width=960, height=540)
    await desk.add_init_script(RECORD_PEERS)
    await desk.goto(await join_link(node, "/desk", Role.PRODUCTION, "desk-1", "Desk Hall A"))
    speaker, _ = await granted(node, tabs, connect, "Juan Pérez", "juan")
    await speaker.get_by_role("button", name="Speak").click()
    state = desk.locator("#media-status")
    await expect(state).to_have_text("Live: Juan Pérez", timeout=MEDIA_MS)

    # podium drops the speaker's socket (a node restart, a network change): the media session ends
    # with it, the desk hears that the speaker left, and the page resumes and offers again.
    service = app_of(node)[SIGNALING]
    [conn] = [c for c in service.connections if c.identity.sub == "juan"]
    first = await desk.evaluate("window.__peers.length")
    await conn.ws.close(code=4000)
    # A new call, not the old one still flowing: the desk answered a new offer.
    await desk.wait_for_function(
        "(first) => window.__peers.length > first", arg=first, timeout=MEDIA_MS
    )
    await expect(state).to_have_text("Live: Juan Pérez", timeout=MEDIA_MS)
    assert await frames_decoded(desk) > 0
    await expect(speaker.locator("#connection-status")).to_have_text("Connected")
    await expect(speaker.locator("#floor-media-status")).to_have_text(
        "You are live: the room sees and hears you."
    )
