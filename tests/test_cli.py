"""The ``podium`` command: tokens, programme check and import."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from config.cli import main
from config.settings import Settings
from signaling.identity import Role, TokenKeys, verify
from tests.conftest import SECRET, ClientFactory, token

FIXTURES = Path(__file__).parent / "fixtures"


def test_token_command_mints_a_token_the_server_accepts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_JWT_SECRET", SECRET)
    argv = ["token", "--role", "moderator", "--session", "plenary", "--name", "Li Wei",
            "--mode", "venue", "--group", "academia", "--country", "cn", "--ttl", "600"]  # fmt: skip
    assert main(argv) == 0
    identity = verify(TokenKeys(SECRET), capsys.readouterr().out.strip(), now=_now())
    assert (identity.role, identity.name, identity.country) == (Role.MODERATOR, "Li Wei", "CN")


def test_token_command_names_an_interpreter_s_language_channel(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_JWT_SECRET", SECRET)
    argv = ["token", "--role", "interpreter", "--session", "plenary", "--name", "Booth",
            "--lang", "fr"]  # fmt: skip
    assert main(argv) == 0
    identity = verify(TokenKeys(SECRET), capsys.readouterr().out.strip(), now=_now())
    assert (identity.role, identity.lang) == (Role.INTERPRETER, "fr")


def test_token_command_without_a_secret_explains_what_to_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PODIUM_JWT_SECRET", raising=False)
    assert main(["token", "--role", "participant", "--session", "s", "--name", "N"]) == 2
    assert "PODIUM_JWT_SECRET" in capsys.readouterr().err


def test_programme_check_accepts_the_example_programme(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).parents[1] / "config" / "programmes" / "summit.toml"
    assert main(["programme", "check", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


def test_programme_check_reports_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[event]\nid = "x"\ntitle = "X"\ntimezone = "Mars/Olympus"\n')
    assert main(["programme", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.toml:4: event.timezone" in err


def test_programme_import_writes_a_programme_that_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "imported.toml"
    assert main(["programme", "import", str(FIXTURES / "frab_schedule.json"), "-o", str(out)]) == 0
    assert main(["programme", "check", str(out)]) == 0
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"nope": 1}))
    assert main(["programme", "import", str(broken)]) == 1


def _now() -> int:
    import time

    return int(time.time())


PROGRAMME = """
[event]
id = "cli-test"
title = "CLI test"
timezone = "Europe/Zurich"

[[sessions]]
id = "plenary"
title = "Plenary"
room = "Hall"
start = 2027-05-24T09:00:00+02:00
end = 2027-05-24T10:00:00+02:00
"""


async def test_qa_export_command_writes_the_sessions_questions(
    node: TestServer,
    connect: ClientFactory,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asker = await connect(node, token(sub="cli-asker"))
    await asker.request("qa.ask", text="Exported question?", lang="fr")
    programme = tmp_path / "programme.toml"
    programme.write_text(PROGRAMME)
    monkeypatch.setenv("PODIUM_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("PODIUM_PROGRAMME", str(programme))
    out = tmp_path / "export.json"
    argv = ["qa", "export", "plenary", "--redis-url", settings.redis_url, "-o", str(out)]
    assert await asyncio.to_thread(main, argv) == 0
    data = json.loads(out.read_text())
    assert [q["text"] for q in data["questions"]] == ["Exported question?"]
    assert [a["action"] for a in data["audit"]] == ["ask"]
    csv_out = tmp_path / "export.csv"
    argv += ["--format", "csv"]
    argv[argv.index(str(out))] = str(csv_out)
    assert await asyncio.to_thread(main, argv) == 0
    assert "Exported question?" in csv_out.read_text()
    assert await asyncio.to_thread(main, ["qa", "export", "atlantis"]) == 1


async def test_link_command_makes_a_desk_link_the_node_trades_for_a_production_token(
    node: TestServer,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    programme = tmp_path / "programme.toml"
    programme.write_text(PROGRAMME)
    monkeypatch.setenv("PODIUM_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("PODIUM_PROGRAMME", str(programme))
    argv = ["link", "--role", "production", "--session", "plenary", "--name", "Desk 1",
            "--mode", "venue", "--valid", "2", "--redis-url", settings.redis_url]  # fmt: skip
    assert await asyncio.to_thread(main, argv) == 0
    url = capsys.readouterr().out.strip()
    assert "/s/plenary/desk#code=" in url
    code = url.split("#code=", 1)[1]
    async with (
        ClientSession() as http,
        http.post(node.make_url("/api/v1/join"), json={"code": code}) as response,
    ):
        assert response.status == 200
        body = await response.json()
    identity = verify(TokenKeys(SECRET), body["token"], now=_now())
    assert (identity.role, identity.name, identity.sessions) == (
        Role.PRODUCTION,
        "Desk 1",
        ("plenary",),
    )


def test_link_command_refuses_a_session_not_in_the_programme(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    programme = tmp_path / "programme.toml"
    programme.write_text(PROGRAMME)
    monkeypatch.setenv("PODIUM_PROGRAMME", str(programme))
    argv = ["link", "--role", "display", "--session", "atlantis", "--name", "Screen"]
    assert main(argv) == 2
    assert "atlantis" in capsys.readouterr().err
    assert main(["link", "--role", "display", "--session", "plenary", "--name", "S",
                 "--valid", "0"]) == 2  # fmt: skip
    assert "--valid" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--sub", "has space"], "--sub"),
        (["--ttl", "0"], "--ttl"),
        (["--lang", "French"], "--lang"),
    ],
)
def test_token_command_refuses_values_a_node_would_refuse_in_its_token(
    extra: list[str],
    named: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PODIUM_JWT_SECRET", SECRET)
    argv = ["token", "--role", "interpreter", "--session", "plenary", "--name", "Li", *extra]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert named in captured.err
    assert captured.out == ""


def test_token_command_refuses_an_empty_or_overlong_name(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_JWT_SECRET", SECRET)
    for name in (" ", "x" * 101):
        assert main(["token", "--role", "participant", "--session", "s", "--name", name]) == 2
        assert "--name" in capsys.readouterr().err
