"""certspotter and pinwarden's CT watch read the same test log (RFC 6962) and report the same
certificates for the same names."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pinwarden._pins import spki_pin
from pinwarden.server.ct import CtWatcher
from tests.ct.certspotter import CERTSPOTTER, run_certspotter
from tests.ct.conftest import write_list
from tests.ct.ct_log import TestLog
from tests.operations.operations_harness import OperationsServer
from tests.support.pki import backup_pin

pytestmark = pytest.mark.skipif(CERTSPOTTER is None, reason="certspotter is not installed")


def test_certspotter_and_the_watch_report_the_same_certificates(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> None:
    log = test_logs()
    pinned = ec.generate_private_key(ec.SECP256R1())
    for index in range(40):
        log.add([f"noise{index}.example.org"], precert=index % 2 == 0)
        if index % 7 == 0:
            log.add([f"h{index}.example.com", "example.com"], final=index % 14 == 0)
    log.add(["*.example.com"], pinned)
    log.add(["deep.a.example.com"], precert=True)
    log.add(["example.com.evil.test"])
    log.publish()
    [source] = write_list(tmp_path, log.log_list(tiled=False))

    server = operations_server()
    server.add_channel("app", {"**.example.com": [spki_pin(pinned), backup_pin()]})
    server.publish("app", force=True)
    found = CtWatcher(
        server.services.sessions, server.services.alerts, [source], start_at_end=False
    ).run_once()
    ours = {
        (base64.b64decode(s["leaf_pin"].removeprefix("sha256/")).hex(), frozenset(s["names"]))
        for s in found.sightings
    }

    (tmp_path / "certspotter").mkdir()
    findings, _ = run_certspotter(
        Path(source), [".example.com"], tmp_path / "certspotter" / "state"
    )
    theirs = {(finding.pubkey_sha256, finding.names) for finding in findings}
    assert len(ours) == 8  # six h*.example.com (three with their final certificate), *, deep
    assert ours == theirs
    # certspotter reports a precertificate and its certificate twice; the watch once (TBS hash)
    assert len(findings) == len(found.sightings) + 3
