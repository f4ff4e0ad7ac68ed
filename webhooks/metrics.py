"""Webhook metrics on the app's registry; labels from fixed sets only (never a URL)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DELIVERED = "delivered"
FAILED = "failed"
DROPPED = "dropped"
MISSED = "missed"
RESULTS = (DELIVERED, FAILED, DROPPED, MISSED)


class WebhookMetrics:
    """Every webhook metric; registered whether or not webhooks are configured (series read 0)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "podium_webhook_deliveries",
            "Webhook outcomes on this node: delivered (2xx), failed (an attempt that will be retried "
            "or given up), dropped (an event given up for a target), missed (history trimmed "
            "before it was read).",
            ["result"],
            registry=registry,
        )
        for result in RESULTS:
            self.deliveries.labels(result)
        self.latency = Histogram(
            "podium_webhook_delivery_latency_seconds",
            "From an event's commit in the store to its receiver's 2xx answer.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=registry,
        )
        self.sessions = Gauge(
            "podium_webhook_dispatching_sessions",
            "Sessions whose webhooks this node dispatches (it holds their lease).",
            registry=registry,
        )

    def count(self, result: str, amount: int = 1) -> None:
        """Counts outcomes (``result`` is one of ``RESULTS``)."""
        self.deliveries.labels(result if result in RESULTS else FAILED).inc(amount)
