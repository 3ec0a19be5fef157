"""Alerts: one per condition, opened once and resolved once, delivered to the log, metrics, the
admin API and webhooks (docs/operations.md, "Alerts").

The monitor and freshness rooms say whether each condition holds; this room remembers, queues
the edges in an outbox table and delivers them as Standard Webhooks.
"""

from __future__ import annotations

from pinwarden.server.alerts._book import (
    AlertBook,
    AlertEvent,
    AlertKind,
    Condition,
    condition_key,
    list_alerts,
    open_alert_counts,
)
from pinwarden.server.alerts._models import Alert, OutboxMessage
from pinwarden.server.alerts._webhooks import (
    DeliveryRound,
    RetryPolicy,
    WebhookDispatcher,
    WebhookEndpoint,
    webhook_body,
)

__all__ = [
    "Alert",
    "AlertBook",
    "AlertEvent",
    "AlertKind",
    "Condition",
    "DeliveryRound",
    "OutboxMessage",
    "RetryPolicy",
    "WebhookDispatcher",
    "WebhookEndpoint",
    "condition_key",
    "list_alerts",
    "open_alert_counts",
    "webhook_body",
]
