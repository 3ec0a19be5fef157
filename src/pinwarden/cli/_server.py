"""Server commands: ``init``, ``serve``, ``quickstart`` (what ``make run`` runs), ``export-static``
and ``recover-token``.

The server's packages (SQLAlchemy, FastAPI, uvicorn, …) are imported only inside these handlers:
the client install (``pip install pinwarden``) has the CLI without them, and these commands then
say to install ``pinwarden[server]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import os
import re
import secrets
import signal
import ssl
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinwarden.cli._admin import export_static_from_server
from pinwarden.cli._admin_client import add_connection_options, client_from_args
from pinwarden.cli._common import EXIT_INPUT, EXIT_OK, CommandError, print_json, printable
from pinwarden.cli._secrets import add_passphrase_options, read_passphrase

if TYPE_CHECKING:
    from pinwarden.server import DataDirectory, InitResult, ServerConfig

__all__ = [
    "data_dir",
    "data_option",
    "database_errors",
    "register",
    "require_server_packages",
]

_SERVER_PACKAGES = ("sqlalchemy", "alembic", "fastapi", "uvicorn", "psycopg")
_DEMO_CHANNEL = "demo"


def require_server_packages() -> None:
    for name in _SERVER_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            raise CommandError(
                f"the server needs {name!r}: install pinwarden[server] "
                "(pip install 'pinwarden[server]')",
                EXIT_INPUT,
            ) from None


def data_dir(args: argparse.Namespace, *, initialized: bool) -> DataDirectory:
    from pinwarden.server import DataDirectory

    data = DataDirectory(args.data)
    if initialized and not data.is_initialized():
        raise CommandError(f"{args.data} is not a pinwarden data directory: run pinwarden init")
    return data


def data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="the server's data directory")
    parser.add_argument(
        "--database-url",
        help="postgresql+psycopg://user@host/db (default: the URL given to init, or SQLite)",
    )


def register(subparsers: Any) -> None:
    init = subparsers.add_parser(
        "init",
        help="create a server data directory: database, online signing keys, first admin token",
        description="Creates DIR with the SQLite database (or migrates --database-url), the "
        "server key directory DIR/keys (the keyrings and the online keys, encrypted with the "
        "passphrase; never a root key) and prints a first admin token, once. Production: make "
        "the keys offline (pinwarden keys init --dir OFFLINE) and give --keys-from OFFLINE. "
        "Without it, root keys are made for development in DIR/offline-root-keys: move that "
        "directory off the server.",
    )
    data_option(init)
    init.add_argument(
        "--keys-from",
        metavar="OFFLINE",
        help="the offline key directory (or an export of it): only its keyrings and online "
        "keys are copied",
    )
    _online_key_option(init)
    init.add_argument("--json", action="store_true", help="print JSON")
    add_passphrase_options(init, required=True, what="passphrase (or, with --online-key, PIN)")
    init.set_defaults(handler=_run_init)

    serve = subparsers.add_parser("serve", help="run the pin server")
    data_option(serve)
    _serve_options(serve)
    serve.add_argument(
        "--no-signing",
        action="store_true",
        help="serve and push without unlocking the signing key (this replica cannot publish)",
    )
    _online_key_option(serve)
    add_passphrase_options(serve, required=True, what="passphrase (or the token's PIN)")
    serve.set_defaults(handler=_run_serve)

    quickstart = subparsers.add_parser(
        "quickstart",
        help="init with a development passphrase if needed, then serve (what `make run` runs)",
        description="Development default: the passphrase is generated into DIR/passphrase "
        "(mode 0600) and the root keys into DIR/offline-root-keys (never read by the server). "
        "Production: keys made offline, pinwarden init --keys-from, pinwarden serve with "
        "--passphrase-env/-file.",
    )
    data_option(quickstart)
    _serve_options(quickstart)
    quickstart.set_defaults(handler=_run_quickstart)

    export = subparsers.add_parser(
        "export-static",
        help="write the published pin sets and keyrings as files, at the URL paths they are served",
    )
    export.add_argument("out_dir", metavar="OUT_DIR")
    export.add_argument(
        "--data", metavar="DIR", help="the server's data directory (or --server with a read token)"
    )
    export.add_argument(
        "--database-url",
        help="postgresql+psycopg://user@host/db (default: the URL given to init, or SQLite)",
    )
    add_connection_options(export)
    export.set_defaults(handler=_run_export)

    recover = subparsers.add_parser(
        "recover-token",
        help="make a new admin token directly in the database (needs the data directory)",
    )
    data_option(recover)
    recover.add_argument("--name", default="recovered-admin")
    recover.add_argument("--json", action="store_true", help="print JSON")
    recover.set_defaults(handler=_run_recover)


def _online_key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--online-key",
        metavar="URI",
        help="sign in a PKCS#11 token: pkcs11:token=LABEL;object=KEY?module-path=LIB.so "
        "(RFC 7512; no PIN in it: the PIN comes from --passphrase-env/-file). Needs "
        "pinwarden[hsm]; docs/keys.md",
    )


def port(text: str) -> int:
    """An argparse type (its name is in argparse's "invalid port value" message)."""
    number = int(text)
    if not 1 <= number <= 65535:
        raise ValueError(text)
    return number


def trusted_proxy(text: str) -> str:
    """An argparse type: an IP address or network, as uvicorn's proxy-header check reads it."""
    import ipaddress

    return str(ipaddress.ip_network(text, strict=False))


def _behind_proxies(app: Any, args: argparse.Namespace) -> Any:
    """Take the client address from ``X-Forwarded-For`` only on a connection from a
    ``--trusted-proxy``: the report limits and the failed-token budget are per client address,
    and any client can write the header. uvicorn's own check (on by default, trusting
    127.0.0.1) is turned off; this one serves both servers."""
    if not args.trusted_proxy:
        return app
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    return ProxyHeadersMiddleware(app, trusted_hosts=list(args.trusted_proxy))


# The tuning options of serve and quickstart, as (option, type, the ServerConfig field it sets,
# help). Their defaults and ranges are ServerConfig's (docs/server.md lists them): an option not
# given is left out, so the server's default applies.
_TUNING_OPTIONS: tuple[tuple[str, type, str, str], ...] = (
    ("--heartbeat", float, "heartbeat_seconds", "SSE heartbeat, seconds"),
    ("--poll", float, "poll_seconds", "SQLite reload interval, seconds"),
    ("--sse-max-streams", int, "sse_max_streams", "open event streams in all"),
    ("--sse-max-streams-per-client", int, "sse_max_streams_per_client", "… per client address"),
    (
        "--report-total-per-minute",
        float,
        "report_total_per_minute",
        "violation reports per minute from all clients together",
    ),
    ("--report-max-rows", int, "report_max_rows", "report rows kept, newest"),
    ("--report-max-age-days", int, "report_max_age", "report rows kept, days"),
)


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port, default=8080)
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--public-url", help="the URL clients reach this server at")
    parser.add_argument("--ca-file", help="extra CA certificates for the live-chain checks")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (PEM)")
    parser.add_argument("--tls-key", help="… and this private key (PEM)")
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        type=trusted_proxy,
        metavar="ADDRESS",
        help="a reverse proxy's address or network (repeatable): only a request from one of "
        "them may name its client in X-Forwarded-For; without it the header is ignored "
        "(docs/reliability.md)",
    )
    parser.add_argument(
        "--limits-redis-url",
        metavar="URL",
        help="keep the rate limits the replicas share in Redis (redis://host:6379/0) instead of "
        "the database (docs/reliability.md)",
    )
    for option, kind, field, help_text in _TUNING_OPTIONS:
        parser.add_argument(
            option, type=kind, dest=field, help=f"{help_text} (default: docs/server.md)"
        )
    parser.add_argument(
        "--monitor-every",
        action="append",
        default=[],
        metavar="CHANNEL=MINUTES",
        help="check this channel's hosts every MINUTES (repeatable; others: hourly)",
    )
    parser.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="send alerts to URL (repeatable); its whsec_ secret comes from the environment "
        "variable PINWARDEN_WEBHOOK_<NAME>_SECRET (docs/operations.md)",
    )
    parser.add_argument(
        "--ct-log-list",
        action="append",
        default=[],
        metavar="FILE_OR_URL",
        help="watch the CT logs of this v3 log list (repeatable; docs/ct.md)",
    )
    parser.add_argument(
        "--ct-every-minutes",
        type=_ct_minutes,
        metavar="MINUTES",
        help="minutes between CT watch rounds (default: 5)",
    )


def _tuning(args: argparse.Namespace) -> dict[str, Any]:
    """The ServerConfig fields of the tuning options given on the command line."""
    given = {
        field: getattr(args, field)
        for _, _, field, _ in _TUNING_OPTIONS
        if getattr(args, field) is not None
    }
    if "report_max_age" in given:
        try:
            given["report_max_age"] = timedelta(days=given["report_max_age"])
        except OverflowError:
            raise CommandError("--report-max-age-days is out of range") from None
    return given


def _initialize(
    data: DataDirectory,
    passphrase: bytes,
    database_url: str | None,
    keys_from: str | None = None,
    online_key: str | None = None,
) -> InitResult:
    """``initialize``, its errors as one line."""
    from pinwarden.document import DocumentError, KeyStoreError
    from pinwarden.server import ServerError, initialize

    with database_errors():
        try:
            return initialize(
                data,
                passphrase,
                database_url=database_url,
                keys_from=Path(keys_from) if keys_from else None,
                online_key=online_key,
            )
        except (ServerError, KeyStoreError, DocumentError) as error:
            raise CommandError(str(error)) from None


@contextlib.contextmanager
def database_errors() -> Iterator[None]:
    """A database URL that is malformed or names a database that cannot be reached: one line."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else repr(cause)
        raise CommandError(f"cannot use the database: {first_line}") from None
    except ValueError as error:  # make_engine: a URL of an unsupported kind
        raise CommandError(f"--database-url: {error}") from None


def _run_init(args: argparse.Namespace) -> int:
    require_server_packages()
    data = data_dir(args, initialized=False)
    if data.is_initialized():
        raise CommandError(f"{args.data} is already initialized")
    passphrase = read_passphrase(args, confirm=True)
    assert passphrase is not None  # required=True: no --no-passphrase
    result = _initialize(data, passphrase, args.database_url, args.keys_from, args.online_key)
    _print_init(args, data, result)
    return EXIT_OK


def _development_root_keys_note(path: Path) -> str:
    return (
        f"DEVELOPMENT ONLY: the root keys were made in {path}. The server never reads them, but "
        "whoever holds them (and the passphrase) can sign keyrings that every client trusts: "
        "move this directory off the server to an offline machine (docs/server.md, "
        '"Production set-up").'
    )


def _print_init(args: argparse.Namespace, data: DataDirectory, result: InitResult) -> None:
    root_keys = result.development_root_keys
    if root_keys is not None:
        print(f"WARNING: {_development_root_keys_note(root_keys)}", file=sys.stderr)
    if getattr(args, "json", False):
        print_json(
            {
                "data": str(data.path),
                "database": result.database_url.split("@")[-1],
                "keyring_version": result.keyring_version,
                "keyring": str(data.key_dir / "keyring.json"),
                "admin_token": result.admin_token,
                "development_root_keys": str(root_keys) if root_keys else None,
            }
        )
        return
    print(f"initialized {data.path}")
    print(f"  keyring v{result.keyring_version}: {data.key_dir / 'keyring.json'} (ship it in apps)")
    print(f"  admin token (shown once, only its hash is stored): {result.admin_token}")
    if root_keys is not None:
        print(f"  {_development_root_keys_note(root_keys)}")


_WEBHOOK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,49}")


def webhook_secret_variable(name: str) -> str:
    return f"PINWARDEN_WEBHOOK_{name.upper().replace('-', '_')}_SECRET"


def _webhooks(given: list[str]) -> tuple[Any, ...]:
    """``--webhook NAME=URL`` options as endpoints, each secret from its environment variable."""
    from pinwarden.server.alerts import WebhookEndpoint

    endpoints = []
    for text in given:
        name, _, url = text.partition("=")
        if not _WEBHOOK_NAME.fullmatch(name) or not url:
            raise CommandError(
                f"--webhook {printable(text, 100)!r} is not NAME=URL (NAME: letters, digits, "
                "'-', '_', at most 50)"
            )
        variable = webhook_secret_variable(name)
        secret = os.environ.get(variable)
        if not secret:
            raise CommandError(f"--webhook {name}: set its secret (whsec_…) in ${variable}")
        try:
            endpoints.append(WebhookEndpoint(name, url, secret))
        except ValueError as error:
            raise CommandError(f"--webhook {name}: {printable(str(error), 300)}") from None
    return tuple(endpoints)


def _ct_minutes(text: str) -> timedelta:
    """``--ct-every-minutes``: from 10 seconds to a day, ``ServerConfig.ct_interval``'s range
    (read here without importing the server, which argparse runs before the handler)."""
    minutes = float(text)
    if not 10 / 60 <= minutes <= 1440:
        raise ValueError(text)
    return timedelta(minutes=minutes)


def _monitor_schedule(given: list[str]) -> tuple[tuple[str, timedelta], ...]:
    """``--monitor-every CHANNEL=MINUTES`` options; the ranges are ServerConfig's."""
    schedule = []
    for text in given:
        channel, _, minutes = text.rpartition("=")
        try:
            interval = timedelta(minutes=float(minutes))
        except (ValueError, OverflowError):
            interval = None
        if not channel or interval is None:
            raise CommandError(f"--monitor-every {printable(text, 100)!r} is not CHANNEL=MINUTES")
        schedule.append((channel, interval))
    return tuple(schedule)


def _config(
    args: argparse.Namespace, data: DataDirectory, passphrase: bytes | None
) -> ServerConfig:
    from pinwarden.server import ConfigError, ServerConfig

    scheme = "https" if args.tls_cert else "http"
    try:
        return ServerConfig(
            database_url=data.database_url(args.database_url),
            key_dir=data.key_dir,
            passphrase=passphrase,
            public_url=args.public_url or f"{scheme}://{args.host}:{args.port}",
            ca_file=args.ca_file,
            webhooks=_webhooks(args.webhook),
            monitor_schedule=_monitor_schedule(args.monitor_every),
            ct_log_lists=tuple(args.ct_log_list),
            **({"ct_interval": args.ct_every_minutes} if args.ct_every_minutes else {}),
            limits_redis_url=args.limits_redis_url,
            **_tuning(args),
        )
    except ConfigError as error:
        raise CommandError(str(error)) from None


def _run_serve(args: argparse.Namespace) -> int:
    require_server_packages()
    data = data_dir(args, initialized=True)
    passphrase = None if args.no_signing else read_passphrase(args)
    if args.online_key is not None:
        _record_online_key(data, args.online_key, passphrase)
    _serve(args, _config(args, data, passphrase))
    return EXIT_OK


def _record_online_key(data: DataDirectory, uri: str, pin: bytes | None) -> None:
    """``serve --online-key``: sign with that key in a token from now on (docs/keys.md)."""
    from pinwarden.document import KeyStoreError
    from pinwarden.server._signing import record_token_key

    if pin is None:
        raise CommandError("--online-key signs: it cannot go with --no-signing")
    try:
        record_token_key(data.key_dir, uri, pin)
    except KeyStoreError as error:
        raise CommandError(f"--online-key: {error}") from None


def _serve(args: argparse.Namespace, config: ServerConfig) -> None:
    from pinwarden.document import DocumentError, KeyStoreError
    from pinwarden.server import create_app

    if bool(args.tls_cert) != bool(args.tls_key):
        raise CommandError("--tls-cert and --tls-key go together")
    if args.tls_cert:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                args.tls_cert, args.tls_key
            )
        except (OSError, ssl.SSLError) as error:
            raise CommandError(f"--tls-cert/--tls-key cannot be loaded: {error}") from None
    with database_errors():
        try:
            app = create_app(config)
        except (KeyStoreError, DocumentError) as error:
            raise CommandError(f"cannot unlock the signing key: {error}") from None
        # Before listening: a database that cannot be reached is a one-line error here, not a
        # failed ASGI start-up. The lifespan runs it again (it is idempotent).
        app.services.prepare_database()
    print(f"pinwarden serve: {config.public_url} ({args.server})", flush=True)
    if args.server == "granian":
        _serve_granian(app, args)
    else:
        _serve_uvicorn(app, args)


def _serve_uvicorn(app: Any, args: argparse.Namespace) -> None:
    import uvicorn

    from pinwarden.server._deadlines import DeadlineProtocol

    app = _behind_proxies(app, args)
    config = uvicorn.Config(
        app,
        proxy_headers=False,  # _behind_proxies decides
        http=DeadlineProtocol,  # slow clients: deadlines on each request's head and body
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Open event streams never end on their own: give them a moment, then close them.
        timeout_graceful_shutdown=2,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )
    uvicorn.Server(config).run()


def _serve_granian(app: Any, args: argparse.Namespace) -> None:
    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    app = _behind_proxies(app, args)
    server = Server(
        app,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        # granian takes at most `backpressure` requests at once (default: its backlog, 128); each
        # event stream holds one for as long as it is open, so past ~100 streams every pin-set
        # request queued behind them (docs/reliability.md). The broker's own caps
        # (--sse-max-streams) bound the streams instead.
        backlog=2048,
        backpressure=32_768,
        log_access=False,
        ssl_cert=Path(args.tls_cert) if args.tls_cert else None,
        ssl_key=Path(args.tls_key) if args.tls_key else None,
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.stop)
        await server.serve()

    try:
        import uvloop  # granian's embedded server runs on the caller's loop: make it uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())


def _dev_passphrase(data: DataDirectory) -> bytes:
    """The development passphrase of ``make run``: random, in DIR/passphrase, mode 0600."""
    path = data.dev_passphrase_file
    if not path.exists():
        data.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    args = argparse.Namespace(
        passphrase_env=None,
        passphrase_file=str(path),
        no_passphrase=False,
        passphrase_required=True,
    )
    passphrase = read_passphrase(args)
    assert passphrase is not None
    return passphrase


def _publish_demo(config: ServerConfig) -> None:
    """A ``demo`` channel with one ``disabled`` rule: publishable without any live host."""
    from pinwarden.server import Services, upgrade_database
    from pinwarden.server._channels import add_rule, create_channel

    services = Services(config)
    try:
        upgrade_database(services.engine)
        with services.sessions.begin() as session:
            create_channel(session, _DEMO_CHANNEL, "quickstart", description="make run demo")
            add_rule(session, _DEMO_CHANNEL, "api.example.com", "quickstart", mode="disabled")
        services.publisher.publish(_DEMO_CHANNEL, "quickstart")
    finally:
        services.engine.dispose()


def _run_quickstart(args: argparse.Namespace) -> int:
    require_server_packages()
    data = data_dir(args, initialized=False)
    settings = _config(args, data, None)  # a bad option fails here, before anything is made
    passphrase = _dev_passphrase(data)
    config = dataclasses.replace(settings, passphrase=passphrase)
    if not data.is_initialized():
        result = _initialize(data, passphrase, args.database_url)
        _publish_demo(config)
        _print_init(args, data, result)
        print(f"  development passphrase: {data.dev_passphrase_file} (0600; not for production)")
    elif data.development_root_key_dir.exists():
        print(
            f"WARNING: {_development_root_keys_note(data.development_root_key_dir)}",
            file=sys.stderr,
        )
    _print_quickstart(config, data)
    sys.stdout.flush()
    _serve(args, config)
    return EXIT_OK


def _print_quickstart(config: ServerConfig, data: DataDirectory) -> None:
    from pinwarden.server.ui import login_token

    base = config.public_url
    channel_url = f"{base}/v1/channels/{_DEMO_CHANNEL}/pinset"
    with database_errors():
        token = login_token(config.database_url)
    print(f"server:  {base}   (admin API docs: {base}/v1/admin/docs)")
    print(f"dashboard: {base}/ui/   (log in with this admin token, made now, valid 12 hours:)")
    print(f"           {token}")
    print(f"channel: {base}/v1/channels/{_DEMO_CHANNEL}   (the URL DynamicPins takes)")
    print(f"pin set: {channel_url}")
    print(f"events:  {base}/v1/channels/{_DEMO_CHANNEL}/events")
    print("client snippet (dynamic pins: fetched, verified against the keyring your app ships):")
    print(f"""
    from pathlib import Path

    from pinwarden.client import DynamicPins, StaticPins, pinned_requests_session

    pins = DynamicPins(
        "{base}/v1/channels/{_DEMO_CHANNEL}",
        keyring=Path("{(data.key_dir / "keyring.json").resolve()}").read_bytes(),
        bootstrap=StaticPins({{}}),  # the pins your app is built with
        wait_for_first_fetch=True,
        on_event=print,
    )
    print("pin set in force:", pins.version)
    session = pinned_requests_session(pins)  # every HTTPS request now pinned

admin CLI: export PINWARDEN_URL={base} PINWARDEN_TOKEN=<the admin token>; pinwarden channel list
""")


def _run_export(args: argparse.Namespace) -> int:
    """From the database with ``--data``, else from a running server (``--server`` or
    ``$PINWARDEN_URL``, a read token), through the routes clients use."""
    out_dir = Path(args.out_dir)
    if args.data is not None:
        written = _export_from_database(args, out_dir)
    elif args.server or os.environ.get("PINWARDEN_URL"):
        written = export_static_from_server(client_from_args(args), out_dir, cafile=args.ca_file)
    else:
        raise CommandError("give --data DIR (the database) or --server URL (a running server)")
    if args.json:
        print_json([str(path) for path in written])
    else:
        for path in written:
            print(path)
    return EXIT_OK


def _export_from_database(args: argparse.Namespace, out_dir: Path) -> list[Path]:
    require_server_packages()
    from pinwarden.server import make_engine
    from pinwarden.server._database import make_session_factory
    from pinwarden.server._export import export_static

    data = data_dir(args, initialized=True)
    engine = make_engine(data.database_url(args.database_url))
    try:
        with make_session_factory(engine)() as session:
            return export_static(session, out_dir)
    finally:
        engine.dispose()


def _run_recover(args: argparse.Namespace) -> int:
    require_server_packages()
    from pinwarden.server import make_engine
    from pinwarden.server._database import make_session_factory
    from pinwarden.server._tokens import create_token

    data = data_dir(args, initialized=True)
    engine = make_engine(data.database_url(args.database_url))
    actor = f"local:{os.environ.get('USER', 'unknown')}"
    try:
        with make_session_factory(engine).begin() as session:
            row, token = create_token(session, args.name, ["admin"], actor)
            token_id = row.token_id
    finally:
        engine.dispose()
    if args.json:
        print_json({"token_id": token_id, "token": token})
    else:
        print(token)
    return EXIT_OK
