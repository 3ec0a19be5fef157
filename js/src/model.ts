/**
 * The two documents' payloads (docs/spec.md §3, §4), read strictly: exact members, typed values,
 * and the whole payload byte for byte the RFC 8785 encoding of what it describes (§5.1 step 8).
 */

import { standardBase64Decode } from "./base64.js";
import { FormatError } from "./errors.js";
import { type PatternKind, parseNormalPattern } from "./hosts.js";
import {
  canonicalJson,
  decodeUtf8,
  JsonNumber,
  JsonObject,
  type JsonValue,
  parseJsonText,
} from "./json.js";
import { keyFromJwk, type KeyringKey } from "./keys.js";
import { MAX_ROLE_KEYS, MAX_SAFE_INTEGER } from "./limits.js";
import { parseTime } from "./time.js";
import { checkReportUri } from "./uri.js";

export const PINSET_TYPE = "pinwarden.pinset";
export const KEYRING_TYPE = "pinwarden.keyring";
export type Mode = "enforce" | "report-only" | "disabled";
const MODES: readonly Mode[] = ["enforce", "report-only", "disabled"];
const MAX_CHANNEL = 256;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;
const PIN = /^sha256\/([A-Za-z0-9+/]{43}=)$/;
const PIN_DIGEST_BYTES = 32;

/** One host pattern, its pins and its mode; `disabled` is pinning switched off, signed. */
export interface PinSetRule {
  readonly pattern: string;
  readonly kind: PatternKind;
  readonly base: string;
  /** `sha256/<base64>` SPKI pins (RFC 7469 §2.4). */
  readonly pins: readonly string[];
  readonly mode: Mode;
  /** After this instant the rule no longer applies (docs/spec.md §8); `null`: no end. */
  readonly expires: Date | null;
}

/** What a channel publishes, verified. */
export interface PinSet {
  readonly channel: string;
  readonly version: number;
  readonly issued: Date;
  readonly expires: Date;
  /** Seconds after which a client should fetch again. */
  readonly refreshAfter: number;
  readonly reportUri: string | null;
  readonly keyringVersion: number;
  readonly rules: readonly PinSetRule[];
}

/** One role of a keyring: k of its keys must sign. */
export interface Role {
  readonly threshold: number;
  readonly keys: readonly KeyringKey[];
}

/** A trusted keyring: root keys sign keyrings, online keys sign pin sets (docs/spec.md §4). */
export interface Keyring {
  readonly version: number;
  readonly expires: Date;
  readonly root: Role;
  readonly online: Role;
  /** The exact signed bytes it was read from: store these after a walk. */
  readonly raw: Uint8Array;
}

export function integer(value: JsonValue | undefined, what: string, minimum: number): number {
  const number = value instanceof JsonNumber ? value.integer : undefined;
  if (number === undefined) {
    throw new FormatError(`${what} must be an integer`);
  }
  if (number < minimum || number > MAX_SAFE_INTEGER) {
    throw new FormatError(`${what} must be between ${minimum} and ${MAX_SAFE_INTEGER}`);
  }
  return number;
}

function string(value: JsonValue | undefined, what: string): string {
  if (typeof value !== "string") {
    throw new FormatError(`${what} must be a string`);
  }
  return value;
}

/** `value` as an object with exactly the members `names`, and for a document the given `type`
 * (type confusion, docs/spec.md §5.1 step 6: a keyring is never a pin set, nor the other way
 * round). */
export function members(
  value: JsonValue | undefined,
  what: string,
  names: readonly string[],
  type?: string,
): JsonObject {
  if (!(value instanceof JsonObject)) {
    throw new FormatError(`${what} must be a JSON object`);
  }
  if (type !== undefined && value.get("type") !== type) {
    throw new FormatError(`${what}: type must be ${JSON.stringify(type)}`);
  }
  const missing = names.filter((name) => !value.members.has(name));
  const unknown = value.names().filter((name) => !names.includes(name));
  if (missing.length > 0 || unknown.length > 0) {
    throw new FormatError(
      `${what}: missing members [${missing.join(", ")}], unknown members [${unknown.join(", ")}]`,
    );
  }
  return value;
}

function time(value: JsonValue | undefined, what: string): Date {
  return new Date(parseTime(value, what) * 1000);
}

function canonicalPin(value: JsonValue, pattern: string): string {
  const digest = typeof value === "string" ? PIN.exec(value)?.[1] : undefined;
  const bytes = digest === undefined ? undefined : standardBase64Decode(digest);
  if (bytes === undefined || bytes.length !== PIN_DIGEST_BYTES) {
    throw new FormatError(`rule ${pattern}: pins must be sha256/<canonical base64 of 32 bytes>`);
  }
  return value as string;
}

function rule(value: JsonValue): PinSetRule {
  const fields = members(value, "a rule", ["pattern", "pins", "mode", "expires"]);
  const { kind, base } = parseNormalPattern(fields.get("pattern"));
  const pattern = fields.get("pattern") as string;
  const pinsValue = fields.get("pins");
  if (!Array.isArray(pinsValue)) {
    throw new FormatError(`rule ${pattern}: pins must be a list of strings`);
  }
  const pins = pinsValue.map((pin) => canonicalPin(pin, pattern));
  if (new Set(pins).size !== pins.length) {
    throw new FormatError(`rule ${pattern}: a pin appears twice`);
  }
  const mode = fields.get("mode");
  if (!MODES.includes(mode as Mode)) {
    throw new FormatError(`rule ${pattern}: mode must be one of ${MODES.join(", ")}`);
  }
  if (pins.length === 0 && mode !== "disabled") {
    // docs/security.md rule 7: an empty pin list fails closed; a document cannot express one.
    throw new FormatError(`rule ${pattern}: an ${String(mode)} rule needs at least one pin`);
  }
  const expires = fields.get("expires");
  return {
    pattern,
    kind,
    base,
    pins,
    mode: mode as Mode,
    expires: expires === null ? null : time(expires, `rule ${pattern} expires`),
  };
}

const PINSET_MEMBERS = [
  "type",
  "channel",
  "version",
  "issued",
  "expires",
  "refresh_after",
  "report_uri",
  "keyring_version",
  "rules",
] as const;

/** The payload must be exactly the canonical encoding of the value it parsed to. */
function requireCanonical(value: JsonValue, payloadText: string): void {
  if (canonicalJson(value) !== payloadText) {
    throw new FormatError(
      "the payload is not in canonical form (RFC 8785 JSON of a well-formed document)",
    );
  }
}

function parsePayload(payload: Uint8Array): { value: JsonValue; text: string } {
  const text = decodeUtf8(payload, "the payload");
  return { value: parseJsonText(text, "the payload"), text };
}

/** A pin-set payload (docs/spec.md §3). */
export function pinsetFromPayload(payload: Uint8Array): PinSet {
  const { value, text } = parsePayload(payload);
  const doc = members(value, "a pin set", PINSET_MEMBERS, PINSET_TYPE);
  const channel = string(doc.get("channel"), "channel");
  if (!PRINTABLE_ASCII.test(channel) || channel.length > MAX_CHANNEL) {
    throw new FormatError(
      `channel must be 1-${MAX_CHANNEL} characters of printable ASCII without spaces`,
    );
  }
  const rulesValue = doc.get("rules");
  if (!Array.isArray(rulesValue)) {
    throw new FormatError("rules must be a list");
  }
  const rules = rulesValue.map(rule);
  if (new Set(rules.map((item) => item.pattern)).size !== rules.length) {
    throw new FormatError("two rules have the same host pattern");
  }
  const issued = time(doc.get("issued"), "issued");
  const expires = time(doc.get("expires"), "expires");
  if (expires <= issued) {
    throw new FormatError("expires must be later than issued");
  }
  const reportUri = doc.get("report_uri");
  const pinset: PinSet = {
    channel,
    version: integer(doc.get("version"), "version", 1),
    issued,
    expires,
    refreshAfter: integer(doc.get("refresh_after"), "refresh_after", 1),
    reportUri: reportUri === null ? null : checkReportUri(reportUri),
    keyringVersion: integer(doc.get("keyring_version"), "keyring_version", 1),
    rules,
  };
  requireCanonical(value, text);
  return pinset;
}

async function role(value: JsonValue | undefined, name: string): Promise<Role> {
  const fields = members(value, `the ${name} role`, ["threshold", "keys"]);
  const keysValue = fields.get("keys");
  if (!(keysValue instanceof JsonObject)) {
    throw new FormatError(`the ${name} keys must be an object of key id to JWK`);
  }
  if (keysValue.members.size < 1 || keysValue.members.size > MAX_ROLE_KEYS) {
    throw new FormatError(`the ${name} role must have 1 to ${MAX_ROLE_KEYS} keys`);
  }
  const keys: KeyringKey[] = [];
  for (const [kid, jwk] of keysValue.members) {
    keys.push(await keyFromJwk(kid, jwk));
  }
  const threshold = integer(fields.get("threshold"), `the ${name} threshold`, 1);
  // Count distinct keys, not ids: a threshold that needs one key twice is unreachable.
  if (threshold > distinctKeys(keys).size) {
    throw new FormatError(`the ${name} threshold ${threshold} exceeds its distinct keys`);
  }
  return { threshold, keys };
}

export function distinctKeys(keys: readonly KeyringKey[]): Set<string> {
  return new Set(keys.map((key) => key.thumbprint));
}

/** A keyring payload (docs/spec.md §4); `raw` is the whole signed document it came in. */
export async function keyringFromPayload(payload: Uint8Array, raw: Uint8Array): Promise<Keyring> {
  const { value, text } = parsePayload(payload);
  const doc = members(
    value,
    "a keyring",
    ["type", "version", "expires", "root", "online"],
    KEYRING_TYPE,
  );
  const root = await role(doc.get("root"), "root");
  const online = await role(doc.get("online"), "online");
  const kids = [...root.keys, ...online.keys].map((key) => key.kid);
  if (new Set(kids).size !== kids.length) {
    throw new FormatError("a key id appears in both roles");
  }
  const rootKeys = distinctKeys(root.keys);
  if (online.keys.some((key) => rootKeys.has(key.thumbprint))) {
    throw new FormatError("a key cannot be both a root key and an online key");
  }
  const keyring: Keyring = {
    version: integer(doc.get("version"), "version", 1),
    expires: time(doc.get("expires"), "expires"),
    root,
    online,
    raw,
  };
  requireCanonical(value, text);
  return keyring;
}
