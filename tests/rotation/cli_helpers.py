"""Running ``pinwarden`` in this process and reading what it said."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pinwarden.cli import main
from pinwarden.rotation._lab import API_HOST, CHANNEL, Lab


@dataclass(frozen=True)
class Ran:
    status: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Ran:
    status = main(list(argv))
    captured = capsys.readouterr()
    return Ran(status, captured.out, captured.err)


def rotate_plan(lab: Lab, *options: str) -> list[str]:
    """``rotate plan`` of the lab's API host, against its pin server and keyring."""
    return [
        "rotate", "plan", API_HOST, "--channel", CHANNEL, "--server", lab.server_url,
        "--keyring", str(lab.keyring_file), *options,
    ]  # fmt: skip


def reaching_api(lab: Lab) -> list[str]:
    """The options that reach the lab's API host on 127.0.0.1 and trust its CA."""
    return [
        "--port", str(lab.api.port), "--connect-to", "127.0.0.1",
        "--host-ca-file", str(lab.api_ca_file),
    ]  # fmt: skip


def assert_one_error_line(ran: Ran, status: int, *words: str) -> None:
    """Exit ``status`` with one line on stderr naming ``words``, and no traceback."""
    assert ran.status == status, (ran.status, ran.out, ran.err)
    assert "Traceback" not in ran.err + ran.out
    assert len(ran.err.strip().splitlines()) == 1, ran.err
    for word in words:
        assert word in ran.err, (word, ran.err)


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> str:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)
