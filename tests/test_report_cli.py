"""``podium report``: the three formats from the store, with no node running, and the event's progress."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from config.cli import main
from config.settings import Settings
from signaling.identity import Role
from tests.conftest import ClientFactory, token

PROGRAMME = """
[event]
id = "cli-report"
title = "CLI report"
timezone = "Europe/Zurich"

[[sessions]]
id = "plenary"
title = "Plenary"
room = "Hall"
start = 2027-05-24T09:00:00+02:00
end = 2027-05-24T10:00:00+02:00
languages = ["en", "fr"]

[[sessions]]
id = "open-forum"
title = "Open forum"
room = "Room XX"
start = 2027-05-24T11:00:00+02:00
end = 2027-05-24T12:00:00+02:00
"""


@pytest.fixture
def report_env(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The CLI pointed at the test store and a programme with the test's session ids."""
    programme = tmp_path / "programme.toml"
    programme.write_text(PROGRAMME)
    monkeypatch.setenv("PODIUM_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("PODIUM_PROGRAMME", str(programme))
    return ["--redis-url", settings.redis_url]


async def _run(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


async def test_podium_report_writes_a_session_s_report_in_json_csv_and_html(
    node: TestServer,
    connect: ClientFactory,
    report_env: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asker = await connect(node, token(sub="cli-asker"))
    await connect(node, token(Role.MODERATOR, sub="cli-chair", mode="venue"))
    await asker.request("qa.ask", text="Reported question?", lang="fr")
    written: dict[str, str] = {}
    for fmt in ("json", "csv", "html"):
        out = tmp_path / f"report.{fmt}"
        argv = ["report", "--session", "plenary", "--format", fmt, "-o", str(out), *report_env]
        assert await _run(argv) == 0
        written[fmt] = out.read_text(encoding="utf-8")
    assert capsys.readouterr().err == ""  # a session's report has no progress bar
    data = json.loads(written["json"])
    assert data["participation"]["unique"] == 2
    assert data["participation"]["by_mode"] == {"venue": 1, "remote": 1}
    assert data["questions"]["asked"] == 1
    assert data["questions"]["by_language"] == {"fr": 1}
    assert data["event"] == {"id": "cli-report", "title": "CLI report"}
    rows = list(csv.reader(io.StringIO(written["csv"])))
    assert ["plenary", "questions", "asked", "1"] in rows
    assert ["plenary", "language", "fr", "0"] in rows
    assert written["html"].startswith("<!doctype html>")
    assert "<svg" in written["html"]
    assert "Plenary" in written["html"]

    assert await _run(["report", "--session", "plenary", *report_env]) == 0
    assert json.loads(capsys.readouterr().out)["report"] == "session"  # stdout by default


async def test_podium_report_for_the_event_shows_a_progress_bar_unless_quiet(
    node: TestServer,
    report_env: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "event.csv"
    argv = ["report", "--event", "--format", "csv", "-o", str(out), *report_env]
    assert await _run(argv) == 0
    bar = capsys.readouterr().err
    assert "1/2 sessions" in bar
    assert bar.endswith("] 2/2 sessions\n")
    sessions = {row[0] for row in csv.reader(io.StringIO(out.read_text()))}
    assert sessions == {"session", "*", "plenary", "open-forum"}
    assert await _run([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


async def test_podium_report_refuses_an_unknown_session_or_format(
    report_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(["report", "--session", "atlantis", *report_env]) == 2
    assert "atlantis" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--event", "--format", "pdf", *report_env])
    with pytest.raises(SystemExit):
        main(["report", "--event", "--session", "plenary", *report_env])
