"""The ASGI application: public routes, the admin API under ``/v1/admin``, and the store sync."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount, Router

from pinwarden.server._admin_api import build_admin_api
from pinwarden.server._admin_gate import AdminGate
from pinwarden.server._audit import record
from pinwarden.server._channels import list_channels
from pinwarden.server._config import ServerConfig
from pinwarden.server._database import (
    is_postgresql,
    make_engine,
    make_session_factory,
    upgrade_database,
)
from pinwarden.server._errors import ConflictError
from pinwarden.server._events import EventBroker
from pinwarden.server._fetch_counts import FetchCounter, add_fetch_metrics
from pinwarden.server._metrics import Metrics
from pinwarden.server._models import KeyringRecord
from pinwarden.server._public import PublicEndpoints
from pinwarden.server._publish import LiveChainSource, Publisher, PublishOutcome
from pinwarden.server._ratelimit import RateLimiter, SharedSide
from pinwarden.server._reports import ReportRetention, store_report
from pinwarden.server._shared_limits import shared_buckets
from pinwarden.server._signing import KeyDirectorySigner, sync_keyrings
from pinwarden.server._store import PublishedStore
from pinwarden.server._sync import (
    StoreSync,
    notify_replicas_postgresql,
    notify_replicas_sqlite,
    served_document,
)
from pinwarden.server.alerts import AlertBook, WebhookDispatcher, open_alert_counts
from pinwarden.server.ct import CtWatcher, add_ct_metrics
from pinwarden.server.freshness import Freshener
from pinwarden.server.monitor import Monitor, MonitorPolicy
from pinwarden.server.ui import build_dashboard

__all__ = ["PinServerApp", "Services", "create_app"]

logger = logging.getLogger("pinwarden.server")


class Services:
    """Everything one server process holds: database, store, broker, publisher, metrics."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.engine = make_engine(config.database_url)
        self.sessions = make_session_factory(self.engine)
        self.store = PublishedStore()
        self.broker = EventBroker(
            max_streams=config.sse_max_streams,
            max_streams_per_client=config.sse_max_streams_per_client,
        )
        self.metrics = Metrics()
        self.fetch_counter = FetchCounter()  # pin-set fetches by version (rotate plan)
        self.database_up = True
        self.signer = (
            KeyDirectorySigner(config.key_dir, config.passphrase)
            if config.passphrase is not None
            else None
        )
        live = LiveChainSource(
            self.sessions,
            max_age=config.observation_max_age,
            cafile=config.ca_file,
            timeout=config.probe_timeout,
        )
        # Tells the other replicas of a change, inside its transaction (``broker.announce``
        # tells this process's event streams).
        self.notify_replicas = (
            notify_replicas_postgresql
            if is_postgresql(config.database_url)
            else notify_replicas_sqlite
        )
        self.publisher = Publisher(
            self.sessions,
            self.signer,
            live,
            self.notify_replicas,
            default_report_uri=config.default_report_uri,
        )
        self.sync = StoreSync(
            config.database_url,
            self.sessions,
            self.store,
            self.broker.announce,
            self.database_state,
            poll_seconds=config.poll_seconds,
        )
        # The rate limits every replica shares (docs/reliability.md): in Redis where configured,
        # else in the database; the admin gate's failed-token budget takes from them too.
        self.shared_limits = SharedSide(shared_buckets(self.sessions, config.limits_redis_url))
        self.limiter = RateLimiter(
            config.report_burst,
            config.report_per_minute,
            total_burst=config.report_total_burst,
            total_per_minute=config.report_total_per_minute,
            shared=self.shared_limits,
        )
        self.metrics.add_counter(
            "pinwarden_shared_limit_errors_total",
            "Failed calls to the replicas' shared rate limits (each replica then limits alone).",
            lambda: [({}, self.shared_limits.failures)],
        )
        self.report_retention = ReportRetention(config.report_max_rows, config.report_max_age)
        self.metrics.add_gauge(
            "pinwarden_published_version",
            "Version of the pin set served, per channel.",
            lambda: [({"channel": c}, v) for c, v in sorted(self.store.versions().items())],
        )
        self.metrics.add_gauge(
            "pinwarden_sse_clients",
            "Open server-sent-event streams.",
            lambda: [({}, self.broker.subscriber_count)],
        )
        # Operations (docs/operations.md): one alert book for every room that raises alerts.
        self.alerts = AlertBook([hook.name for hook in config.webhooks])
        self.freshener = Freshener(
            self.sessions,
            self.publisher if self.signer is not None else None,
            self.alerts,
            holder=config.replica_id,
        )
        self.monitor = Monitor(
            self.sessions,
            self.alerts,
            cafile=config.ca_file,
            policy=MonitorPolicy(timeout=config.probe_timeout),
        )
        self.webhooks = WebhookDispatcher(self.sessions, config.webhooks)
        # Certificate Transparency watch (docs/ct.md): rounds run where log lists are configured.
        self.ct_watch = CtWatcher(
            self.sessions, self.alerts, config.ct_log_lists, cafile=config.ca_file
        )
        add_ct_metrics(self.metrics, self.ct_watch)
        self.open_alerts: dict[str, int] = {}
        self._operations_metrics()
        add_fetch_metrics(self.metrics, self.fetch_counter)

    def _operations_metrics(self) -> None:
        gauge, counter = self.metrics.add_gauge, self.metrics.add_counter
        gauge(
            "pinwarden_alerts_open",
            "Open alerts by kind (docs/operations.md).",
            lambda: [({"kind": kind}, n) for kind, n in sorted(self.open_alerts.items())],
        )
        gauge(
            "pinwarden_pinset_expires_in_seconds",
            "Seconds until the newest pin set expires, per channel, at the last freshness round.",
            lambda: [
                ({"channel": c}, s) for c, s in sorted(self.freshener.seconds_to_expiry().items())
            ],
        )
        counter(
            "pinwarden_freshness_resigns_total",
            "Pin sets re-signed by freshness.",
            lambda: [({}, self.freshener.resigns)],
        )
        counter(
            "pinwarden_freshness_failures_total",
            "Freshness rounds that could not re-sign or read the database.",
            lambda: [({}, self.freshener.failures)],
        )
        counter(
            "pinwarden_monitor_checks_total",
            "Host checks by the monitor, by result.",
            lambda: [({"result": r}, n) for r, n in sorted(self.monitor.checks.items())],
        )
        counter(
            "pinwarden_webhook_deliveries_total",
            "Webhook delivery attempts by outcome.",
            lambda: [
                ({"outcome": outcome}, getattr(self.webhooks.totals, outcome))
                for outcome in ("delivered", "retried", "failed")
            ],
        )

    async def run_operations(self) -> None:
        """Freshness, the monitor, webhook delivery and the open-alert gauge; cancel to stop."""
        config = self.config
        await asyncio.gather(
            _supervised(
                "freshness",
                lambda: self.freshener.run_forever(config.freshness_interval, self._serve_quietly),
            ),
            _supervised(
                "monitor",
                lambda: self.monitor.run_forever(
                    config.replica_id,
                    every=config.monitor_interval,
                    per_channel=dict(config.monitor_schedule),
                ),
            ),
            _supervised("webhook delivery", self.webhooks.run_forever),
            _supervised("open-alert count", self._count_open_alerts),
            *(
                [
                    _supervised(
                        "CT watch",
                        lambda: self.ct_watch.run_forever(
                            config.replica_id, every=config.ct_interval
                        ),
                    )
                ]
                if config.ct_log_lists
                else []
            ),
            _supervised(
                "fetch counts",
                lambda: self.fetch_counter.flush_forever(self.sessions, config.replica_id),
            ),
        )

    async def _count_open_alerts(self, every: float = 15.0) -> None:
        while True:
            try:
                self.open_alerts = await asyncio.to_thread(self._read_open_alerts)
            except SQLAlchemyError as error:
                logger.warning("pinwarden: cannot count open alerts: %s", error)
            await asyncio.sleep(every)

    def _read_open_alerts(self) -> dict[str, int]:
        with self.sessions() as session:
            return open_alert_counts(session)

    def health_detail(self) -> list[str]:
        """What ``/healthz`` should say beyond "ok": why a pin set may lapse."""
        return self.freshener.health_lines()

    def database_state(self, up: bool) -> None:
        self.database_up = up
        self.metrics.database_up = int(up)

    def prepare_database(self) -> None:
        """Migrate (when configured) and mirror the key directory's keyrings (blocking)."""
        if self.config.migrate:
            upgrade_database(self.engine)
        if self.config.key_dir.exists():
            with self.sessions.begin() as session:
                sync_keyrings(session, self.config.key_dir)

    def save_report(self, report: dict[str, Any], client: str) -> None:
        with self.sessions.begin() as session:
            store_report(session, report, client, self.report_retention)

    async def run_publish(
        self, operation: Callable[..., PublishOutcome], *args: Any, **kwargs: Any
    ) -> PublishOutcome:
        """Publish in a thread; then serve and announce the new version from here at once."""
        try:
            outcome = await run_in_threadpool(operation, *args, **kwargs)
        except Exception:
            self.metrics.publishes["refused"] += 1
            raise
        if outcome.document is None:
            self.metrics.publishes["dry_run"] += 1
            return outcome
        self.metrics.publishes["forced" if outcome.forced else "published"] += 1
        self._serve(outcome)
        return outcome

    def _serve(self, outcome: PublishOutcome, *, push: bool = True) -> None:
        """Serve and push a new version from this process now (other replicas: NOTIFY, poll)."""
        assert outcome.document is not None
        if outcome.keyring is not None:  # servable before the pin set that names it
            self.store.put_keyring(*outcome.keyring)
        served = served_document(outcome.document, outcome.refresh_seconds)
        if self.store.put_pinset(outcome.channel, served) and push:
            self.broker.announce(outcome.channel, outcome.document.version)

    def _serve_quietly(self, outcome: PublishOutcome) -> None:
        """A freshness re-signature: served, not pushed; clients take it at their next poll
        (docs/operations.md, "No push")."""
        self._serve(outcome, push=False)

    async def resign_channels(self, actor: str, reason: str | None) -> dict[str, Any]:
        """Sign the published rules of every channel again, as new versions, with the current
        online keys of the key directory.

        The step after an online-key rotation done offline and exported here: clients walk their
        keyring to N+1 (signed by the root keys they trust, offline) and accept the re-signed pin
        sets; the rules they enforce do not change. The server signs pin sets only; it cannot
        make a keyring.
        """
        signer = self.signer
        if signer is None:
            raise ConflictError("this server has no signing key unlocked; it cannot sign")

        def resign() -> tuple[int, bytes, list[PublishOutcome]]:
            keyring = signer.current()
            with self.sessions.begin() as session:
                sync_keyrings(session, self.config.key_dir)
                record(session, actor, "resign-all", f"keyring:{keyring.version}", {}, reason)
                self.notify_replicas(session, "", 0)  # other replicas load the new keyring
                body = session.get_one(KeyringRecord, keyring.version).body
                names = [channel.name for channel in list_channels(session)]
            why = reason or f"re-signed under keyring v{keyring.version}"
            resigned = [self.publisher.resign(name, actor, reason=why) for name in names]
            return keyring.version, body, [outcome for outcome in resigned if outcome]

        version, body, outcomes = await run_in_threadpool(resign)
        self.store.put_keyring(version, body)
        for outcome in outcomes:
            self._serve(outcome)
        return {
            "keyring_version": version,
            "resigned": {o.channel: o.document.version for o in outcomes if o.document},
        }


_RESTART_AFTER = 30.0  # seconds before a background loop that raised runs again


async def _supervised(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Run ``loop`` forever, starting it again after an unexpected error: one failing round of
    one loop must not stop the others (``gather`` cancels nothing) nor, for freshness, let pin
    sets lapse. Cancellation stops it."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("pinwarden: the %s loop failed; restarting in %.0f s", name,
                             _RESTART_AFTER)
        await asyncio.sleep(_RESTART_AFTER)


def create_app(config: ServerConfig) -> PinServerApp:
    """The server's ASGI app. Startup migrates, loads the published documents, starts the sync."""
    services = Services(config)
    public = PublicEndpoints(
        services.store,
        services.broker,
        services.metrics,
        services.save_report,
        services.limiter,
        heartbeat_seconds=config.heartbeat_seconds,
        database_state=lambda: services.database_up,
        health_detail=services.health_detail,
        fetches=services.fetch_counter,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await run_in_threadpool(services.prepare_database)
        await services.sync.refresh()
        task = asyncio.create_task(services.sync.run())
        operations = asyncio.create_task(services.run_operations()) if config.operations else None
        # The imported frameworks are long-lived: keep the garbage collector from walking them
        # again and again on the hot path (the read path allocates per request).
        gc.freeze()
        try:
            yield
        finally:
            for running in (task, operations):
                if running is not None:
                    running.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await running
            # The counts since the last flush (up to FLUSH_SECONDS of them) would die with us.
            await services.fetch_counter.flush(services.sessions, config.replica_id)
            services.engine.dispose()

    return PinServerApp(
        services,
        routes=[
            *public.routes(),
            Mount(
                "/v1/admin",
                app=AdminGate(
                    build_admin_api(services), services.sessions, services.database_state
                ),
            ),
            Mount("/ui", app=build_dashboard(services)),
        ],
        lifespan=lifespan,
    )


class PinServerApp(Router):
    """The ASGI app: a bare Starlette ``Router`` of plain routes.

    Not a ``Starlette()`` application: its two middleware layers would run on every pin-set
    request, and the admin API (FastAPI) brings its own error handling.
    """

    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
