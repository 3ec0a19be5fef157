"""The CT watch in the server (settings, loop, metrics), in ``pinwarden suggest`` and on the
command line (``pinwarden ct watch --once``, ``ct logs``, ``ct sightings``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pinwarden._pins import spki_pin
from pinwarden.cli import main
from pinwarden.server import ConfigError, ServerConfig
from pinwarden.server._models import utc_now
from pinwarden.server.alerts import AlertKind, list_alerts
from pinwarden.server.ct import CtWatcher
from pinwarden.server.suggest import ChangeKind, suggest
from tests.ct.conftest import write_list
from tests.ct.ct_log import TestLog
from tests.operations.operations_harness import OperationsServer
from tests.server.server_harness import exposed_samples
from tests.support.pki import backup_pin

HOST = "api.example.com"
CHANNEL = "app"


def _server(
    operations_server: Callable[..., OperationsServer],
    log: TestLog,
    tmp_path: Path,
    **config: object,
) -> tuple[OperationsServer, str]:
    [source] = write_list(tmp_path, log.log_list(tiled=False))
    server = operations_server(ct_log_lists=(source,), **config)
    server.add_channel(
        CHANNEL, {HOST: [spki_pin(ec.generate_private_key(ec.SECP256R1())), backup_pin()]}
    )
    server.publish(CHANNEL, force=True)
    log.add(["before.example.org"])
    log.publish()
    return server, source


def test_the_server_watches_the_configured_lists_and_exposes_metrics(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> None:
    log = test_logs()
    server, source = _server(operations_server, log, tmp_path)
    watcher: CtWatcher = server.services.ct_watch
    assert watcher.sources == (source,)
    watcher.run_once()
    log.add([HOST])
    log.publish()
    asyncio.run(_rounds(watcher))
    samples = exposed_samples(server.http.get("/metrics").text)
    assert samples[("pinwarden_ct_entries_total", (("result", "matched"),))] == 1
    assert samples[("pinwarden_ct_log_position", (("log", "pinwarden test log (RFC 6962)"),))] == 2
    assert samples[("pinwarden_ct_rounds_total", (("outcome", "ok"),))] >= 2


async def _rounds(watcher: CtWatcher) -> None:
    """The server's loop, a round every 50 ms, until a round has read the new entry."""
    task = asyncio.create_task(watcher.run_forever("replica-1", every=timedelta(seconds=0.05)))
    for _ in range(200):
        await asyncio.sleep(0.05)
        if watcher.entries["matched"]:
            break
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_a_colleagues_key_is_suggested_once_its_alert_is_acknowledged(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> None:
    log = test_logs()
    server, _ = _server(operations_server, log, tmp_path)
    server.services.ct_watch.run_once()
    renewal = ec.generate_private_key(ec.SECP256R1())
    log.add([HOST], renewal)
    log.publish()
    server.services.ct_watch.run_once()
    with server.session() as session:
        before = suggest(session, CHANNEL, now=utc_now(), expiry_warning=timedelta(days=21))
        [alert] = list_alerts(session, kind=AlertKind.CT_UNPINNED_KEY.value)
        server.services.alerts.acknowledge(session, alert.id, "oncall")
    assert [(c.kind, c.pin) for c in before.changes] == [(ChangeKind.NOTE, None)]
    with server.session() as session:
        after = suggest(session, CHANNEL, now=utc_now(), expiry_warning=timedelta(days=21))
    assert [(c.kind, c.pin) for c in after.changes] == [(ChangeKind.ADD, spki_pin(renewal))]
    assert "acknowledged by oncall" in after.changes[0].reason


@pytest.mark.parametrize(
    "settings",
    [
        {"ct_log_lists": ("a\0b",)},
        {"ct_log_lists": ("\ud800",)},
        {"ct_log_lists": ["list.json"]},
        {"ct_log_lists": ("x",) * 21},
        {"ct_interval": timedelta(seconds=1)},
        {"ct_interval": 300},
    ],
)
def test_bad_ct_settings_are_one_line_config_errors(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as raised:
        ServerConfig(database_url="sqlite://", key_dir=Path("/nonexistent"), **settings)  # type: ignore[arg-type]
    assert "\n" not in str(raised.value) and "ct_" in str(raised.value)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_ct_watch_once_logs_and_sightings_on_the_command_line(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = test_logs()
    server, source = _server(operations_server, log, tmp_path)
    data = str(server.data.data.path)
    watch = ("ct", "watch", "--once", "--data", data, "--log-list", source)
    status, out, _ = _run(capsys, *watch, "--json")
    assert status == 0 and json.loads(out)["logs"][0]["end"] == 1
    log.add([HOST], final=True)
    log.publish()
    status, out, _ = _run(capsys, *watch)
    assert status == 1 and "UNPINNED KEY app api.example.com: api.example.com" in out
    assert _run(capsys, *watch)[0] == 0  # nothing new
    status, out, _ = _run(capsys, "ct", "sightings", "--data", data, "--json")
    assert status == 0 and [s["names"] for s in json.loads(out)["sightings"]] == [[HOST]]
    status, out, _ = _run(capsys, "ct", "logs", "--log-list", source)
    assert status == 0 and "pinwarden test log (RFC 6962)" in out
    log.stop()
    status, out, _ = _run(capsys, *watch)
    assert status == 3 and "error:" in out


@pytest.mark.parametrize(
    "argv, status",
    [
        (("ct", "watch", "--data", "D"), 2),  # no --once
        (("ct", "watch", "--once", "--data", "D", "--log-list", "a\0b"), 2),
        (("ct", "watch", "--once", "--data", "D", "--log-list", "\udcff"), 2),
        (("ct", "watch", "--once", "--data", "D", "--batch-size", "0"), 2),
        (("ct", "watch", "--once", "--data", "D", "--timeout", "1e999"), 2),
        (("ct", "sightings", "--data", "D", "--channel", "\ud800"), 2),
        (("ct", "sightings", "--data", "D", "--limit", "99999999999999999999"), 2),
        (("ct", "logs", "--log-list", "/nonexistent/list.json"), 3),
        (("serve", "--data", "D", "--ct-every-minutes", "0"), 2),
        (("ct",), 2),
    ],
)
def test_hostile_ct_arguments_are_one_line_errors(
    argv: tuple[str, ...], status: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = tuple(str(tmp_path) if part == "D" else part for part in argv)
    try:
        code = main(list(argv))
    except SystemExit as exit:
        code = int(exit.code or 0)
    _, err = capsys.readouterr()
    assert code == status
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_serve_takes_the_ct_options() -> None:
    from pinwarden.cli import build_parser

    args = build_parser().parse_args(
        ["serve", "--data", "D", "--ct-log-list", "a.json", "--ct-log-list", "https://l.test/",
         "--ct-every-minutes", "2.5"]
    )  # fmt: skip
    assert args.ct_log_list == ["a.json", "https://l.test/"]
    assert args.ct_every_minutes == timedelta(minutes=2.5)
