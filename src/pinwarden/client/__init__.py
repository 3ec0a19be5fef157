"""Pin enforcement on TLS connections of every common Python HTTP stack.

Quick start::

    from pinwarden.client import StaticPins, pinned_requests_session

    pins = StaticPins({"api.example.com": ["sha256/…live key…", "sha256/…backup key…"]})
    session = pinned_requests_session(pins)
    session.get("https://api.example.com/")

``pinned_context(source)`` is the one ``ssl.SSLContext`` behind every helper; use it directly with
``ssl``, ``asyncio``, ``http.client`` or any library that takes a context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pinwarden._lazy import lazy_attributes
from pinwarden._public_names import name_exceptions_after
from pinwarden.client._context import PinnedSSLContext, pinned_context
from pinwarden.client._enforce import PinCheck, PinnedSSLObject, PinnedSSLSocket
from pinwarden.client._errors import (
    ChainCertificate,
    PinningUnavailableError,
    PinValidationError,
    pin_error,
)
from pinwarden.client._events import EventKind, PinEvent, PinStatus
from pinwarden.client._fetch import FetchError, FetchResult, HttpTransport, PinServerTransport
from pinwarden.client._refresh import RefreshPolicy
from pinwarden.client._rules import (
    Mode,
    PinRule,
    PinSource,
    PinViolation,
    SinglePinWarning,
    ViolationCallback,
    backup_pin_advice,
)
from pinwarden.client._stacks import (
    pinned_aiohttp_connector,
    pinned_httpx_async_client,
    pinned_httpx_client,
    pinned_pool_manager,
    pinned_proxy_manager,
    pinned_requests_adapter,
    pinned_requests_session,
)
from pinwarden.client._static import StaticPins

if TYPE_CHECKING:
    from pinwarden.client._dynamic import DynamicPins
    from pinwarden.client._trust import ChannelError

# Dynamic pinning pulls in the signed-document verifier (joserfc, rfc8785): about as long to import
# as everything else here together. An app that only pins statically never pays for it.
_LAZY = {"DynamicPins": "pinwarden.client._dynamic", "ChannelError": "pinwarden.client._trust"}


__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "ChainCertificate",
    "ChannelError",
    "DynamicPins",
    "EventKind",
    "FetchError",
    "FetchResult",
    "HttpTransport",
    "Mode",
    "PinCheck",
    "PinEvent",
    "PinRule",
    "PinServerTransport",
    "PinSource",
    "PinStatus",
    "PinValidationError",
    "PinViolation",
    "PinnedSSLContext",
    "PinnedSSLObject",
    "PinnedSSLSocket",
    "PinningUnavailableError",
    "RefreshPolicy",
    "SinglePinWarning",
    "StaticPins",
    "ViolationCallback",
    "backup_pin_advice",
    "pin_error",
    "pinned_aiohttp_connector",
    "pinned_context",
    "pinned_httpx_async_client",
    "pinned_httpx_client",
    "pinned_pool_manager",
    "pinned_proxy_manager",
    "pinned_requests_adapter",
    "pinned_requests_session",
]

name_exceptions_after(__name__, globals(), __all__)
