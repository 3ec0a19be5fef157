"""The signing-key tests' harness: a SoftHSM2 token made in a temporary directory, the CLI run in
this process, a pin server's services to publish with (docs/keys.md).

``SOFTHSM2_CONF`` points SoftHSM2 at a configuration of this test run's own, so no token of the
machine is touched. A PKCS#11 library reads it once per process (at ``C_Initialize``), so there is
one token directory per test session; each test names keys of its own in it. Where SoftHSM2 or
python-pkcs11 is missing, the tests that need a token skip, saying how to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Debian's softhsm2 package; the other places distributions put the library.
_MODULE_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "pinwarden-test"
PIN = "4711-test-pin"
_SO_PIN = "0815-test-so-pin"


@dataclass(frozen=True)
class SoftToken:
    module_path: str
    label: str
    pin: str

    def uri(self, object_label: str | None = None) -> str:
        """A pkcs11: URI of a key in this token; a fresh label unless one is given."""
        label = object_label or f"online-{uuid.uuid4().hex[:10]}"
        return f"pkcs11:token={self.label};object={label}?module-path={self.module_path}"


def _module_path() -> str | None:
    return next((path for path in _MODULE_PATHS if os.path.isfile(path)), None)


@pytest.fixture(scope="session")
def soft_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftToken]:
    pytest.importorskip("pkcs11", reason="python-pkcs11 is not installed: pip install -e '.[hsm]'")
    module_path, tool = _module_path(), shutil.which("softhsm2-util")
    if module_path is None or tool is None:
        pytest.skip("SoftHSM2 is not installed: apt-get install softhsm2 (docs/keys.md)")
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    config = directory / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n"
    )
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(config)
    subprocess.run(
        [tool, "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", PIN, "--so-pin", _SO_PIN],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield SoftToken(module_path, TOKEN_LABEL, PIN)
    finally:
        if before is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = before


def write_secret(path: Path, value: str) -> Path:
    """A 0600 file holding ``value``: a passphrase or PIN file as the CLI wants it."""
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def pinwarden(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run one ``pinwarden`` command in this process: its exit status, stdout and stderr."""
    from pinwarden.cli import main

    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@contextmanager
def pin_server_services(data_dir: Path, secret: bytes) -> Iterator[Any]:
    """The services of a pin server on ``data_dir`` (made by ``pinwarden init``), signing with
    ``secret`` (the server passphrase, or the token's PIN); no background operations."""
    from pinwarden.server import DataDirectory, ServerConfig, Services

    data = DataDirectory(data_dir)
    config = ServerConfig(
        database_url=data.database_url(None),
        key_dir=data.key_dir,
        passphrase=secret,
        operations=False,
    )
    services = Services(config)
    try:
        yield services
    finally:
        services.engine.dispose()


def publish_disabled_rule(services: Any, channel: str) -> bytes:
    """Publish ``channel`` with one ``disabled`` rule (no live host needed); the signed bytes."""
    from pinwarden.server._channels import add_rule, create_channel

    with services.sessions.begin() as session:
        create_channel(session, channel, "test", description="keys test")
        add_rule(session, channel, "api.example.test", "test", mode="disabled")
    outcome = services.publisher.publish(channel, "test")
    body: bytes = outcome.signed.document.body
    return body


def resign(services: Any, channel: str) -> bytes:
    """Sign ``channel``'s published rules again (after a rotation); the signed bytes."""
    outcome = services.publisher.resign(channel, "test", reason="online key rotated")
    body: bytes = outcome.signed.document.body
    return body
