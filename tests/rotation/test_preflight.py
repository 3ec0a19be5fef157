"""``pinwarden preflight``: a certificate, chain or key judged as the channel's clients would."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from pinwarden.document import KeyDirectory
from pinwarden.rotation._certs import LocalCA, new_key
from pinwarden.rotation._lab import API_HOST, CHANNEL, Lab
from tests.rotation.cli_helpers import Ran, assert_one_error_line, run, write_key
from tests.support.tls_servers import free_port

pytestmark = pytest.mark.network


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _preflight(
    capsys: pytest.CaptureFixture[str], lab: Lab, *extra: str, source: tuple[str, ...] = ()
) -> Ran:
    where = source or ("--server", lab.server_url)
    return run(
        capsys,
        "preflight",
        "--channel",
        CHANNEL,
        "--keyring",
        str(lab.keyring_file),
        *where,
        *extra,
    )


def test_the_live_chain_is_accepted_with_its_matching_pin(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = _write(tmp_path / "fullchain.pem", lab.live.chain_pem)
    ran = _preflight(capsys, lab, chain)
    assert ran.status == 0, ran.err
    assert f"OK   {API_HOST}" in ran.out and lab.live.pin in ran.out


def test_a_chain_for_an_unpinned_key_is_refused_with_the_pin_to_publish(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    renewed = lab.new_certificate()  # a new key: nobody pinned it
    ran = _preflight(capsys, lab, _write(tmp_path / "fullchain.pem", renewed.chain_pem), "--json")
    assert ran.status == 1
    answer = json.loads(ran.out)
    assert answer["accepted"] is False
    [verdict] = answer["verdicts"]
    assert verdict["pin_to_publish"] == renewed.pin and verdict["rule"] == API_HOST
    text = _preflight(capsys, lab, _write(tmp_path / "again.pem", renewed.chain_pem))
    assert "FAIL" in text.out
    assert f"pinwarden pins add {CHANNEL} {API_HOST} {renewed.pin}" in text.out


def test_a_chain_for_the_published_backup_key_is_accepted(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = lab.new_certificate(lab.backup_key)
    ran = _preflight(capsys, lab, _write(tmp_path / "fullchain.pem", planned.chain_pem))
    assert ran.status == 0 and lab.backup_pin in ran.out


def test_a_key_file_is_judged_for_the_hosts_given(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = write_key(tmp_path / "api.key.next", lab.backup_key)
    assert _preflight(capsys, lab, backup, "--host", API_HOST).status == 0
    other = write_key(tmp_path / "other.key.next", new_key())
    assert _preflight(capsys, lab, other, "--host", API_HOST).status == 1
    assert_one_error_line(_preflight(capsys, lab, other), 2, "names no host", "--host")


def test_bootstrap_clients_are_judged_on_their_own(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The published pin set accepts the live chain, but an app built with other pins does not:
    clients that never fetched would refuse the host, so preflight fails."""
    chain = _write(tmp_path / "fullchain.pem", lab.live.chain_pem)
    shipped = {API_HOST: [lab.backup_pin, LocalCA("Other").pin]}
    bootstrap = _write(tmp_path / "bootstrap.json", json.dumps(shipped).encode())
    ran = _preflight(capsys, lab, chain, "--bootstrap", bootstrap, "--json")
    assert ran.status == 1
    verdicts = {v["population"]: v["accepted"] for v in json.loads(ran.out)["verdicts"]}
    assert verdicts == {
        "clients holding pin set v1": True,
        "clients on the shipped bootstrap pins": False,
    }
    matching = {API_HOST: [lab.live.pin, lab.backup_pin]}
    _write(tmp_path / "bootstrap.json", json.dumps(matching).encode())
    assert _preflight(capsys, lab, chain, "--bootstrap", bootstrap).status == 0


def test_a_wildcard_certificate_is_judged_for_the_pinned_hosts_under_it(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wildcard = lab.api_ca.issue("*.bank.test")  # a new key for every host under bank.test
    ran = _preflight(capsys, lab, _write(tmp_path / "wild.pem", wildcard.chain_pem), "--json")
    assert ran.status == 1
    judged = {(v["host"], v["accepted"]) for v in json.loads(ran.out)["verdicts"]}
    assert judged == {(API_HOST, False), ("*.bank.test", True)}


def test_a_host_no_rule_covers_gets_normal_tls_only(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = lab.api_ca.issue("www.bank.test")
    ran = _preflight(capsys, lab, _write(tmp_path / "www.pem", other.chain_pem))
    assert ran.status == 0 and "no rule covers the host" in ran.out


def _served_pinset(lab: Lab) -> bytes:
    return httpx.get(f"{lab.channel_url}/pinset", timeout=10).content


def test_a_signed_pin_set_file_stands_in_for_the_server(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = _write(tmp_path / "fullchain.pem", lab.live.chain_pem)
    pinset = _write(tmp_path / "pinset.json", _served_pinset(lab))
    assert _preflight(capsys, lab, chain, source=("--pinset", pinset)).status == 0


def test_a_tampered_pin_set_is_refused_not_judged(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = _write(tmp_path / "fullchain.pem", lab.live.chain_pem)
    envelope = json.loads(_served_pinset(lab))
    payload = envelope["payload"]
    envelope["payload"] = payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB")
    pinset = _write(tmp_path / "pinset.json", json.dumps(envelope).encode())
    ran = _preflight(capsys, lab, chain, source=("--pinset", pinset))
    assert_one_error_line(ran, 1, "the pin set is refused")


def test_a_pin_set_verified_with_another_keyring_is_refused(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = KeyDirectory(tmp_path / "other-keys")
    other.init(b"another passphrase")
    chain = _write(tmp_path / "fullchain.pem", lab.live.chain_pem)
    ran = run(
        capsys,
        "preflight",
        "--channel",
        CHANNEL,
        "--server",
        lab.server_url,
        "--keyring",
        str(tmp_path / "other-keys" / "keyring.json"),
        chain,
    )
    assert_one_error_line(ran, 1, "SignatureError")


def test_a_pin_set_of_another_channel_is_refused(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = _write(tmp_path / "fullchain.pem", lab.live.chain_pem)
    pinset = _write(tmp_path / "pinset.json", _served_pinset(lab))
    ran = run(
        capsys,
        "preflight",
        "--channel",
        "com.example.other/prod",
        "--pinset",
        pinset,
        "--keyring",
        str(lab.keyring_file),
        chain,
    )
    assert_one_error_line(ran, 1, "signed for channel")


def test_an_unreachable_server_is_a_network_error(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = _write(tmp_path / "fullchain.pem", lab.live.chain_pem)
    closed = f"http://127.0.0.1:{free_port()}"
    ran = _preflight(capsys, lab, chain, source=("--server", closed))
    assert_one_error_line(ran, 3, "cannot fetch")


class _JunkHandler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # the client stops reading at its size cap
            self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def junk_server() -> Iterator[tuple[str, type[_JunkHandler]]]:
    handler = type("Handler", (_JunkHandler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[" * 100_000,
        json.dumps({"payload": "\udcff", "signatures": []}).encode(),
        b'{"payload": "\x00"}',
        b"x" * (2 * 1024 * 1024),
    ],
    ids=["text", "deep", "lone-surrogate", "nul", "huge"],
)
def test_a_server_answering_junk_is_one_line(
    lab: Lab,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    junk_server: tuple[str, type[_JunkHandler]],
    body: bytes,
) -> None:
    url, handler = junk_server
    handler.body = body
    chain = _write(tmp_path / "fullchain.pem", lab.live.chain_pem)
    ran = _preflight(capsys, lab, chain, source=("--server", url))
    assert ran.status in (1, 3)
    assert_one_error_line(ran, ran.status)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage",
        b"\x00" * 64,
        b"-----BEGIN CERTIFICATE-----\nAAAA",
        b"\xff\xfe" * 1000,
        b"x" * (4 * 1024 * 1024 + 1),
    ],
    ids=["empty", "garbage", "nul", "truncated-pem", "binary", "huge"],
)
def test_a_file_that_is_no_certificate_or_key_is_bad_input(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    ran = _preflight(capsys, lab, _write(tmp_path / "input.pem", content))
    assert_one_error_line(ran, 2, "input.pem")


def test_a_missing_file_is_bad_input(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_one_error_line(_preflight(capsys, lab, str(tmp_path / "nope.pem")), 2, "nope.pem")


@pytest.mark.parametrize(
    "bootstrap",
    [
        b"[" * 100_000,
        b'["sha256/x"]',
        b'{"api.bank.test": "sha256/one-string"}',
        b'{"api.bank.test": ["\\u0000"]}',
        b'{"\\ud800": ["sha256/AAAA"]}',
        b'{"*.test": ["sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]}',
        b"\xff\xfe not utf-8",
    ],
    ids=["deep", "list", "string", "nul-pin", "lone-surrogate", "public-suffix", "not-utf8"],
)
def test_a_hostile_bootstrap_file_is_bad_input(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str], bootstrap: bytes
) -> None:
    chain = _write(tmp_path / "fullchain.pem", lab.live.chain_pem)
    path = _write(tmp_path / "bootstrap.json", bootstrap)
    assert_one_error_line(_preflight(capsys, lab, chain, "--bootstrap", path), 2, "bootstrap.json")


@pytest.mark.parametrize("host", ["bad host", "a..b", "x" * 300, "\udcff"])
def test_a_bad_host_is_bad_input(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    chain = _write(tmp_path / "fullchain.pem", lab.live.chain_pem)
    assert_one_error_line(_preflight(capsys, lab, chain, "--host", host), 2)
