"""The participation report of a scripted session: real clients, real WHEP listeners, real Chromium.

A known set of people joins the plenary (one with two tabs, one who leaves), asks and votes, asks for
the floor and speaks for known times (the floor's clock is the test's), and listens to two
interpretation channels with real aiortc peers. The report must say exactly that, in JSON, CSV and
HTML, and the HTML page must draw its charts in Chromium under the policy it is served with.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time

import aiohttp
import av
from aiohttp.test_utils import TestServer
from playwright.async_api import ConsoleMessage, async_playwright

from config.appkeys import FLOOR, SIGNALING, STREAMING
from reporting.series import SeriesStore
from signaling.client import PodiumClient
from signaling.identity import Identity, Mode, Role, mint
from tests.conftest import (
    BROWSER_ARGS,
    KEYS,
    ClientFactory,
    app_of,
    operator_headers,
    require_program,
)
from tests.contract_streaming import interpreter
from tests.streaming_helpers import Client, listen, publish

REPORT = "/api/v1/sessions/plenary/report"


class Clock:
    """The floor's clock: stands still until the test moves it (speaking times are exact)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _token(sub: str, role: Role, mode: Mode, group: str, country: str) -> str:
    identity = Identity(
        sub=sub,
        name=sub.title(),
        role=role,
        sessions=("plenary",),
        mode=mode,
        group=group,
        country=country,
    )
    return mint(KEYS, identity, now=int(time.time()), ttl=3600)


TOKENS = {
    "mod": _token("mod", Role.MODERATOR, "venue", "", "CH"),
    "amina": _token("amina", Role.PARTICIPANT, "remote", "civil-society", "KE"),
    "bruno": _token("bruno", Role.PARTICIPANT, "venue", "government", "FR"),
    "dara": _token("dara", Role.SPEAKER, "remote", "academia", "BR"),
    "chen": _token("chen", Role.PARTICIPANT, "remote", "private-sector", "CN"),
}

PARTICIPATION = {
    "peak_online": 5,
    "unique": 5,
    "by_mode": {"venue": 2, "remote": 3},
    "by_role": {"participant": 3, "moderator": 1, "speaker": 1},
    "by_group": {
        "academia": 1,
        "civil-society": 1,
        "government": 1,
        "private-sector": 1,
        "unspecified": 1,
    },
    "by_country": {"BR": 1, "CH": 1, "CN": 1, "FR": 1, "KE": 1},
    "by_language": {"floor": 0, "ar": 0, "zh": 0, "en": 2, "fr": 1, "ru": 0, "es": 0},
}
QUESTIONS = {
    "asked": 4,
    "approved": 3,
    "answered": 1,
    "rejected": 1,
    "pending": 0,
    "merged": 0,
    "votes": 3,
    "by_group": {"civil-society": 2, "academia": 1, "government": 1},
    "by_language": {"en": 3, "fr": 1},
}
FLOOR_FIGURES = {
    "requests": 3,
    "interventions": 2,
    "speaking_seconds": 135.0,
    "by_group": {
        "civil-society": {"requests": 1, "interventions": 1, "speaking_seconds": 90.0},
        "government": {"requests": 1, "interventions": 1, "speaking_seconds": 45.0},
        "academia": {"requests": 1, "interventions": 0, "speaking_seconds": 0.0},
    },
}


async def _live(server: TestServer, channel: str, wait: float = 15.0) -> None:
    service = app_of(server)[STREAMING]
    async with asyncio.timeout(wait):
        while not ((live := service.channels.get(("plenary", channel))) and live.live):
            await asyncio.sleep(0.05)


async def _script(
    node: TestServer, connect: ClientFactory, http: aiohttp.ClientSession, media: list[Client]
) -> tuple[float, float]:
    """Plays the session; returns the window in which the peak of five people online was reached."""
    clock = Clock()
    app_of(node)[FLOOR].clock = clock
    people: dict[str, PodiumClient] = {}
    for sub in ("mod", "amina", "bruno", "dara"):
        people[sub] = await connect(node, TOKENS[sub])
    await connect(node, TOKENS["amina"])  # a second tab: still one person
    before = time.time()
    chen = await connect(node, TOKENS["chen"])
    after = time.time()
    await chen.close()  # leaves: the peak stays five
    mod, amina, bruno, dara = (people[s] for s in ("mod", "amina", "bruno", "dara"))

    async def ask(client: PodiumClient, text: str, lang: str = "en") -> str:
        qid: str = (await client.request("qa.ask", text=text, lang=lang))["question"]["id"]
        return qid

    q1 = await ask(amina, "How will remote delegates vote on the outcome text?")
    q2 = await ask(amina, "Is there coffee in the room?")
    q3 = await ask(bruno, "Quel calendrier pour la mise en œuvre ?", "fr")
    q4 = await ask(dara, "Which datasets back the figures in the report?")
    for qid in (q1, q3, q4):
        await mod.request("qa.approve", question=qid)
    await mod.request("qa.reject", question=q2, reason="Off topic")
    for voter, qid in ((bruno, q1), (dara, q1), (amina, q3)):
        await voter.request("qa.vote", question=qid)
    await mod.request("qa.answer", question=q1)

    first = (await amina.request("floor.request"))["entry"]
    second = (await bruno.request("floor.request"))["entry"]
    await dara.request("floor.request")
    await mod.request("floor.grant", entry=first)
    clock.advance(90)
    await mod.request("floor.grant", entry=second)  # Amina's turn ends: replaced after 90 s
    clock.advance(45)
    await mod.request("floor.revoke")  # Bruno spoke 45 s
    await dara.request("floor.withdraw")  # a request, never a turn

    for lang in ("en", "fr"):
        media.append(
            await publish(http, node, f"/whip/plenary/{lang}", interpreter(lang, f"booth-{lang}"),
                          video=False)
        )  # fmt: skip
        await _live(node, lang)
    for sub, lang in (("amina", "en"), ("dara", "en"), ("bruno", "fr")):
        media.append(await listen(http, node, f"/whep/plenary/{lang}", TOKENS[sub], video=False))
    media.append(await listen(http, node, "/whep/plenary/en", TOKENS["amina"], video=False))
    return before, after


async def _series(node: TestServer) -> list[int]:
    """Two online samples a minute apart, as the dashboard's sampler writes them."""
    series = SeriesStore(app_of(node)[SIGNALING].store, period=15)
    base = (int(time.time()) + 3600) * 1000  # whole seconds, after any sample the node took
    for at in (base, base + 60_000):
        assert await series.sample(["plenary"], at) == ["plenary"]
    return [base, base + 60_000]


async def _get(http: aiohttp.ClientSession, node: TestServer, fmt: str) -> str:
    async with http.get(
        node.make_url(REPORT), params={"format": fmt}, headers=operator_headers()
    ) as response:
        assert response.status == 200, await response.text()
        return await response.text()


def _non_white(png: bytes) -> int:
    with av.open(io.BytesIO(png), mode="r", format="png_pipe") as container:
        frame = next(container.decode(video=0)).reformat(format="rgb24")
    plane, width = frame.planes[0], frame.width
    data = bytes(plane)
    count = 0
    for row in range(frame.height):
        line = data[row * plane.line_size : row * plane.line_size + width * 3]
        count += sum(1 for i in range(0, len(line), 3) if min(line[i : i + 3]) < 200)
    return count


async def test_the_report_of_a_scripted_session_has_exactly_its_figures_in_every_format(
    node: TestServer, connect: ClientFactory
) -> None:
    media: list[Client] = []
    async with aiohttp.ClientSession() as http:
        try:
            before, after = await _script(node, connect, http, media)
            samples = await _series(node)
            data = json.loads(await _get(http, node, "json"))
            table = await _get(http, node, "csv")
            page = await _get(http, node, "html")
        finally:
            await asyncio.gather(*(m.close() for m in media))

    participation = dict(data["participation"])
    peak_at = participation.pop("peak_at")
    assert participation == PARTICIPATION
    assert before - 1 <= _epoch(peak_at) <= after + 1
    assert data["questions"] == QUESTIONS
    assert data["floor"] == FLOOR_FIGURES
    assert data["session"]["id"] == "plenary"
    assert [s["online"] for s in data["series"][-2:]] == [4, 4]  # Chen has left
    assert [_epoch(s["at"]) for s in data["series"][-2:]] == [s / 1000 for s in samples]

    rows = list(csv.reader(io.StringIO(table)))
    assert rows[0] == ["session", "section", "item", "value"]
    cells = {(section, item): value for session, section, item, value in rows[1:]}
    assert {session for session, *_ in rows[1:]} == {"plenary"}
    expected_cells = {
        ("participation", "peak_online"): "5",
        ("participation", "unique"): "5",
        ("mode", "venue"): "2",
        ("mode", "remote"): "3",
        ("group", "unspecified"): "1",
        ("country", "KE"): "1",
        ("language", "en"): "2",
        ("language", "fr"): "1",
        ("language", "floor"): "0",
        ("questions", "asked"): "4",
        ("questions", "approved"): "3",
        ("questions", "answered"): "1",
        ("questions", "rejected"): "1",
        ("questions", "votes"): "3",
        ("floor", "requests"): "3",
        ("floor", "interventions"): "2",
        ("floor", "speaking_seconds"): "135.0",
        ("floor_speaking_seconds", "civil-society"): "90.0",
        ("floor_speaking_seconds", "government"): "45.0",
        ("floor_requests", "academia"): "1",
    }
    assert {key: cells.get(key) for key in expected_cells} == expected_cells
    assert cells[("participation", "peak_at")] == peak_at

    for text in ("Peak online<b>5</b>", "1 min 30 s", "45 s", "2 min 15 s", "academia"):
        assert text in page, text
    await _render_in_chromium(node, page)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


async def _render_in_chromium(node: TestServer, page_text: str) -> None:
    chromium = require_program("chromium")
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or message.type == "error":
            problems.append(message.text)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=[*BROWSER_ARGS])
        try:
            context = await browser.new_context(
                viewport={"width": 1100, "height": 900}, extra_http_headers=operator_headers()
            )
            tab = await context.new_page()
            tab.on("console", on_console)
            tab.on("pageerror", lambda error: problems.append(str(error)))
            response = await tab.goto(str(node.make_url(REPORT + "?format=html")))
            assert response is not None
            assert response.status == 200
            assert await tab.title() == "Participation report — Opening plenary"
            assert await tab.locator("svg.chart.bars").count() == 8
            assert await tab.locator("svg.chart.line polyline").count() == 3
            assert await tab.locator("svg.chart rect").count() >= 20
            # The inline style sheet applied (the policy allows it by its hash).
            collapse = await tab.evaluate(
                "getComputedStyle(document.querySelector('table')).borderCollapse"
            )
            assert collapse == "collapse"
            chart = tab.locator("svg.chart.bars").first
            box = await chart.bounding_box()
            assert box is not None
            assert box["width"] > 300
            assert box["height"] > 30
            shot = await tab.screenshot(full_page=True)
            chart_shot = await chart.screenshot()
            await tab.emulate_media(media="print")  # the print rules apply when printed
            assert await tab.evaluate("getComputedStyle(document.body).maxWidth") == "none"
        finally:
            await browser.close()
    assert problems == []
    assert _non_white(shot) > 20_000  # text, tables and eight coloured charts
    assert _non_white(chart_shot) > 500  # the bars themselves are drawn
    assert "<script" not in page_text
