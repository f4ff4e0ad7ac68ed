"""Signed webhooks: session events delivered to configured URLs, in sequence order per session.

Pure cores: ``events`` (which history events become webhooks, their payloads), ``delivery``
(targets, cursors, the retry policy and backoff), ``signature`` (HMAC-SHA256 of the body),
``errors``. Edges: ``outbox`` (the lease, the outbox and the cursors in the store), ``dispatcher``
(leases, derivation, one lane per target over aiohttp), ``metrics``.
"""

from webhooks.delivery import Policy, Target, targets_of
from webhooks.dispatcher import Dispatcher, DispatchLimits
from webhooks.errors import DeliveryFailed, InvalidTarget, LeaseLost, WebhookError
from webhooks.events import HOOK_TYPES
from webhooks.metrics import WebhookMetrics
from webhooks.outbox import HookStore
from webhooks.signature import sign, verify

__all__ = [
    "HOOK_TYPES",
    "DeliveryFailed",
    "DispatchLimits",
    "Dispatcher",
    "HookStore",
    "InvalidTarget",
    "LeaseLost",
    "Policy",
    "Target",
    "WebhookError",
    "WebhookMetrics",
    "sign",
    "targets_of",
    "verify",
]
