"""Hostnames and the host patterns pin rules are keyed by.

Normalisation (design brief, client rule 6): pins are looked up by the name TLS verified, put in
one form — IDNA 2008 A-labels (UTS #46 mapping), lower case, no trailing dot; IP literals in their
compressed form. Patterns follow OkHttp's ``CertificatePinner``: ``*.example.com`` matches exactly
one label, ``**.example.com`` any number of labels including none.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
from dataclasses import dataclass

import idna
from publicsuffixlist import PublicSuffixList

from pinwarden.errors import InvalidHostError

__all__ = ["HostPattern", "normalize_host"]

_MAX_NAME = 253
_MAX_LABEL = 63
# Letters, digits, hyphen; underscore too, as it appears in real service names.
_ASCII_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$")


@functools.lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    # The list ships inside the package; nothing is fetched at run time.
    return PublicSuffixList()


def _ip_literal(host: str) -> str | None:
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(candidate).compressed
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def normalize_host(host: str) -> str:
    """``host`` in the one form pins are keyed by; ``InvalidHostError`` if it is not a hostname."""
    if not isinstance(host, str):
        raise InvalidHostError(f"a hostname is a string, not {type(host).__name__}")
    ip = _ip_literal(host)
    if ip is not None:
        return ip
    name = host[:-1] if host.endswith(".") else host
    if not name or name.startswith("."):
        raise InvalidHostError(f"hostname {host!r} is empty or has an empty label")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as error:
            raise InvalidHostError(f"hostname {host!r} is not a valid IDNA name: {error}") from None
    name = name.lower()
    if len(name) > _MAX_NAME:
        raise InvalidHostError(f"hostname {host!r} is longer than {_MAX_NAME} characters")
    for label in name.split("."):
        if len(label) > _MAX_LABEL or not _ASCII_LABEL.match(label):
            raise InvalidHostError(f"hostname {host!r} has an invalid label {label!r}")
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except idna.IDNAError as error:
                raise InvalidHostError(
                    f"hostname {host!r}: bad A-label {label!r}: {error}"
                ) from None
    return name


class PatternKind(enum.IntEnum):
    """How a pattern matches; a higher value is more specific at the same base."""

    ANY_DEPTH = 1  # **.example.com
    ONE_LABEL = 2  # *.example.com
    EXACT = 3  # example.com


@dataclass(frozen=True)
class HostPattern:
    """A host pattern in normal form; build it with ``HostPattern.parse``."""

    kind: PatternKind
    base: str

    @classmethod
    def parse(cls, pattern: str) -> HostPattern:
        """Parse and normalise ``pattern``; refuse malformed ones and public-suffix wildcards."""
        if not isinstance(pattern, str):
            raise InvalidHostError(f"a host pattern is a string, not {type(pattern).__name__}")
        if pattern.startswith("**."):
            kind, rest = PatternKind.ANY_DEPTH, pattern[3:]
        elif pattern.startswith("*."):
            kind, rest = PatternKind.ONE_LABEL, pattern[2:]
        else:
            kind, rest = PatternKind.EXACT, pattern
        if "*" in rest:
            raise InvalidHostError(
                f"host pattern {pattern!r}: a wildcard may only be the whole first label "
                "('*.example.com' or '**.example.com')"
            )
        try:
            base = normalize_host(rest)
        except InvalidHostError as error:
            raise InvalidHostError(f"host pattern {pattern!r}: {error}") from None
        if _ip_literal(base) is not None and kind is not PatternKind.EXACT:
            raise InvalidHostError(f"host pattern {pattern!r}: an IP address takes no wildcard")
        if kind is not PatternKind.EXACT and _public_suffixes().is_public(base):
            raise InvalidHostError(
                f"host pattern {pattern!r} covers the public suffix {base!r}: pin a registrable "
                "domain or hosts under it"
            )
        return cls(kind, base)

    def __str__(self) -> str:
        prefix = {PatternKind.ANY_DEPTH: "**.", PatternKind.ONE_LABEL: "*.", PatternKind.EXACT: ""}
        return prefix[self.kind] + self.base

    @property
    def specificity(self) -> tuple[int, int]:
        """Sort key: the longer base wins, then exact over ``*.`` over ``**.``."""
        return (self.base.count(".") + 1, int(self.kind))

    def matches(self, host: str) -> bool:
        """Whether the normalised ``host`` falls under this pattern."""
        if self.kind is PatternKind.EXACT:
            return host == self.base
        if not host.endswith("." + self.base):
            return self.kind is PatternKind.ANY_DEPTH and host == self.base
        prefix = host[: -len(self.base) - 1]
        return self.kind is PatternKind.ANY_DEPTH or "." not in prefix
