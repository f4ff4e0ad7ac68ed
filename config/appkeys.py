"""Typed application state: every ``web.AppKey`` podium uses, in one place."""

from __future__ import annotations

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry

from config.settings import Settings
from moderation.floor_service import FloorService
from moderation.service import QnaService
from signaling.programme import Programme
from signaling.relay import RelayService
from signaling.service import SignalingService
from streaming.service import StreamingService

SETTINGS = web.AppKey("settings", Settings)
PROGRAMME = web.AppKey("programme", Programme)
REGISTRY = web.AppKey("registry", CollectorRegistry)
REDIS = web.AppKey("redis", aioredis.Redis)
SIGNALING = web.AppKey("signaling", SignalingService)
QNA = web.AppKey("qna", QnaService)
FLOOR = web.AppKey("floor", FloorService)
RELAY = web.AppKey("relay", RelayService)
STREAMING = web.AppKey("streaming", StreamingService)
