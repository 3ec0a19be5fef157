"""``DynamicPins``: pins fetched from a pin server, verified, cached, refreshed; a ``PinSource``.

The rules in force at any instant are those of the verified pin set for the hosts it names, and the
bootstrap pins (the ``StaticPins`` the app was built with) for every other host. When no valid pin
set is in force (none fetched yet, or it expired) the bootstrap pins apply alone: the client never
falls back to no pinning, and only a signed ``disabled`` rule switches a host off (design brief,
"Signed document").

``generation`` changes whenever the rules in force change: a new version, the pin set expiring, one
of its rules expiring. The enforcement engine checks a pooled connection again before its next
byte when the generation moved (client rule 8), so a pin change reaches connections already open.
Time-driven changes need no timer: each read of ``generation`` compares the clock with the next
instant the rules change.
"""

from __future__ import annotations

import asyncio
import os
import random
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any

from pinwarden.client._cache import PinCache
from pinwarden.client._events import EventCallback, EventKind, PinEvent, emit
from pinwarden.client._fetch import (
    FetchError,
    HttpTransport,
    PinServerTransport,
    check_url,
    usable_etag,
)
from pinwarden.client._refresh import AsyncRefresher, Refresher, RefreshPolicy, ThreadRefresher
from pinwarden.client._reporter import ReportSender, report_payload
from pinwarden.client._rules import PinRule, PinViolation, most_specific
from pinwarden.client._sse import PushSubscription
from pinwarden.client._static import StaticPins
from pinwarden.client._trust import TrustStore, VerifiedPins, channel_of
from pinwarden.document import (
    MAX_KEYRING_BYTES,
    MAX_KEYRING_STEPS,
    MAX_PINSET_BYTES,
    DocumentError,
    Keyring,
    load_keyring,
)

__all__ = ["DynamicPins"]

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@dataclass(frozen=True)
class _InForce:
    """The rules in force, and the next instant they change on their own (an expiry)."""

    generation: int
    pins: VerifiedPins | None = None
    rules: tuple[PinRule, ...] = ()
    until: Mapping[PinRule, datetime] = field(default_factory=dict)
    boundary: datetime | None = None

    @classmethod
    def of(cls, pins: VerifiedPins | None, now: datetime, generation: int) -> _InForce:
        if pins is None or now >= pins.expires:
            return cls(generation)
        live = pins.live(now)
        boundary = min([pins.expires, *(until for _, until in live)])
        return cls(generation, pins, tuple(rule for rule, _ in live), dict(live), boundary)


class DynamicPins:
    """Pins from a pin server, usable wherever ``StaticPins`` is.

    ``url`` is the channel URL, ``https://pins.example.com/v1/channels/{channel}``; the client
    reads ``{url}/pinset``, ``{url}/keyring/{version}`` and, with ``push=True``, ``{url}/events``.
    A URL of another shape (a static export on a CDN) needs ``channel=``: a pin set signed for
    any other channel is refused, and a client that cannot tell its channel is a ``ValueError``.
    ``keyring`` is the keyring the app ships (bytes or ``Keyring``); ``bootstrap``, its pins.
    See docs/dynamic.md for every option; the main ones:

    - ``cache_dir``: where the last pin set, followed keyrings and the version floor are kept;
      without it the floor lives only as long as the process.
    - ``wait_for_first_fetch``: fetch before returning (never raises; an app that must not start on
      bootstrap pins checks ``version``). Under a running event loop use ``await open(...)``.
    - ``on_event``: called with each ``PinEvent`` from whichever thread did the work.
    - ``cafile`` / ``ssl_context``: trust for the pin server's own certificate (normal validation).
    - ``background``: refresh in a daemon thread, or as an asyncio task when constructed under a
      running loop. ``False``: only ``refresh()`` fetches.
    - ``app_id`` / ``app_version``: sent in violation reports.
    - ``transport``, ``clock``, ``policy``, ``rng``: for tests and tuning.

    A shipped keyring that does not load raises ``DocumentError`` here: that is a build error.
    Nothing after construction raises; what happens is told through events.
    """

    def __init__(
        self,
        url: str,
        *,
        keyring: bytes | Keyring,
        bootstrap: StaticPins,
        cache_dir: str | os.PathLike[str] | None = None,
        wait_for_first_fetch: bool = False,
        on_event: EventCallback | None = None,
        push: bool = False,
        background: bool = True,
        app_id: str | None = None,
        app_version: str | None = None,
        channel: str | None = None,
        cafile: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        report_interval: timedelta = timedelta(hours=24),
        max_keyring_steps: int = MAX_KEYRING_STEPS,
        policy: RefreshPolicy | None = None,
        transport: PinServerTransport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if wait_for_first_fetch and _running_loop() is not None:
            raise RuntimeError(
                "wait_for_first_fetch=True would block the running event loop: "
                "use 'await DynamicPins.open(...)'"
            )
        self._url = check_url(url.rstrip("/"), "pin server URL")
        channel = channel if channel is not None else channel_of(self._url)
        if not channel:
            # Spec §8: a client MUST check the channel, or a validly signed pin set of another
            # channel (a dev channel with a ``disabled`` rule, say) could be replayed to it.
            raise ValueError(
                f"cannot tell the channel from {url!r} (no '/v1/channels/<channel>' in it): "
                "pass channel="
            )
        self._bootstrap = bootstrap
        self._on_event = on_event
        self._clock = clock or _utc_now
        self._policy = policy or RefreshPolicy()
        self._rng = rng or random.SystemRandom()
        self._app = (app_id, app_version)
        self._transport: PinServerTransport = transport or HttpTransport(
            cafile=cafile, ssl_context=ssl_context, timeout=timeout
        )
        shipped = keyring if isinstance(keyring, Keyring) else load_keyring(keyring)
        self._store = TrustStore(
            shipped,
            PinCache(cache_dir) if cache_dir is not None else None,
            channel=channel,
            max_keyring_steps=max_keyring_steps,
            emit=self._emit,
        )
        self._state_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._failures = 0
        self._next_delay: float | None = None
        self._last_attempt: datetime | None = None
        self._closed = False
        self._refresher: Refresher | None = None
        self._push: PushSubscription | None = None
        self._reporter = ReportSender(
            self._transport, interval=report_interval, clock=self._clock, on_event=on_event
        )
        now = self._clock()
        pins, self._checked = self._store.load(now)
        self._state = _InForce.of(pins, now, generation=0)
        if self._state.pins is not None:
            version = self._state.pins.version
            self._emit(PinEvent(EventKind.CACHE_LOADED, f"pin set v{version} from the cache",
                                version=version))
        if wait_for_first_fetch:
            self.refresh()
        self._start(background=background, push=push)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        wait_for_first_fetch: bool = False,
        background: bool = True,
        push: bool = False,
        **options: Any,
    ) -> DynamicPins:
        """Build under a running event loop: the first fetch (if asked) runs in a worker thread,
        and the refresh loop runs as a task on this loop."""
        pins = cls(url, background=False, push=False, **options)
        if wait_for_first_fetch:
            await asyncio.to_thread(pins.refresh)
        pins._start(background=background, push=push)
        return pins

    # -- PinSource ----------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._current().generation

    def rule_for(self, host: str) -> PinRule | None:
        rule = most_specific(self._current().rules, host)
        return rule if rule is not None else self._bootstrap.rule_for(host)

    def report(self, violation: PinViolation) -> None:
        """Hand the violation to the bootstrap's ``on_violation`` and queue a report if the rule
        has a report URI. Never raises: this runs inside the TLS handshake of the app."""
        self._bootstrap.report(violation)
        uri = violation.rule.report_uri
        if uri is None:
            return
        try:
            state = self._state
            payload = report_payload(
                violation,
                expires=state.until.get(violation.rule),
                pinset_version=state.pins.version if state.pins is not None else None,
                channel=state.pins.pinset.channel if state.pins is not None else None,
                app_id=self._app[0],
                app_version=self._app[1],
            )
            self._reporter.submit(uri, violation, payload)
        except Exception as error:
            self._emit(PinEvent(EventKind.REPORT_DROPPED, f"report not queued: {error}",
                                error=error))

    # -- what is in force ---------------------------------------------------------------------

    @property
    def version(self) -> int | None:
        """The pin-set version in force; ``None`` while the bootstrap pins apply alone."""
        pins = self._current().pins
        return pins.version if pins is not None else None

    @property
    def keyring_version(self) -> int:
        return self._store.keyring.version

    def _current(self) -> _InForce:
        state = self._state
        if state.boundary is not None and self._clock() >= state.boundary:
            return self._expire()
        return state

    def _expire(self) -> _InForce:
        """Move past an expiry: drop the expired rules, or the whole pin set."""
        with self._state_lock:
            state = self._state
            now = self._clock()
            if state.boundary is None or now < state.boundary:
                return state  # another thread got here first
            self._state = new = _InForce.of(state.pins, now, state.generation + 1)
        if new.pins is None and state.pins is not None:
            self._emit(
                PinEvent(
                    EventKind.FELL_BACK,
                    f"pin set v{state.pins.version} expired at "
                    f"{state.pins.expires:%Y-%m-%dT%H:%M:%SZ}; the bootstrap pins are in force",
                )
            )
        for rule in set(state.rules) - set(new.rules):
            self._emit(PinEvent(EventKind.RULE_EXPIRED, f"rule {rule.pattern} expired",
                                version=state.pins.version if state.pins else None))
        return new

    def _apply(self, pins: VerifiedPins, now: datetime) -> None:
        with self._state_lock:
            self._state = _InForce.of(pins, now, self._state.generation + 1)

    # -- fetching -----------------------------------------------------------------------------

    def refresh(self) -> PinEvent:
        """Fetch now, verify and apply; the event that says what happened. Never raises."""
        with self._refresh_lock:
            self._last_attempt = self._clock()
            try:
                event, succeeded = self._fetch()
            except Exception as error:
                # A transport or verifier raised what it should not: still only an event, so
                # refresh() and wait_for_first_fetch never raise and the loop backs off.
                message = f"unexpected error: {type(error).__name__}: {error}"
                event, succeeded = PinEvent(EventKind.FETCH_FAILED, message, error=error), False
            now = self._clock()
            pins = self._current().pins
            if succeeded and pins is not None:
                self._failures = 0
                hint = timedelta(seconds=pins.pinset.refresh_after)
                self._next_delay = self._policy.after_success(hint, pins.expires - now, self._rng)
            else:
                self._failures += 1
                self._next_delay = self._policy.after_failure(self._failures, self._rng)
        self._emit(event)
        return event

    def _fetch(self) -> tuple[PinEvent, bool]:
        now = self._clock()
        pins = self._current().pins
        try:
            result = self._transport.get(
                f"{self._url}/pinset",
                etag=pins.etag if pins is not None else None,
                max_bytes=MAX_PINSET_BYTES,
            )
        except FetchError as error:
            return PinEvent(EventKind.FETCH_FAILED, str(error), error=error), False
        if result.not_modified:
            if pins is None:
                message = "the server answered 304 Not Modified, but no pin set is in force"
                return PinEvent(EventKind.FETCH_FAILED, message), False
            return self._unchanged(pins, now), True
        try:
            etag = usable_etag(result.etag)
            fetched = self._store.verify(result.body, etag, now, self._fetch_keyring)
        except DocumentError as error:
            message = f"pin set refused: {type(error).__name__}: {error}"
            return PinEvent(EventKind.REFUSED, message, error=error), False
        except FetchError as error:
            return PinEvent(EventKind.FETCH_FAILED, f"keyring: {error}", error=error), False
        if pins is not None and fetched.version == pins.version:
            if (fetched.raw, fetched.etag) != (pins.raw, pins.etag):
                self._apply(fetched, now)  # same version, new ETag (or bytes): keep the newest
            return self._unchanged(fetched, now), True
        self._store.accept(fetched, now)
        self._checked = now
        self._apply(fetched, now)
        was = f"v{pins.version}" if pins is not None else "the bootstrap pins"
        message = f"pin set v{fetched.version} in force (was {was})"
        return PinEvent(EventKind.FETCHED, message, version=fetched.version), True

    def _unchanged(self, pins: VerifiedPins, now: datetime) -> PinEvent:
        self._store.remember(pins, now)
        self._checked = now
        return PinEvent(EventKind.NOT_MODIFIED, f"pin set v{pins.version} is current",
                        version=pins.version)

    def _fetch_keyring(self, version: int) -> bytes:
        url = f"{self._url}/keyring/{version}"
        return self._transport.get(url, etag=None, max_bytes=MAX_KEYRING_BYTES).body

    # -- background work ----------------------------------------------------------------------

    def _first_delay(self) -> float:
        """Seconds until the first background fetch: at once on bootstrap pins, else when the
        cached pin set's refresh hint says (counted from the server's last answer)."""
        if self._next_delay is not None:
            return self._next_delay
        pins = self._current().pins
        if pins is None or self._checked is None:
            return 0.0
        now = self._clock()
        hint = timedelta(seconds=pins.pinset.refresh_after)
        interval = self._policy.after_success(hint, pins.expires - now, self._rng)
        elapsed = (now - self._checked).total_seconds()
        return min(max(interval - elapsed, 0.0), interval)

    def _step(self) -> float:
        self.refresh()
        return self._next_delay if self._next_delay is not None else 0.0

    def _start(self, *, background: bool, push: bool) -> None:
        if background:
            delay = self._first_delay()
            self._refresher = (
                AsyncRefresher(self._step, delay)
                if _running_loop() is not None
                else ThreadRefresher(self._step, delay, name="pinwarden-refresh")
            )
            self._refresher.start()
        if push:
            self._push = PushSubscription(
                self._transport, f"{self._url}/events", self._announced, self._policy, self._rng
            )
            self._push.start()

    def _announced(self, version: int) -> None:
        if version <= (self.version or 0):
            return
        delay = self._push_delay()
        message = f"the server announced v{version}"
        if delay > 0:
            later = "at the next refresh" if self._refresher is None else f"in {delay:.0f} s"
            message += f"; fetched {later} (too soon after the last fetch)"
        self._emit(PinEvent(EventKind.PUSH_ANNOUNCED, message, version=version))
        if self._refresher is not None:
            self._refresher.wake(delay)
        elif delay == 0:
            self.refresh()

    def _push_delay(self) -> float:
        """Seconds before an announcement may start a fetch.

        At most one fetch per ``min_interval``, and none before the back-off after a failure has
        run: an event stream (a burst of publications, or a hostile stream) cannot drive fetches.
        """
        last = self._last_attempt
        if last is None:
            return 0.0
        gap = self._policy.min_interval.total_seconds()
        if self._failures and self._next_delay is not None:
            gap = max(gap, self._next_delay)
        return max(0.0, gap - (self._clock() - last).total_seconds())

    def flush_reports(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` seconds for queued violation reports to be sent."""
        return self._reporter.flush(timeout)

    def close(self) -> None:
        """Stop the refresh loop, the event stream and the report sender. The pins stay usable."""
        if self._closed:
            return
        self._closed = True
        if self._push is not None:
            self._push.stop()
        if self._refresher is not None:
            self._refresher.stop()
        self._reporter.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> DynamicPins:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> DynamicPins:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _emit(self, event: PinEvent) -> None:
        emit(self._on_event, event)

    def __repr__(self) -> str:
        version = self.version
        source = f"v{version}" if version is not None else "bootstrap pins"
        return f"DynamicPins({self._url!r}, {source}, generation {self.generation})"
