"""Observability wiring: JSON logs, the event-loop lag gauge, ``/metrics`` access, health routes."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=_printable, ensure_ascii=False)


def _printable(value: object) -> str:
    """An extra field as text; one that cannot be printed (a dead weak proxy, a broken
    ``__str__`` of another library's object) costs that field, never the log line."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def configure_logging(level: str, *, as_json: bool) -> None:
    """Sends logs to stderr, as JSON lines unless asked for plain text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if as_json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class LoopLag:
    """Measures how late the event loop wakes a sleeping task: a direct measure of overload."""

    def __init__(self, registry: CollectorRegistry, period: float = 0.5) -> None:
        self.period = period
        self.gauge = Gauge(
            "podium_event_loop_lag_seconds",
            "How late the event loop woke a task that slept for a fixed period (last sample).",
            registry=registry,
        )

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """An aiohttp cleanup context running the sampler for the app's lifetime."""
        task = asyncio.create_task(self._sample(), name="podium-loop-lag")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _sample(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.period)
            self.gauge.set(max(0.0, time.perf_counter() - start - self.period))


def metrics_handler(registry: CollectorRegistry, allow: tuple[str, ...], token: str) -> Any:
    """``GET /metrics``, served only to allowed networks or to a bearer of the metrics token."""
    networks = [ipaddress.ip_network(cidr, strict=False) for cidr in allow]

    async def handler(request: web.Request) -> web.Response:
        if not _metrics_allowed(request, networks, token):
            return web.json_response(
                {"code": "forbidden", "message": "metrics are not public"}, status=403
            )
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handler


def _metrics_allowed(
    request: web.Request, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network], token: str
) -> bool:
    if token:
        # Compared in constant time: the answer's timing must not spell the token out.
        header = request.headers.get("Authorization", "").encode(errors="replace")
        if hmac.compare_digest(header, f"Bearer {token}".encode()):
            return True
    peer = request.remote
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)
