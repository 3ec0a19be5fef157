"""A pin server or a host that trickles its answer a byte at a time, or sends nothing: preflight
and rotate plan end within their --timeout with one line, never hang."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from pinwarden.rotation._lab import API_HOST, CHANNEL, Lab
from tests.rotation.cli_helpers import assert_one_error_line, rotate_plan, run

pytestmark = pytest.mark.network

# A TLS handshake record header that announces 16 KiB, then its body one byte at a time: OpenSSL
# keeps reading, and every read gets a byte before any per-read timeout.
TLS_RECORD_HEADER = b"\x16\x03\x03\x40\x00"
HTTP_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"


@pytest.fixture
def trickler() -> Iterator[Callable[[bytes], int]]:
    """Start servers that send ``start``, then one byte every 50 ms until closed; their ports."""
    stop = threading.Event()
    listeners: list[socket.socket] = []

    def trickle(connection: socket.socket, start: bytes) -> None:
        with connection:
            try:
                connection.sendall(start)
                while not stop.wait(0.05):
                    connection.sendall(b"x")
            except OSError:
                pass

    def accept(listener: socket.socket, start: bytes) -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=trickle, args=(connection, start), daemon=True).start()

    def serve(start: bytes) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)
        threading.Thread(target=accept, args=(listener, start), daemon=True).start()
        return int(listener.getsockname()[1])

    yield serve
    stop.set()
    for listener in listeners:
        listener.close()


def test_a_trickling_pin_server_ends_preflight_at_its_timeout(
    lab: Lab, capsys: pytest.CaptureFixture[str], trickler: Callable[[bytes], int]
) -> None:
    port = trickler(HTTP_HEAD)
    chain = lab.directory / "fullchain.pem"
    chain.write_bytes(lab.live.chain_pem)
    started = time.monotonic()
    ran = run(
        capsys,
        "preflight",
        "--channel",
        CHANNEL,
        "--keyring",
        str(lab.keyring_file),
        "--server",
        f"http://127.0.0.1:{port}",
        "--timeout",
        "1",
        str(chain),
    )
    assert_one_error_line(ran, 3, "cannot fetch")
    assert time.monotonic() - started < 30  # bounded: not a hang (the trickle never ends)


@pytest.mark.parametrize(
    "start", [TLS_RECORD_HEADER, b""], ids=["trickled-handshake", "trickled-garbage"]
)
def test_a_trickling_host_ends_rotate_plan_at_its_timeout(
    lab: Lab, capsys: pytest.CaptureFixture[str], trickler: Callable[[bytes], int], start: bytes
) -> None:
    port = trickler(start)
    started = time.monotonic()
    options = ("--port", str(port), "--connect-to", "127.0.0.1", "--timeout", "1")
    ran = run(capsys, *rotate_plan(lab, *options))
    assert_one_error_line(ran, 3, API_HOST)
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "1e9", "inf"])
def test_a_timeout_out_of_bounds_is_bad_input(
    lab: Lab, capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    for command in (
        ["preflight", "--channel", CHANNEL, str(lab.directory / "device-trust.pem")],
        ["rotate", "plan", API_HOST, "--channel", CHANNEL],
    ):
        ran = run(
            capsys,
            *command,
            "--server",
            lab.server_url,
            "--keyring",
            str(lab.keyring_file),
            "--timeout",
            timeout,
        )
        assert_one_error_line(ran, 2, "--timeout")
