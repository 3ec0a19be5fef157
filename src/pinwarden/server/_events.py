"""Push: server-sent events announcing each new pin-set version of a channel.

A subscriber holds only the newest version it has not sent yet, so a slow client coalesces a burst
of publishes into one event and can never make the server buffer without bound.
"""

from __future__ import annotations

import asyncio

__all__ = ["EventBroker", "Subscription", "pinset_event"]


def pinset_event(version: int) -> bytes:
    """One SSE event (WHATWG HTML §9.2): ``id`` lets a reconnecting client say what it has seen."""
    return f'id: {version}\nevent: pinset\ndata: {{"version": {version}}}\n\n'.encode()


class Subscription:
    def __init__(self, channel: str) -> None:
        self.channel = channel
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
    """Subscriptions per channel; ``announce`` runs on the event loop."""

    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}

    def subscribe(self, channel: str) -> Subscription:
        subscription = Subscription(channel)
        self._subscriptions.setdefault(channel, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscriptions.get(subscription.channel)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscriptions[subscription.channel]

    def announce(self, channel: str, version: int) -> None:
        for subscription in self._subscriptions.get(channel, ()):
            subscription.offer(version)

    @property
    def subscriber_count(self) -> int:
        return sum(len(subscribers) for subscribers in self._subscriptions.values())
