"""Durability: what the API changed before podium (with its embedded store) died is there after."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from signaling.client import PodiumClient
from signaling.identity import Role
from tests.conftest import SECRET, token

SESSION = "opening-plenary"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Podium:
    """A real ``podium serve --demo`` process with its embedded store in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {
            **os.environ,
            "PODIUM_JWT_SECRET": SECRET,
            "PODIUM_NODE_ID": "durable-node",
            "PODIUM_ALLOWED_ORIGINS": "http://podium.test",
        }
        env.pop("PODIUM_REDIS_URL", None)
        with open(self.data_dir.parent / "podium.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "config.cli",
                    "serve",
                    "--demo",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, "podium exited during startup"
                try:
                    async with http.get(self.url + "/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("podium did not become ready")

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)


@pytest.fixture
async def podium(tmp_path: Path) -> AsyncIterator[Podium]:
    node = Podium(tmp_path / "data")
    yield node
    if node.process is not None and node.process.poll() is None:
        node.kill(signal.SIGTERM)


async def _set_state(url: str, state: str) -> int:
    headers = {"Authorization": "Bearer " + token(Role.OPERATOR, ("*",))}
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"{url}/api/v1/sessions/{SESSION}/state", json={"state": state}, headers=headers
        )
        return resp.status


async def _state(url: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/api/v1/sessions/{SESSION}") as resp,
    ):
        body = await resp.json()
        state: str = body["state"]
        return state


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_operator_state_and_event_history_survive_a_restart_of_podium(
    podium: Podium, sig: int
) -> None:
    await podium.start()
    client = PodiumClient(
        podium.url.replace("http", "ws") + "/ws",
        token(sessions=(SESSION,), sub="durable-participant"),
        SESSION,
        origin="http://podium.test",
    )
    await client.connect()
    for state in ("open", "live", "closed"):
        assert await _set_state(podium.url, state) == 200
    events = [await client.next_event() for _ in range(3)]
    assert [e["data"]["state"] for e in events] == ["open", "live", "closed"]
    await client.close()

    podium.kill(sig)
    await podium.start()

    assert await _state(podium.url) == "closed"
    resumed = await client.connect(resume=True)
    # Same epoch, nothing missed: the history outlived the process.
    assert resumed["type"] == "resumed"
    assert resumed["missed"] == 0
    assert resumed["epoch"] == events[0]["epoch"]
    await client.close()


async def test_sigterm_asks_connected_clients_to_reconnect_and_stops_promptly(
    podium: Podium,
) -> None:
    await podium.start()
    client = PodiumClient(
        podium.url.replace("http", "ws") + "/ws",
        token(sessions=(SESSION,)),
        SESSION,
        origin="http://podium.test",
    )
    await client.connect()
    started = time.monotonic()
    assert podium.process is not None
    podium.process.send_signal(signal.SIGTERM)
    closed = await client.wait_closed(timeout=10)
    assert closed.code == 4000
    assert closed.reconnect
    assert await asyncio.to_thread(podium.process.wait, 15) == 0
    assert time.monotonic() - started < 12


async def test_a_question_acknowledged_to_its_asker_survives_sigkill_of_podium(
    podium: Podium,
) -> None:
    await podium.start()
    asker = PodiumClient(
        podium.url.replace("http", "ws") + "/ws",
        token(sessions=(SESSION,), sub="durable-asker"),
        SESSION,
        origin="http://podium.test",
    )
    await asker.connect()
    acked = await asker.request("qa.ask", text="Will the outcome document be public?", lang="en")
    await asker.close()

    podium.kill(signal.SIGKILL)
    await podium.start()

    headers = {"Authorization": "Bearer " + token(Role.MODERATOR, (SESSION,), sub="m")}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{podium.url}/api/v1/sessions/{SESSION}/questions", headers=headers) as resp,
    ):
        questions = (await resp.json())["questions"]
    assert [(q["id"], q["text"]) for q in questions] == [
        (acked["question"]["id"], "Will the outcome document be public?")
    ]
