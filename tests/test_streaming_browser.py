"""WHIP and WHEP with a real Chromium: its fake microphone published to a language channel, played back.

The pages (booth, player) are tested on their own; this checks the server against a browser's own
SDP (Chromium's codecs, extensions and candidates) with the least JavaScript that speaks WHIP/WHEP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, async_playwright

from config.appkeys import STREAMING
from signaling.identity import Role
from tests.conftest import BROWSER_ARGS, HOST, ORIGIN, app_of, require_program, token
from tests.contract_streaming import interpreter
from tests.test_floor_pages import MEDIA_ARGS

pytestmark = pytest.mark.browser

# Waits for every candidate (no trickle), POSTs the offer, applies the answer.
NEGOTIATE = """
async function negotiate(pc, path, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') done();
    });
  });
  const response = await fetch(path, {
    method: 'POST',
    headers: {'Content-Type': 'application/sdp', Authorization: 'Bearer ' + token},
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) throw new Error(response.status + ' ' + await response.text());
  await pc.setRemoteDescription({type: 'answer', sdp: await response.text()});
  return response.headers.get('Location');
}
"""

PUBLISH = (
    "async ([path, token]) => {"
    + NEGOTIATE
    + """
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const pc = new RTCPeerConnection();
  pc.addTransceiver(stream.getAudioTracks()[0], {direction: 'sendonly'});
  window.publisher = pc;
  return await negotiate(pc, path, token);
}"""
)

PLAY = (
    "async ([path, token]) => {"
    + NEGOTIATE
    + """
  const pc = new RTCPeerConnection();
  pc.addTransceiver('audio', {direction: 'recvonly'});
  window.player = pc;
  return await negotiate(pc, path, token);
}"""
)

# Audio packets the player received (its getStats; samples are only counted for audio played out).
RECEIVED = """async () => {
  let received = 0;
  (await window.player.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') received += s.packetsReceived || 0;
  });
  return received;
}"""


@pytest.fixture
async def browser(node: TestServer) -> AsyncIterator[Browser]:
    """A headless Chromium with a fake microphone, resolving the Origin to the node."""
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


async def test_chromium_publishes_its_microphone_to_fr_and_another_tab_plays_it(
    node: TestServer, browser: Browser
) -> None:
    context = await browser.new_context()
    try:
        booth, player = await context.new_page(), await context.new_page()
        for page in (booth, player):
            await page.goto(f"{ORIGIN}/")
        location = await booth.evaluate(PUBLISH, ["/whip/plenary/fr", interpreter("fr")])
        assert location.startswith("/whip/plenary/fr/")
        service = app_of(node)[STREAMING]
        await booth.wait_for_function(
            "() => window.publisher.connectionState === 'connected'", timeout=15_000
        )
        await player.wait_for_timeout(500)  # the channel goes live with the connection
        assert service.channels[("plenary", "fr")].live
        await player.evaluate(PLAY, ["/whep/plenary/fr", token()])
        async with asyncio.timeout(15):
            while await player.evaluate(RECEIVED) < 50:  # a second of Opus packets
                await asyncio.sleep(0.2)
        assert len(service.channels[("plenary", "fr")].listeners) == 1
    finally:
        await context.close()


PUBLISH_FLOOR = (
    "async ([path, token]) => {"
    + NEGOTIATE
    + """
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
  const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) pc.addTransceiver(track, {direction: 'sendonly'});
  window.publisher = pc;
  return await negotiate(pc, path, token);
}"""
)

PLAY_FLOOR = (
    "async ([path, token]) => {"
    + NEGOTIATE
    + """
  const pc = new RTCPeerConnection();
  pc.addTransceiver('audio', {direction: 'recvonly'});
  pc.addTransceiver('video', {direction: 'recvonly'});
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  document.body.append(video);
  pc.addEventListener('track', (event) => { video.srcObject = event.streams[0] || new MediaStream([event.track]); });
  window.player = pc;
  return await negotiate(pc, path, token);
}"""
)

DECODED = """async () => {
  let frames = 0, codec = '';
  const stats = await window.player.getStats();
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      frames += s.framesDecoded || 0;
      codec = (stats.get(s.codecId) || {}).mimeType || codec;
    }
  });
  return [frames, codec];
}"""


async def test_chromium_publishes_the_floor_and_a_player_decodes_its_vp8(
    node: TestServer, browser: Browser
) -> None:
    context = await browser.new_context()
    try:
        desk, player = await context.new_page(), await context.new_page()
        for page in (desk, player):
            await page.goto(f"{ORIGIN}/")
        await desk.evaluate(PUBLISH_FLOOR, ["/whip/plenary/floor", token(Role.PRODUCTION)])
        await desk.wait_for_function(
            "() => window.publisher.connectionState === 'connected'", timeout=15_000
        )
        service = app_of(node)[STREAMING]
        async with asyncio.timeout(15):
            while not ((live := service.channels.get(("plenary", "floor"))) and live.live):
                await asyncio.sleep(0.1)
        await player.evaluate(PLAY_FLOOR, ["/whep/plenary/floor", token()])
        # Generous: on a loaded 2-core machine the node's VP8 encoder and Chromium's decoder share
        # the cores with everything else; the point is that frames decode, not how soon.
        async with asyncio.timeout(45):
            while (await player.evaluate(DECODED))[0] < 10:
                await asyncio.sleep(0.2)
        assert (await player.evaluate(DECODED))[1] == "video/VP8"
    finally:
        await context.close()
