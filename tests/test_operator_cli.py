"""``podium link --role operator``: a link that opens the operator dashboard with an operator's token."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from config.cli import _print_demo_links, main
from config.settings import Settings
from signaling.identity import Role, TokenKeys, verify
from tests.conftest import SECRET, app_of
from tests.test_cli import PROGRAMME


async def test_an_operator_link_opens_the_dashboard_and_trades_for_an_operator_token(
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
    argv = ["link", "--role", "operator", "--session", "*", "--name", "Ops",
            "--redis-url", settings.redis_url]  # fmt: skip
    assert await asyncio.to_thread(main, argv) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://127.0.0.1:8080/operator#code="), url
    code = url.split("#code=", 1)[1]
    async with (
        ClientSession() as http,
        http.post(node.make_url("/api/v1/join"), json={"code": code}) as response,
    ):
        assert response.status == 200
        body = await response.json()
    identity = verify(TokenKeys(SECRET), body["token"], now=int(time.time()))
    assert (identity.role, identity.name, identity.sessions) == (Role.OPERATOR, "Ops", ("*",))


def test_other_roles_still_need_a_named_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    programme = tmp_path / "programme.toml"
    programme.write_text(PROGRAMME)
    monkeypatch.setenv("PODIUM_PROGRAMME", str(programme))
    assert main(["link", "--role", "moderator", "--session", "*", "--name", "Chair"]) == 2
    assert "name a session" in capsys.readouterr().err


async def test_the_demo_prints_an_operator_link_to_the_dashboard(
    node: TestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    await _print_demo_links(app_of(node))
    lines = capsys.readouterr().out.splitlines()
    (operator,) = [line for line in lines if line.strip().startswith("operator ")]
    assert "/operator#code=" in operator
    assert any("/s/plenary/moderate#code=" in line for line in lines)
