"""The check every pinned TLS connection passes before it carries an application byte.

``PinnedSSLSocket`` (blocking sockets: requests, urllib3, httpx sync, plain ``ssl``) and
``PinnedSSLObject`` (memory BIOs: asyncio, aiohttp, httpx async, TLS inside an HTTPS proxy tunnel)
run the same check right after the handshake, and again before the next byte when the pin source's
rules have changed since. Their ``read``/``write``/``send`` first finish an explicit, checked
handshake, so the implicit handshake OpenSSL would do inside ``SSL_write`` for a socket made with
``do_handshake_on_connect=False`` never lets data out unchecked (docs/security.md rule 4).

Both are built on the standard library's classes as ``_stdlib_ssl`` finds them, not on whatever
``ssl.SSLSocket`` names now (gevent and eventlet rebind it).
"""

from __future__ import annotations

import _ssl
import hmac
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import UnsupportedAlgorithm

from pinwarden._hosts import normalize_host
from pinwarden._pins import pin_from_digest, spki_digest_of_der
from pinwarden._tls import served_chain_der, verified_chain_der, verified_chain_key
from pinwarden.client._chain import describe_chain
from pinwarden.client._errors import PinValidationError
from pinwarden.client._rules import Mode, PinRule, PinSource, PinViolation
from pinwarden.client._stdlib_ssl import (
    PYOPENSSL_ADVICE,
    STDLIB_OBJECT,
    STDLIB_SOCKET,
    urllib3_uses_pyopenssl,
)
from pinwarden.errors import InvalidHostError

__all__ = [
    "PassedChecks",
    "PinCheck",
    "PinnedSSLObject",
    "PinnedSSLSocket",
    "check_connection",
    "source_of",
]

logger = logging.getLogger("pinwarden.client")

if TYPE_CHECKING:
    _StdlibSocket = ssl.SSLSocket
    _StdlibObject = ssl.SSLObject
else:
    _StdlibSocket = STDLIB_SOCKET
    _StdlibObject = STDLIB_OBJECT

# The C getter of verify_mode: ssl.SSLContext wraps it in an enum lookup that shows in the handshake
# cost (docs/security.md, "Performance"), and reaching it through super(ssl.SSLContext, context)
# fails once truststore has rebound ssl.SSLContext.
_C_VERIFY_MODE: Any = _ssl._SSLContext.verify_mode


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

    Pinning is in addition to CA and hostname validation (docs/security.md rule 2), never instead
    of it.
    """
    name = host or "<no server_hostname>"
    source: PinSource | None = getattr(context, "pin_source", None)
    if source is None:
        raise PinValidationError(
            name, "the SSL context has no pin source", next_step="build it with pinned_context"
        )
    if _C_VERIFY_MODE.__get__(context) != ssl.CERT_REQUIRED:
        raise PinValidationError(
            name, "the SSL context does not require certificate validation (verify_mode must be "
            "CERT_REQUIRED); pinning never replaces it",
            next_step="find the code that sets verify_mode on the pinned context and remove it",
        )
    if not context.check_hostname:
        raise PinValidationError(
            name, "the SSL context does not check hostnames (check_hostname is False); "
            "pinning never replaces it",
            next_step=PYOPENSSL_ADVICE if urllib3_uses_pyopenssl() else (
                "find the code that sets check_hostname on the pinned context (urllib3 does for "
                "assert_hostname=/assert_fingerprint=) and remove it"
            ),
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
        return int(tls.getpeername()[1]) if isinstance(tls, STDLIB_SOCKET) else None
    except OSError:
        return None


def generation_of(source: PinSource, host: str) -> int:
    """``source.generation``; a source that fails to answer fails the connection.

    docs/security.md rule 7: fail closed.
    """
    try:
        return source.generation
    except Exception as error:
        raise PinValidationError(host, f"the pin source failed: {error!r}") from error


def _rule_of(source: PinSource, host: str) -> PinRule | None:
    try:
        return source.rule_for(host)
    except Exception as error:
        raise PinValidationError(host, f"the pin source failed: {error!r}") from error


def _report(source: PinSource, violation: PinViolation) -> None:
    """Hand the violation to the source; its failure neither lets through nor changes a refusal."""
    try:
        source.report(violation)
    except Exception:
        logger.exception("pinwarden: the pin source failed to record a violation; ignored")


PassedChecks = dict[tuple[Any, ...], PinCheck]
"""Checks that passed, keyed by what decides them; see ``check_connection``."""

_MAX_PASSED = 512


def check_connection(
    tls: ssl.SSLSocket | ssl.SSLObject, source: PinSource, passed: PassedChecks | None = None
) -> PinCheck:
    """Check a handshaken connection against ``source``; raise ``PinValidationError`` to refuse.

    ``passed`` memoises passes of this one source. A check is decided by the rules (fixed for one
    ``generation``), the server name and the verified chain, so a connection with the same three
    passes again: one lookup instead of parsing keys and comparing digests, most of the cost of a
    check right after a handshake (``bench/client_overhead.py``, docs/security.md). The chain is
    still read on every connection; a resumed session has none, so it never matches a remembered
    pass. Refusals and report-only mismatches are never remembered: each is reported and raised
    again.
    """
    raw_host = tls.server_hostname or ""
    generation = generation_of(source, raw_host)
    if passed is not None:
        remembered = passed.get((raw_host, generation)) or passed.get(
            (raw_host, generation, verified_chain_key(tls))
        )
        if remembered is not None:
            return remembered
    check, key = _decide(tls, source, raw_host, generation)
    if passed is not None and key is not None:
        if len(passed) >= _MAX_PASSED:
            passed.clear()
        passed[key] = check
    return check


def _decide(
    tls: ssl.SSLSocket | ssl.SSLObject, source: PinSource, raw_host: str, generation: int
) -> tuple[PinCheck, tuple[Any, ...] | None]:
    """The check itself, and the key under which its pass may be remembered (None: it may not)."""
    try:
        host = normalize_host(raw_host)
    except InvalidHostError as error:
        raise PinValidationError(
            raw_host, f"the server hostname cannot be normalised: {error}"
        ) from None
    rule = _rule_of(source, host)
    if rule is None or rule.mode is Mode.DISABLED:
        return PinCheck(host, rule, None, None, generation), (raw_host, generation)
    if tls.session_reused:
        # docs/security.md rule 5: a resumed session skipped chain building: nothing to check.
        raise PinValidationError(host, "a resumed TLS session has no verified chain to check")
    if not rule.digests:
        raise PinValidationError(host, f"rule {rule.pattern} has no pins (fails closed)")
    chain = verified_chain_der(tls)
    if not chain:
        raise _refusal(host, "no verified chain is available", rule)
    try:
        seen = [spki_digest_of_der(der) for der in chain]
    except (ValueError, UnsupportedAlgorithm) as error:
        raise _refusal(
            host, f"a certificate of the verified chain cannot be read: {error}", rule
        ) from None
    depth = _matching_depth(seen, rule)
    if depth is not None:
        check = PinCheck(host, rule, pin_from_digest(seen[depth]), depth, generation)
        return check, (raw_host, generation, verified_chain_key(tls))
    seen_pins = tuple(pin_from_digest(digest) for digest in seen)
    enforced = rule.mode is Mode.ENFORCE
    _report(
        source,
        PinViolation(
            hostname=host,
            port=_peer_port(tls),
            rule=rule,
            verified_pins=seen_pins,
            validated_chain_pem=tuple(ssl.DER_cert_to_PEM_cert(der) for der in chain),
            served_chain_pem=tuple(ssl.DER_cert_to_PEM_cert(der) for der in served_chain_der(tls)),
            enforced=enforced,
            reason="no pinned key in the verified chain",
        ),
    )
    if enforced:
        raise _refusal(
            host,
            "no key of the verified chain is pinned",
            rule,
            seen=seen_pins,
            chain=describe_chain(chain),
            next_step=_mismatch_advice(host, rule),
        )
    return PinCheck(host, rule, None, None, generation), None


def _refusal(host: str, reason: str, rule: PinRule, **details: Any) -> PinValidationError:
    """A ``PinValidationError`` that names ``rule``: its pins, pattern and origin."""
    return PinValidationError(
        host, reason, expected=rule.pins, pattern=str(rule.pattern), origin=rule.origin, **details
    )


def _mismatch_advice(host: str, rule: PinRule) -> str:
    fix = (
        "publish a pin set that adds it"
        if rule.origin.startswith("pin set")
        else f"add its pin to the rule ({rule.origin})"
    )
    return (
        f"if {host} changed its key on purpose, {fix}; `pinwarden pin {host}` prints the pins of "
        "the chain it serves. If not, the connection may be intercepted: do not switch pinning off"
    )


class _PinGuard:
    """What ``PinnedSSLSocket`` and ``PinnedSSLObject`` share: the checked handshake, the guard."""

    _pin_check: PinCheck | None = None
    context: ssl.SSLContext
    server_hostname: str | None

    @property
    def pin_check(self) -> PinCheck | None:
        """The result of the check, once the handshake has passed it."""
        return self._pin_check

    def _refuse(self, error: Exception) -> None:
        """Release the connection after a failed handshake or check (docs/security.md rule 9)."""

    def _checked_handshake(self, handshake: Callable[..., None], *args: Any) -> None:
        """``handshake(self, *args)``, then the check; release the connection on any failure."""
        try:
            source = source_of(self.context, self.server_hostname)
            handshake(self, *args)
            self._pin_check = check_connection(
                self,  # type: ignore[arg-type]
                source,
                getattr(self.context, "passed_checks", None),
            )
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise  # a non-blocking handshake that is still under way
        except Exception as error:
            self._refuse(error)
            raise

    def _ensure_pinned(self, handshake: Callable[..., None]) -> None:
        """Before data: the checked handshake if none yet, a new check if the rules changed."""
        check = self._pin_check
        if check is None:
            self._checked_handshake(handshake)
            return
        try:
            source = source_of(self.context, self.server_hostname)
            if generation_of(source, check.host) != check.generation:
                # docs/security.md rule 8: the rules changed since this connection was checked.
                self._pin_check = check_connection(
                    self,  # type: ignore[arg-type]
                    source,
                    getattr(self.context, "passed_checks", None),
                )
        except Exception as error:  # docs/security.md rule 9: close on any failure of the check
            self._refuse(error)
            raise


class PinnedSSLSocket(_PinGuard, _StdlibSocket):
    """An ``ssl.SSLSocket`` that refuses a server whose verified chain fails its pin rule."""

    _refusal: Exception | None = None

    def _refuse(self, error: Exception) -> None:
        self._refusal = error
        self.close()
        # close() leaves the descriptor open while makefile() objects hold the socket (http.client
        # keeps one per response); a refused connection ends now. _real_close is the private
        # method socket.close() calls once the last makefile() reference is gone (CPython
        # Lib/socket.py, socket.close and _decref_socketios; https://github.com/python/cpython/blob/
        # 3.12/Lib/socket.py); tests/client/test_client_hooks.py fails when it disappears.
        self._real_close()  # type: ignore[attr-defined]

    def _checkClosed(self, msg: str | None = None) -> None:
        # Every I/O method of ssl.SSLSocket calls this private hook first (CPython Lib/ssl.py,
        # SSLSocket.read/write/send/recv..., https://github.com/python/cpython/blob/3.12/Lib/ssl.py;
        # tests/client/test_client_hooks.py checks it): once refused, a connection answers each
        # later call with its refusal, not with a bare "bad file descriptor".
        if self._refusal is not None:
            raise self._refusal

    def settimeout(self, value: float | None) -> None:
        # Stacks set the timeout before each read or write (httpcore): same answer as above.
        self._checkClosed()
        super().settimeout(value)

    def do_handshake(self, block: bool = False) -> None:
        self._checked_handshake(STDLIB_SOCKET.do_handshake, block)

    def _guard(self) -> None:
        if self._sslobj is not None:  # type: ignore[attr-defined]
            self._ensure_pinned(STDLIB_SOCKET.do_handshake)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        self._guard()
        return super().read(len, buffer)

    def write(self, data: Any) -> int:
        self._guard()
        return super().write(data)

    def send(self, data: Any, flags: int = 0) -> int:
        self._guard()
        return super().send(data, flags)


class PinnedSSLObject(_PinGuard, _StdlibObject):
    """An ``ssl.SSLObject`` (memory BIO) refusing a server whose verified chain fails its rule."""

    def do_handshake(self) -> None:
        self._checked_handshake(STDLIB_OBJECT.do_handshake)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        self._ensure_pinned(STDLIB_OBJECT.do_handshake)
        return super().read(len, buffer)

    def write(self, data: Any) -> int:
        self._ensure_pinned(STDLIB_OBJECT.do_handshake)
        return super().write(data)
