"""Signaling metrics on an explicit registry; every label value comes from a fixed set."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from signaling.identity import Role
from signaling.lifecycle import State

OTHER = "other"
MODES = frozenset({"venue", "remote"})
ROLES = frozenset(r.value for r in Role)
JOIN_RESULTS = frozenset(
    {
        "ok",
        "resumed",
        "resync",
        "unauthorized",
        "token_expired",
        "auth_timeout",
        "session_forbidden",
        "unknown_session",
        "bad_request",
        "store_unavailable",
        "origin_refused",
        "rate_limited",
        "draining",
    }
)
STORE_OPERATIONS = frozenset(
    {
        "append",
        "read",
        "transition",
        "snapshot",
        "history",
        "presence",
        "ping",
        "join_code",
        "subscribe",
        "relay",
        "webhook",
    }
)
REJECT_REASONS = frozenset(
    {
        "malformed_frame",
        "unknown_type",
        "invalid_message",
        "not_authenticated",
        "forbidden",
        "rate_limited",
        "invalid_transition",
        "binary_frame",
        "too_big",
        "store_unavailable",
        "not_allowed",
        "sdp_invalid",
        "candidate_invalid",
        "media_conflict",
        "media_not_found",
    }
)
RTC_TYPES = frozenset({"ice", "offer", "answer", "candidate", "restart", "hangup", "state"})


def bounded(value: str, allowed: frozenset[str]) -> str:
    """The value itself when it is in the fixed set, else ``other``: series counts stay fixed."""
    return value if value in allowed else OTHER


class SignalingMetrics:
    """Every signaling metric, registered on the app's own registry."""

    def __init__(self, registry: CollectorRegistry, sessions: frozenset[str]) -> None:
        self.sessions = sessions
        self.connections = Gauge(
            "podium_signaling_connections",
            "Open client connections on this node.",
            ["session", "mode", "role"],
            registry=registry,
        )
        self.joins = Counter(
            "podium_signaling_joins",
            "Connection attempts by outcome.",
            ["result"],
            registry=registry,
        )
        self.online = Gauge(
            "podium_presence_online_participants",
            "People online in a session (cluster-wide; every node reports the same figure: use max).",
            ["session", "mode", "role"],
            registry=registry,
        )
        self.unique = Gauge(
            "podium_presence_unique_participants",
            "People who ever joined a session (cluster-wide; use max).",
            ["session"],
            registry=registry,
        )
        self.delivered_total = Counter(
            "podium_signaling_events_delivered",
            "Frames written to client sockets by the fan-out.",
            registry=registry,
        )
        self.slow_disconnects = Counter(
            "podium_signaling_slow_disconnects",
            "Client sockets cut off because they stopped reading.",
            registry=registry,
        )
        self.heartbeat_pings = Counter(
            "podium_signaling_heartbeat_pings",
            "Pings the node's heartbeat wrote to sockets that had been silent for a period.",
            registry=registry,
        )
        self.heartbeat_timeouts = Counter(
            "podium_signaling_heartbeat_timeouts",
            "Client sockets cut off because they answered no ping.",
            registry=registry,
        )
        self.gc_pauses = Histogram(
            "podium_gc_pause_seconds",
            "Garbage collections of the node's process, by generation (2 = full), and how long each "
            "paused it.",
            ["generation"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=registry,
        )
        for generation in ("0", "1", "2"):  # every series from the start: a fixed count
            self.gc_pauses.labels(generation)
        self.fanout_latency = Histogram(
            "podium_signaling_fanout_latency_seconds",
            "From an event's commit in the store to the end of its fan-out on this node.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.store_errors = Counter(
            "podium_store_errors",
            "Store calls that failed, by operation.",
            ["operation"],
            registry=registry,
        )
        self.rejected = Counter(
            "podium_signaling_frames_rejected",
            "Client frames refused, by reason.",
            ["reason"],
            registry=registry,
        )
        self.session_state = Gauge(
            "podium_session_state",
            "1 for a session's current lifecycle state, 0 for the others.",
            ["session", "state"],
            registry=registry,
        )
        self.rtc_messages = Counter(
            "podium_rtc_messages",
            "Media signaling commands received, by type (rtc.<type>).",
            ["type"],
            registry=registry,
        )
        self.media_sessions = Gauge(
            "podium_media_sessions_active",
            "Connected media sessions whose desk is connected to this node (sum over nodes).",
            registry=registry,
        )
        self.grant_to_media = Histogram(
            "podium_grant_to_media_seconds",
            "From the floor grant to the first 'connected' state of the speaker's media session.",
            buckets=(0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0),
            registry=registry,
        )

    def session_label(self, session: str) -> str:
        """A session id as a label: only programme sessions are ever labels."""
        return bounded(session, self.sessions)

    def connection_labels(self, session: str, mode: str, role: str) -> tuple[str, str, str]:
        """The bounded (session, mode, role) label triple."""
        return self.session_label(session), bounded(mode, MODES), bounded(role, ROLES)

    def join(self, result: str) -> None:
        """Counts one connection attempt's outcome."""
        self.joins.labels(bounded(result, JOIN_RESULTS)).inc()

    def reject(self, reason: str) -> None:
        """Counts one refused frame."""
        self.rejected.labels(bounded(reason, REJECT_REASONS)).inc()

    def store_error(self, operation: str) -> None:
        """Counts one failed store call."""
        self.store_errors.labels(bounded(operation, STORE_OPERATIONS)).inc()

    def rtc(self, kind: str) -> None:
        """Counts one media signaling command (``kind`` without the ``rtc.`` prefix)."""
        self.rtc_messages.labels(bounded(kind, RTC_TYPES)).inc()

    def set_state(self, session: str, state: State) -> None:
        """Marks a session's current lifecycle state."""
        label = self.session_label(session)
        for candidate in State:
            self.session_state.labels(label, candidate.value).set(1 if candidate is state else 0)

    # FanoutMetrics
    def delivered(self, count: int) -> None:
        """``count`` frames were written to sockets."""
        self.delivered_total.inc(count)

    def latency(self, seconds: float) -> None:
        """One event's commit-to-fan-out time."""
        self.fanout_latency.observe(seconds)

    def slow_disconnect(self) -> None:
        """A sink was cut off for not reading."""
        self.slow_disconnects.inc()

    def gc_pause(self, generation: int, seconds: float) -> None:
        """One garbage collection of ``generation`` (0, 1 or 2) took ``seconds``."""
        self.gc_pauses.labels(str(min(max(generation, 0), 2))).observe(seconds)

    def heartbeat(self, pinged: int, timed_out: int) -> None:
        """One heartbeat sweep pinged ``pinged`` sockets and cut off ``timed_out`` silent ones."""
        self.heartbeat_pings.inc(pinged)
        self.heartbeat_timeouts.inc(timed_out)
