# harness: ready
# (G: the `faults` marker is registered in tests/faults/conftest.py.)
"""Real processes for fault tests: a store server and podium nodes, each killable and restartable.

``StoreProcess`` runs the same server binary as the embedded store (``find_server_binary``) on a TCP
loopback port, with append-only persistence and ``appendfsync always`` by default: the scenarios claim
that nothing acknowledged is lost when the server is SIGKILLed, and with ``always`` the server writes
and fsyncs each command's AOF record before it replies, so the claim holds even if the machine had
died. (``everysec``, the embedded default, also loses nothing on a SIGKILL of the process alone — the
record is in the kernel's page cache before the reply — but not on a power cut.)

``PodiumProcess`` runs ``python -m config.cli serve`` with ``PODIUM_*`` settings in its environment
and a programme written around the real clock (one live session, ``plenary``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from config.embedded import find_server_binary
from tests.conftest import ORIGIN, SECRET

SESSION = "plenary"


class ProcessError(Exception):
    """A harness process did not start or did not become ready."""


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # A test run that is killed must not leave servers behind.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def rss_of(pid: int) -> int:
    """The resident memory of a process, in bytes (``VmRSS`` in ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ProcessError(f"no VmRSS for process {pid}")


async def _wait_exit(process: subprocess.Popen[bytes], timeout: float) -> int:
    return await asyncio.to_thread(process.wait, timeout)


class StoreProcess:
    """A Redis-compatible server on ``127.0.0.1:port`` with its AOF in ``dir``."""

    def __init__(
        self, dir: Path, port: int = 0, *, appendonly: bool = True, fsync: str = "always"
    ) -> None:
        if fsync not in ("always", "everysec", "no"):
            raise ValueError(f"fsync must be always, everysec or no, got {fsync!r}")
        self.dir = dir
        self.port = port or free_port()
        self.appendonly = appendonly
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis-py URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """The server's process id."""
        if self.process is None:
            raise ProcessError("the store is not running")
        return self.process.pid

    async def start(self, timeout: float = 15.0) -> None:
        """Starts the server (reading its AOF, if any) and waits until it answers."""
        self.dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(find_server_binary()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.fsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.dir / "store.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProcessError(f"the store exited with {self.process.returncode}")
            if await self.answers():
                return
            await asyncio.sleep(0.05)
        raise ProcessError(f"the store did not answer within {timeout} s")

    async def answers(self) -> bool:
        """True when the server answers PING."""
        client = aioredis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(await client.ping())
        except Exception:
            return False
        finally:
            await client.aclose()

    async def kill(self, sig: int = signal.SIGKILL) -> int:
        """Sends ``sig`` (SIGKILL: no shutdown, no final AOF write) and waits for the exit."""
        if self.process is None:
            raise ProcessError("the store is not running")
        self.process.send_signal(sig)
        code = await _wait_exit(self.process, 20)
        self.process = None
        return code

    async def restart(self) -> None:
        """Starts the server again on the same port and directory (it replays its AOF)."""
        if self.process is not None and self.process.poll() is None:
            raise ProcessError("the store is still running")
        await self.start()

    async def stop(self) -> None:
        """Shuts the server down (SIGTERM, then SIGKILL if it hangs)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await _wait_exit(process, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await _wait_exit(process, 10)

    def client(self) -> aioredis.Redis:
        """A plain client of the server (close it with ``aclose``)."""
        return aioredis.Redis.from_url(self.url)


def write_programme(path: Path, now: datetime | None = None) -> Path:
    """Writes a programme with one session, ``plenary``, live around ``now`` (Q&A and floor on)."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(
        f"""[event]
id = "fault-summit"
title = "Fault Summit"
timezone = "Europe/Zurich"
languages = ["en", "fr"]

[[sessions]]
id = "{SESSION}"
title = "Opening plenary"
room = "Plenary Hall"
start = {start}
end = {end}
languages = ["en", "fr"]
""",
        encoding="utf-8",
    )
    return path


class PodiumProcess:
    """A podium node as a subprocess: ``python -m config.cli serve`` on ``127.0.0.1:port``.

    Args:
        port: the port to serve on (0: a free one, kept across restarts).
        store_url: the store (or a fault proxy in front of it).
        node_id: the node's id (presence leases, logs).
        dir: where its data directory, programme and log go.
        env: more ``PODIUM_*`` settings (they win over the harness's own).
    """

    def __init__(
        self,
        port: int,
        store_url: str,
        node_id: str,
        *,
        dir: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.store_url = store_url
        self.node_id = node_id
        self.dir = dir
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The node's HTTP base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The node's WebSocket URL."""
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def log(self) -> Path:
        """The node's log file (stderr)."""
        return self.dir / f"{self.node_id}.log"

    @property
    def pid(self) -> int:
        """The node's process id."""
        if self.process is None:
            raise ProcessError("the node is not running")
        return self.process.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    async def start(self) -> None:
        """Starts the node (use ``ready`` to wait until it serves)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        programme = self.dir / "programme.toml"
        if not programme.exists():
            write_programme(programme)
        env = {
            **os.environ,
            "PODIUM_JWT_SECRET": SECRET,
            "PODIUM_NODE_ID": self.node_id,
            "PODIUM_ALLOWED_ORIGINS": ORIGIN,
            "PODIUM_LOG_JSON": "false",
            "PODIUM_QUESTIONS_PER_MINUTE": "1000",
            "PODIUM_STREAM_RECORD": "false",
            **self.env,
        }
        env.pop("PODIUM_CONFIG", None)
        args = [
            sys.executable, "-m", "config.cli", "serve",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--redis-url", self.store_url,
            "--data-dir", str(self.dir / f"{self.node_id}-data"),
            "--programme", str(programme),
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=_die_with_parent,
            )

    async def ready(self, timeout: float = 30.0) -> None:
        """Waits until ``/readyz`` answers 200.

        Raises:
            ProcessError: the node exited, or was not ready in time.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ProcessError(f"{self.node_id} exited; see {self.log}")
            if await self.readiness() == 200:
                return
            await asyncio.sleep(0.1)
        raise ProcessError(f"{self.node_id} was not ready within {timeout} s; see {self.log}")

    async def readiness(self, timeout: float = 3.0) -> int:
        """The status of ``/readyz`` now (0 when the node did not answer within ``timeout``)."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
                http.get(self.url + "/readyz") as resp,
            ):
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    def rss_bytes(self) -> int:
        """The node's resident memory, in bytes."""
        return rss_of(self.pid)

    async def kill(self) -> int:
        """SIGKILLs the node and waits for it."""
        return await self._signal(signal.SIGKILL)

    async def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERMs the node (it drains) and waits for its exit code."""
        return await self._signal(signal.SIGTERM, timeout)

    async def restart(self) -> None:
        """Starts the node again on the same port and waits until it is ready."""
        if self.alive():
            raise ProcessError(f"{self.node_id} is still running")
        await self.start()
        await self.ready()

    async def stop(self) -> None:
        """Ends the node whatever its state (SIGTERM, then SIGKILL)."""
        if not self.alive():
            self.process = None
            return
        try:
            await self.terminate(timeout=10)
        except subprocess.TimeoutExpired:
            await self.kill()

    async def _signal(self, sig: int, timeout: float = 20.0) -> int:
        if self.process is None:
            raise ProcessError(f"{self.node_id} is not running")
        process = self.process
        if process.poll() is None:
            process.send_signal(sig)
        code = await _wait_exit(process, timeout)
        self.process = None
        return code
