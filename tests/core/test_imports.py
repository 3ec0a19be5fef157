"""What the light client install loads: ``pip install pinwarden`` (README.md) is the client and
the tools, light enough for a device, and the client never imports server code."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import sys
import {module}
{setup}
heavy = sorted(name for name in {names} if name in sys.modules)
print(",".join(heavy))
"""


_SERVER_MODULES = ("pinwarden.server", "sqlalchemy", "fastapi", "starlette", "uvicorn", "granian")


@pytest.mark.parametrize(
    "module, setup, names, why",
    [
        ("pinwarden.client", "", _SERVER_MODULES, "the client never imports server code"),
        (
            "pinwarden.cli",
            "pinwarden.cli.build_parser()",
            _SERVER_MODULES,
            "the CLI loads server code only to run a server command",
        ),
        ("pinwarden.client", "", ("pinwarden.document", "joserfc"), "static pins need no verifier"),
    ],
)
def test_light_imports_load_no_heavy_modules(
    module: str, setup: str, names: tuple[str, ...], why: str
) -> None:
    probe = _PROBE.format(module=module, setup=setup, names=repr(set(names)))
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "", f"{why}: loaded {result.stdout.strip()}"


def test_dynamic_names_still_import_from_the_client_package() -> None:
    from pinwarden.client import ChannelError, DynamicPins
    from pinwarden.document import DocumentError

    assert DynamicPins.__name__ == "DynamicPins"
    assert issubclass(ChannelError, DocumentError)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        import pinwarden.client as client

        _ = client.NoSuchName  # type: ignore[attr-defined]
