"""The webhooks error tree: why a target was refused, an attempt failed or a dispatcher stopped.

Webhooks never answer a client (podium is the HTTP client here), so the tree carries no HTTP status;
it stands beside the other packages' trees. Settings turn ``InvalidTarget`` into a ``SettingsError``
naming the setting.

Tree::

    WebhookError                 the base
    ├── InvalidTarget            a configured URL podium will not send to (scheme, host, fragment)
    ├── DeliveryFailed           one attempt failed; ``reason`` is ``status``, ``timeout`` or
    │                            ``connection`` (retried with backoff, then the event is dropped)
    └── LeaseLost                another node dispatches the session now: this one stops at once
"""

from __future__ import annotations


class WebhookError(Exception):
    """Base of every webhooks error."""


class InvalidTarget(WebhookError):
    """A configured webhook URL podium will not send to."""


class DeliveryFailed(WebhookError):
    """One delivery attempt failed.

    Attributes:
        reason: ``status`` (the receiver answered, not 2xx), ``timeout`` or ``connection``.
        status: the HTTP status when the receiver answered, else 0.
    """

    def __init__(self, reason: str, status: int = 0) -> None:
        super().__init__(f"delivery failed: {reason}" + (f" {status}" if status else ""))
        self.reason = reason
        self.status = status


class LeaseLost(WebhookError):
    """The session's dispatch lease is another node's: nothing more may be written for it here."""
