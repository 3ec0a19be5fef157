"""``pkcs11:`` URIs (RFC 7512) naming the online signing key in a token.

Read strictly: the path attributes ``token`` (the token label, required), ``object`` (the key
label) and/or ``id`` (the key id), optionally ``serial`` and ``type=private``; the query attribute
``module-path`` (the PKCS#11 library, required). A PIN never rides in the URI: ``pin-value`` and
``pin-source`` are refused, because a URI is typed on command lines and copied into key
directories; the PIN comes from an environment variable or a 0600 file (docs/keys.md). Any other
attribute is refused rather than ignored, so a URI never selects a different key than it reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from pinwarden.document import KeyStoreError

__all__ = ["Pkcs11Uri"]

_MAX_URI = 2048
# RFC 7512 §2.3: pchar of RFC 3986 without ';' (path) or without '&' (query), and pct-encoding.
_PATH_VALUE = re.compile(r"(?:[A-Za-z0-9\-._~!$'()*+,=:@&]|%[0-9A-Fa-f]{2})*")
_QUERY_VALUE = re.compile(r"(?:[A-Za-z0-9\-._~!$'()*+,=:@/?|]|%[0-9A-Fa-f]{2})*")
_PATH_NAMES = ("token", "object", "id", "serial", "type")
_QUERY_NAMES = ("module-path",)
_PIN_NAMES = ("pin-value", "pin-source")
_NEXT_STEP = "give the PIN with --passphrase-env VAR or --passphrase-file FILE (0600)"


def _fail(problem: str) -> KeyStoreError:
    return KeyStoreError(f"pkcs11: URI {problem} (RFC 7512; docs/keys.md)")


def _attributes(
    part: str, separator: str, names: tuple[str, ...], value: re.Pattern[str]
) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for item in part.split(separator) if part else ():
        name, equals, text = item.partition("=")
        if name in _PIN_NAMES:
            raise _fail(f"carries {name}: a PIN is never written in a URI; {_NEXT_STEP}")
        if not equals or name not in names:
            raise _fail(f"has the attribute {name[:40]!r}; known: {', '.join(names)}")
        if name in found:
            raise _fail(f"names {name} twice")
        if not value.fullmatch(text):
            raise _fail(f"has a character in {name} that must be percent-encoded")
        found[name] = unquote_to_bytes(text)
    return found


def _text(raw: bytes | None, name: str) -> str | None:
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(f"has a {name} that is not UTF-8") from None
    if not text or not text.isprintable():
        raise _fail(f"has an empty {name}, or one with control characters")
    return text


@dataclass(frozen=True)
class Pkcs11Uri:
    """A private key in a PKCS#11 token: which library, which token, which object."""

    module_path: str
    token: str
    object_label: str | None = None
    object_id: bytes | None = None
    serial: str | None = None

    @classmethod
    def parse(cls, text: object) -> Pkcs11Uri:
        if not isinstance(text, str) or not text[:7].lower() == "pkcs11:":
            raise _fail("must start with 'pkcs11:'")
        if len(text) > _MAX_URI:
            raise _fail(f"is longer than {_MAX_URI} characters")
        path, _, query = text[7:].partition("?")
        attributes = _attributes(path, ";", _PATH_NAMES, _PATH_VALUE)
        attributes.update(_attributes(query, "&", _QUERY_NAMES + _PIN_NAMES, _QUERY_VALUE))
        if attributes.get("type", b"private") != b"private":
            raise _fail("names type other than private: it names the signing (private) key")
        module_path, token = (
            _text(attributes.get("module-path"), "module-path"),
            _text(attributes.get("token"), "token"),
        )
        if module_path is None or not module_path.startswith("/"):
            raise _fail("needs ?module-path=/absolute/path/to/the/pkcs11-library.so")
        if token is None:
            raise _fail("needs token=<token label>")
        object_id = attributes.get("id")
        if object_id is not None and not object_id:
            raise _fail("has an empty id")
        uri = cls(
            module_path,
            token,
            _text(attributes.get("object"), "object"),
            object_id,
            _text(attributes.get("serial"), "serial"),
        )
        if uri.object_label is None and uri.object_id is None:
            raise _fail("needs object=<key label> or id=<key id>")
        return uri

    def __str__(self) -> str:
        """The URI again, canonical: path attributes in a fixed order, values percent-encoded."""
        path = [("token", self.token.encode())]
        if self.serial is not None:
            path.append(("serial", self.serial.encode()))
        if self.object_label is not None:
            path.append(("object", self.object_label.encode()))
        if self.object_id is not None:
            path.append(("id", self.object_id))
        attributes = ";".join(f"{name}={quote(value, safe='')}" for name, value in path)
        return f"pkcs11:{attributes};type=private?module-path={quote(self.module_path, safe='/')}"
