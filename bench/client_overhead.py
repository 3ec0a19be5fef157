"""Cost of pinning: a pinned TLS handshake against the same handshake unpinned, in one run.

A TLS server runs in its own process on 127.0.0.1 with a trustme chain (root -> intermediate ->
leaf). The client alternates, handshake by handshake, between ``pinned_context`` (the rule pins the
intermediate, so the check walks the verified chain to depth 1) and a plain
``ssl.create_default_context`` trusting the same CA, in a random order within each pair so neither
always goes first. Each sample is the time of ``wrap_socket`` on a connected TCP socket: the
handshake, plus the pin check for the pinned context. The TCP connect is outside the timing.

Run: ``.venv/bin/python bench/client_overhead.py`` (``--handshakes 2000`` is the default and the
minimum the docs quote). The goal is a median overhead of at most 1 %.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import socket
import ssl
import statistics
import sys
import tempfile
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import trustme

from pinwarden import spki_pin
from pinwarden.client import StaticPins, pinned_context


def _serve(chain_file: str, port_queue: multiprocessing.Queue[int], stop: Event) -> None:
    """Accept, handshake, close: one connection at a time until ``stop`` is set."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain_file)
    with socket.create_server(("127.0.0.1", 0), backlog=128) as listener:
        listener.settimeout(0.5)
        port_queue.put(listener.getsockname()[1])
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(5)
            try:
                with context.wrap_socket(sock, server_side=True) as tls:
                    tls.recv(1)  # wait for the client's close
            except OSError:
                pass
            finally:
                sock.close()


def _handshake_ns(context: ssl.SSLContext, port: int) -> int:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    start = time.perf_counter_ns()
    tls = context.wrap_socket(sock, server_hostname="localhost")
    elapsed = time.perf_counter_ns() - start
    tls.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handshakes", type=int, default=2000, help="per variant (default 2000)")
    parser.add_argument("--warmup", type=int, default=100, help="per variant, not measured")
    parser.add_argument(
        "--key-type",
        choices=["ecdsa", "rsa"],
        default="ecdsa",
        help="keys of the chain: ECDSA P-256 (default, the faster handshake) or RSA-2048",
    )
    args = parser.parse_args()

    key_type = trustme.KeyType[args.key_type.upper()]
    root = trustme.CA(key_type=key_type)
    intermediate = root.create_child_ca(key_type=key_type)
    leaf = intermediate.issue_cert("localhost", key_type=key_type)
    backup_pin = spki_pin(trustme.CA().private_key_pem.bytes())
    with tempfile.TemporaryDirectory() as directory:
        chain_file = Path(directory, "chain.pem")
        chain_file.write_bytes(leaf.private_key_and_cert_chain_pem.bytes())
        ca_pem = root.cert_pem.bytes().decode()

        pins = StaticPins({"localhost": [spki_pin(intermediate.cert_pem.bytes()), backup_pin]})
        variants = {
            "unpinned": ssl.create_default_context(cadata=ca_pem),
            "pinned": pinned_context(pins, cadata=ca_pem),
        }

        port_queue: multiprocessing.Queue[int] = multiprocessing.Queue()
        stop = multiprocessing.Event()
        server = multiprocessing.Process(
            target=_serve, args=(str(chain_file), port_queue, stop), daemon=True
        )
        server.start()
        try:
            port = port_queue.get(timeout=10)
            samples: dict[str, list[int]] = {name: [] for name in variants}
            order = list(variants)
            for round_number in range(args.warmup + args.handshakes):
                random.shuffle(order)
                for name in order:
                    elapsed = _handshake_ns(variants[name], port)
                    if round_number >= args.warmup:
                        samples[name].append(elapsed)
            if variants["pinned"].passed_checks == {}:  # type: ignore[attr-defined]
                raise SystemExit("the pinned handshakes were never checked")
        finally:
            stop.set()
            server.join(5)
            if server.is_alive():
                server.terminate()

    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratio = medians["pinned"] / medians["unpinned"]
    # Each pinned handshake ran right next to an unpinned one: the median of the paired
    # differences is less moved by the machine's load drifting during the run.
    pairs = zip(samples["pinned"], samples["unpinned"], strict=True)
    paired = statistics.median(pinned - unpinned for pinned, unpinned in pairs)
    print(f"python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")
    print(
        f"chain keys: {args.key_type}; handshakes per variant: {args.handshakes} "
        f"(interleaved, after {args.warmup} warm-up)"
    )
    for name, median in medians.items():
        print(f"median {name:>8}: {median / 1000:8.1f} µs")
    print(f"overhead ratio pinned/unpinned: {ratio:.4f} ({(ratio - 1) * 100:+.2f} %)")
    print(
        f"median paired difference: {paired / 1000:+.1f} µs "
        f"({paired / medians['unpinned'] * 100:+.2f} % of the unpinned median)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
