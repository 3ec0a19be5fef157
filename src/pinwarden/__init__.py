"""pinwarden: dynamic certificate pinning.

The pin core lives here: compute pins, parse them, and normalise hosts and host patterns.
Enforcement is in ``pinwarden.client``, signed pin-set documents in ``pinwarden.document``.
"""

from __future__ import annotations

from pinwarden._hosts import HostPattern, normalize_host
from pinwarden._pins import (
    load_all_key_material,
    load_key_material,
    parse_pin,
    parse_pins,
    pin_digest,
    spki_pin,
)
from pinwarden.errors import (
    InvalidHostError,
    InvalidPinError,
    PinwardenError,
    UnsupportedKeyMaterial,
)

__all__ = [
    "HostPattern",
    "InvalidHostError",
    "InvalidPinError",
    "PinwardenError",
    "UnsupportedKeyMaterial",
    "load_all_key_material",
    "load_key_material",
    "normalize_host",
    "parse_pin",
    "parse_pins",
    "pin_digest",
    "spki_pin",
]

__version__ = "0.1.0"
