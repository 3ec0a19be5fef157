/**
 * pinwarden-verify: verify pinwarden's signed pin sets and keyrings (docs/spec.md) in
 * JavaScript runtimes, with the same verdicts as the Python reference.
 *
 *     const keyring = await loadKeyring(shippedKeyringBytes);
 *     const hint = peekDocument(raw);               // unverified: how far to walk
 *     const walked = await walkKeyrings(keyring, fetchKeyring, hint.keyringVersion ?? 0, { now });
 *     const pinset = await verifyPinset(raw, { keyring: walked, minVersion: floor, channel });
 */

export {
  DocumentError,
  ExpiredError,
  FormatError,
  KeyringError,
  RollbackError,
  SignatureError,
  SizeError,
} from "./errors.js";
export { type HostPattern, type PatternKind, patternMatches } from "./hosts.js";
export { ALGORITHMS, type Algorithm, type KeyringKey } from "./keys.js";
export {
  MAX_KEYRING_BYTES,
  MAX_KEYRING_STEPS,
  MAX_PINSET_BYTES,
  MAX_ROLE_KEYS,
  MAX_SIGNATURES,
} from "./limits.js";
export {
  KEYRING_TYPE,
  type Keyring,
  type Mode,
  type PinSet,
  type PinSetRule,
  PINSET_TYPE,
  type Role,
} from "./model.js";
export {
  type SslPinningConfig,
  type SslPinningOptions,
  toSslPinningOptions,
  type UnexpressedRule,
} from "./react_native.js";
export {
  type DocumentBytes,
  type DocumentHint,
  loadKeyring,
  peekDocument,
  updateKeyring,
  verifyPinset,
  type VerifyPinsetOptions,
  walkKeyrings,
  type WalkOptions,
} from "./verify.js";
