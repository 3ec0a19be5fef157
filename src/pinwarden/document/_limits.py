"""Bounds on what a verifier reads and does (spec §5): the "endless data" attack meets these."""

from __future__ import annotations

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_KEYRING_BYTES",
    "MAX_KEYRING_STEPS",
    "MAX_PINSET_BYTES",
    "MAX_ROLE_KEYS",
    "MAX_SIGNATURES",
]

#: Largest pin-set document, in bytes; checked before parsing. A client caps downloads with it.
MAX_PINSET_BYTES = 256 * 1024
#: Largest keyring document, in bytes; checked before parsing.
MAX_KEYRING_BYTES = 64 * 1024
#: Most entries in a document's ``signatures`` array.
MAX_SIGNATURES = 32
#: Most keys in one keyring role.
MAX_ROLE_KEYS = 16
#: Default bound on keyring versions walked in one update (as TUF's max_root_rotations).
MAX_KEYRING_STEPS = 256
#: Deepest nesting of arrays and objects in any JSON text of a document (the top level is 1).
MAX_JSON_DEPTH = 16
