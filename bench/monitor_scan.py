"""The monitor's scanner over 1,000 TLS endpoints on loopback, against ``openssl s_client`` run
one endpoint after another, in the same run.

One server process listens on ``--endpoints`` ports of 127.0.0.1 (asyncio, one shared context,
a trustme chain root -> intermediate -> leaf with P-256 keys). The scanner (``pinwarden.server.
monitor.scan``) checks every endpoint with full validation (CA, hostname) and reads each verified
chain. The baseline is ``openssl s_client -verify_return_error -verify_hostname`` over a sample of
``--baseline-sample`` endpoints run sequentially; its total for all endpoints is extrapolated from
the sample (linear: each run is one process and one handshake). The goal: the scan within 5 s.

Run: ``.venv/bin/python bench/monitor_scan.py`` (defaults: 1000 endpoints, concurrency 100,
a baseline sample of 100). docs/operations.md quotes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import ssl
import subprocess
import sys
import tempfile
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import trustme

from pinwarden.server.monitor import ScanTarget, scan

NAME = "bench.example.test"


def _serve(
    chain_file: str, count: int, ports: multiprocessing.Queue[list[int]], stop: Event
) -> None:
    """``count`` listeners; each connection: handshake, wait for the client's close."""

    async def main() -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain_file)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await asyncio.wait_for(reader.read(1), 10)
            except (OSError, asyncio.TimeoutError):
                pass
            finally:
                writer.close()

        servers = [
            await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=256)
            for _ in range(count)
        ]
        ports.put([server.sockets[0].getsockname()[1] for server in servers])
        while not stop.is_set():
            await asyncio.sleep(0.1)

    asyncio.run(main())


def _openssl_seconds(ports: list[int], ca_file: str) -> float:
    start = time.perf_counter()
    for port in ports:
        result = subprocess.run(
            [
                "openssl",
                "s_client",
                "-connect",
                f"127.0.0.1:{port}",
                "-servername",
                NAME,
                "-CAfile",
                ca_file,
                "-verify_return_error",
                "-verify_hostname",
                NAME,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0 or b"Verify return code: 0 (ok)" not in result.stdout:
            raise SystemExit(f"openssl s_client failed on port {port}: {result.stderr[-300:]!r}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--baseline-sample", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        ca = trustme.CA()
        leaf = ca.create_child_ca().issue_cert(NAME)
        chain_file, ca_file = Path(folder, "chain.pem"), Path(folder, "ca.pem")
        leaf.private_key_and_cert_chain_pem.write_to_path(str(chain_file))
        ca.cert_pem.write_to_path(str(ca_file))

        ports_queue: multiprocessing.Queue[list[int]] = multiprocessing.Queue()
        stop = multiprocessing.Event()
        server = multiprocessing.Process(
            target=_serve, args=(str(chain_file), args.endpoints, ports_queue, stop), daemon=True
        )
        server.start()
        try:
            ports = ports_queue.get(timeout=60)
            targets = [ScanTarget(NAME, "127.0.0.1", port) for port in ports]
            start = time.perf_counter()
            results = asyncio.run(
                scan(targets, cafile=str(ca_file), concurrency=args.concurrency, timeout=30)
            )
            scan_seconds = time.perf_counter() - start
            failed = [result for result in results if result.error is not None]
            if failed or any(len(result.chain) != 3 for result in results):
                raise SystemExit(f"{len(failed)} scans failed, e.g. {failed[:1]}")
            sample = ports[: args.baseline_sample]
            sample_seconds = _openssl_seconds(sample, str(ca_file))
        finally:
            stop.set()
            server.join(timeout=10)
    baseline = sample_seconds * len(ports) / len(sample)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"scanner: {len(ports)} endpoints, concurrency {args.concurrency}: {scan_seconds:.2f} s")
    print(
        f"openssl s_client sequential: {len(sample)} endpoints in {sample_seconds:.2f} s, "
        f"{baseline:.1f} s extrapolated to {len(ports)}"
    )
    print(
        f"ratio (baseline / scanner): {baseline / scan_seconds:.1f}x; goal <= 5 s: "
        f"{'met' if scan_seconds <= 5 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
