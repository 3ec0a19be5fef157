/**
 * The verdicts a signed document can end in, under one base (docs/spec.md §6).
 *
 *     DocumentError
 *     ├── FormatError      not a well-formed document of the expected type
 *     ├── SizeError        larger than its size cap; refused before parsing
 *     ├── SignatureError   algorithm not allowed, header alg differs from the trusted key's,
 *     │                    a trusted key's signature does not verify, or threshold not met
 *     ├── RollbackError    version below the caller's floor, or a keyring that is not newer
 *     ├── ExpiredError     the document or the keyring it is judged with has expired
 *     └── KeyringError     a keyring walk that skips a version, needs too many steps, or a pin
 *                          set signed under a keyring newer than the one given
 *
 * §6 also names `KeyStoreError` (unreadable key files); this package reads no key files, so it
 * has none. A caller's own mistakes (a negative floor, say) are `TypeError`/`RangeError`, not
 * verdicts on a document.
 */

/** A signed document (pin set or keyring) was refused; the subclass says why. */
export class DocumentError extends Error {
  override name = "DocumentError";
}

/** The bytes are not a well-formed document of the expected type. */
export class FormatError extends DocumentError {
  override name = "FormatError";
}

/** The document is larger than its size cap. */
export class SizeError extends DocumentError {
  override name = "SizeError";
}

/** The signatures do not meet the trusted threshold, or one of them is not acceptable. */
export class SignatureError extends DocumentError {
  override name = "SignatureError";
}

/** The document's version is lower than one already trusted. */
export class RollbackError extends DocumentError {
  override name = "RollbackError";
}

/** The document, or the keyring it is verified with, has expired. */
export class ExpiredError extends DocumentError {
  override name = "ExpiredError";
}

/** The keyring cannot be brought to the version the document needs. */
export class KeyringError extends DocumentError {
  override name = "KeyringError";
}
