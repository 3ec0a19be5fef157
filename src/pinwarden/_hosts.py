"""Hostnames and the host patterns pin rules are keyed by (docs/spec.md §3.1).

Normalisation (docs/security.md rule 6): pins are looked up by the name TLS verified, put in one
form: lower case, IDNA 2008 A-labels (UTS #46 mapping), no trailing dot; IPv4 dotted decimal,
IPv6 in RFC 5952 text (an IPv4-mapped IPv6 address becomes its IPv4 address). Patterns follow
OkHttp's ``CertificatePinner``: ``*.example.com`` matches exactly one label, ``**.example.com``
any number of labels including none.

The grammar of a pattern in normal form is docs/spec.md §3.1, and every check it names is made
here. Two more checks are *signer policy* (docs/spec.md §3.2): an A-label must be IDNA 2008, and a
wildcard must not cover a public suffix. A verifier of a signed document does not re-judge them
(``HostPattern.parse(..., grammar_only=True)``): their answer depends on a Unicode or public-suffix
snapshot, and two clients with two snapshots would otherwise disagree about one signed document.
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

__all__ = ["HostPattern", "is_loopback", "normalize_host", "public_suffixes"]

_MAX_NAME = 253
_MAX_LABEL = 63
_A_LABEL_PREFIX = "xn--"
# docs/spec.md §3.1 `label`: letters, digits, "_" (real service names use it) and "-", the
# hyphen neither first nor last.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
# docs/spec.md §3.1: a last label that is a number makes the WHATWG URL parser read the name as
# an IPv4 address ("1.2.3" is 1.2.0.3, "0x7f.1" is 127.0.0.1): such a name is refused.
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)")
_IPV6_CHARACTERS = re.compile(r"[0-9a-fA-F:.]+")


@functools.lru_cache(maxsize=1)
def public_suffixes() -> PublicSuffixList:
    # The list ships inside the package; nothing is fetched at run time.
    return PublicSuffixList()


def _ip_literal(host: str) -> str | None:
    """The normal form of an IP literal (IPv6 with or without brackets), or None.

    A zone index (``fe80::1%eth0``) is not an address of a host and is refused: ``ipaddress``
    accepts it since Python 3.9. An IPv4-mapped IPv6 address is written as its IPv4 address:
    ``compressed`` spells it ``::ffff:102:304`` before Python 3.13 and ``::ffff:1.2.3.4`` from
    3.13 (``ipaddress`` changed how it prints such addresses), so neither spelling can be the
    normal form.
    """
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in candidate and not _IPV6_CHARACTERS.fullmatch(candidate):
        return None
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return address.compressed


def _check_a_label(label: str, host: str, *, idna2008: bool) -> None:
    """docs/spec.md §3.1 `a-label`: Punycode (RFC 3492) that decodes to non-ASCII Unicode
    scalar values and encodes back to the same label; with ``idna2008`` also a valid IDNA 2008
    label (RFC 5891 §5.4, the signer's policy)."""
    encoded = label[len(_A_LABEL_PREFIX) :]
    try:
        decoded = encoded.encode("ascii").decode("punycode")
    except UnicodeError:
        decoded = ""
    valid = (
        not decoded.isascii()
        and not any(0xD800 <= ord(char) <= 0xDFFF for char in decoded)
        and decoded.encode("punycode") == encoded.encode("ascii")
    )
    if not valid:
        raise InvalidHostError(f"hostname {host!r}: {label!r} is not a Punycode A-label")
    if idna2008:
        try:
            idna.decode(label)
        except idna.IDNAError as error:
            raise InvalidHostError(
                f"hostname {host!r}: A-label {label!r} is not IDNA 2008: {error}"
            ) from None


def _a_labels(name: str, host: str) -> str:
    """``name`` with UTS #46 mapping applied and each non-ASCII label as its A-label.

    Label by label, so that ASCII labels keep the plain grammar: ``idna.encode`` of a whole name
    would refuse ``_srv`` or ``r1---sn`` beside a non-ASCII label, which are fine on their own.
    """
    try:
        mapped = idna.uts46_remap(name, std3_rules=False, transitional=False)
        return ".".join(
            label if label.isascii() else idna.alabel(label).decode("ascii")
            for label in mapped.split(".")
        )
    except (idna.IDNAError, UnicodeError) as error:
        raise InvalidHostError(f"hostname {host!r} is not a valid IDNA name: {error}") from None


def _normal_name(host: str, *, idna2008: bool) -> str:
    ip = _ip_literal(host)
    if ip is not None:
        return ip
    name = host[:-1] if host.endswith(".") else host
    if not name or name.startswith("."):
        raise InvalidHostError(f"hostname {host!r} is empty or has an empty label")
    name = name.lower() if name.isascii() else _a_labels(name, host)
    if len(name) > _MAX_NAME:
        raise InvalidHostError(f"hostname {host!r} is longer than {_MAX_NAME} characters")
    labels = name.split(".")
    for label in labels:
        if len(label) > _MAX_LABEL or not _LABEL.fullmatch(label):
            raise InvalidHostError(f"hostname {host!r} has an invalid label {label!r}")
        if label.startswith(_A_LABEL_PREFIX):
            _check_a_label(label, host, idna2008=idna2008)
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise InvalidHostError(
            f"hostname {host!r} ends in a numeric label but is not an IP address"
        )
    return name


def normalize_host(host: str) -> str:
    """``host`` in the one form pins are keyed by; ``InvalidHostError`` if it is not a hostname."""
    # The type is checked before the cache, which would raise TypeError on an unhashable value.
    if not isinstance(host, str):
        raise InvalidHostError(f"a hostname is a string, not {type(host).__name__}")
    return _normal_host(host)


@functools.lru_cache(maxsize=4096)
def _normal_host(host: str) -> str:
    return _normal_name(host, idna2008=True)


class PatternKind(enum.IntEnum):
    """How a pattern matches; a higher value is more specific at the same base."""

    ANY_DEPTH = 1  # **.example.com
    ONE_LABEL = 2  # *.example.com
    EXACT = 3  # example.com


_PREFIXES = {PatternKind.ANY_DEPTH: "**.", PatternKind.ONE_LABEL: "*.", PatternKind.EXACT: ""}


def _split_wildcard(pattern: str) -> tuple[PatternKind, str]:
    for kind in (PatternKind.ANY_DEPTH, PatternKind.ONE_LABEL):
        if pattern.startswith(_PREFIXES[kind]):
            return kind, pattern[len(_PREFIXES[kind]) :]
    return PatternKind.EXACT, pattern


@dataclass(frozen=True)
class HostPattern:
    """A host pattern in normal form; build it with ``HostPattern.parse``."""

    kind: PatternKind
    base: str

    @classmethod
    def parse(cls, pattern: str, *, grammar_only: bool = False) -> HostPattern:
        """Parse and normalise ``pattern`` (docs/spec.md §3.1).

        With ``grammar_only`` the grammar alone decides, as a verifier of a signed document
        reads a pattern; otherwise the signer's policy (docs/spec.md §3.2) applies too: A-labels
        must be IDNA 2008 and a wildcard must not cover a public suffix.
        """
        if not isinstance(pattern, str):
            raise InvalidHostError(f"a host pattern is a string, not {type(pattern).__name__}")
        kind, rest = _split_wildcard(pattern)
        if "*" in rest:
            raise InvalidHostError(
                f"host pattern {pattern!r}: a wildcard may only be the whole first label "
                "('*.example.com' or '**.example.com')"
            )
        try:
            base = _normal_name(rest, idna2008=not grammar_only)
        except InvalidHostError as error:
            raise InvalidHostError(f"host pattern {pattern!r}: {error}") from None
        if kind is not PatternKind.EXACT:
            cls._check_wildcard_base(pattern, base, grammar_only=grammar_only)
        return cls(kind, base)

    @staticmethod
    def _check_wildcard_base(pattern: str, base: str, *, grammar_only: bool) -> None:
        if _ip_literal(base) is not None:
            raise InvalidHostError(f"host pattern {pattern!r}: an IP address takes no wildcard")
        if "." not in base:
            raise InvalidHostError(
                f"host pattern {pattern!r}: a wildcard needs a base of at least two labels "
                "(it would cover a whole top-level domain)"
            )
        if not grammar_only and public_suffixes().is_public(base):
            raise InvalidHostError(
                f"host pattern {pattern!r} covers the public suffix {base!r}: pin a registrable "
                "domain or hosts under it"
            )

    def __str__(self) -> str:
        return _PREFIXES[self.kind] + self.base

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


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's host) is this machine: ``localhost`` or a loopback address.
    Where plain HTTP is allowed without a flag (a pin server, the admin API): no network to
    attack in between."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
