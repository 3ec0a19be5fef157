#!/usr/bin/env python3
"""Load: many clients on one ``pinwarden serve`` while a new version is published every second.

    .venv/bin/python bench/load_server.py --clients 1000 --duration 60          # the figure
    .venv/bin/python bench/load_server.py --clients 50 --duration 5 --json      # what the test runs

Half the clients (``--stream-share``) hold an event stream (``/events``) and fetch the pin set
when told of a new version; the others poll the pin set every ``--poll-interval`` seconds with
``If-None-Match``.
Every body a client receives is verified against the channel's keyring (signature, type, expiry)
and its version checked against the ``X-Pinwarden-Version`` header, the ``ETag`` and the client's
own last version. Reported: failed requests, torn documents (a body that does not verify or does
not match its headers), out-of-order documents (a version below one the same client held), the
p50/p99 latency of the pin-set endpoint, and for stream clients the publish-to-client propagation
(from the start of the publish call to the moment the client holds a verified document of that
version or a later one) p50/p99/max. Goals (issue 13): 0 failed, 0 torn, 0 out of order,
propagation p99 <= 1 s.

The load generator runs in ``--workers`` processes (asyncio, uvloop when installed, raw sockets
and a minimal HTTP/1.1 reader: no client library on the hot path), so that it is not what limits
the figure; the CPU seconds it used are reported beside the server's. The server is one
``pinwarden serve`` process (SQLite in a temporary directory unless ``--database-url``), with its
stream caps raised to the client count (every client comes from 127.0.0.1). Nothing leaves
127.0.0.1. Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHANNEL = "load"
PASSPHRASE = b"load benchmark passphrase"
_IO_TIMEOUT = 10.0  # seconds any single read or connect may take before it counts as a failure
_HEARTBEAT = 5.0  # the server's SSE heartbeat in this run


# ---- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _admin(url: str, token: str, method: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(  # noqa: S310 - a loopback URL this script built
        f"{url}/v1/admin{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


@dataclass
class Server:
    url: str
    port: int
    token: str
    keyring: bytes
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        """utime + stime of the server process (proc(5), fields 14 and 15)."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def start_server(
    data: Path, clients: int, database_url: str | None, kind: str, log: Path
) -> Server:
    """``pinwarden init`` and ``serve``; channel ``load`` with one ``disabled`` rule (no live host
    to check), published once."""
    from pinwarden.server import DataDirectory, initialize

    result = initialize(DataDirectory(data), PASSPHRASE, database_url=database_url)
    passphrase = data / "passphrase-file"
    passphrase.write_bytes(PASSPHRASE)
    passphrase.chmod(0o600)
    port = free_port()
    streams = str(max(clients, 1) * 2)
    command = [
        sys.executable, "-m", "pinwarden", "serve", "--data", str(data), "--port", str(port),
        "--passphrase-file", str(passphrase), "--server", kind, "--heartbeat", str(_HEARTBEAT),
        "--sse-max-streams", streams, "--sse-max-streams-per-client", streams,
    ]  # fmt: skip
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"pinwarden serve exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):  # noqa: S310
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"pinwarden serve did not answer:\n{log.read_text()}") from None
            time.sleep(0.2)
    token = result.admin_token
    _admin(url, token, "POST", "/channels", {"name": CHANNEL, "refresh_seconds": 300})
    rule = {"pattern": "legacy.example.test", "mode": "disabled"}
    _admin(url, token, "POST", f"/channels/{CHANNEL}/rules", rule)
    _admin(url, token, "POST", f"/channels/{CHANNEL}/publish", {})
    keyring = (DataDirectory(data).key_dir / "keyring.json").read_bytes()
    return Server(url, port, token, keyring, process)


# ---- one client's HTTP/1.1 ---------------------------------------------------------------------


class HTTPError(Exception):
    """A response the client cannot use: a status, a closed connection, a malformed message."""


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    status_line = await reader.readline()
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise HTTPError(f"bad status line {status_line[:80]!r}")
    headers: dict[bytes, bytes] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class Connection:
    """One keep-alive connection; reopened after an error or a ``Connection: close``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(
        self, path: str, headers: dict[str, str]
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        try:
            return await asyncio.wait_for(self._get(path, headers), _IO_TIMEOUT)
        except BaseException:
            self.close()
            raise

    async def _get(
        self, path: str, headers: dict[str, str]
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._streams
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{extra}\r\n".encode())
        status, head = await _read_head(reader)
        body = await reader.readexactly(int(head.get(b"content-length", b"0")))
        if head.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, head, body

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _event_versions(reader: asyncio.StreamReader) -> Any:
    """The ``pinset`` events of a chunked ``text/event-stream`` body, as versions."""
    pending = b""
    while True:
        try:
            size_line = await asyncio.wait_for(reader.readline(), _HEARTBEAT * 3)
        except asyncio.TimeoutError:
            raise HTTPError("no heartbeat on the event stream") from None
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            raise HTTPError("the event stream ended")
        pending += await reader.readexactly(size)
        await reader.readexactly(2)
        while b"\n\n" in pending:
            event, pending = pending.split(b"\n\n", 1)
            lines = dict(line.partition(b":")[::2] for line in event.split(b"\n") if line)
            if lines.get(b"event", b"").strip() == b"pinset":
                yield int(json.loads(lines[b"data"])["version"])


# ---- the clients of one worker process -------------------------------------------------------


@dataclass
class Tally:
    """What one worker's clients saw."""

    requests: int = 0
    ok: int = 0
    not_modified: int = 0
    failed: int = 0
    torn: int = 0
    out_of_order: int = 0
    latencies: list[float] = field(default_factory=list)
    # One list per stream client: (version, monotonic time it held that version, verified).
    held: list[list[tuple[int, float]]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0

    def error(self, kind: str, what: object) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        key = f"{kind}: {str(what)[:120]}"
        self.errors[key] = self.errors.get(key, 0) + 1


class Verifier:
    """Verifies each distinct body once per worker (all clients get the same bytes)."""

    def __init__(self, keyring: bytes) -> None:
        from pinwarden.document import load_keyring

        self.keyring = load_keyring(keyring)
        self._known: dict[bytes, int] = {}

    def version(self, body: bytes) -> int:
        digest = hashlib.sha256(body).digest()
        if digest not in self._known:
            from pinwarden.document import verify_pinset

            pinset = verify_pinset(body, keyring=self.keyring)
            if pinset.channel != CHANNEL:
                raise ValueError(f"a pin set of channel {pinset.channel!r}")
            self._known[digest] = pinset.version
        return self._known[digest]


class Client:
    """A pin-set reader: ``fetch`` with ``If-None-Match``, verify, check the order."""

    def __init__(self, port: int, tally: Tally, verifier: Verifier) -> None:
        self.connection = Connection(port)
        self.tally, self.verifier = tally, verifier
        self.version, self.etag = 0, ""

    async def fetch(self) -> bool:
        """One request; ``True`` when it answered (200 or 304) with a sound document."""
        tally = self.tally
        tally.requests += 1
        headers = {"if-none-match": self.etag} if self.etag else {}
        started = time.monotonic()
        try:
            status, head, body = await self.connection.get(
                f"/v1/channels/{CHANNEL}/pinset", headers
            )
        except (OSError, EOFError, asyncio.TimeoutError, HTTPError, ValueError) as error:
            tally.error("failed", type(error).__name__)
            return False
        tally.latencies.append(time.monotonic() - started)
        if status == 304:
            tally.not_modified += 1
            return True
        if status != 200:
            tally.error("failed", f"status {status}")
            return False
        try:
            version = self.verifier.version(body)
        except Exception as error:  # any refusal of the verifier: the body is not sound
            tally.error("torn", error)
            return False
        etag = head.get(b"etag", b"").decode()
        if head.get(b"x-pinwarden-version") != str(version).encode() or not etag.startswith(
            f'"v{version}-'
        ):
            tally.error("torn", "headers of another version than the body")
            return False
        if version < self.version:
            tally.error("out_of_order", f"v{version} after v{self.version}")
            return False
        tally.ok += 1
        self.version, self.etag = version, etag
        return True


async def _poller(client: Client, interval: float, stop_at: float) -> None:
    await asyncio.sleep(random.uniform(0, interval))
    while time.monotonic() < stop_at:
        await client.fetch()
        await asyncio.sleep(interval)
    client.connection.close()


async def _streamer(client: Client, held: list[tuple[int, float]], stop_at: float) -> None:
    """Hold ``/events``; on each announced version above the one held, fetch the pin set."""
    tally, port = client.tally, client.connection.port
    while time.monotonic() < stop_at:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), _IO_TIMEOUT
            )
            last = f"last-event-id: {client.version}\r\n" if client.version else ""
            request = f"GET /v1/channels/{CHANNEL}/events HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            writer.write(f"{request}{last}\r\n".encode())
            status, _ = await asyncio.wait_for(_read_head(reader), _IO_TIMEOUT)
            if status != 200:
                raise HTTPError(f"status {status}")
            events = _event_versions(reader)
            while True:
                remaining = stop_at - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    announced = await asyncio.wait_for(events.__anext__(), remaining)
                except asyncio.TimeoutError:  # the run's end (the stream's own is HTTPError)
                    return
                if announced > client.version and await client.fetch():
                    held.append((client.version, time.monotonic()))
        except (OSError, EOFError, asyncio.TimeoutError, HTTPError, ValueError) as error:
            tally.error("failed", f"event stream: {type(error).__name__} {error}")
            await asyncio.sleep(0.5)
        finally:
            if writer is not None:
                writer.close()
            client.connection.close()


async def _run_clients(
    port: int, keyring: bytes, streams: int, polls: int, interval: float, stop_at: float
) -> Tally:
    tally = Tally()
    verifier = Verifier(keyring)
    tasks = []
    for _ in range(streams):
        held: list[tuple[int, float]] = []
        tally.held.append(held)
        tasks.append(_streamer(Client(port, tally, verifier), held, stop_at))
    tasks += [_poller(Client(port, tally, verifier), interval, stop_at) for _ in range(polls)]
    await asyncio.gather(*tasks)
    return tally


def worker(
    port: int, keyring: bytes, streams: int, polls: int, interval: float, stop_at: float
) -> Tally:
    """One load-generating process (``multiprocessing`` target, via ``Pool``)."""
    try:
        import uvloop
    except ImportError:
        tally = asyncio.run(_run_clients(port, keyring, streams, polls, interval, stop_at))
    else:
        tally = uvloop.run(_run_clients(port, keyring, streams, polls, interval, stop_at))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    tally.cpu_seconds = usage.ru_utime + usage.ru_stime
    return tally


# ---- the run ---------------------------------------------------------------------------------


def _publish_every_second(
    server: Server, until: float, during: Callable[[float], None] | None
) -> tuple[list[tuple[int, float]], dict[str, int]]:
    """Publish once a second until ``until``: (version, monotonic start of its call), and the
    failures by their answer. ``during(seconds since the first)`` runs before each publish (a
    fault test cuts and restores the database there)."""
    published: list[tuple[int, float]] = []
    failures: dict[str, int] = {}
    first = tick = time.monotonic()
    while (tick := tick + 1.0) < until:
        time.sleep(max(0.0, tick - time.monotonic()))
        if during is not None:
            during(time.monotonic() - first)
        started = time.monotonic()
        try:
            outcome = _admin(server.url, server.token, "POST", f"/channels/{CHANNEL}/publish", {})
            published.append((int(outcome["version"]), started))
        except urllib.error.HTTPError as error:
            key = f"{error.code} {error.read()[:200].decode(errors='replace')}"
            failures[key] = failures.get(key, 0) + 1
        except (OSError, ValueError, KeyError) as error:
            failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
    return published, failures


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _propagation(
    published: list[tuple[int, float]], held: list[list[tuple[int, float]]], cutoff: float
) -> tuple[list[float], int]:
    """For each version published before ``cutoff`` and each stream client: seconds from the
    publish call's start to the client's first holding that version or a later one. Versions a
    client never held are counted as missed."""
    delays, missed = [], 0
    for version, started in published:
        if started > cutoff:
            continue
        for history in held:
            reached = next((moment for v, moment in history if v >= version), None)
            if reached is None:
                missed += 1
            else:
                delays.append(max(0.0, reached - started))
    return delays, missed


def run(args: argparse.Namespace, during: Callable[[float], None] | None = None) -> dict[str, Any]:
    """The run ``args`` describe (``main``'s options); ``during``: see
    ``_publish_every_second``."""
    workdir = Path(tempfile.mkdtemp(prefix="pinwarden-load-"))
    server = start_server(
        workdir / "data", args.clients, args.database_url, args.server, workdir / "serve.log"
    )
    try:
        streams = round(args.clients * args.stream_share)
        polls = args.clients - streams
        workers = max(1, min(args.workers, args.clients))
        server_cpu = server.cpu_seconds()
        begin = time.monotonic() + 2.0  # the workers' start-up; clients connect from then on
        stop_at = begin + args.duration
        shares = [
            (
                server.port,
                server.keyring,
                streams // workers + (index < streams % workers),
                polls // workers + (index < polls % workers),
                args.poll_interval,
                stop_at,
            )
            for index in range(workers)
        ]
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers) as pool:
            pending = pool.starmap_async(worker, shares)
            time.sleep(max(0.0, begin + 1.0 - time.monotonic()))  # streams open first
            published, publish_failures = _publish_every_second(server, stop_at - 1.0, during)
            tallies = pending.get(timeout=args.duration + 120)
        server_cpu = server.cpu_seconds() - server_cpu
        with urllib.request.urlopen(  # noqa: S310 - the loopback URL of this run
            f"{server.url}/v1/channels/{CHANNEL}/pinset", timeout=10
        ) as response:
            served_version = int(response.headers["x-pinwarden-version"])
    finally:
        server.stop()
    latencies = [x for tally in tallies for x in tally.latencies]
    held = [history for tally in tallies for history in tally.held]
    delays, missed = _propagation(published, held, stop_at - 2.0)
    errors: dict[str, int] = {}
    for tally in tallies:
        for key, count in tally.errors.items():
            errors[key] = errors.get(key, 0) + count

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "clients": args.clients,
        "stream_clients": streams,
        "polling_clients": polls,
        "duration_s": args.duration,
        "server": args.server,
        "served_version": served_version,
        "database": "postgresql" if args.database_url else "sqlite",
        "publishes": len(published),
        "published_versions": [version for version, _ in published],
        "publish_failures": sum(publish_failures.values()),
        "publish_errors": publish_failures,
        "requests": sum(t.requests for t in tallies),
        "ok_200": sum(t.ok for t in tallies),
        "not_modified_304": sum(t.not_modified for t in tallies),
        "failed": sum(t.failed for t in tallies),
        "torn": sum(t.torn for t in tallies),
        "out_of_order": sum(t.out_of_order for t in tallies),
        "pinset_p50_ms": ms(_percentile(latencies, 0.50)),
        "pinset_p99_ms": ms(_percentile(latencies, 0.99)),
        "propagation_samples": len(delays),
        "propagation_missed": missed,
        "propagation_p50_ms": ms(_percentile(delays, 0.50)),
        "propagation_p99_ms": ms(_percentile(delays, 0.99)),
        "propagation_max_ms": ms(max(delays) if delays else None),
        "server_cpu_s": round(server_cpu, 1),
        "load_generator_cpu_s": round(sum(t.cpu_seconds for t in tallies), 1),
        "load_generator_workers": workers,
        "errors": errors,
    }


def goals_met(result: dict[str, Any]) -> bool:
    p99 = result["propagation_p99_ms"]
    return (
        result["failed"] == result["torn"] == result["out_of_order"] == 0
        and result["publish_failures"] == 0
        and result["propagation_missed"] == 0
        and p99 is not None
        and p99 <= 1000
    )


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds")
    parser.add_argument(
        "--stream-share", type=float, default=0.5, help="the share of clients on event streams"
    )
    parser.add_argument("--workers", type=int, default=2, help="load-generating processes")
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 20_000 or not 2 <= args.duration <= 3600:
        parser.error("--clients 1..20000 and --duration 2..3600")
    if not 0 <= args.stream_share <= 1 or not 0.05 <= args.poll_interval <= 3600:
        parser.error("--stream-share 0..1 and --poll-interval 0.05..3600")
    return args


def main() -> int:
    args = arguments()
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(key) for key in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0 if goals_met(result) else 1


if __name__ == "__main__":
    sys.exit(main())
