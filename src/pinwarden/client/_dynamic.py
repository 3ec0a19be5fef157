"""``DynamicPins``: pins fetched from a pin server, verified, cached, refreshed; a ``PinSource``.

The rules in force at any instant are those of the verified pin set and the bootstrap pins (the
``StaticPins`` the app was built with), and for each host the most specific pattern of either set
decides; on a tie, the signed rule (docs/dynamic.md, "What is in force"). When no valid pin set is
in force (none fetched yet, or it expired) the bootstrap pins apply alone: the client never falls
back to no pinning, and only a signed ``disabled`` rule switches a host off (docs/spec.md §3, §8).

``generation`` changes whenever the rules in force change: a new version, the pin set expiring, one
of its rules expiring. The enforcement engine checks a pooled connection again before its next
byte when the generation moved (docs/security.md rule 8), so a pin change reaches connections
already open. Time-driven changes need no timer: each read of ``generation`` compares the clock
with the next instant the rules change.
"""

from __future__ import annotations

import asyncio
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from pinwarden.client._cache import PinCache, channel_directory_name
from pinwarden.client._events import EventCallback, EventKind, PinEvent, PinStatus, emit
from pinwarden.client._fetch import (
    FetchError,
    HttpTransport,
    PinServerTransport,
    check_url,
    usable_etag,
)
from pinwarden.client._refresh import (
    AsyncRefresher,
    FetchBudget,
    Refresher,
    RefreshPolicy,
    ThreadRefresher,
)
from pinwarden.client._reporter import ReportPoster, ReportRoute, ReportSender, report_payload
from pinwarden.client._rules import PinRule, PinViolation, most_specific
from pinwarden.client._sse import PushSubscription
from pinwarden.client._static import StaticPins
from pinwarden.client._trust import (
    BOOTSTRAP_ORIGIN,
    ChannelError,
    TrustStore,
    VerifiedPins,
    channel_of,
    claimed_channel,
)
from pinwarden.document import (
    MAX_KEYRING_BYTES,
    MAX_KEYRING_STEPS,
    MAX_PINSET_BYTES,
    DocumentError,
    Keyring,
    SignatureError,
    load_keyring,
)

__all__ = ["CLOSE_TIMEOUT", "DynamicPins"]

CLOSE_TIMEOUT = 1.0
"""The longest ``close()`` waits for the background threads, in seconds, whatever the network."""

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
    """The signed rules in force, since when their source applies, and the next instant they
    change on their own (an expiry). Replaced whole, never changed: readers need no lock."""

    generation: int
    since: datetime
    pins: VerifiedPins | None = None
    rules: tuple[PinRule, ...] = ()
    until: Mapping[PinRule, datetime] = field(default_factory=dict)
    boundary: datetime | None = None

    @classmethod
    def of(
        cls, pins: VerifiedPins | None, now: datetime, generation: int, since: datetime
    ) -> _InForce:
        if pins is None or now >= pins.expires:
            return cls(generation, since)
        live = pins.live(now)
        boundary = min([pins.expires, *(until for _, until in live)])
        return cls(generation, since, pins, tuple(rule for rule, _ in live), dict(live), boundary)

    def next(self, pins: VerifiedPins | None, now: datetime) -> _InForce:
        """The state after ``pins`` (or an expiry) at ``now``; ``since`` moves with the version."""
        new = _InForce.of(pins, now, self.generation + 1, self.since)
        if _version(new.pins) != _version(self.pins):
            new = replace(new, since=now)
        return new

    @property
    def source(self) -> str:
        """Where the signed rules come from, as ``PinRule.origin`` says it."""
        return BOOTSTRAP_ORIGIN if self.pins is None else self.pins.origin

    def signed(self, rule: PinRule) -> bool:
        """Whether ``rule`` is one of the signed rules in force (by identity: a bootstrap rule
        with the same pattern and pins compares equal)."""
        return any(live is rule for live in self.rules)


def _version(pins: VerifiedPins | None) -> int | None:
    return pins.version if pins is not None else None


@dataclass(frozen=True)
class _Outcome:
    """What the fetches so far came to; replaced whole under the refresh lock."""

    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: PinEvent | None = None
    failures: int = 0
    next_delay: float | None = None
    stale: bool = False


class _ClosedWhileFetching(Exception):
    """close() ran while a fetch was under way: its answer is not applied."""


def _most_specific(
    signed: tuple[PinRule, ...], shipped: tuple[PinRule, ...], host: str
) -> PinRule | None:
    """The rule for ``host``: the most specific pattern of either set; a tie goes to the signed
    rule, which is newer (docs/dynamic.md, "What is in force")."""
    from_signed, from_shipped = most_specific(signed, host), most_specific(shipped, host)
    if from_signed is None or from_shipped is None:
        return from_signed or from_shipped
    if from_shipped.pattern.specificity > from_signed.pattern.specificity:
        return from_shipped
    return from_signed


class DynamicPins:
    """Pins from a pin server, usable wherever ``StaticPins`` is.

    ``url`` is the channel URL, ``https://pins.example.com/v1/channels/{channel}``; the client
    reads ``{url}/pinset``, ``{url}/keyring/{version}`` and, with ``push=True``, ``{url}/events``.
    A URL of another shape (a static export on a CDN) needs ``channel=``: a pin set signed for
    any other channel is refused, and a client that cannot tell its channel is a ``ValueError``.
    ``keyring`` is the keyring the app ships (bytes or ``Keyring``); ``bootstrap``, its pins.
    See docs/dynamic.md for every option; the main ones:

    - ``cache_dir``: where each channel's last pin set, followed keyrings and version floor are
      kept; without it the floor lives only as long as the process.
    - ``wait_for_first_fetch``: fetch before returning (never raises; an app that must not start on
      bootstrap pins checks ``version`` or ``status``). Under a running event loop use
      ``await open(...)``.
    - ``on_event``: called with each ``PinEvent`` from whichever thread did the work.
    - ``cafile`` / ``ssl_context``: trust for the pin server's own certificate (normal validation).
    - ``report_cafile`` / ``report_ssl_context``: trust for report URIs on other hosts than the pin
      server (default: the system trust store).
    - ``background``: refresh in a daemon thread, or as an asyncio task when constructed under a
      running loop. ``False``: only ``refresh()`` fetches.
    - ``app_id`` / ``app_version``: sent in violation reports.
    - ``transport``, ``clock``, ``policy``, ``rng``: for tests and tuning.

    A shipped keyring that does not load raises ``DocumentError`` here: that is a build error.
    Nothing after construction raises; what happens is told through events and ``status``.

    Threads. ``rule_for``, ``generation``, ``report``, ``version``, ``keyring_version`` and
    ``status`` may be called from any thread at any time, before and after ``close()``: they read
    one immutable snapshot of the rules in force (an expiry swaps it under a short lock, with no
    I/O) and never wait on the network. ``report`` runs inside the app's TLS handshakes: it only
    queues a report and wakes the refresher. ``refresh()`` may be called from any thread but an
    event loop's (it blocks for up to ``timeout`` per request); concurrent calls run one at a time.
    ``close()`` may be called from any thread, any number of times, and returns within
    ``CLOSE_TIMEOUT`` (1 s) even when the pin server hangs. Once it has returned: no fetch starts
    (``refresh()`` returns a ``closed`` event and does not fetch), announcements and mismatches
    start nothing, and an answer still in flight is discarded: its thread (a daemon) ends within
    the transport's time budget and applies no pins and writes no pin set (a keyring it verified
    may still be stored: each stands on its own root signatures). The pins in force stay usable
    and change only by expiry. ``on_event`` runs on the thread that did the work, and is not
    called once close() has returned (events are still logged); it may read anything and call
    ``close()``, but not ``refresh()``.
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
        report_cafile: str | None = None,
        report_ssl_context: ssl.SSLContext | None = None,
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
        self._channel = channel
        self._bootstrap = bootstrap
        self._shipped_rules = tuple(
            replace(rule, origin=BOOTSTRAP_ORIGIN) for rule in bootstrap.rules
        )
        self._on_event = on_event
        self._clock = clock or _utc_now
        self._policy = policy or RefreshPolicy()
        self._rng = rng or random.SystemRandom()
        self._app = (app_id, app_version)
        self._transport: PinServerTransport = transport or HttpTransport(
            cafile=cafile, ssl_context=ssl_context, timeout=timeout
        )
        shipped = keyring if isinstance(keyring, Keyring) else load_keyring(keyring)
        self._state_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        # Held by close() to set ``_closed`` and by each step that applies a fetched answer, so
        # that no answer is applied once close() has returned. Re-entrant: ``on_event`` may call
        # close() while an answer is applied.
        self._commit_lock = threading.RLock()
        self._closed = False
        self._refresher: Refresher | None = None
        self._push: PushSubscription | None = None
        self._reporter = ReportSender(
            self._report_poster(transport, report_cafile, report_ssl_context, timeout),
            interval=report_interval, clock=self._clock, on_event=on_event,
        )
        now = self._clock()
        self._announce_budget = FetchBudget(self._policy, now)
        self._mismatch_budget = FetchBudget(self._policy, now)
        self._outcome = _Outcome()
        self._store, (pins, self._checked) = self._open_store(
            shipped, cache_dir, channel, max_keyring_steps, now
        )
        self._started = now
        self._state = _InForce.of(pins, now, generation=0, since=now)
        if self._state.pins is not None:
            version = self._state.pins.version
            self._emit(PinEvent(EventKind.CACHE_LOADED, f"pin set v{version} from the cache",
                                version=version))
        if wait_for_first_fetch:
            self.refresh()
        self._start(background=background, push=push)

    def _open_store(
        self,
        shipped: Keyring,
        cache_dir: str | os.PathLike[str] | None,
        channel: str,
        max_keyring_steps: int,
        now: datetime,
    ) -> tuple[TrustStore, tuple[VerifiedPins | None, datetime | None]]:
        """The trust store over ``cache_dir``, loaded. When the directory cannot be used
        (read-only, full, not a directory): a ``cache-write-failed`` event, and new pin sets and
        the version floor live in memory only. A cache that can still be read (a disk remounted
        read-only) is read: its last good pin set, verified again as always, applies rather than
        the bootstrap pins, and each write that fails later says so again. Otherwise the client
        runs as with ``cache_dir=None``. The constructor never fails on a cache."""

        def loaded(
            cache: PinCache | None,
        ) -> tuple[TrustStore, tuple[VerifiedPins | None, datetime | None]]:
            store = TrustStore(shipped, cache, channel=channel,
                               max_keyring_steps=max_keyring_steps, emit=self._emit)
            return store, store.load(now)

        if cache_dir is not None:
            try:
                return loaded(PinCache.for_channel(cache_dir, channel, claimed_channel))
            except OSError as error:
                self._emit(PinEvent(
                    EventKind.CACHE_WRITE_FAILED,
                    f"cache_dir {os.fspath(cache_dir)!r} cannot be used "
                    f"({error.strerror or error}); new pin sets and the version floor live in "
                    "memory only, as long as the process",
                    error=error,
                ))
            with suppress(OSError):  # read what it holds, if it can be read
                return loaded(PinCache(Path(cache_dir) / channel_directory_name(channel)))
        return loaded(None)

    def _report_poster(
        self,
        transport: PinServerTransport | None,
        report_cafile: str | None,
        report_ssl_context: ssl.SSLContext | None,
        timeout: float,
    ) -> ReportPoster:
        """The pin server's trust for reports to its own origin, the report trust elsewhere.

        A ``transport`` given (a test's simulator) carries the reports too, unless report trust
        is given as well.
        """
        if transport is not None and report_cafile is None and report_ssl_context is None:
            return transport
        elsewhere = HttpTransport(cafile=report_cafile, ssl_context=report_ssl_context,
                                  timeout=timeout)
        return ReportRoute(self._url, self._transport, elsewhere)

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
        """The most specific rule for ``host`` of the signed rules in force and the bootstrap
        rules (whose ``origin`` is ``"the shipped bootstrap pins"``); a tie goes to the signed."""
        return _most_specific(self._current().rules, self._shipped_rules, host)

    def report(self, violation: PinViolation) -> None:
        """Hand the violation to the bootstrap's ``on_violation``, bring the next fetch forward
        (the server may have published pins this client has not seen yet), and queue a report if
        the rule has a report URI. Never raises or blocks: this runs inside the app's TLS
        handshake."""
        self._bootstrap.report(violation)
        self._wake_after_mismatch()
        uri = violation.rule.report_uri
        if uri is None:
            return
        try:
            self._reporter.submit(uri, violation, self._payload(violation))
        except Exception as error:
            self._emit(PinEvent(EventKind.REPORT_DROPPED, f"report not queued: {error}",
                                error=error))

    def _payload(self, violation: PinViolation) -> dict[str, Any]:
        """The report: ``channel`` and ``pinset-version`` only for a rule of the signed pin set
        in force; ``rule-source`` always says where the rule came from."""
        state = self._state
        signed = state.pins if state.pins is not None and state.signed(violation.rule) else None
        return report_payload(
            violation,
            expires=state.until.get(violation.rule) if signed is not None else None,
            pinset_version=signed.version if signed is not None else None,
            channel=signed.pinset.channel if signed is not None else None,
            app_id=self._app[0],
            app_version=self._app[1],
        )

    def _wake_after_mismatch(self) -> None:
        """A mismatch brings the next fetch forward, within the fetch budget; with no refresh
        loop (``background=False``) only ``refresh()`` fetches, so nothing happens here."""
        refresher = self._refresher
        if refresher is not None and not self._closed:
            # A lock held for a few instructions: never blocks the handshake.
            refresher.wake(self._early_fetch_delay(self._mismatch_budget))

    # -- what is in force ---------------------------------------------------------------------

    @property
    def version(self) -> int | None:
        """The pin-set version in force; ``None`` while the bootstrap pins apply alone."""
        return _version(self._current().pins)

    @property
    def keyring_version(self) -> int:
        return self._store.keyring.version

    @property
    def status(self) -> PinStatus:
        """Which pins are in force since when, and how the pin server has been answering."""
        state, outcome = self._current(), self._outcome
        return PinStatus(
            source=state.source,
            version=_version(state.pins),
            channel=self._channel,
            since=state.since,
            last_success=outcome.last_success,
            last_attempt=outcome.last_attempt,
            last_error=outcome.last_error,
            failures=outcome.failures,
            stale=outcome.stale,
        )

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
            self._state = new = state.next(state.pins, now)
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
                                version=_version(state.pins)))
        return new

    def _apply(self, pins: VerifiedPins, now: datetime) -> None:
        with self._state_lock:
            self._state = self._state.next(pins, now)

    @contextmanager
    def _committing(self) -> Iterator[None]:
        """Apply a fetched answer only if close() has not run (see the class docstring)."""
        with self._commit_lock:
            if self._closed:
                raise _ClosedWhileFetching
            yield

    # -- fetching -----------------------------------------------------------------------------

    def refresh(self) -> PinEvent:
        """Fetch now, verify and apply; the event that says what happened. Never raises.

        After ``close()``: a ``closed`` event, and nothing is fetched.
        """
        if self._closed:
            return _closed_event()
        with self._refresh_lock:
            if self._closed:
                return _closed_event()
            now = self._clock()
            try:
                event, succeeded = self._fetch()
            except _ClosedWhileFetching:
                return _closed_event("closed while fetching: the answer was discarded")
            except Exception as error:
                # A transport or verifier raised what it should not: still only an event, so
                # refresh() and wait_for_first_fetch never raise and the loop backs off.
                message = f"unexpected error: {type(error).__name__}: {error}"
                event, succeeded = PinEvent(EventKind.FETCH_FAILED, message, error=error), False
            stale = self._record(event, succeeded, attempt=now)
        self._emit(event)
        if stale is not None:
            self._emit(stale)
        return event

    def _record(self, event: PinEvent, succeeded: bool, attempt: datetime) -> PinEvent | None:
        """Update the outcome after a fetch; the ``stale`` event if the pins just became stale."""
        now = self._clock()
        pins = self._current().pins
        was = self._outcome
        if succeeded and pins is not None:
            hint = timedelta(seconds=pins.pinset.refresh_after)
            delay = self._policy.after_success(hint, pins.expires - now, self._rng)
            self._outcome = _Outcome(attempt, now, None, 0, delay, False)
            return None
        failures = was.failures + 1
        delay = self._policy.after_failure(failures, self._rng)
        unconfirmed = self._checked or self._started
        stale = now - unconfirmed > 2 * self._refresh_interval(pins, now)
        self._outcome = _Outcome(attempt, was.last_success, event, failures, delay, stale)
        if not stale or was.stale:
            return None
        source = self._current().source
        message = (
            f"the pin server has not confirmed the pins in force ({source}) since "
            f"{unconfirmed:%Y-%m-%dT%H:%M:%SZ}: {failures} fetches failed in a row, the last: "
            f"{event.message}"
        )
        return PinEvent(EventKind.STALE, message, version=_version(pins), error=event.error)

    def _refresh_interval(self, pins: VerifiedPins | None, now: datetime) -> timedelta:
        if pins is None:
            return self._policy.interval(None, None)
        return self._policy.interval(
            timedelta(seconds=pins.pinset.refresh_after), pins.expires - now
        )

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
            return self._failed(error, "no pin set"), False
        if result.not_modified:
            if pins is None:
                message = "the server answered 304 Not Modified, but no pin set is in force"
                return PinEvent(EventKind.FETCH_FAILED, message), False
            return self._unchanged(pins, now), True
        try:
            etag = usable_etag(result.etag)
            fetched = self._store.verify(result.body, etag, now, self._fetch_keyring)
        except DocumentError as error:
            message = f"pin set refused: {type(error).__name__}: {error}{_next_step(error)}"
            return PinEvent(EventKind.REFUSED, message, error=error), False
        except FetchError as error:
            return self._failed(error, "no keyring the pin set names"), False
        if pins is not None and fetched.version == pins.version:
            with self._committing():
                if (fetched.raw, fetched.etag) != (pins.raw, pins.etag):
                    self._apply(fetched, now)  # same version, new ETag (or bytes): keep it
                return self._unchanged(fetched, now), True
        with self._committing():
            self._store.accept(fetched, now)
            self._checked = now
            self._apply(fetched, now)
        was = f"v{pins.version}" if pins is not None else "the bootstrap pins"
        message = f"pin set v{fetched.version} in force (was {was})"
        return PinEvent(EventKind.FETCHED, message, version=fetched.version), True

    def _failed(self, error: FetchError, missing: str) -> PinEvent:
        """``misconfigured`` when the server says it does not know what was asked (HTTP 4xx:
        a wrong URL, an unknown channel, a keyring it does not have), else ``fetch-failed``."""
        status = error.status
        if status is not None and 400 <= status < 500 and status not in _TRANSIENT_4XX:
            message = (
                f"{error}: the pin server has {missing} here; check the URL {self._url} "
                f"and that the server publishes channel {self._channel!r}"
            )
            return PinEvent(EventKind.MISCONFIGURED, message, error=error)
        prefix = "keyring: " if missing.startswith("no keyring") else ""
        return PinEvent(EventKind.FETCH_FAILED, f"{prefix}{error}", error=error)

    def _unchanged(self, pins: VerifiedPins, now: datetime) -> PinEvent:
        with self._committing():
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
        if self._outcome.next_delay is not None:
            return self._outcome.next_delay
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
        delay = self._outcome.next_delay
        return delay if delay is not None else 0.0

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
        """A newer version announced: fetch at once if the fetch budget allows, else as soon as
        it does (with no refresh loop: at the next ``refresh()``)."""
        if self._closed or version <= (self.version or 0):
            return
        delay = self._early_fetch_delay(self._announce_budget)
        message = f"the server announced v{version}"
        if delay > 0:
            later = "at the next refresh" if self._refresher is None else f"in {delay:.0f} s"
            message += f"; fetched {later} (fetch budget spent, or backing off after failures)"
        self._emit(PinEvent(EventKind.PUSH_ANNOUNCED, message, version=version))
        if self._refresher is not None:
            self._refresher.wake(delay)
        elif delay == 0:
            self.refresh()

    def _early_fetch_delay(self, budget: FetchBudget) -> float:
        """Seconds before a fetch that no schedule asked for (an announcement, a mismatch) may
        start: never before the back-off after a failure has run, then when ``budget`` has a
        token (``RefreshPolicy.burst`` at once, then one per ``min_interval``; a fetch allowed at
        once takes it). An event stream or a stream of mismatches (a burst of publications, an
        attacker) cannot drive fetches; refused connections cannot delay the announcement of the
        pins that fix them, which draws on its own budget."""
        now = self._clock()
        outcome = self._outcome
        if outcome.failures and outcome.next_delay is not None and outcome.last_attempt:
            backoff = outcome.next_delay - (now - outcome.last_attempt).total_seconds()
            if backoff > 0:
                return backoff
        return budget.claim(now)

    def flush_reports(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` seconds for queued violation reports to be sent."""
        return self._reporter.flush(timeout)

    def close(self) -> None:
        """Stop the refresh loop, the event stream and the report sender; the pins stay usable.

        Returns within ``CLOSE_TIMEOUT`` (1 s) however the pin server behaves: a fetch, stream
        or report under way is abandoned, not awaited (see the class docstring). Idempotent.
        """
        with self._commit_lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + CLOSE_TIMEOUT

        def remaining() -> float:
            return max(deadline - time.monotonic(), 0.0)

        if self._push is not None:
            self._push.stop(remaining())
        if self._refresher is not None:
            self._refresher.stop(remaining())
        self._reporter.close(remaining())

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
        emit(None if self._closed else self._on_event, event)

    def __repr__(self) -> str:
        version = self.version
        source = f"v{version}" if version is not None else "bootstrap pins"
        return f"DynamicPins({self._url!r}, {source}, generation {self.generation})"


# 408 Request Timeout and 429 Too Many Requests say "later", not "not here".
_TRANSIENT_4XX = frozenset({408, 429})


def _closed_event(message: str = "the client is closed: nothing was fetched") -> PinEvent:
    return PinEvent(EventKind.CLOSED, message)


def _next_step(error: DocumentError) -> str:
    """What to check when a refusal looks like a configuration mistake rather than an attack."""
    if isinstance(error, ChannelError):
        return " (check the channel in the URL, or channel=)"
    if isinstance(error, SignatureError):
        return (
            " (if no one is attacking the connection: the app's shipped keyring is not the one "
            "this pin server signs with)"
        )
    return ""
