"""Q&A metrics on the app's registry; labels from fixed sets only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from moderation.questions import QState
from signaling.metrics import bounded

ACTIONS = frozenset(
    {"ask", "vote", "unvote", "approve", "reject", "answer", "archive", "edit", "label", "reply",
     "move", "pin", "unpin", "merge", "lock", "unlock"}
)  # fmt: skip


class QnaMetrics:
    """Every Q&A metric."""

    def __init__(self, registry: CollectorRegistry, sessions: frozenset[str]) -> None:
        self.sessions = sessions
        self.questions = Gauge(
            "podium_qa_questions",
            "Questions per state (cluster-wide; every node reports the same figure: use max).",
            ["session", "state"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "podium_qa_queue_depth",
            "Questions waiting for a moderator (cluster-wide; use max).",
            ["session"],
            registry=registry,
        )
        self.votes = Counter(
            "podium_qa_votes",
            "Votes cast and taken back on this node.",
            ["session"],
            registry=registry,
        )
        self.decision = Histogram(
            "podium_qa_decision_seconds",
            "From a question's submission to a moderator's first decision on it.",
            buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600),
            registry=registry,
        )
        self.actions = Counter(
            "podium_qa_moderator_actions",
            "Q&A actions taken on this node, by kind.",
            ["action"],
            registry=registry,
        )

    def action(self, name: str) -> None:
        """Counts one action."""
        self.actions.labels(bounded(name, ACTIONS)).inc()

    def vote(self, session: str) -> None:
        """Counts one vote change."""
        self.votes.labels(bounded(session, self.sessions)).inc()

    def export_counts(self, session: str, counts: dict[str, int]) -> None:
        """Sets the per-state gauges from the store's counts."""
        label = bounded(session, self.sessions)
        for state in QState:
            self.questions.labels(label, state.value).set(counts.get(state.value, 0))
        self.queue_depth.labels(label).set(counts.get(QState.PENDING.value, 0))


class FloorMetrics:
    """Every speakers' list metric."""

    def __init__(self, registry: CollectorRegistry, sessions: frozenset[str]) -> None:
        self.sessions = sessions
        self.requests = Counter(
            "podium_floor_requests",
            "Requests for the floor put on the list on this node (moderators' additions included).",
            ["session"],
            registry=registry,
        )
        self.grants = Counter(
            "podium_floor_grants",
            "Turns given on this node.",
            ["session"],
            registry=registry,
        )
        self.speaking = Counter(
            "podium_floor_speaking_seconds",
            "Seconds spoken, added when a turn ends (on the node that ended it).",
            ["session"],
            registry=registry,
        )
        self.queue_length = Gauge(
            "podium_floor_queue_length",
            "Requests waiting on the speakers' list (cluster-wide; every node reports it: use max).",
            ["session"],
            registry=registry,
        )

    def label(self, session: str) -> str:
        """The session as a label value from the programme's fixed set."""
        return bounded(session, self.sessions)

    def export_lengths(self, lengths: dict[str, int]) -> None:
        """Sets the queue-length gauges from the store's figures."""
        for session, length in lengths.items():
            self.queue_length.labels(self.label(session)).set(length)
