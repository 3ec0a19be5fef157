"""What the dynamic client tells the app: one event type with a kind, for logs; and its status."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

__all__ = ["EventCallback", "EventKind", "PinEvent", "PinStatus", "emit"]

logger = logging.getLogger("pinwarden.client")


class EventKind(str, enum.Enum):
    FETCHED = "fetched"  # a new pin-set version was verified and is in force
    NOT_MODIFIED = "not-modified"  # the server still has the version in force
    REFUSED = "refused"  # a document (or keyring) failed verification; ``error`` says why
    FETCH_FAILED = "fetch-failed"  # the pin server could not be reached or answered badly
    MISCONFIGURED = "misconfigured"  # the server does not know the channel or keyring (HTTP 4xx)
    STALE = "stale"  # the server has not confirmed the pins in force for two refresh intervals
    FELL_BACK = "fell-back"  # no valid pin set any more: the bootstrap pins are in force
    RULE_EXPIRED = "rule-expired"  # one rule of the pin set in force reached its own expiry
    KEYRING_ROTATED = "keyring-rotated"  # a new keyring version was verified and followed
    CACHE_LOADED = "cache-loaded"  # started on the cached pin set (verified again)
    CACHE_RECOVERED = "cache-recovered"  # a cache file was damaged, edited or stale: not used
    CACHE_WRITE_FAILED = "cache-write-failed"  # the cache could not be written (pins still apply)
    PUSH_ANNOUNCED = "push-announced"  # the event stream announced a newer version
    REPORT_SENT = "report-sent"  # a violation report was accepted by the report URI
    REPORT_DROPPED = "report-dropped"  # a violation report was not sent (queue full, error)
    CLOSED = "closed"  # refresh() after close(): nothing was fetched


@dataclass(frozen=True)
class PinEvent:
    """Something the dynamic client did; ``str(event)`` is a log line."""

    kind: EventKind
    message: str
    version: int | None = None
    error: Exception | None = None
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def error_type(self) -> str | None:
        """The error's class name (``RollbackError``, ``ExpiredError``, ``FetchError``, …)."""
        return type(self.error).__name__ if self.error is not None else None

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


EventCallback = Callable[[PinEvent], None]


@dataclass(frozen=True)
class PinStatus:
    """What ``DynamicPins.status`` says: which pins are in force and how the pin server answers.

    ``source`` is ``"the shipped bootstrap pins"`` or ``"pin set v7 of channel C"`` (the same text
    as ``PinRule.origin``); ``version`` is ``None`` on bootstrap pins. ``since`` is when that source
    came into force; ``last_success`` the last time the server answered with a pin set (new or
    ``304``), ``last_attempt`` the last fetch; ``last_error`` the event of the last failed fetch
    (``fetch-failed``, ``misconfigured`` or ``refused``), ``None`` once a fetch succeeds again;
    ``failures`` how many fetches failed in a row. ``stale`` is true while the server has not
    confirmed the pins in force for two refresh intervals (a ``stale`` event said so).
    """

    source: str
    version: int | None
    channel: str
    since: datetime
    last_success: datetime | None
    last_attempt: datetime | None
    last_error: PinEvent | None
    failures: int
    stale: bool

    @property
    def on_bootstrap(self) -> bool:
        """Whether the shipped bootstrap pins apply alone (no signed pin set in force)."""
        return self.version is None


def emit(callback: EventCallback | None, event: PinEvent) -> None:
    """Log ``event`` and hand it to the app; a failing callback never breaks the client."""
    level = logging.WARNING if event.kind in _WARNINGS else logging.INFO
    logger.log(level, "pinwarden: %s", event)
    if callback is None:
        return
    try:
        callback(event)
    except Exception:
        logger.exception("pinwarden: the on_event callback raised; ignored")


_WARNINGS = frozenset(
    {
        EventKind.REFUSED,
        EventKind.MISCONFIGURED,
        EventKind.STALE,
        EventKind.FELL_BACK,
        EventKind.CACHE_RECOVERED,
        EventKind.CACHE_WRITE_FAILED,
        EventKind.REPORT_DROPPED,
    }
)
