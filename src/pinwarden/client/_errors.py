"""Errors of pin enforcement, and ``pin_error`` to find one inside a stack's own wrapper.

::

    ssl.SSLError
    └── ssl.SSLCertVerificationError
        └── PinValidationError        the verified chain holds no pinned key, or cannot be pinned
    RuntimeError
    └── PinningUnavailableError       something in the process keeps pins from being enforced

Raising a subclass of ``ssl.SSLCertVerificationError`` means every HTTP stack reports a pin failure
the way it reports a bad certificate, and code that already handles those keeps working. Each stack
wraps it in its own error (requests ``SSLError``, httpx ``ConnectError``, aiohttp
``ClientConnectorCertificateError``, urllib ``URLError``, urllib3 ``MaxRetryError``); ``pin_error``
digs it out of any of them.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ChainCertificate", "PinValidationError", "PinningUnavailableError", "pin_error"]


@dataclass(frozen=True)
class ChainCertificate:
    """One certificate of a verified chain, as an error message shows it."""

    role: str  # "leaf", "intermediate" or "root"
    subject: str  # RFC 4514 string
    issuer: str
    pin: str

    def __str__(self) -> str:
        return f"{self.role:<12}  {self.pin}  subject: {self.subject}; issuer: {self.issuer}"


class PinValidationError(ssl.SSLCertVerificationError):
    """The connection to ``host`` was refused by its pin rule, in OkHttp's manner::

        certificate pinning failed for api.example.com: no key of the verified chain is pinned
          verified chain (leaf first):
            leaf          sha256/…  subject: CN=api.example.com; issuer: CN=Example CA
            root          sha256/…  subject: CN=Example CA; issuer: CN=Example CA
          pins expected by rule api.example.com (static pins):
            sha256/…
          next step: …

    For programs: ``host``; ``reason``; ``expected``, the pins of the rule, and ``pattern``, its
    host pattern; ``origin``, where the rule came from (``PinRule.origin``: "static pins", "pin set
    v7 of channel C", "the shipped bootstrap pins"), None when no rule was reached; ``seen``, the
    pins of the verified chain, leaf first, and ``chain``, the same certificates as
    ``ChainCertificate`` (both empty when no chain could be read); ``next_step``, what to do about
    it, or None.
    """

    def __init__(
        self,
        host: str,
        reason: str,
        *,
        expected: Sequence[str] = (),
        seen: Sequence[str] = (),
        origin: str | None = None,
        pattern: str | None = None,
        chain: Sequence[ChainCertificate] = (),
        next_step: str | None = None,
    ) -> None:
        self.host = host
        self.reason = reason
        self.expected = tuple(expected)
        self.seen = tuple(seen)
        self.origin = origin
        self.pattern = pattern
        self.chain = tuple(chain)
        self.next_step = next_step
        lines = [f"certificate pinning failed for {host}: {reason}"]
        if self.chain:
            lines.append("  verified chain (leaf first):")
            lines.extend(f"    {certificate}" for certificate in self.chain)
        elif self.seen:
            lines.append("  verified chain (leaf first): " + ", ".join(self.seen))
        if self.expected:
            rule = f"rule {pattern}" if pattern else "the rule"
            source = f" ({origin})" if origin else ""
            lines.append(f"  pins expected by {rule}{source}:")
            lines.extend(f"    {pin}" for pin in self.expected)
        if next_step:
            lines.append(f"  next step: {next_step}")
        message = "\n".join(lines)
        super().__init__(message)
        self.message = message
        self.verify_message = message
        self.verify_code = 0

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        """Picklable (a refusal crosses a process pool or a multiprocessing queue): rebuilt from
        its fields, since ``BaseException``'s default passes only ``args`` back to ``__init__``."""
        fields = {
            "expected": self.expected,
            "seen": self.seen,
            "origin": self.origin,
            "pattern": self.pattern,
            "chain": self.chain,
            "next_step": self.next_step,
        }
        return _rebuild_pin_error, (type(self), self.host, self.reason, fields)


def _rebuild_pin_error(
    cls: type[PinValidationError], host: str, reason: str, fields: dict[str, Any]
) -> PinValidationError:
    return cls(host, reason, **fields)


class PinningUnavailableError(RuntimeError):
    """Pins cannot be enforced in this process (gevent or eventlet patched ``ssl``, ...).

    Raised when a pinned context or client is made, so that an app never runs unpinned by surprise;
    the message names what is in the way and what to do.
    """


_MAX_DEPTH = 16
_MAX_VISITED = 256
_LINKS = ("reason", "os_error", "certificate_error", "original_error", "exceptions")


def _linked(error: BaseException) -> Iterator[BaseException]:
    """Every exception ``error`` wraps: cause, context, args and the attributes stacks keep the
    underlying error in (urllib3 ``MaxRetryError.reason``, urllib ``URLError.reason``, aiohttp
    ``os_error``/``certificate_error``, exception groups' ``exceptions``)."""
    candidates: list[object] = [error.__cause__, error.__context__, *error.args]
    for name in _LINKS:
        try:
            value = getattr(error, name, None)
        except Exception:  # a property of a foreign exception class may fail: nothing to follow
            value = None
        if isinstance(value, tuple | list):
            candidates.extend(value)
        else:
            candidates.append(value)
    yield from (item for item in candidates if isinstance(item, BaseException))


def pin_error(error: BaseException) -> PinValidationError | None:
    """The ``PinValidationError`` inside ``error``, whatever stack wrapped it; None if none is.

    ``error`` is what the app caught: requests ``SSLError``, httpx ``ConnectError``, aiohttp
    ``ClientConnectorCertificateError``, urllib ``URLError``, urllib3 ``MaxRetryError`` or
    ``SSLError``, or the ``PinValidationError`` itself (plain ``ssl``, ``asyncio``). The search
    follows causes, contexts, arguments and the stacks' attributes breadth first, at most
    ``_MAX_DEPTH`` links deep and ``_MAX_VISITED`` exceptions in all, and visits each exception
    once (cycles end).
    """
    pending: list[tuple[BaseException, int]] = [(error, 0)]
    visited: set[int] = set()
    while pending and len(visited) < _MAX_VISITED:
        current, depth = pending.pop(0)
        if id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, PinValidationError):
            return current
        if depth < _MAX_DEPTH:
            pending.extend((linked, depth + 1) for linked in _linked(current))
    return None
