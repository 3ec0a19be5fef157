"""Strict decoding of the bytes a document is made of, and their one canonical encoding.

Every decoder here refuses what a lenient parser would guess at (duplicate object members, a UTF-8
BOM, NaN, base64 padding or stray characters), so that two verifiers in two languages that follow
docs/spec.md cannot read the same bytes two ways.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, NoReturn

import rfc8785

from pinwarden.document._errors import FormatError
from pinwarden.document._limits import MAX_JSON_DEPTH

__all__ = [
    "MAX_SAFE_INTEGER",
    "b64url_decode",
    "b64url_encode",
    "canonical_json",
    "format_time",
    "json_integer",
    "load_json",
    "parse_time",
    "utc_seconds",
]

# RFC 8785 §3.2.2.3 / I-JSON (RFC 7493 §2.2): integers beyond 2**53 - 1 lose precision elsewhere.
MAX_SAFE_INTEGER = 2**53 - 1

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: object, what: str) -> bytes:
    """Base64url without padding; anything outside the alphabet is an error, not skipped."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise FormatError(f"{what} is not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise FormatError(f"{what} is not unpadded base64url") from None
    # RFC 4648 §3.5: the unused bits of the last character must be zero. Decoders that ignore
    # them would read two spellings as one document; a strict one would refuse the second.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        raise FormatError(f"{what} is not canonical base64url (unused bits set)")
    return raw


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise FormatError("a JSON object has the same member twice")
    return members


def _refuse_constant(name: str) -> NoReturn:
    raise FormatError(f"JSON {name} is not allowed")


# I-JSON (RFC 7493 §2.1): no lone surrogates (only a \u escape can spell one: strict UTF-8
# decoding refuses them) and no noncharacters, in member names or string values.
_NOT_I_JSON = re.compile(
    "[\ud800-\udfff\ufdd0-\ufdef"
    + "".join(
        f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
    )
    + "]"
)


def _is_safe_integer(number: float) -> bool:
    """JavaScript's ``Number.isSafeInteger``: ``7``, ``7.0`` and ``7e0`` are one value, and
    ``1e400`` (infinite to Python's parser) is none (docs/spec.md §2.3)."""
    if isinstance(number, float) and not number.is_integer():
        return False
    return abs(number) <= MAX_SAFE_INTEGER


def _refuse_non_i_json_values(value: Any) -> None:
    """Refuse lone surrogates and noncharacters, numbers that are not safe integers (I-JSON,
    RFC 7493 §2.1-§2.2), and nesting beyond MAX_JSON_DEPTH.

    The top-level object or array is at depth 1. Python's parser has no depth limit of its own
    (only the interpreter's recursion limit, which differs between builds), so the limit is
    checked on the parsed value.
    """
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if _NOT_I_JSON.search(item):
                raise FormatError("a JSON string holds a lone surrogate or a noncharacter")
        elif isinstance(item, int | float) and not isinstance(item, bool):
            if not _is_safe_integer(item):
                raise FormatError(f"a JSON number is not an integer within ±{MAX_SAFE_INTEGER}")
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise FormatError(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels")
            children = [*item, *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def load_json(data: bytes, what: str) -> Any:
    """Parse strict UTF-8 JSON (RFC 8259, I-JSON rules; docs/spec.md §2.3): no BOM, duplicate
    members, NaN or Infinity, lone surrogates or noncharacters; nesting of at most
    MAX_JSON_DEPTH."""
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
        )
        _refuse_non_i_json_values(value)
        return value
    except FormatError as error:
        raise FormatError(f"{what}: {error}") from None
    except UnicodeDecodeError:
        raise FormatError(f"{what} is not UTF-8") from None
    except RecursionError:
        raise FormatError(f"{what}: JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError, or an integer with too many digits
        raise FormatError(f"{what} is not valid JSON: {error}") from None


def json_integer(value: object, what: str, minimum: int) -> int:
    """``value`` as an integer in ``minimum .. MAX_SAFE_INTEGER`` (a JSON ``true`` is not 1)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise FormatError(f"{what} must be an integer")
    if not minimum <= value <= MAX_SAFE_INTEGER:
        raise FormatError(f"{what} must be between {minimum} and {MAX_SAFE_INTEGER}")
    return value


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of ``value``."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as error:
        raise FormatError(f"cannot encode as canonical JSON: {error}") from None


def utc_seconds(value: object, what: str) -> datetime:
    """An aware datetime in UTC with whole seconds: the only instants a document can spell.

    Sub-second parts are dropped (an expiry moves earlier, never later).
    """
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise FormatError(f"{what} must be a timezone-aware datetime")
    try:
        return value.astimezone(timezone.utc).replace(microsecond=0)
    except OverflowError:
        raise FormatError(f"{what} is out of range") from None


def format_time(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (RFC 3339 §5.6, UTC, no fraction)."""
    v = value.astimezone(timezone.utc)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}Z"


def parse_time(text: object, what: str) -> datetime:
    """The inverse of ``format_time``; any other RFC 3339 spelling is refused."""
    if not isinstance(text, str) or not _TIMESTAMP.fullmatch(text):
        raise FormatError(f"{what} must be a UTC time written YYYY-MM-DDTHH:MM:SSZ")
    try:
        return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise FormatError(f"{what} {text!r} is not a valid time") from None
