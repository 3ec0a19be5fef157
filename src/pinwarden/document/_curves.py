"""Which Ed25519 public keys a keyring may carry (docs/spec.md §4.1): prime order, one encoding.

``cryptography`` loads an Ed25519 public key from any 32 bytes and keeps them as given, so the
re-encoding comparison that refuses a second spelling of a P-256 key (``KeyringKey.from_jwk``)
cannot refuse one here: the check is made on the bytes. Two spellings of one key would be two
"distinct" keys with two thumbprints, one key meeting a threshold of two (docs/spec.md §5.2.3). A
small-order or mixed-order key is refused as well: with it, verifiers that use the cofactored and
the cofactorless equation of RFC 8032 §5.1.7 can give two verdicts on one signature, a parser
differential of the kind docs/spec.md §1 puts in scope.
"""

from __future__ import annotations

import functools

__all__ = ["ed25519_key_problem"]

# RFC 8032 §5.1: the field prime, the curve constant d and the prime order L of the base point.
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_L = 2**252 + 27742317777372353535851937790883648493
_SQRT_MINUS_ONE = pow(2, (_P - 1) // 4, _P)

_ExtendedPoint = tuple[int, int, int, int]  # (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z


def _decode_x(y: int, sign: int) -> int | None:
    """RFC 8032 §5.1.3 steps 2-4: the x of the point with this y and sign, or None."""
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if (v * x * x - u) % _P != 0:
        x = x * _SQRT_MINUS_ONE % _P
    if (v * x * x - u) % _P != 0:
        return None
    if x == 0 and sign == 1:
        return None
    return _P - x if x % 2 != sign else x


def _add(p: _ExtendedPoint, q: _ExtendedPoint) -> _ExtendedPoint:
    """RFC 8032 §5.1.4 point addition (complete: also doubles)."""
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _times_order(point: _ExtendedPoint) -> _ExtendedPoint:
    result: _ExtendedPoint = (0, 1, 1, 0)
    addend = point
    scalar = _L
    while scalar:
        if scalar & 1:
            result = _add(result, addend)
        addend = _add(addend, addend)
        scalar >>= 1
    return result


@functools.lru_cache(maxsize=256)
def ed25519_key_problem(encoded: bytes) -> str | None:
    """Why ``encoded`` is not an acceptable Ed25519 public key, or None.

    Acceptable: 32 bytes, y below the field prime, decodable (RFC 8032 §5.1.3), and a point of
    prime order L: neither the neutral element, nor small-order, nor mixed-order.
    """
    if len(encoded) != 32:
        return f"an Ed25519 key is 32 bytes, not {len(encoded)}"
    number = int.from_bytes(encoded, "little")
    y, sign = number & ((1 << 255) - 1), number >> 255
    if y >= _P:
        return "the Ed25519 key is not in canonical encoding (y is not below 2^255 - 19)"
    x = _decode_x(y, sign)
    if x is None:
        return "the Ed25519 key does not decode to a point on the curve (RFC 8032 §5.1.3)"
    multiple = _times_order((x, y, 1, x * y % _P))
    # [L]P is the neutral element (0, 1) for P of order L, and for P = (0, 1) itself.
    if x == 0 or multiple[0] % _P != 0 or (multiple[1] - multiple[2]) % _P != 0:
        return "the Ed25519 key is not of prime order (a small-order or mixed-order point)"
    return None
