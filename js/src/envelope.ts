/**
 * The JWS envelope: RFC 7515 §7.2.1 general JSON serialization, several signatures
 * (docs/spec.md §2). The structure is read strictly here so that only signatures by trusted keys
 * are picked; each of those is checked by `jose`, with the algorithm taken from the trusted key.
 */

import { flattenedVerify } from "jose";

import { base64urlDecode } from "./base64.js";
import { FormatError, SignatureError, SizeError } from "./errors.js";
import { JsonObject, type JsonValue, parseJson } from "./json.js";
import { ALGORITHMS, isAlgorithm, type KeyringKey } from "./keys.js";
import { MAX_SIGNATURES } from "./limits.js";
import { distinctKeys } from "./model.js";

/** One entry of `signatures`: its protected header values and its segments as sent. */
export interface SignatureEntry {
  readonly alg: string;
  readonly kid: string;
  readonly protected: string;
  readonly signature: string;
}

/** A structurally valid envelope; nothing in it is trusted yet. */
export interface Envelope {
  readonly payloadSegment: string;
  readonly payload: Uint8Array;
  readonly signatures: readonly SignatureEntry[];
}

function exactObject(
  value: JsonValue | undefined,
  names: readonly string[],
  what: string,
): JsonObject {
  const expected = [...names].sort().join(",");
  if (!(value instanceof JsonObject) || value.names().sort().join(",") !== expected) {
    throw new FormatError(`${what} must be a JSON object of exactly ${names.join(", ")}`);
  }
  return value;
}

/** One signature entry, checks a-f in full before the next entry (docs/spec.md §5.1 step 4). */
function signatureEntry(value: JsonValue): SignatureEntry {
  const entry = exactObject(value, ["protected", "signature"], "a signature entry");
  base64urlDecode(entry.get("signature"), "a signature");
  const headerBytes = base64urlDecode(entry.get("protected"), "a protected header");
  const header = exactObject(
    parseJson(headerBytes, "a protected header"),
    ["alg", "kid"],
    "a protected header",
  );
  const [alg, kid] = [header.get("alg"), header.get("kid")];
  if (typeof alg !== "string" || typeof kid !== "string") {
    throw new FormatError("alg and kid must be strings");
  }
  if (!isAlgorithm(alg)) {
    throw new SignatureError(
      `algorithm ${JSON.stringify(alg)} is not allowed (allowed: ${ALGORITHMS.join(", ")})`,
    );
  }
  return {
    alg,
    kid,
    protected: entry.get("protected") as string,
    signature: entry.get("signature") as string,
  };
}

/** Bytes of `raw`: a string is its UTF-8 encoding; one with a lone surrogate has none. */
export function documentBytes(raw: Uint8Array | string, what: string): Uint8Array {
  if (raw instanceof Uint8Array) {
    return raw;
  }
  if (typeof raw !== "string") {
    throw new TypeError(`a ${what} is a Uint8Array or a string`);
  }
  // With the u flag a surrogate matches only when unpaired (`isWellFormed` is missing on Hermes).
  if (/[\uD800-\uDFFF]/u.test(raw)) {
    throw new FormatError(`the ${what} string holds a lone surrogate: it has no UTF-8 encoding`);
  }
  return new TextEncoder().encode(raw);
}

/** Size cap first (before any parsing), then the envelope's exact structure (docs/spec.md §2,
 * §5.1 steps 1-4). */
export function parseEnvelope(raw: Uint8Array | string, maxBytes: number, what: string): Envelope {
  // A string's UTF-8 encoding has at least as many bytes as the string has UTF-16 code units:
  // an oversized string is refused before it is encoded.
  const tooLong = (size: number): SizeError =>
    new SizeError(`the ${what} is ${size} bytes or more; the cap is ${maxBytes}`);
  if (typeof raw === "string" && raw.length > maxBytes) {
    throw tooLong(raw.length);
  }
  const bytes = documentBytes(raw, what);
  if (bytes.length > maxBytes) {
    throw tooLong(bytes.length);
  }
  const document = exactObject(
    parseJson(bytes, `the ${what}`),
    ["payload", "signatures"],
    `a ${what} (JWS JSON)`,
  );
  const signatures = document.get("signatures");
  if (!Array.isArray(signatures) || signatures.length < 1 || signatures.length > MAX_SIGNATURES) {
    throw new FormatError(`signatures must be a list of 1 to ${MAX_SIGNATURES} entries`);
  }
  const payload = base64urlDecode(document.get("payload"), "the payload");
  return {
    payloadSegment: document.get("payload") as string,
    payload,
    signatures: signatures.map(signatureEntry),
  };
}

/**
 * How many distinct trusted public keys signed the envelope (docs/spec.md §5.2).
 *
 * An entry whose kid names no key in `keys` is ignored (it may be meant for another role or
 * keyring version). An entry whose kid names a trusted key must use that key's algorithm and must
 * verify, or the whole document is refused. Two ids of one key, or one signature sent twice,
 * count once.
 */
export async function countSigners(
  envelope: Envelope,
  keys: readonly KeyringKey[],
): Promise<number> {
  const byKid = new Map(keys.map((key) => [key.kid, key]));
  const trusted = envelope.signatures.flatMap((entry) => {
    const key = byKid.get(entry.kid);
    return key === undefined ? [] : [{ entry, key }];
  });
  for (const { entry, key } of trusted) {
    if (entry.alg !== key.algorithm) {
      throw new SignatureError(
        `signature by ${entry.kid}: header alg ${entry.alg} but the key is ${key.algorithm}`,
      );
    }
  }
  for (const { entry, key } of trusted) {
    const jws = {
      payload: envelope.payloadSegment,
      protected: entry.protected,
      signature: entry.signature,
    };
    try {
      await flattenedVerify(jws, key.cryptoKey, { algorithms: [key.algorithm] });
    } catch (error) {
      throw new SignatureError(`the signature by ${entry.kid} does not verify: ${String(error)}`);
    }
  }
  return distinctKeys(trusted.map(({ key }) => key)).size;
}
