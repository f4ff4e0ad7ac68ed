"""A channel carried by this node, and the node's streaming limits (plain data, no behaviour)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiortc.contrib.media import MediaRelay

from streaming.channels import ChannelRecord, ChannelSpec
from streaming.health import Health, HealthTracker
from streaming.peers import ChannelTrack, EncodedTrack, Peer
from streaming.recording import Recording


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Caps and periods (from settings)."""

    max_listeners: int = 200
    max_channels: int = 16
    media_timeout: float = 5.0
    connect_timeout: float = 15.0
    health_interval: float = 1.0
    lease_ms: int = 15_000
    retry_after: float = 30.0
    record: bool = True
    listeners_window: float = 1.0
    listeners_per_person: int = 3
    offers_per_second: float = 0.5
    offers_burst: float = 10.0
    allow_private: bool = False


@dataclass(eq=False)
class LiveChannel:
    """A channel with a publisher on this node: its tracks, relay, listeners, recording, health."""

    session: str
    spec: ChannelSpec
    publisher: Peer
    tracks: dict[str, ChannelTrack] = field(default_factory=dict)
    relay: MediaRelay = field(default_factory=MediaRelay)
    encoded: dict[str, EncodedTrack] = field(default_factory=dict)
    packets: MediaRelay = field(default_factory=MediaRelay)
    listeners: dict[str, Peer] = field(default_factory=dict)
    recording: Recording | None = None
    tracker: HealthTracker = field(default_factory=lambda: HealthTracker(time.monotonic()))
    health: Health | None = None
    live: bool = False
    ended: bool = False
    renewed: float = 0.0
    url: str = ""
    claim: str = field(default_factory=lambda: uuid.uuid4().hex)  # its hold on the channel (store)


def staff_fields(live: LiveChannel | None, record: ChannelRecord, now_ms: int) -> dict[str, Any]:
    """What staff see of a channel beyond its public view.

    The carrying node's own figures when it is this one; elsewhere what it last renewed.
    """
    current = record.live_at(now_ms)
    if live is not None:
        health = live.health.view() if live.health else None
        listeners = len(live.listeners)
    else:
        health = record.health if current else None
        listeners = record.listeners if current else 0
    return {
        "node": record.node or None,
        "listeners": listeners,
        "publisher": live.publisher.name if live else None,
        "recording": live.recording.path.name if live and live.recording else None,
        "health": health,
    }
