"""Streaming metrics on the app's registry; labels come from the programme only.

``session`` is a programme session id and ``channel`` is ``floor`` or a programme language, so the
number of series is fixed by the programme whatever requests arrive (anything else is ``other``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from signaling.metrics import bounded
from streaming.channels import FLOOR
from streaming.errors import StreamingError
from streaming.health import Health

_TREE: tuple[type[StreamingError], ...] = (StreamingError, *StreamingError.__subclasses__())
REFUSALS = frozenset(
    {cls.code for cls in _TREE}
    | {
        "unauthorized",
        "token_expired",
        "forbidden",
        "session_forbidden",
        "unknown_session",
        "rate_limited",
    }
)


class StreamingMetrics:
    """Every streaming metric."""

    def __init__(
        self, registry: CollectorRegistry, sessions: frozenset[str], languages: frozenset[str]
    ) -> None:
        self.sessions = sessions
        self.channels = languages | {FLOOR}
        labels = ["session", "channel"]
        self.live = Gauge(
            "podium_stream_channel_live",
            "1 while a channel's publisher is connected to this node (sum across nodes).",
            labels,
            registry=registry,
        )
        self.listeners = Gauge(
            "podium_stream_listeners",
            "WHEP listeners of a channel on this node; the channel is floor or a language.",
            labels,
            registry=registry,
        )
        self.publishers = Gauge(
            "podium_stream_publishers",
            "WHIP publishers connected to this node.",
            registry=registry,
        )
        self.bitrate = Gauge(
            "podium_stream_inbound_bits_per_second",
            "Inbound media bitrate of a live channel's publisher.",
            labels,
            registry=registry,
        )
        self.lost = Counter(
            "podium_stream_packets_lost",
            "RTP packets a channel's publisher lost on the way to this node.",
            labels,
            registry=registry,
        )
        self.jitter = Gauge(
            "podium_stream_jitter_seconds",
            "Interarrival jitter of a live channel's publisher (the worst of its tracks).",
            labels,
            registry=registry,
        )
        self.rtt = Gauge(
            "podium_stream_round_trip_seconds",
            "Round-trip time to a channel's listeners (the worst reported).",
            labels,
            registry=registry,
        )
        self.transitions = Counter(
            "podium_stream_offline_transitions",
            "Channels that went offline on this node, by reason.",
            ["reason"],
            registry=registry,
        )
        self.refusals = Counter(
            "podium_stream_refusals",
            "WHIP/WHEP and channel requests refused, by error code.",
            ["code"],
            registry=registry,
        )

    def labels(self, session: str, channel: str) -> tuple[str, str]:
        """The bounded (session, channel) pair."""
        return bounded(session, self.sessions), bounded(channel, self.channels)

    def set_live(self, session: str, channel: str, live: bool) -> None:
        """Marks a channel live or not on this node; an offline channel's health reads zero."""
        pair = self.labels(session, channel)
        self.live.labels(*pair).set(1 if live else 0)
        if not live:
            self.bitrate.labels(*pair).set(0)
            self.jitter.labels(*pair).set(0)

    def set_listeners(self, session: str, channel: str, count: int) -> None:
        """A channel's listener count on this node."""
        self.listeners.labels(*self.labels(session, channel)).set(count)

    def health(self, session: str, channel: str, health: Health) -> None:
        """Exports one health sample."""
        pair = self.labels(session, channel)
        self.bitrate.labels(*pair).set(health.bitrate)
        self.jitter.labels(*pair).set(health.jitter_seconds)
        if health.lost_since_last:
            self.lost.labels(*pair).inc(health.lost_since_last)
        if health.round_trip_seconds is not None:
            self.rtt.labels(*pair).set(health.round_trip_seconds)

    def offline(self, reason: str) -> None:
        """Counts a channel going offline."""
        self.transitions.labels(
            bounded(
                reason,
                frozenset({"deleted", "no_media", "failed", "shutdown", "node_lost", "released"}),
            )
        ).inc()

    def refused(self, code: str) -> None:
        """Counts a refusal."""
        self.refusals.labels(bounded(code, REFUSALS)).inc()
