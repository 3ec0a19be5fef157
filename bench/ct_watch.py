"""CT watch throughput: log entries read, verified and matched per second, against certspotter on
the same log in the same run.

A test log (tests/ct/ct_log.py) with ``--entries`` certificates is built and served from its own
process on 127.0.0.1, so the log's work never shares a core's interpreter with the watcher. One
entry in ``--match-every`` is for a pinned host (a tenth of those precertificates). Then, each
from the log's first entry to its signed tree head:

- pinwarden: ``CtWatcher.run_once`` (``start_at_end=False``) over RFC 6962 ``get-entries``
  (batches of ``--batch-size``), and again over the static-ct-api data tiles, each into a fresh
  SQLite database with one published channel whose rule is ``**.example.com``;
- certspotter (Debian's ``/usr/bin/certspotter``, RFC 6962, watchlist ``.example.com``): the
  seconds from start to its "finished downloading entries" line.

Both verify the tree head's signature and recompute the root from every entry. The ratio is
pinwarden's entries/s over certspotter's (higher is better for pinwarden).

Run: ``.venv/bin/python bench/ct_watch.py --entries 100000`` (docs/ct.md, "Figures"); validate
with ``--entries 5000``.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import tempfile
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric import ec
from tests.ct.certspotter import CERTSPOTTER, run_certspotter
from tests.ct.ct_log import TestLog

from pinwarden._pins import spki_pin

PASSPHRASE = b"bench passphrase"


def _serve(entries: int, match_every: int, out: Any, stop: Event) -> None:
    """Build the log, serve it, report its URL and lists, wait for ``stop``."""
    started = time.perf_counter()
    log = TestLog()
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(32)]
    for index in range(entries):
        key = keys[index % len(keys)]
        if index % match_every == match_every // 2:
            log.add(
                [f"api{index}.example.com"], key, precert=index % (10 * match_every) < match_every
            )
        else:
            log.add([f"host{index}.example.org", f"www.host{index}.example.org"], key)
    log.publish()
    log.start()
    out.put(
        {
            "built_seconds": time.perf_counter() - started,
            "rfc6962": log.log_list(tiled=False),
            "static": log.log_list(tiled=True),
        }
    )
    stop.wait()
    log.stop()


def _pinwarden(directory: Path, log_list: dict[str, Any], batch_size: int) -> tuple[float, int]:
    """Seconds for one round from the log's start, and the sightings recorded."""
    from pinwarden.server import DataDirectory, ServerConfig, Services, initialize
    from pinwarden.server._channels import add_pin, add_rule, create_channel
    from pinwarden.server.ct import CtWatcher

    directory.mkdir()
    data = DataDirectory(directory)
    result = initialize(data, PASSPHRASE)
    config = ServerConfig(
        database_url=result.database_url, key_dir=data.key_dir, passphrase=PASSPHRASE
    )
    services = Services(config)
    pins = [spki_pin(ec.generate_private_key(ec.SECP256R1())) for _ in range(2)]
    with services.sessions.begin() as session:
        create_channel(session, "app", "bench")
        add_rule(session, "app", "**.example.com", "bench")
        for pin in pins:
            add_pin(session, "app", "**.example.com", pin, "bench")
    services.publisher.publish("app", "bench", force=True, reason="bench")
    (directory / "list.json").write_text(json.dumps(log_list))
    watcher = CtWatcher(
        services.sessions,
        services.alerts,
        [str(directory / "list.json")],
        batch_size=batch_size,
        start_at_end=False,
    )
    started = time.perf_counter()
    found = watcher.run_once()
    elapsed = time.perf_counter() - started
    services.engine.dispose()
    problems = [log.error or log.misbehaved for log in found.logs if log.error or log.misbehaved]
    if problems:
        raise SystemExit(f"the watch failed: {problems}")
    return elapsed, len(found.sightings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--match-every", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args(argv)
    logging.getLogger("pinwarden").setLevel(logging.ERROR)  # one alert per matched certificate

    context = multiprocessing.get_context("spawn")
    out: Any = context.Queue()
    stop = context.Event()
    server = context.Process(target=_serve, args=(args.entries, args.match_every, out, stop))
    server.start()
    try:
        info = out.get(timeout=3600)
        print(f"log of {args.entries} entries built in {info['built_seconds']:.1f} s")
        rows: list[tuple[str, float, int]] = []
        with tempfile.TemporaryDirectory() as temporary:
            root = Path(temporary)
            for api in ("rfc6962", "static"):
                seconds, found = _pinwarden(root / f"pinwarden-{api}", info[api], args.batch_size)
                rows.append((f"pinwarden ({api})", seconds, found))
            if CERTSPOTTER is not None:
                (root / "certspotter").mkdir()
                (root / "certspotter" / "list.json").write_text(json.dumps(info["rfc6962"]))
                findings, seconds = run_certspotter(
                    root / "certspotter" / "list.json",
                    [".example.com"],
                    root / "certspotter" / "state",
                    timeout=3600,
                )
                rows.append(("certspotter (rfc6962)", seconds, len(findings)))
    finally:
        stop.set()
        server.join(timeout=30)
    baseline = rows[-1][1] if CERTSPOTTER is not None else None
    print(f"{'reader':24} {'seconds':>8} {'entries/s':>10} {'found':>6} {'vs certspotter':>15}")
    for name, seconds, found in rows:
        ratio = f"{baseline / seconds:.2f}x" if baseline else "n/a"
        print(f"{name:24} {seconds:8.2f} {args.entries / seconds:10.0f} {found:6} {ratio:>15}")
    if CERTSPOTTER is None:
        print("certspotter is not installed: no ratio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
