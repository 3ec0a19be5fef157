"""``pinwarden demo``: interception, pinning and an emergency rotation, on loopback, in seconds.

Exit status: 0 every step ended as told; 1 one did not (the output says which); 2 the server's
dependencies are missing (``pip install 'pinwarden[server]'``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path
from typing import Any

from pinwarden.cli._common import EXIT_FAILED, EXIT_OK, CommandError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="watch pinning refuse an interception and survive an emergency rotation",
        description="Runs an API with its own CA, a pin server, an intercepting proxy and "
        "pinned and unpinned clients on 127.0.0.1, and prints each step as it happens. Takes "
        "under a minute; leaves nothing behind.",
    )
    parser.set_defaults(handler=_run)


def _say(line: str) -> None:
    print(line, flush=True)


def _run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("uvicorn") is None:
        raise CommandError("the demo runs the pin server: pip install 'pinwarden[server]'")
    from pinwarden.rotation import run_demo

    with tempfile.TemporaryDirectory(prefix="pinwarden-demo-") as directory:
        result = run_demo(Path(directory) / "lab", _say)
    if result.as_told:
        return EXIT_OK
    print("pinwarden demo: a step did not end as told (see above)", file=sys.stderr)
    return EXIT_FAILED
