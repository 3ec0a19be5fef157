"""The check every pinned TLS connection passes before it carries an application byte.

``PinnedSSLSocket`` (blocking sockets: requests, urllib3, httpx sync, plain ``ssl``) and
``PinnedSSLObject`` (memory BIOs: asyncio, aiohttp, httpx async, TLS inside an HTTPS proxy tunnel)
run the same check right after the handshake, and again before the next byte when the pin source's
rules have changed since. Their ``read``/``write``/``send`` first finish an explicit, checked
handshake, so the implicit handshake OpenSSL would do inside ``SSL_write`` for a socket made with
``do_handshake_on_connect=False`` never lets data out unchecked (client rule 4).
"""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm

from pinwarden._hosts import normalize_host
from pinwarden._pins import pin_from_digest, spki_digest_of_der
from pinwarden.client._chain import verified_chain_der
from pinwarden.client._errors import PinValidationError
from pinwarden.client._rules import Mode, PinRule, PinSource, PinViolation
from pinwarden.errors import InvalidHostError

__all__ = ["PinCheck", "PinnedSSLObject", "PinnedSSLSocket", "check_connection", "source_of"]


@dataclass(frozen=True)
class PinCheck:
    """The outcome of a passed check: which rule applied and which pin matched at what depth."""

    host: str
    rule: PinRule | None
    matched_pin: str | None
    depth: int | None
    generation: int


def source_of(context: ssl.SSLContext, host: str | None) -> PinSource:
    """The pin source of a pinned context; refuse a context that weakens normal validation.

    Pinning is in addition to CA and hostname validation (client rule 2), never instead of it.
    """
    name = host or "<no server_hostname>"
    source: PinSource | None = getattr(context, "pin_source", None)
    if source is None:
        raise PinValidationError(name, "the SSL context has no pin source")
    if context.verify_mode != ssl.CERT_REQUIRED:
        raise PinValidationError(
            name, "the SSL context does not require certificate validation (verify_mode must be "
            "CERT_REQUIRED); pinning never replaces it"
        )
    if not context.check_hostname:
        raise PinValidationError(
            name, "the SSL context does not check hostnames (check_hostname is False); "
            "pinning never replaces it"
        )
    return source


def _matching_depth(seen: list[bytes], rule: PinRule) -> int | None:
    """Depth of the first chain certificate whose key is pinned; every pair compared in full."""
    depth_found: int | None = None
    for depth, digest in enumerate(seen):
        hit = False
        for expected in rule.digests:
            hit |= hmac.compare_digest(digest, expected)
        if hit and depth_found is None:
            depth_found = depth
    return depth_found


def _peer_port(tls: ssl.SSLSocket | ssl.SSLObject) -> int | None:
    try:
        return int(tls.getpeername()[1]) if isinstance(tls, ssl.SSLSocket) else None
    except OSError:
        return None


def check_connection(tls: ssl.SSLSocket | ssl.SSLObject, source: PinSource) -> PinCheck:
    """Check a handshaken connection against ``source``; raise ``PinValidationError`` to refuse."""
    raw_host = tls.server_hostname or ""
    try:
        host = normalize_host(raw_host)
    except InvalidHostError as error:
        raise PinValidationError(raw_host, f"the server hostname cannot be normalised: {error}")
    generation = source.generation
    rule = source.rule_for(host)
    if rule is None or rule.mode is Mode.DISABLED:
        return PinCheck(host, rule, None, None, generation)
    if tls.session_reused:
        # Client rule 5: a resumed session skipped chain building, so there is nothing to check.
        raise PinValidationError(host, "a resumed TLS session has no verified chain to check")
    if not rule.digests:
        raise PinValidationError(host, f"rule {rule.pattern} has no pins (fails closed)")
    chain = verified_chain_der(tls)
    if not chain:
        raise PinValidationError(host, "no verified chain is available", expected=rule.pins)
    try:
        seen = [spki_digest_of_der(der) for der in chain]
    except (ValueError, UnsupportedAlgorithm) as error:
        raise PinValidationError(
            host, f"a certificate of the verified chain cannot be read: {error}", expected=rule.pins
        ) from None
    depth = _matching_depth(seen, rule)
    if depth is not None:
        return PinCheck(host, rule, pin_from_digest(seen[depth]), depth, generation)
    seen_pins = tuple(pin_from_digest(digest) for digest in seen)
    enforced = rule.mode is Mode.ENFORCE
    source.report(
        PinViolation(
            hostname=host,
            port=_peer_port(tls),
            rule=rule,
            served_chain=seen_pins,
            validated_chain_pem=tuple(ssl.DER_cert_to_PEM_cert(der) for der in chain),
            enforced=enforced,
            reason="no pinned key in the verified chain",
        )
    )
    if enforced:
        raise PinValidationError(
            host, f"no key of the verified chain is pinned by rule {rule.pattern}",
            expected=rule.pins, seen=seen_pins,
        )
    return PinCheck(host, rule, None, None, generation)


class _PinGuard:
    """What ``PinnedSSLSocket`` and ``PinnedSSLObject`` share: the checked handshake and the guard."""

    _pin_check: PinCheck | None = None
    context: ssl.SSLContext
    server_hostname: str | None

    @property
    def pin_check(self) -> PinCheck | None:
        """The result of the check, once the handshake has passed it."""
        return self._pin_check

    def _refuse(self) -> None:
        """Release the connection after a refused check (overridden where there is a socket)."""

    def _checked_handshake(self, handshake: Callable[[], None]) -> None:
        try:
            source = source_of(self.context, self.server_hostname)
            handshake()
            self._pin_check = check_connection(self, source)  # type: ignore[arg-type]
        except PinValidationError:
            self._refuse()
            raise

    def _ensure_pinned(self, handshake: Callable[[], None]) -> None:
        check = self._pin_check
        if check is None:
            self._checked_handshake(handshake)
            return
        try:
            source = source_of(self.context, self.server_hostname)
            if source.generation != check.generation:
                # Client rule 8: the rules changed since this connection was checked.
                self._pin_check = check_connection(self, source)  # type: ignore[arg-type]
        except PinValidationError:
            self._refuse()
            raise


class PinnedSSLSocket(_PinGuard, ssl.SSLSocket):
    """An ``ssl.SSLSocket`` that refuses a server whose verified chain fails its pin rule."""

    def _refuse(self) -> None:
        self.close()

    def do_handshake(self, block: bool = False) -> None:
        self._checked_handshake(lambda: ssl.SSLSocket.do_handshake(self, block))

    def _guard(self) -> None:
        if self._sslobj is not None:  # type: ignore[attr-defined]
            self._ensure_pinned(lambda: ssl.SSLSocket.do_handshake(self))

    def read(self, len: int = 1024, buffer: Any = None) -> Any:  # noqa: A002 - stdlib signature
        self._guard()
        return super().read(len, buffer)

    def write(self, data: Any) -> int:
        self._guard()
        return super().write(data)

    def send(self, data: Any, flags: int = 0) -> int:
        self._guard()
        return super().send(data, flags)


class PinnedSSLObject(_PinGuard, ssl.SSLObject):
    """An ``ssl.SSLObject`` (memory BIO) that refuses a server whose verified chain fails its rule."""

    def do_handshake(self) -> None:
        self._checked_handshake(lambda: ssl.SSLObject.do_handshake(self))

    def read(self, len: int = 1024, buffer: Any = None) -> Any:  # noqa: A002 - stdlib signature
        self._ensure_pinned(lambda: ssl.SSLObject.do_handshake(self))
        return super().read(len, buffer)

    def write(self, data: Any) -> int:
        self._ensure_pinned(lambda: ssl.SSLObject.do_handshake(self))
        return super().write(data)
