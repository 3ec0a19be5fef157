"""The exception tree drawn in ``pinwarden.errors`` is complete, and true to the classes.

Every exception and warning class pinwarden defines (public name: no leading underscore) must be
drawn in the tree, under its real parent, beside the module its ``__module__`` names; classes
exported by a public package name that package, so that tracebacks and logs show the import path a
user can catch (issue 15).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import traceback
from types import ModuleType

import pytest

import pinwarden
import pinwarden.errors

_TREE_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[\w.]+)(?:\s+(?P<module>pinwarden[\w.]*))?")


def _all_modules() -> list[ModuleType]:
    """Every module of the package, the server's and the CLI's included (none runs on import)."""
    pytest.importorskip("sqlalchemy", reason="the server needs pip install 'pinwarden[server]'")
    modules = []
    for info in pkgutil.walk_packages(pinwarden.__path__, "pinwarden."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def _defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in _all_modules():
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("pinwarden")
                and not name.startswith("_")
            ):
                found[value.__name__] = value
    return found


def _drawn_tree() -> dict[str, tuple[str | None, str | None]]:
    """Class name -> (parent name in the drawing, module written beside it)."""
    doc = pinwarden.errors.__doc__ or ""
    block = doc.split("::\n", 1)[1].split("\n\n", 1)[0]
    drawn: dict[str, tuple[str | None, str | None]] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = _TREE_LINE.match(line.strip("\n")[4:])
        if match is None or not match.group("name") or match.group("name").startswith("│"):
            continue
        depth = len(match.group("indent"))
        name = match.group("name").rsplit(".", 1)[-1]
        if not name[0].isupper():
            continue  # a continuation line of a description
        while stack and stack[-1][0] >= depth:
            stack.pop()
        drawn[name] = (stack[-1][1] if stack else None, match.group("module"))
        stack.append((depth, name))
    return drawn


def test_every_exception_class_is_drawn_in_the_tree() -> None:
    defined = _defined_exceptions()
    drawn = _drawn_tree()
    missing = sorted(set(defined) - set(drawn))
    assert not missing, f"draw these in pinwarden/errors.py: {missing}"


def test_each_class_is_drawn_under_a_real_parent_beside_its_module() -> None:
    drawn = _drawn_tree()
    for name, cls in _defined_exceptions().items():
        parent, module = drawn[name]
        bases = [base.__name__ for base in cls.__mro__[1:]]
        assert parent in bases, f"{name} is drawn under {parent}, but its bases are {bases}"
        assert module == cls.__module__, f"{name}: drawn beside {module}, is in {cls.__module__}"


def test_the_tree_names_no_class_that_does_not_exist() -> None:
    defined = _defined_exceptions()
    drawn = {name for name, (_, module) in _drawn_tree().items() if module is not None}
    assert drawn <= set(defined), sorted(drawn - set(defined))


@pytest.mark.parametrize(
    "package", ["pinwarden.client", "pinwarden.document", "pinwarden.rotation", "pinwarden.server"]
)
def test_exported_exceptions_name_their_public_package(package: str) -> None:
    if package == "pinwarden.server":
        pytest.importorskip("sqlalchemy", reason="needs pip install 'pinwarden[server]'")
    module = importlib.import_module(package)
    exported = [getattr(module, name) for name in module.__all__]
    exceptions = [value for value in exported if isinstance(value, type)
                  and issubclass(value, BaseException)]
    assert exceptions
    for cls in exceptions:
        assert cls.__module__ == package, cls


def test_a_traceback_shows_the_public_path() -> None:
    from pinwarden.client import PinValidationError

    try:
        raise PinValidationError("api.example.com", "no key of the verified chain is pinned")
    except PinValidationError as error:
        shown = "".join(traceback.format_exception_only(type(error), error))
    assert shown.startswith("pinwarden.client.PinValidationError: certificate pinning failed")


def test_a_lazily_loaded_channel_error_names_the_public_package() -> None:
    import pinwarden.client

    assert pinwarden.client.DynamicPins is not None
    from pinwarden.client._trust import ChannelError

    assert ChannelError.__module__ == "pinwarden.client"
