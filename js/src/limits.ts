/** Bounds on what a verifier reads and does (docs/spec.md §5): the "endless data" attack meets
 * these. */

/** Largest pin-set document, in bytes; checked before parsing. Cap downloads with it. */
export const MAX_PINSET_BYTES = 256 * 1024;
/** Largest keyring document, in bytes; checked before parsing. */
export const MAX_KEYRING_BYTES = 64 * 1024;
/** Most entries in a document's `signatures` array. */
export const MAX_SIGNATURES = 32;
/** Most keys in one keyring role. */
export const MAX_ROLE_KEYS = 16;
/** Default bound on keyring versions walked in one update (as TUF's max_root_rotations). */
export const MAX_KEYRING_STEPS = 256;
/** I-JSON (RFC 7493 §2.2): integers beyond 2^53 - 1 lose precision in other parsers. */
export const MAX_SAFE_INTEGER = 2 ** 53 - 1;
/** Deepest nesting of arrays and objects in any JSON text of a document (the top level is 1). */
export const MAX_JSON_DEPTH = 16;
