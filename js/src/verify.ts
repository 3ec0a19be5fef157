/**
 * Verification of keyrings and pin sets (docs/spec.md §5): each function moves one document from
 * untrusted to trusted through the spec's fixed order of checks, and each failing check throws its
 * own `DocumentError` subclass:
 *
 *     bytes ─ size cap ─► envelope ─ structure ─► payload ─ type, schema, canonical form ─►
 *       ─ keyring fit ─► keyring expiry ─ signatures, threshold ─► version floor ─► expiry
 *
 * A keyring moves forward one version at a time, each step signed by the root thresholds of both
 * the trusted version N and the new version N+1. All expiry checks of one verification use one
 * reading of the clock.
 */

import { countSigners, documentBytes, type Envelope, parseEnvelope } from "./envelope.js";
import {
  ExpiredError,
  FormatError,
  KeyringError,
  RollbackError,
  SignatureError,
} from "./errors.js";
import { JsonObject, parseJson } from "./json.js";
import { MAX_KEYRING_BYTES, MAX_KEYRING_STEPS, MAX_PINSET_BYTES } from "./limits.js";
import {
  integer,
  KEYRING_TYPE,
  type Keyring,
  keyringFromPayload,
  type PinSet,
  PINSET_TYPE,
  pinsetFromPayload,
  type Role,
} from "./model.js";
import { clockReading, formatTime } from "./time.js";

export type DocumentBytes = Uint8Array | string;

export interface VerifyPinsetOptions {
  /** The trusted keyring, walked forward to the pin set's `keyring_version` (`walkKeyrings`). */
  readonly keyring: Keyring;
  /** The stored floor: the version of the last pin set accepted for this channel (0 at first). */
  readonly minVersion: number;
  /** The clock reading to judge expiry with; the current time if omitted. */
  readonly now?: Date;
  /** The channel the client asked for: a pin set of another channel is refused (docs/spec.md
   * §8). */
  readonly channel?: string;
}

export interface WalkOptions {
  /** Most versions walked in one call (default `MAX_KEYRING_STEPS`); checked before fetching. */
  readonly maxSteps?: number;
  /** When given, the final keyring must not have expired at this instant. The spec's walk
   * judges no expiry (docs/spec.md §5.4): `verifyPinset` judges the keyring it is given, after
   * the pin set's format, so leave this out to get the spec's order of verdicts. */
  readonly now?: Date;
}

/** What a document claims about itself before any verification. Never trust it: use it only to
 * decide how far to walk the keyring before `verifyPinset`. */
export interface DocumentHint {
  readonly type: typeof PINSET_TYPE | typeof KEYRING_TYPE;
  readonly version: number;
  /** Pin sets only. */
  readonly keyringVersion: number | null;
}

async function requireThreshold(envelope: Envelope, role: Role, whose: string): Promise<void> {
  const signers = await countSigners(envelope, role.keys);
  if (signers < role.threshold) {
    throw new SignatureError(
      `signed by ${signers} keys of ${whose}; the threshold is ${role.threshold}`,
    );
  }
}

/** A document is valid while T < expires: it has expired at the instant itself. */
function requireUnexpired(expires: Date, reading: number, what: string): void {
  if (reading * 1000 >= expires.getTime()) {
    throw new ExpiredError(`${what} expired at ${formatTime(expires.getTime() / 1000)}`);
  }
}

async function readKeyring(raw: DocumentBytes): Promise<{ envelope: Envelope; keyring: Keyring }> {
  const envelope = parseEnvelope(raw, MAX_KEYRING_BYTES, "keyring");
  return {
    envelope,
    keyring: await keyringFromPayload(envelope.payload, documentBytes(raw, "keyring")),
  };
}

function nonNegativeInteger(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer`);
  }
  return value;
}

/**
 * The keyring an application ships with (or stored after its last walk), as its trust anchor.
 *
 * It must carry its own root threshold (docs/spec.md §5.4). Expiry is judged only when `now` is
 * given, because an expired shipped keyring can still be walked forward.
 */
export async function loadKeyring(
  raw: DocumentBytes,
  options: { now?: Date } = {},
): Promise<Keyring> {
  const { envelope, keyring } = await readKeyring(raw);
  await requireThreshold(
    envelope,
    keyring.root,
    `the root role of keyring v${keyring.version} itself`,
  );
  if (options.now !== undefined) {
    requireUnexpired(keyring.expires, clockReading(options.now), `keyring v${keyring.version}`);
  }
  return keyring;
}

/**
 * One rotation step N -> N+1 (docs/spec.md §5.4): signed by the root threshold of the trusted
 * keyring (an attacker without the old root keys cannot introduce new ones) and by its own (the
 * new root keys were present). Expiry is judged only when `now` is given.
 */
export async function updateKeyring(
  trusted: Keyring,
  rawNext: DocumentBytes,
  options: { now?: Date } = {},
): Promise<Keyring> {
  const { envelope, keyring } = await readKeyring(rawNext);
  await requireThreshold(
    envelope,
    trusted.root,
    `the root role of the trusted keyring v${trusted.version}`,
  );
  if (keyring.version <= trusted.version) {
    throw new RollbackError(
      `keyring v${keyring.version} is not newer than the trusted v${trusted.version}`,
    );
  }
  if (keyring.version !== trusted.version + 1) {
    throw new KeyringError(
      `keyring v${keyring.version} skips versions: the next one after v${trusted.version} ` +
        `is v${trusted.version + 1}`,
    );
  }
  await requireThreshold(
    envelope,
    keyring.root,
    `the root role of the new keyring v${keyring.version}`,
  );
  if (options.now !== undefined) {
    requireUnexpired(keyring.expires, clockReading(options.now), `keyring v${keyring.version}`);
  }
  return keyring;
}

/**
 * Walk the trusted keyring forward to `targetVersion`, one verified step at a time.
 *
 * `fetch(version)` returns the raw keyring of that version (cap the download at
 * `MAX_KEYRING_BYTES`); its own errors propagate unchanged. A walk longer than `maxSteps` is
 * refused before anything is fetched. Keyrings may have expired (an old app walks through
 * history); the final one is judged only when `now` is given. All or nothing: on any error keep `trusted`, and store the result
 * (its `raw` bytes) only after the walk succeeded. A target at or below the trusted version
 * returns `trusted`.
 */
export async function walkKeyrings(
  trusted: Keyring,
  fetch: (version: number) => Promise<DocumentBytes> | DocumentBytes,
  targetVersion: number,
  options: WalkOptions = {},
): Promise<Keyring> {
  const maxSteps = nonNegativeInteger(options.maxSteps ?? MAX_KEYRING_STEPS, "maxSteps");
  const steps = nonNegativeInteger(targetVersion, "targetVersion") - trusted.version;
  if (steps > maxSteps) {
    throw new KeyringError(
      `keyring v${targetVersion} is ${steps} versions ahead of the trusted ` +
        `v${trusted.version}; the walk is limited to ${maxSteps}`,
    );
  }
  let current = trusted;
  for (let version = trusted.version + 1; version <= targetVersion; version += 1) {
    current = await updateKeyring(current, await fetch(version));
  }
  if (options.now !== undefined) {
    requireUnexpired(current.expires, clockReading(options.now), `keyring v${current.version}`);
  }
  return current;
}

/**
 * Verify a pin-set document against a trusted keyring (docs/spec.md §5.3, in this order).
 *
 * `minVersion` is the stored floor: a lower version is a `RollbackError`; the floor itself is
 * accepted (the same document fetched again). With `channel`, a pin set of another channel is a
 * `FormatError` after every spec check passed. Throws a `DocumentError` subclass for every refusal.
 */
export async function verifyPinset(
  raw: DocumentBytes,
  options: VerifyPinsetOptions,
): Promise<PinSet> {
  const { keyring } = options;
  const minVersion = nonNegativeInteger(options.minVersion, "minVersion");
  const reading = clockReading(options.now);
  const envelope = parseEnvelope(raw, MAX_PINSET_BYTES, "pin set");
  const pinset = pinsetFromPayload(envelope.payload);
  if (pinset.keyringVersion > keyring.version) {
    throw new KeyringError(
      `the pin set is signed under keyring v${pinset.keyringVersion}; walk the trusted v${keyring.version} forward first`,
    );
  }
  requireUnexpired(keyring.expires, reading, `keyring v${keyring.version}`);
  await requireThreshold(
    envelope,
    keyring.online,
    `the online role of keyring v${keyring.version}`,
  );
  if (pinset.version < minVersion) {
    throw new RollbackError(
      `pin set v${pinset.version} is older than v${minVersion}, already trusted`,
    );
  }
  requireUnexpired(pinset.expires, reading, `pin set v${pinset.version}`);
  if (options.channel !== undefined && pinset.channel !== options.channel) {
    throw new FormatError(
      `the pin set is for channel ${JSON.stringify(pinset.channel)}, not ${JSON.stringify(options.channel)}`,
    );
  }
  return pinset;
}

/** Read the unverified `type`, `version` and `keyring_version` of a document. */
export function peekDocument(raw: DocumentBytes): DocumentHint {
  const payload = parseJson(
    parseEnvelope(raw, MAX_PINSET_BYTES, "document").payload,
    "the payload",
  );
  if (payload instanceof JsonObject) {
    const type = payload.get("type");
    if (type === PINSET_TYPE) {
      const keyringVersion = integer(payload.get("keyring_version"), "keyring_version", 1);
      return { type, version: integer(payload.get("version"), "version", 1), keyringVersion };
    }
    if (type === KEYRING_TYPE) {
      return { type, version: integer(payload.get("version"), "version", 1), keyringVersion: null };
    }
  }
  throw new FormatError(
    `the payload's type is not ${JSON.stringify(PINSET_TYPE)} or ${JSON.stringify(KEYRING_TYPE)}`,
  );
}
