"""The scanner: many TLS connections at once, each verified as a client would, none holding more
than ``concurrency`` sockets open together.

Each connection validates the chain against the target's trust anchors and its TLS name (SNI
and hostname check on ``server_name``, whatever address is dialled), then reads the *verified*
chain (docs/security.md rule 1). Nothing is sent after the handshake. The scanner knows nothing
of rules or databases: ``pinwarden monitor --once`` and the server's monitor both drive it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pinwarden._tls import CertificateFacts, certificate_facts, verified_chain_der
from pinwarden.server._models import utc_now

__all__ = ["ScanResult", "ScanTarget", "scan"]

_MAX_CONCURRENCY = 1000

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ScanTarget:
    """Where to connect (``address``:``port``), the TLS name to verify, and the trust anchors:
    ``ca_bundle_pem`` (PEM text) if given, else the scan's CA file, else the system store."""

    server_name: str
    address: str
    port: int
    ca_bundle_pem: str | None = None


@dataclass(frozen=True)
class ScanResult:
    target: ScanTarget
    checked_at: datetime
    chain: tuple[CertificateFacts, ...] = ()
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None

    def view(self) -> dict[str, Any]:
        return {
            "host": self.target.server_name,
            "address": self.target.address,
            "port": self.target.port,
            "checked_at": self.checked_at.isoformat(),
            "chain": [certificate.view() for certificate in self.chain],
            "error": self.error,
        }


class _Contexts:
    """One client context per distinct trust-anchor set: building one reads the CA store."""

    def __init__(self, cafile: str | None) -> None:
        self._cafile = cafile
        self._made: dict[str | None, ssl.SSLContext] = {}

    def for_target(self, target: ScanTarget) -> ssl.SSLContext:
        key = target.ca_bundle_pem
        if key not in self._made:
            if key is None:
                context = ssl.create_default_context(cafile=self._cafile)
            else:
                context = ssl.create_default_context(cadata=key)
            self._made[key] = context
        return self._made[key]


async def scan(
    targets: Iterable[ScanTarget],
    *,
    cafile: str | None = None,
    concurrency: int = 50,
    timeout: float = 10.0,
    clock: Clock = utc_now,
    on_result: Callable[[ScanResult], None] | None = None,
) -> list[ScanResult]:
    """Connect to each target; the results in the targets' order. Never raises for a target:
    a failure is that target's ``error`` (one line). ``on_result`` is called with each result
    as it comes (a progress bar)."""
    if not 1 <= concurrency <= _MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be 1 to {_MAX_CONCURRENCY}")
    if not timeout > 0:
        raise ValueError("timeout must be positive")
    listed: Sequence[ScanTarget] = list(targets)
    contexts = _Contexts(cafile)
    gate = asyncio.Semaphore(concurrency)

    async def one(target: ScanTarget) -> ScanResult:
        async with gate:
            result = await _check(target, contexts, timeout, clock)
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(target) for target in listed)))


async def _check(
    target: ScanTarget, contexts: _Contexts, timeout: float, clock: Clock
) -> ScanResult:
    try:
        context = contexts.for_target(target)
    except (ssl.SSLError, TypeError, ValueError) as error:  # TypeError: not ASCII PEM
        return ScanResult(target, clock(), error=f"the CA bundle does not load: {error}")
    try:
        chain = await asyncio.wait_for(_handshake(target, context), timeout)
    except asyncio.TimeoutError:
        return ScanResult(target, clock(), error=f"no TLS handshake within {timeout:g}s")
    except ssl.SSLCertVerificationError as error:
        return ScanResult(
            target, clock(), error=f"certificate refused: {error.verify_message or error}"
        )
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        return ScanResult(target, clock(), error=_describe(error))
    return ScanResult(target, clock(), chain)


async def _handshake(target: ScanTarget, context: ssl.SSLContext) -> tuple[CertificateFacts, ...]:
    _reader, writer = await asyncio.open_connection(
        target.address, target.port, ssl=context, server_hostname=target.server_name
    )
    try:
        tls = writer.get_extra_info("ssl_object")
        if not isinstance(tls, ssl.SSLObject):
            raise ValueError("the connection has no TLS object")
        chain = verified_chain_der(tls)
        if not chain:
            raise ValueError("the connection has no verified chain")
        return tuple(certificate_facts(der) for der in chain)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass  # the peer may close first; the chain is already read


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
