"""Load (issue 13): ``bench/load_server.py`` at a small scale, and its checks shown to catch what
they look for.

The full figure (1,000 clients, 60 s) is the command in docs/reliability.md; here 50 clients for
5 s, half on event streams and half polling with ``If-None-Match``, while a version is published
every second: 0 failed requests, 0 torn and 0 out-of-order documents, every stream client
reaching every version.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from pinwarden.document import sign_pinset
from tests.document.document_helpers import gen
from tests.reliability.load_bench import BENCH, load_server

BENCH_SCRIPT = BENCH / "load_server.py"


def test_fifty_clients_for_five_seconds_see_no_failure_no_torn_and_no_out_of_order_document() -> (
    None
):
    completed = subprocess.run(
        [sys.executable, str(BENCH_SCRIPT), "--clients", "50", "--duration", "5", "--json"],
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert completed.stdout, completed.stderr.decode(errors="replace")
    result = json.loads(completed.stdout)
    print(json.dumps(result, indent=1))
    assert result["errors"] == {}
    assert (result["failed"], result["torn"], result["out_of_order"]) == (0, 0, 0)
    assert result["publishes"] >= 2 and result["publish_failures"] == 0
    assert result["ok_200"] >= 50 and result["not_modified_304"] > 0  # polling used the ETag
    assert result["propagation_samples"] > 0 and result["propagation_missed"] == 0
    assert completed.returncode == 0


def _signed(version: int) -> bytes:
    now = datetime.now(timezone.utc)
    pinset = gen.pinset(version=version, issued=now, expires=now + timedelta(days=1))
    return sign_pinset(replace(pinset, channel=load_server.CHANNEL), [gen.ONLINE])


def _response(version: int, body: bytes, status: int = 200) -> bytes:
    head = (
        f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n"
        f'etag: "v{version}-x"\r\nx-pinwarden-version: {version}\r\n\r\n'
    )
    return head.encode() + body


def test_granian_serves_more_event_streams_than_its_default_backpressure() -> None:
    """granian takes at most ``backpressure`` requests at once (128 by default) and an event
    stream holds one while open: with 160 streams, before ``serve`` raised it, every pin-set
    request queued behind them and no event reached a stream (pin-set p99 3.9 s)."""
    completed = subprocess.run(
        [
            sys.executable, str(BENCH_SCRIPT), "--clients", "160", "--stream-share", "1",
            "--duration", "6", "--server", "granian", "--json",
        ],
        capture_output=True,
        timeout=90,
        check=False,
    )  # fmt: skip
    assert completed.stdout, completed.stderr.decode(errors="replace")
    result = json.loads(completed.stdout)
    assert result["errors"] == {}
    assert (result["failed"], result["torn"], result["out_of_order"]) == (0, 0, 0)
    assert result["propagation_samples"] > 0 and result["propagation_missed"] == 0
    assert completed.returncode == 0


def test_the_load_checks_count_torn_out_of_order_and_failed_answers() -> None:
    """A scripted server answers the bench's client: each wrong answer is counted as what it is,
    and the sound ones are not."""
    v1, v2, v3 = _signed(1), _signed(2), _signed(3)
    tampered = v3.replace(b'"signature":"', b'"signature":"A', 1)
    assert tampered != v3
    script = [
        (_response(2, v2), "ok"),
        (_response(1, v1), "out_of_order"),  # below the version the client holds
        (_response(3, tampered), "torn"),  # a signature that does not verify
        (_response(3, v3[:-10] + b"}" * 10), "torn"),  # cut and padded: not the signed bytes
        (_response(4, v3), "torn"),  # the headers of another version than the body
        (_response(3, b"", status=500), "failed"),
        (_response(3, v3), "ok"),
    ]

    async def scenario() -> list[str]:
        answers = iter(script)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(next(answers)[0])
                await writer.drain()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tally = load_server.Tally()
        client = load_server.Client(port, tally, load_server.Verifier(gen.KEYRING_RAW))
        seen = []
        for _ in script:
            before = {k: getattr(tally, k) for k in ("ok", "torn", "out_of_order", "failed")}
            await client.fetch()
            seen += [k for k, v in before.items() if getattr(tally, k) == v + 1]
        client.connection.close()
        server.close()
        return seen

    started = time.monotonic()
    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == [want for _, want in script]
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("held", "expected_delays", "missed"),
    [
        ([[(1, 10.2), (2, 11.3)]], [0.2, 0.3], 0),
        ([[(2, 11.1)]], [1.1, 0.1], 0),  # v1 skipped: held when v2 arrived
        ([[(1, 10.5)]], [0.5], 1),  # v2 never arrived
    ],
)
def test_propagation_counts_each_version_each_stream_client_held_or_missed(
    held: list[list[tuple[int, float]]], expected_delays: list[float], missed: int
) -> None:
    delays, missing = load_server._propagation([(1, 10.0), (2, 11.0)], held, cutoff=20.0)
    assert [round(d, 3) for d in delays] == expected_delays and missing == missed
