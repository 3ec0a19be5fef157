"""Push: server-sent events announcing each new pin-set version of a channel.

A subscriber holds only the newest version it has not sent yet, so a slow client coalesces a burst
of publishes into one event and can never make the server buffer without bound. The number of
open streams is capped, in total and per client address, so that one client cannot hold them all.
"""

from __future__ import annotations

import asyncio
from collections import Counter

__all__ = ["EventBroker", "Subscription", "pinset_event"]


def pinset_event(version: int) -> bytes:
    """One SSE event (WHATWG HTML §9.2): ``id`` lets a reconnecting client say what it has seen."""
    return f'id: {version}\nevent: pinset\ndata: {{"version": {version}}}\n\n'.encode()


class Subscription:
    def __init__(self, channel: str, client: str) -> None:
        self.channel, self.client = channel, client
        self.pending: int | None = None
        self.wakeup = asyncio.Event()

    def offer(self, version: int) -> None:
        if self.pending is None or version > self.pending:
            self.pending = version
        self.wakeup.set()

    def take(self) -> int | None:
        version, self.pending = self.pending, None
        self.wakeup.clear()
        return version


class EventBroker:
    """Subscriptions per channel; ``announce`` runs on the event loop.

    At most ``max_streams`` subscriptions in all and ``max_streams_per_client`` per client address.
    """

    def __init__(self, *, max_streams: int, max_streams_per_client: int) -> None:
        self.max_streams, self.max_streams_per_client = max_streams, max_streams_per_client
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._per_client: Counter[str] = Counter()

    def subscribe(self, channel: str, client: str) -> Subscription | None:
        """A new subscription, or ``None`` when a cap is reached."""
        if (
            self.subscriber_count >= self.max_streams
            or self._per_client[client] >= self.max_streams_per_client
        ):
            return None
        subscription = Subscription(channel, client)
        self._subscriptions.setdefault(channel, set()).add(subscription)
        self._per_client[client] += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscriptions.get(subscription.channel)
        if subscribers is None or subscription not in subscribers:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscriptions[subscription.channel]
        self._per_client[subscription.client] -= 1
        if not self._per_client[subscription.client]:
            del self._per_client[subscription.client]

    def announce(self, channel: str, version: int) -> None:
        for subscription in self._subscriptions.get(channel, ()):
            subscription.offer(version)

    @property
    def subscriber_count(self) -> int:
        return self._per_client.total()
