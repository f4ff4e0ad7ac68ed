"""The app factory: builds one podium node from its settings (the composition root)."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from config.appkeys import (
    FLOOR,
    PROGRAMME,
    QNA,
    REDIS,
    REGISTRY,
    RELAY,
    SETTINGS,
    SIGNALING,
    STREAMING,
)
from config.embedded import EmbeddedStore
from config.observability import LoopLag, metrics_handler
from config.programme import load_programme
from config.settings import Settings, SettingsError
from config.store import store_client
from moderation.floor_messages import COMMANDS as FLOOR_COMMANDS
from moderation.floor_service import FloorLimits, FloorService
from moderation.floor_store import FloorStore
from moderation.messages import COMMANDS as QNA_COMMANDS
from moderation.metrics import FloorMetrics, QnaMetrics
from moderation.routes import QnaRoutes
from moderation.service import QnaLimits, QnaService
from moderation.store import QuestionStore
from moderation.text import WordFilter
from pages.routes import add_page_routes, security_headers
from reporting.dashboard import DashboardRoutes
from reporting.overview import OverviewReader
from reporting.routes import ReportRoutes
from reporting.series import SeriesSampler, SeriesStore
from signaling.errors import CloseCode
from signaling.fanout import Hub
from signaling.heap import HeapKeeper
from signaling.heartbeat import Heartbeat
from signaling.identity import TokenKeys
from signaling.messages import BASE_COMMANDS, Codec
from signaling.metrics import SignalingMetrics
from signaling.presence import PresenceStore
from signaling.programme import Programme
from signaling.relay import RelayConfig, RelayService
from signaling.routes import SignalingRoutes, errors_middleware
from signaling.rtc_messages import COMMANDS as RTC_COMMANDS
from signaling.service import Limits, SignalingService, cancel_all
from signaling.store import SessionStore
from signaling.turn import IceConfig, ice_servers
from streaming.live import StreamLimits
from streaming.metrics import StreamingMetrics
from streaming.routes import StreamingRoutes
from streaming.service import StreamingService
from streaming.store import ChannelStore
from webhooks import Dispatcher, HookStore, Policy, WebhookMetrics, targets_of

log = logging.getLogger("podium.app")

MAX_BODY = 64 * 1024
# A draining node hands its sockets over at about this many a second (a node takes ~300 joins a
# second on one core, docs/performance.md), over at most half of drain_seconds.
DRAIN_RATE = 500.0
DRAIN_SPREAD = 0.5


def demo_programme(programme: Programme, now: datetime) -> Programme:
    """Moves the programme so its first session started half an hour ago: the demo is live now."""
    first = min(s.start for s in programme.sessions)
    return programme.shifted(now - timedelta(minutes=30) - first)


def jwt_secret(settings: Settings) -> str:
    """The token secret: from settings, or (demo only) one kept in the data directory."""
    if settings.jwt_secret:
        return settings.jwt_secret
    if not settings.demo:
        raise SettingsError("set PODIUM_JWT_SECRET (at least 32 characters) to sign join tokens")
    path = settings.data_dir / "demo-jwt-secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(
    settings: Settings,
    *,
    programme: Programme | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Builds a podium node.

    Args:
        settings: the node's settings.
        programme: the programme to serve; loaded from ``settings.programme`` when omitted.
        clock: wall-clock seconds; tests inject their own.
    """
    if programme is None:
        programme = load_programme(settings.programme)
        if settings.demo:
            programme = demo_programme(programme, datetime.fromtimestamp(clock(), UTC))
    keys = TokenKeys(jwt_secret(settings), settings.jwt_issuer, settings.jwt_audience)
    registry = CollectorRegistry()
    metrics = SignalingMetrics(registry, programme.session_ids)
    codec = Codec((*BASE_COMMANDS, *QNA_COMMANDS, *FLOOR_COMMANDS, *RTC_COMMANDS))
    routes = SignalingRoutes(codec, settings.origins)
    qna_routes = QnaRoutes()
    qna_metrics = QnaMetrics(registry, programme.session_ids)
    languages = frozenset(programme.event.languages).union(
        *(s.languages for s in programme.sessions)
    )
    stream_metrics = StreamingMetrics(registry, programme.session_ids, languages)
    stream_routes = StreamingRoutes()
    floor_metrics = FloorMetrics(registry, programme.session_ids)

    app = web.Application(
        middlewares=[security_headers, errors_middleware], client_max_size=MAX_BODY
    )
    app[SETTINGS] = settings
    app[PROGRAMME] = programme
    app[REGISTRY] = registry

    async def store_context(app: web.Application) -> AsyncIterator[None]:
        embedded: EmbeddedStore | None = None
        url = settings.redis_url
        if not url:
            embedded = EmbeddedStore(settings.data_dir)
            url = await embedded.start()
            log.info("embedded store started", extra={"store_dir": str(embedded.dir)})
        try:
            client = store_client(settings, url)  # one server, or a Redis Cluster
        except BaseException:
            if embedded is not None:
                await embedded.stop()
            raise
        app[REDIS] = client
        try:
            yield
        finally:
            await client.aclose()
            if embedded is not None:
                await embedded.stop()

    async def signaling_context(app: web.Application) -> AsyncIterator[None]:
        client = app[REDIS]
        node = settings.node_id or f"node-{secrets.token_hex(4)}"
        store = SessionStore(
            client,
            prefix=settings.key_prefix,
            history_size=settings.history_size,
            on_error=metrics.store_error,
        )
        hub = Hub(client, store, metrics, clock=clock)
        service = SignalingService(
            programme=programme,
            store=store,
            presence=PresenceStore(client, prefix=settings.key_prefix, node=node),
            hub=hub,
            metrics=metrics,
            token_keys=keys,
            limits=Limits(
                auth_timeout=settings.auth_timeout,
                max_frame_bytes=settings.max_frame_bytes,
                send_buffer_bytes=settings.send_buffer_bytes,
                heartbeat=settings.heartbeat,
                rate=settings.rate,
                burst=settings.burst,
            ),
            clock=clock,
        )
        app[SIGNALING] = service
        routes.bind(service)
        qna = QnaService(
            service,
            QuestionStore(store),
            qna_metrics,
            words=WordFilter.of(settings.held_words),
            limits=QnaLimits(questions_per_window=settings.questions_per_minute, window_ms=60_000),
            clock=clock,
        )
        qna.register()
        app[QNA] = qna
        qna_routes.bind(qna)
        floor = FloorService(
            service,
            FloorStore(store),
            floor_metrics,
            limits=FloorLimits(),
            clock=clock,
        )
        floor.register()
        app[FLOOR] = floor
        relay = RelayService(
            service,
            floor,
            RelayConfig(
                ice=IceConfig(settings.ice_servers, settings.turn_secret, settings.turn_ttl),
                allow_private=settings.allow_private_candidates,
                max_sdp_bytes=settings.max_sdp_bytes,
            ),
            clock=clock,
        )
        relay.register()
        floor.granted_hooks.append(relay.floor_granted)
        floor.ended_hooks.append(relay.floor_ended)
        app[RELAY] = relay
        await hub.start()
        await service.start()
        service.spawn(Heartbeat(lambda: service.connections, settings.heartbeat, metrics).run())
        service.spawn(HeapKeeper(lambda: len(service.connections), metrics).run())
        service.spawn(qna.run_metrics())
        service.spawn(floor.run())
        service.spawn(relay.run_metrics())
        try:
            yield
        finally:
            await service.stop()
            await hub.stop()

    async def streaming_context(app: web.Application) -> AsyncIterator[None]:
        # After signaling's context, so it stops first: every peer connection and recorder is
        # closed (within drain_seconds) while the store can still record the channels offline.
        signaling = app[SIGNALING]
        ice = IceConfig(settings.ice_servers, settings.turn_secret, settings.turn_ttl)
        streaming = StreamingService(
            programme,
            ChannelStore(signaling.store),
            stream_metrics,
            node=signaling.presence.node,
            data_dir=settings.data_dir,
            limits=StreamLimits(
                max_listeners=settings.stream_max_listeners,
                max_channels=settings.stream_max_channels,
                media_timeout=settings.stream_media_timeout,
                record=settings.stream_record,
                allow_private=settings.allow_private_candidates,
            ),
            ice_servers=lambda identity: ice_servers(ice, identity.sub, clock())["ice_servers"],
            public_url=settings.public_url,
            clock=clock,
        )
        app[STREAMING] = streaming
        stream_routes.bind(streaming, signaling)
        streaming.register(signaling)
        await streaming.start()
        try:
            yield
        finally:
            await streaming.stop(timeout=settings.drain_seconds)

    async def drain(app: web.Application) -> None:
        # SIGTERM: refuse new sockets, ask every client to reconnect (elsewhere), within a bound.
        # Each socket is closed at a random moment of a window that grows with their number (at
        # most half of drain_seconds), so the other nodes see this node's clients arrive spread
        # out, not at once; the clients add their own full-jitter delay on top.
        service = app[SIGNALING]
        service.draining = True
        connections = list(service.connections)
        spread = min(len(connections) / DRAIN_RATE, settings.drain_seconds * DRAIN_SPREAD)
        closing = [
            asyncio.ensure_future(_close_going_away(conn.ws, random.uniform(0, spread)))
            for conn in connections
        ]
        if closing:
            _, late = await asyncio.wait(closing, timeout=settings.drain_seconds)
            for task in late:
                task.cancel()

    # The operator dashboard: the overview and series routes, and this node's series sampler (every
    # node samples; the store keeps one sample per period). After streaming's, so it stops first.
    dashboard_routes = DashboardRoutes()

    async def dashboard_context(app: web.Application) -> AsyncIterator[None]:
        signaling = app[SIGNALING]
        series = SeriesStore(signaling.store, period=settings.series_period)
        dashboard_routes.bind(signaling, OverviewReader(signaling.store), series)
        sampler = SeriesSampler(series, [s.id for s in programme.sessions], clock)
        task = asyncio.create_task(sampler.run(), name="podium-series")
        try:
            yield
        finally:
            await cancel_all([task])

    # Webhooks: every node takes the dispatch leases it can; one node per session sends its events.
    # After streaming's context, so it stops first (releasing its leases while the store answers).
    webhook_metrics = WebhookMetrics(registry)

    async def webhook_context(app: web.Application) -> AsyncIterator[None]:
        if not settings.webhook_urls:
            yield
            return
        signaling = app[SIGNALING]
        dispatcher = Dispatcher(
            HookStore(signaling.store),
            tuple(s.id for s in programme.sessions),
            targets_of(settings.webhook_urls),
            secret=settings.webhook_secret,
            policy=Policy(
                attempts=settings.webhook_attempts,
                backoff=settings.webhook_backoff,
                backoff_cap=settings.webhook_backoff_cap,
                timeout=settings.webhook_timeout,
            ),
            metrics=webhook_metrics,
            node=signaling.presence.node,
            clock=clock,
        )
        await dispatcher.start()
        try:
            yield
        finally:
            await dispatcher.stop()

    app.cleanup_ctx.append(store_context)
    app.cleanup_ctx.append(signaling_context)
    app.cleanup_ctx.append(streaming_context)
    app.cleanup_ctx.append(webhook_context)
    app.cleanup_ctx.append(dashboard_context)
    app.cleanup_ctx.append(LoopLag(registry).context)
    app.on_shutdown.append(drain)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get(
        "/metrics", metrics_handler(registry, settings.metrics_allow, settings.metrics_token)
    )
    routes.add_to(app)
    qna_routes.add_to(app)
    stream_routes.add_to(app)
    dashboard_routes.add_to(app)
    # Participation reports (operators), bound once the contexts above have started signaling.
    report_routes = ReportRoutes()
    report_routes.add_to(app)

    async def bind_reports(app: web.Application) -> None:
        report_routes.bind(app[SIGNALING])

    app.on_startup.append(bind_reports)
    add_page_routes(app)
    return app


async def _close_going_away(ws: web.WebSocketResponse, delay: float) -> None:
    """Closes one socket with 4000 (*going away*: reconnect, to another node) after ``delay`` s."""
    await asyncio.sleep(delay)
    await ws.close(code=CloseCode.GOING_AWAY, message=b"going_away")


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers and the node is not draining."""
    service = request.app[SIGNALING]
    checks: dict[str, Any] = {
        "store": await service.store.ping(),
        "draining": service.draining,
    }
    ready = checks["store"] and not service.draining
    return web.json_response(
        {"status": "ready" if ready else "not_ready", **checks}, status=200 if ready else 503
    )
