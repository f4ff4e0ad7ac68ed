"""The system under test: a podium node as a child process pinned to one core, and /proc readings of it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads, from ``/proc/<pid>/stat``."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name (which may hold spaces), counted from field 3 (state).
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for pid {pid}")


def raise_open_files(needed: int) -> tuple[int, int]:
    """Raises this process's open-file soft limit to the hard limit (children inherit it).

    Returns:
        The previous ``(soft, hard)`` limits, to restore afterwards.

    Raises:
        RuntimeError: the hard limit is below ``needed``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(f"the open-file hard limit is {hard}, {needed} are needed (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Node:
    """A running ``podium serve`` child process."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        """The node's process id (the Python process itself: no shell in between)."""
        return self.process.pid

    @property
    def base(self) -> str:
        """The node's HTTP base URL."""
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        """The end of the node's output, for error messages."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_node(
    *,
    data_dir: Path,
    store_url: str,
    env: dict[str, str],
    cpu: int | None,
) -> Node:
    """Starts ``python -m config.cli serve --demo`` on a free loopback port, pinned to ``cpu``.

    Args:
        data_dir: the node's data directory.
        store_url: the store the node and the benchmark share.
        env: ``PODIUM_*`` settings; every inherited ``PODIUM_*`` variable is dropped first.
        cpu: the core to pin the node to, or None to leave it unpinned.
    """
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "node.log"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    child_env.update(env)
    args = [
        sys.executable,
        "-m",
        "config.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--redis-url",
        store_url,
        "--data-dir",
        str(data_dir),
        "--demo",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env=child_env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    if cpu is not None:
        # Python has started no thread yet; every thread the node makes later inherits the mask.
        os.sched_setaffinity(process.pid, {cpu})
    return Node(process, port, log)


async def wait_ready(node: Node, timeout: float = 30.0) -> None:
    """Waits until ``/readyz`` answers 200.

    Raises:
        RuntimeError: the node exited or was not ready in time (its log tail is in the message).
    """
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise RuntimeError(
                    f"the node exited with {node.process.returncode}:\n{node.log_tail()}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(node.base + "/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the node was not ready within {timeout} s:\n{node.log_tail()}")


async def scrape(node: Node) -> dict[str, float]:
    """The node's Prometheus samples, ``name{labels}`` → value (loopback may read ``/metrics``)."""
    async with aiohttp.ClientSession() as http, http.get(node.base + "/metrics") as response:
        text = await response.text()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                samples[name] = float(value)
    return samples


async def stop_node(node: Node, timeout: float = 20.0) -> None:
    """SIGTERM (the node drains), then SIGKILL if it is still there after ``timeout``."""
    process = node.process
    if process.poll() is not None:
        return
    process.terminate()
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if process.poll() is None:
        process.kill()
        process.wait()
