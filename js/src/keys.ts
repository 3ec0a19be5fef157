/**
 * The public keys a keyring names (docs/spec.md §4). A key carries its algorithm: the trusted key
 * decides how a signature is checked, never the signature's header. Ed25519 keys verify `EdDSA`
 * (RFC 8037), P-256 keys verify `ES256` (RFC 7518 §3.4).
 */

import { calculateJwkThumbprint, importJWK, type JWK } from "jose";

import { base64urlDecode } from "./base64.js";
import { ed25519KeyProblem, p256KeyProblem } from "./curves.js";
import { FormatError } from "./errors.js";
import { JsonObject, type JsonValue } from "./json.js";

export type Algorithm = "EdDSA" | "ES256";
/** The allow-list of signature algorithms (docs/spec.md §2). */
export const ALGORITHMS: readonly Algorithm[] = ["EdDSA", "ES256"];

const KID = /^[A-Za-z0-9._-]{1,64}$/;
/** The exact public JWK members of each algorithm's key (RFC 8037 §2, RFC 7518 §6.2.1). */
const KEY_SHAPES: Readonly<Record<Algorithm, { kty: string; crv: string; coordinates: string[] }>> =
  {
    EdDSA: { kty: "OKP", crv: "Ed25519", coordinates: ["x"] },
    ES256: { kty: "EC", crv: "P-256", coordinates: ["x", "y"] },
  };

/** A public key named in a keyring, with the one algorithm it verifies. */
export interface KeyringKey {
  readonly kid: string;
  readonly algorithm: Algorithm;
  /** The public JWK as the keyring spells it (with `alg`). */
  readonly jwk: Readonly<Record<string, string>>;
  /** The key's identity, its RFC 7638 thumbprint: a keyring spells each key one way only, so
   * two key ids with one thumbprint are one key (docs/spec.md §4.1, §5.2 step 3). */
  readonly thumbprint: string;
  readonly cryptoKey: CryptoKey;
}

export function isAlgorithm(value: unknown): value is Algorithm {
  return value === "EdDSA" || value === "ES256";
}

function checkKid(kid: string): void {
  if (!KID.test(kid)) {
    throw new FormatError(
      `key id ${JSON.stringify(kid)} must be 1-64 characters of A-Z a-z 0-9 . _ -`,
    );
  }
}

/** Read a keyring's JWK strictly: exactly the public members, `alg` required, coordinates in
 * canonical unpadded base64url, and the one encoding of a valid point (`curves.ts`). */
export async function keyFromJwk(kid: string, value: JsonValue | undefined): Promise<KeyringKey> {
  if (!(value instanceof JsonObject)) {
    throw new FormatError(`key ${JSON.stringify(kid)} is not a JSON object`);
  }
  const algorithm = value.get("alg");
  if (!isAlgorithm(algorithm)) {
    throw new FormatError(
      `key ${JSON.stringify(kid)}: alg must be one of ${ALGORITHMS.join(", ")}`,
    );
  }
  const shape = KEY_SHAPES[algorithm];
  const names = ["alg", "crv", "kty", ...shape.coordinates].sort();
  if (value.names().sort().join(",") !== names.join(",")) {
    throw new FormatError(
      `key ${JSON.stringify(kid)} must have exactly the members ${names.join(", ")}`,
    );
  }
  if (value.get("kty") !== shape.kty || value.get("crv") !== shape.crv) {
    throw new FormatError(
      `key ${JSON.stringify(kid)}: ${algorithm} needs kty ${shape.kty} and crv ${shape.crv}`,
    );
  }
  const jwk: Record<string, string> = { kty: shape.kty, crv: shape.crv };
  const coordinates = shape.coordinates.map((name) => {
    const text = value.get(name);
    const bytes = base64urlDecode(text, `key ${JSON.stringify(kid)}: ${name}`);
    jwk[name] = text as string; // a string: base64urlDecode refuses anything else
    return bytes;
  });
  const [x = new Uint8Array(), y = new Uint8Array()] = coordinates;
  const problem = algorithm === "EdDSA" ? ed25519KeyProblem(x) : p256KeyProblem(x, y);
  if (problem !== undefined) {
    throw new FormatError(`key ${JSON.stringify(kid)}: ${problem}`);
  }
  checkKid(kid);
  return {
    kid,
    algorithm,
    jwk: { ...jwk, alg: algorithm },
    thumbprint: await calculateJwkThumbprint(jwk as JWK, "sha256"),
    cryptoKey: await importPublicKey(kid, jwk, algorithm),
  };
}

async function importPublicKey(
  kid: string,
  jwk: Record<string, string>,
  algorithm: Algorithm,
): Promise<CryptoKey> {
  try {
    const key = await importJWK({ ...jwk, alg: algorithm }, algorithm);
    if (key instanceof Uint8Array) {
      throw new TypeError("a secret key");
    }
    return key;
  } catch (error) {
    throw new FormatError(`key ${JSON.stringify(kid)} is not a valid public key: ${String(error)}`);
  }
}
