"""scripts/certbot-deploy-hook.sh run as certbot runs a deploy hook: with RENEWED_LINEAGE and
RENEWED_DOMAINS set, after the renewed files are live; it reloads only when preflight passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pinwarden.rotation._certs import IssuedCertificate
from pinwarden.rotation._lab import API_HOST, CHANNEL, Lab

pytestmark = pytest.mark.network

HOOK = Path(__file__).resolve().parents[2] / "scripts" / "certbot-deploy-hook.sh"
PINWARDEN = Path(sys.executable).parent / "pinwarden"


def _lineage(tmp_path: Path, issued: IssuedCertificate) -> Path:
    """certbot's live directory for a renewed certificate (the names certbot uses)."""
    lineage = tmp_path / "letsencrypt live" / API_HOST  # a space: the hook must quote
    lineage.mkdir(parents=True)
    (lineage / "fullchain.pem").write_bytes(issued.chain_pem)
    (lineage / "privkey.pem").write_bytes(issued.key_pem)
    return lineage


def _run_hook(
    lab: Lab, tmp_path: Path, lineage: Path | None, **settings: str
) -> tuple[subprocess.CompletedProcess[str], bool]:
    reloaded = tmp_path / "reloaded"
    env = {
        "PATH": os.environ["PATH"],
        "RENEWED_DOMAINS": API_HOST,
        "PINWARDEN": str(PINWARDEN),
        "PINWARDEN_URL": lab.server_url,
        "PINWARDEN_CHANNEL": CHANNEL,
        "PINWARDEN_KEYRING": str(lab.keyring_file),
        "PINWARDEN_RELOAD": f"touch '{reloaded}'",
        **({"RENEWED_LINEAGE": str(lineage)} if lineage is not None else {}),
        **settings,
    }
    done = subprocess.run(
        ["/bin/sh", str(HOOK)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return done, reloaded.exists()


def test_a_renewal_with_the_reused_key_is_checked_then_reloaded(lab: Lab, tmp_path: Path) -> None:
    """certbot --reuse-key: a new certificate for the same key keeps the pin."""
    key = serialization.load_pem_private_key(lab.live.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    done, reloaded = _run_hook(lab, tmp_path, _lineage(tmp_path, lab.new_certificate(key)))
    assert done.returncode == 0, done.stderr
    assert reloaded and lab.live.pin in done.stdout


def test_a_renewal_with_a_new_unpinned_key_is_not_reloaded(lab: Lab, tmp_path: Path) -> None:
    renewed = lab.new_certificate()
    done, reloaded = _run_hook(lab, tmp_path, _lineage(tmp_path, renewed))
    assert done.returncode == 1 and not reloaded
    assert renewed.pin in done.stdout and "NOT reloading" in done.stderr


def test_an_unreachable_pin_server_does_not_reload(lab: Lab, tmp_path: Path) -> None:
    lineage = _lineage(tmp_path, lab.live)
    done, reloaded = _run_hook(lab, tmp_path, lineage, PINWARDEN_URL="http://127.0.0.1:9")
    assert done.returncode == 3 and not reloaded and "could not decide" in done.stderr


@pytest.mark.parametrize("missing", ["RENEWED_LINEAGE", "PINWARDEN_CHANNEL", "PINWARDEN_KEYRING"])
def test_a_missing_setting_is_one_line_and_no_reload(
    lab: Lab, tmp_path: Path, missing: str
) -> None:
    lineage = None if missing == "RENEWED_LINEAGE" else _lineage(tmp_path, lab.live)
    done, reloaded = _run_hook(lab, tmp_path, lineage, **({missing: ""} if lineage else {}))
    assert done.returncode == 2 and not reloaded
    assert len(done.stderr.strip().splitlines()) == 1 and missing in done.stderr


@pytest.mark.parametrize("content", [b"", b"garbage", b"\x00" * 32], ids=["empty", "junk", "nul"])
def test_a_damaged_fullchain_is_not_reloaded(lab: Lab, tmp_path: Path, content: bytes) -> None:
    lineage = _lineage(tmp_path, lab.live)
    (lineage / "fullchain.pem").write_bytes(content)
    done, reloaded = _run_hook(lab, tmp_path, lineage)
    assert done.returncode == 2 and not reloaded and "Traceback" not in done.stderr
