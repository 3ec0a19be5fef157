"""Webhook delivery from the outbox, signed per Standard Webhooks.

Each message carries ``webhook-id`` (the outbox ``message_id``, the same on every attempt),
``webhook-timestamp`` and ``webhook-signature`` (HMAC-SHA256 of ``id.timestamp.body``, made by
the ``standardwebhooks`` package). A message is claimed before it is sent by moving its
``next_attempt_at`` forward with a compare-and-set, so two replicas never send the same attempt;
it is marked delivered only after a 2xx answer. A crash between the answer and the mark sends it
again with the same ``webhook-id``, which receivers use to drop the repeat: delivery is at least
once, and never a new id for an old event. Redirects are not followed: the signed body goes to
the configured URL only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from pinwarden.server._models import utc_now
from pinwarden.server.alerts._models import OutboxMessage

__all__ = ["DeliveryRound", "RetryPolicy", "WebhookDispatcher", "WebhookEndpoint", "webhook_body"]

logger = logging.getLogger("pinwarden.alerts")

Clock = Callable[[], datetime]
_MAX_ERROR = 500  # characters of an error kept on the outbox row


@dataclass(frozen=True)
class WebhookEndpoint:
    """Where alerts go: a name (the outbox key), an http(s) URL and a ``whsec_…`` secret."""

    name: str
    url: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 200 or not self.name.isprintable():
            raise ValueError("a webhook name is 1 to 200 printable characters")
        parts = urlsplit(self.url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"webhook {self.name!r}: the URL must be http(s)://host/…")
        try:
            Webhook(self.secret)
        except Exception as error:  # the package raises several types for a bad secret
            raise ValueError(
                f"webhook {self.name!r}: the secret is not a base64 'whsec_…' key ({error})"
            ) from None

    def signer(self) -> Webhook:
        return Webhook(self.secret)


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off after a failed attempt: ``base * 2**(attempts-1)`` up to ``cap``; after
    ``max_attempts`` the message is given up (kept, marked failed). ``claim`` is how long an
    attempt in flight keeps other senders off the message."""

    base: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 20
    claim: timedelta = timedelta(minutes=2)

    def delay(self, attempts: int) -> timedelta:
        return min(self.cap, self.base * (1 << min(attempts - 1, 32)))


@dataclass
class DeliveryRound:
    delivered: int = 0
    retried: int = 0
    failed: int = 0


def webhook_body(payload: dict[str, Any]) -> str:
    """The bytes signed and sent: one stable spelling of the stored payload."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class _Claimed:
    id: int
    message_id: str
    endpoint: WebhookEndpoint
    attempts: int
    body: str


class WebhookDispatcher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        endpoints: Sequence[WebhookEndpoint],
        *,
        clock: Clock = utc_now,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._sessions, self._clock = sessions, clock
        self._endpoints = {endpoint.name: endpoint for endpoint in endpoints}
        self._policy = policy or RetryPolicy()
        self._timeout, self._transport = timeout, transport
        self.totals = DeliveryRound()  # since start, for the metrics

    async def run_forever(self, every: timedelta = timedelta(seconds=5)) -> None:
        """Deliver what is due every ``every``; cancel the task to stop."""
        while True:
            try:
                await self.deliver_due()
            except Exception:  # a database outage must not end delivery for good
                logger.exception("pinwarden: webhook delivery failed; retrying")
            await asyncio.sleep(every.total_seconds())

    async def deliver_due(self, limit: int = 100) -> DeliveryRound:
        """Send every message due now (up to ``limit``), once each; record what happened."""
        result = DeliveryRound()
        if not self._endpoints:
            return result
        claimed = await asyncio.to_thread(self._claim_due, limit)
        if not claimed:
            return result
        async with httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, transport=self._transport
        ) as client:
            errors = await asyncio.gather(*(self._send(client, message) for message in claimed))
        for message, error in zip(claimed, errors, strict=True):
            outcome = await asyncio.to_thread(self._record, message, error)
            for counts in (result, self.totals):
                setattr(counts, outcome, getattr(counts, outcome) + 1)
        return result

    def _claim_due(self, limit: int) -> list[_Claimed]:
        now = self._clock()
        claimed: list[_Claimed] = []
        with self._sessions.begin() as session:
            due = session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.failed_at.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                    OutboxMessage.endpoint.in_(self._endpoints),
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
            ).all()
            for row in due:
                taken = session.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.id == row.id,
                        OutboxMessage.next_attempt_at == row.next_attempt_at,
                    )
                    .values(next_attempt_at=now + self._policy.claim)
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(
                        _Claimed(
                            row.id,
                            row.message_id,
                            self._endpoints[row.endpoint],
                            row.attempts,
                            webhook_body(row.payload),
                        )
                    )
        return claimed

    async def _send(self, client: httpx.AsyncClient, message: _Claimed) -> str | None:
        """POST one message; ``None`` on a 2xx answer, else why not."""
        sent_at = self._clock()
        headers = {
            "content-type": "application/json",
            "webhook-id": message.message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": message.endpoint.signer().sign(
                message.message_id, sent_at, message.body
            ),
        }
        try:
            response = await client.post(
                message.endpoint.url, content=message.body.encode(), headers=headers
            )
        except httpx.HTTPError as error:
            # httpx's message can carry the URL, whose path often holds a secret (a chat
            # webhook's token): the error's kind and the host only, readable with a read token.
            host = httpx.URL(message.endpoint.url).host
            return f"{type(error).__name__} talking to {host}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _record(self, message: _Claimed, error: str | None) -> str:
        """Store one attempt's result; which ``DeliveryRound`` count it adds to."""
        now = self._clock()
        attempts = message.attempts + 1
        with self._sessions.begin() as session:
            row = session.get_one(OutboxMessage, message.id)
            row.attempts = attempts
            if error is None:
                row.delivered_at, row.last_error = now, None
                return "delivered"
            row.last_error = error[:_MAX_ERROR]
            if attempts >= self._policy.max_attempts:
                row.failed_at = now
                logger.error(
                    "pinwarden webhook %s to %s given up after %d attempts: %s",
                    message.message_id,
                    message.endpoint.name,
                    attempts,
                    error,
                )
                return "failed"
            row.next_attempt_at = now + self._policy.delay(attempts)
            logger.warning(
                "pinwarden webhook %s to %s failed (%s); retrying at %s",
                message.message_id,
                message.endpoint.name,
                error,
                row.next_attempt_at.isoformat(),
            )
            return "retried"
