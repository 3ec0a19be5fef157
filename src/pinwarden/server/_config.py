"""Where a server keeps its state, and the settings one ``pinwarden serve`` process runs with."""

from __future__ import annotations

import json
import os
import secrets
import socket
import ssl
from dataclasses import MISSING, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from pinwarden.document import FormatError, check_report_uri
from pinwarden.server._database import sqlite_url
from pinwarden.server._errors import ConfigError
from pinwarden.server.alerts import WebhookEndpoint

__all__ = ["Bound", "DataDirectory", "ServerConfig"]


class DataDirectory:
    """``DIR/pinwarden.db`` (SQLite), ``DIR/keys/`` (the server key directory: keyrings and online
    keys, never a root key), ``DIR/server.json``.

    ``server.json`` records a database URL given to ``pinwarden init`` so ``serve`` needs only
    ``--data``. ``DIR/passphrase`` exists only where ``pinwarden quickstart`` (``make run``) made a
    development passphrase; production passes ``--passphrase-env`` or ``--passphrase-file``.
    ``DIR/offline-root-keys/`` exists only where ``init`` made the root keys for development; the
    server never reads it, and it belongs off the server.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def database_file(self) -> Path:
        return self.path / "pinwarden.db"

    @property
    def key_dir(self) -> Path:
        return self.path / "keys"

    @property
    def development_root_key_dir(self) -> Path:
        return self.path / "offline-root-keys"

    @property
    def settings_file(self) -> Path:
        return self.path / "server.json"

    @property
    def dev_passphrase_file(self) -> Path:
        return self.path / "passphrase"

    def is_initialized(self) -> bool:
        return self.settings_file.exists()

    def settings(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.settings_file.read_text())
        except FileNotFoundError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def write_settings(self, settings: dict[str, Any]) -> None:
        """Written 0600: a PostgreSQL URL may carry a password."""
        fd = os.open(self.settings_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(settings, handle, indent=2, sort_keys=True)
            handle.write("\n")

    def database_url(self, override: str | None = None) -> str:
        """``override``, else the URL recorded at init, else the SQLite file in the directory."""
        recorded = self.settings().get("database_url")
        return override or (
            recorded if isinstance(recorded, str) else sqlite_url(self.database_file)
        )


@dataclass(frozen=True)
class Bound:
    """The range a numeric setting allows, and the ``pinwarden serve`` option that sets it."""

    low: Any  # an int, float or timedelta, like the setting
    high: Any
    option: str | None = None
    unit: str = ""

    def text(self) -> str:
        return f"{_shown(self.low)} to {_shown(self.high)}{f' {self.unit}' if self.unit else ''}"


def _shown(value: int | float | timedelta) -> str:
    """A setting's value for a message: in seconds or days, digits grouped, never a huge integer
    (Python refuses to print one of more than 4300 digits)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds >= 86400:
            days = seconds / 86400
            return f"{days:g} day{'' if days == 1 else 's'}"
        return f"{seconds:g} second{'' if seconds == 1 else 's'}"
    if isinstance(value, float):
        return f"{value:g}"
    if abs(value) >= 10**18:
        return f"an integer of {value.bit_length()} bits"
    return f"{value:_}"


def _bound(low: Any, high: Any, option: str | None = None, unit: str = "") -> dict[str, Bound]:
    """A field's metadata: its ``Bound``, read by ``ServerConfig.validate``."""
    return {"bound": Bound(low, high, option, unit)}


def _type_name(kind: type) -> str:
    return {float: "a number", int: "an integer", timedelta: "a timedelta"}.get(kind, kind.__name__)


def _replica_id() -> str:
    """Names this process in the operation leases: unique per start, readable in the table."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server process, validated when made (``ConfigError``, one line).

    ``passphrase`` unlocks the online signing key; a replica without it serves and pushes but does
    not publish. ``ca_file`` adds trust anchors for the live-chain checks of safe publishing;
    ``observation_max_age`` bounds how old this server's own observation may be to stand in for a
    host it cannot reach. Reports: ``report_burst``/``report_per_minute`` per client address,
    ``report_total_*`` for all clients, and the rows kept (``report_max_rows`` newest, none older
    than ``report_max_age``). Event streams: ``sse_max_streams`` in all,
    ``sse_max_streams_per_client`` per client address. Operations (docs/operations.md):
    ``operations`` runs freshness, the monitor and webhook delivery in this process (each
    guarded so one replica at a time does a job); ``freshness_interval`` and
    ``monitor_interval`` space their rounds (``monitor_schedule``: (channel, interval) pairs for
    channels checked more or less often); ``webhooks`` receive the alerts; ``replica_id``
    names this process in the leases (default: host name, process id and a random part).

    Each default and range is written here once (``defaults()``, ``bounds()``); the command line
    leaves out an option it was not given, so the default here applies. The lower bounds keep the
    server's loops from spinning (``poll_seconds``, ``heartbeat_seconds``) and every limit
    meaningful (a cap of 0 would refuse everything).
    """

    database_url: str
    key_dir: Path
    passphrase: bytes | None = field(default=None, repr=False)  # never in a traceback or log
    public_url: str | None = None
    ca_file: str | None = None
    observation_max_age: timedelta = field(
        default=timedelta(hours=1), metadata=_bound(timedelta(0), timedelta(days=1))
    )
    probe_timeout: float = field(default=5.0, metadata=_bound(0.1, 120.0, unit="seconds"))
    heartbeat_seconds: float = field(
        default=15.0, metadata=_bound(0.1, 3600.0, "--heartbeat", "seconds")
    )
    poll_seconds: float = field(default=2.0, metadata=_bound(0.05, 3600.0, "--poll", "seconds"))
    report_burst: int = field(default=20, metadata=_bound(1, 1_000_000))
    report_per_minute: float = field(default=20.0, metadata=_bound(0.01, 1_000_000.0))
    report_total_burst: int = field(default=200, metadata=_bound(1, 10_000_000))
    report_total_per_minute: float = field(
        default=600.0, metadata=_bound(0.01, 10_000_000.0, "--report-total-per-minute")
    )
    report_max_rows: int = field(
        default=100_000, metadata=_bound(1, 1_000_000_000, "--report-max-rows")
    )
    report_max_age: timedelta = field(
        default=timedelta(days=90),
        metadata=_bound(timedelta(days=1), timedelta(days=3650), "--report-max-age-days"),
    )
    sse_max_streams: int = field(default=10_000, metadata=_bound(1, 1_000_000, "--sse-max-streams"))
    sse_max_streams_per_client: int = field(
        default=50, metadata=_bound(1, 1_000_000, "--sse-max-streams-per-client")
    )
    migrate: bool = True
    operations: bool = True
    freshness_interval: timedelta = field(
        default=timedelta(minutes=10),
        metadata=_bound(timedelta(seconds=1), timedelta(hours=12)),
    )
    monitor_interval: timedelta = field(
        default=timedelta(hours=1),
        metadata=_bound(timedelta(seconds=10), timedelta(days=7)),
    )
    monitor_schedule: tuple[tuple[str, timedelta], ...] = ()
    webhooks: tuple[WebhookEndpoint, ...] = ()
    replica_id: str = field(default_factory=_replica_id)
    # Where the replicas share their rate limits: Redis at this URL, else the database
    # (docs/reliability.md). Not in repr: the URL may hold a password.
    limits_redis_url: str | None = field(default=None, repr=False)
    # The CT watch (docs/ct.md): v3 log lists (files or URLs) and the time between rounds; no
    # list, no watch.
    ct_log_lists: tuple[str, ...] = ()
    ct_interval: timedelta = field(
        default=timedelta(minutes=5),
        metadata=_bound(timedelta(seconds=10), timedelta(days=1)),
    )

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each setting that has a default, and that default."""
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}

    @classmethod
    def bounds(cls) -> dict[str, Bound]:
        """Each numeric setting and the range it allows."""
        return {f.name: f.metadata["bound"] for f in fields(cls) if "bound" in f.metadata}

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the first setting of the wrong type or out of range."""
        for name, bound in self.bounds().items():
            _check_bounded(name, getattr(self, name), bound)
        _check_text("database_url", self.database_url, option="--database-url")
        _check_optional_text("public_url", self.public_url, option="--public-url")
        if self.public_url is not None:
            _check_public_url(self.public_url)
        if not isinstance(self.key_dir, Path):
            raise ConfigError(f"key_dir must be a pathlib.Path; got {type(self.key_dir).__name__}")
        if self.passphrase is not None and not isinstance(self.passphrase, bytes):
            raise ConfigError("passphrase must be bytes or None")  # never echo a secret
        if not isinstance(self.migrate, bool):
            raise ConfigError(f"migrate must be True or False; got {type(self.migrate).__name__}")
        _check_optional_text("ca_file", self.ca_file, option="--ca-file")
        _check_optional_text("limits_redis_url", self.limits_redis_url, option="--limits-redis-url")
        if self.limits_redis_url is not None and not self.limits_redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ConfigError(
                "limits_redis_url (--limits-redis-url) must be a redis://, rediss:// or unix:// URL"
            )
        if self.ca_file is not None:
            _check_ca_file(self.ca_file)
        if not isinstance(self.operations, bool):
            kind = type(self.operations).__name__
            raise ConfigError(f"operations must be True or False; got {kind}")
        if not isinstance(self.replica_id, str) or not 0 < len(self.replica_id) <= 200:
            raise ConfigError("replica_id must be a text of 1 to 200 characters")
        _check_webhooks(self.webhooks)
        _check_monitor_schedule(self.monitor_schedule, self.bounds()["monitor_interval"])
        _check_ct_log_lists(self.ct_log_lists)

    @property
    def default_report_uri(self) -> str | None:
        return f"{self.public_url.rstrip('/')}/v1/reports" if self.public_url else None


def _check_public_url(public_url: str) -> None:
    """The default report URI is built from ``public_url``: it must pass the report URI grammar of
    docs/spec.md §3.3, or every publish would fail at signing."""
    try:
        check_report_uri(f"{public_url.rstrip('/')}/v1/reports")
    except FormatError:
        raise ConfigError(
            "public_url (--public-url) must be an http:// or https:// URL in lower case, with no "
            f"user info, query or fragment; got {public_url[:200]!r}"
        ) from None


_MAX_TEXT = 4096


def _named(name: str, option: str | None) -> str:
    return f"{name} ({option})" if option else name


def _check_bounded(name: str, value: object, bound: Bound) -> None:
    kind = type(bound.low)
    accepted = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) or not isinstance(value, accepted):
        raise ConfigError(
            f"{_named(name, bound.option)} must be {_type_name(kind)} from {bound.text()}; "
            f"got {type(value).__name__}"
        )
    value = cast("int | float | timedelta", value)
    if not bound.low <= value <= bound.high:  # NaN compares false: refused too
        raise ConfigError(
            f"{_named(name, bound.option)} must be from {bound.text()}; got {_shown(value)}"
        )


def _check_text(name: str, value: object, *, option: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{_named(name, option)} must be a non-empty string")
    if len(value) > _MAX_TEXT or "\0" in value:
        raise ConfigError(
            f"{_named(name, option)} must be at most {_MAX_TEXT} characters without NUL"
        )
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate, e.g. from undecodable command-line bytes
        raise ConfigError(f"{_named(name, option)} is not valid Unicode text") from None


def _check_monitor_schedule(schedule: object, bound: Bound) -> None:
    """(channel name, interval) pairs, each interval in the range of ``monitor_interval``."""
    option = "monitor_schedule (--monitor-every)"
    if not isinstance(schedule, tuple):
        raise ConfigError(f"{option} must be a tuple of (channel, interval) pairs")
    for entry in schedule:
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)):
            raise ConfigError(f"{option} must be a tuple of (channel, interval) pairs")
        _check_text("monitor_schedule channel", entry[0], option="--monitor-every")
        _check_bounded(f"the monitor interval of {entry[0][:200]!r}", entry[1], bound)


def _check_ct_log_lists(sources: object) -> None:
    """A tuple of at most 20 log list files or URLs."""
    if not isinstance(sources, tuple) or len(sources) > 20:
        raise ConfigError("ct_log_lists (--ct-log-list) must be a tuple of at most 20 lists")
    for source in sources:
        _check_text("ct_log_lists", source, option="--ct-log-list")


def _check_webhooks(webhooks: object) -> None:
    """A tuple of ``WebhookEndpoint`` (each checked when made), names unique."""
    if not isinstance(webhooks, tuple) or not all(
        isinstance(hook, WebhookEndpoint) for hook in webhooks
    ):
        raise ConfigError("webhooks must be a tuple of WebhookEndpoint (--webhook NAME=URL)")
    names = [hook.name for hook in webhooks]
    if len(set(names)) != len(names):
        raise ConfigError("webhooks (--webhook): each endpoint needs its own name")


def _check_optional_text(name: str, value: object, *, option: str) -> None:
    if value is not None:
        _check_text(name, value, option=option)


def _check_ca_file(path: str) -> None:
    """Loaded now: a missing file would otherwise surface only at a publish, as an error that
    reads like an unreachable host."""
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"ca_file (--ca-file) {path!r} cannot be loaded: {error}") from None
