"""A real interception proxy: mitmproxy, whose CA the client trusts, re-signs the server's chain.

mitmproxy needs Python >= 3.12, so it runs from its own virtual environment; without one these
tests are skipped, saying how to make it:

    ~/.pyenv/versions/3.13.0/bin/python -m venv .venv-mitm && .venv-mitm/bin/pip install mitmproxy

(or point PINWARDEN_MITMDUMP at a ``mitmdump``).
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinwarden.client import StaticPins
from tests.client._stack_table import STACKS, Stack, fetch_error, find_pin_error, open_tunnel
from tests.client._tls_harness import Servers
from tests.support.pki import PKI
from tests.support.tls_servers import free_port

pytestmark = pytest.mark.network

_REPO = Path(__file__).resolve().parents[2]
MITMDUMP = Path(os.environ.get("PINWARDEN_MITMDUMP", _REPO / ".venv-mitm" / "bin" / "mitmdump"))


class Mitm:
    def __init__(self, url: str, client_trust: str) -> None:
        self.url = url
        self.client_trust = client_trust  # the legitimate root and mitmproxy's CA


@pytest.fixture(scope="module")
def mitm(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mitm]:
    if not MITMDUMP.exists():
        pytest.skip(
            f"mitmproxy not installed at {MITMDUMP}: it needs Python >= 3.12; make it with "
            "'~/.pyenv/versions/3.13.0/bin/python -m venv .venv-mitm && "
            ".venv-mitm/bin/pip install mitmproxy' or set PINWARDEN_MITMDUMP"
        )
    confdir = tmp_path_factory.mktemp("mitmproxy")
    legit_root = confdir / "legit-root.pem"
    legit_root.write_bytes(pki.legit_root.cert_pem.bytes())
    port = free_port()
    process = subprocess.Popen(
        [
            str(MITMDUMP),
            "--quiet",
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(port),
            "--set",
            f"confdir={confdir}",
            "--set",
            f"ssl_verify_upstream_trusted_ca={legit_root}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        ca = confdir / "mitmproxy-ca-cert.pem"
        deadline = time.monotonic() + 30
        while not _accepts(port) or not ca.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"mitmdump did not start: {stderr[-500:]}")
            time.sleep(0.1)
        trust = confdir / "client-trust.pem"
        trust.write_bytes(pki.legit_root.cert_pem.bytes() + ca.read_bytes())
        yield Mitm(f"http://127.0.0.1:{port}", str(trust))
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_the_proxy_really_intercepts(mitm: Mitm, servers: Servers) -> None:
    """Without pins the client accepts mitmproxy's chain: the attack below is real."""
    context = ssl.create_default_context(cafile=mitm.client_trust)
    sock = open_tunnel(mitm.url, "localhost", servers.legit.port)
    with context.wrap_socket(sock, server_hostname="localhost") as tls:
        issuer = dict(part[0] for part in tls.getpeercert()["issuer"])
    assert issuer["organizationName"] == "mitmproxy"


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_interception_refused_by_pins(stack: Stack, mitm: Mitm, pki: PKI, servers: Servers) -> None:
    pins = StaticPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})

    error = fetch_error(stack, pins, mitm.client_trust, servers.legit.url(), mitm.url)

    pin_error = find_pin_error(error)
    assert pin_error is not None, repr(error)
    assert pki.intermediate_pin not in pin_error.seen
    # mitmproxy opens its own connection upstream, but no request byte reaches the server.
    assert servers.legit.wait_closed()
    assert servers.legit.received == b""


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_unpinned_host_twin_is_intercepted(
    stack: Stack, mitm: Mitm, pki: PKI, servers: Servers
) -> None:
    pins = StaticPins({"other.pinwarden.test": [pki.intermediate_pin]})
    assert stack.fetch(pins, mitm.client_trust, servers.legit.url(), mitm.url) == "ok:legit"
