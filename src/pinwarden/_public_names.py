"""Exceptions show the public module a user imports them from, not the private one defining them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["name_exceptions_after"]


def name_exceptions_after(
    module: str, namespace: Mapping[str, object], names: Iterable[str]
) -> None:
    """Set ``__module__`` of each exception or warning class in ``names`` to ``module``.

    Tracebacks, ``repr`` and log lines then say ``pinwarden.client.PinValidationError``, the path
    a user can import and catch, not ``pinwarden.client._errors.PinValidationError`` (issue 15).
    Only exception classes are renamed: ``typing.get_type_hints`` resolves a class's string
    annotations in the module its ``__module__`` names, which other classes may rely on.
    """
    for name in names:
        value = namespace.get(name)
        if isinstance(value, type) and issubclass(value, BaseException):
            value.__module__ = module
