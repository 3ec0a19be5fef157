/**
 * Run one test vector as docs/spec.md §7 says, and name its verdict: "valid" or the name of the
 * `DocumentError` subclass the verifier threw. Shared by the vector test and `verdicts.ts`.
 */

import {
  DocumentError,
  loadKeyring,
  MAX_KEYRING_STEPS,
  peekDocument,
  verifyPinset,
  walkKeyrings,
} from "../src/index.js";
import { parseTime } from "../src/time.js";

/** A vector file (scripts/make_vectors.py): documents are the exact bytes as UTF-8 strings. */
export interface Vector {
  readonly keyring: string;
  readonly document: string;
  readonly now: string;
  readonly min_version: number;
  readonly expect?: string;
  readonly keyrings?: readonly string[];
  readonly max_steps?: number;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

/** `value` as a vector, or an Error naming the first member that is wrong. */
export function asVector(value: unknown): Vector {
  const record = (typeof value === "object" && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  const problems = [
    typeof record.keyring === "string" ? "" : "keyring (a string)",
    typeof record.document === "string" ? "" : "document (a string)",
    typeof record.now === "string" ? "" : "now (a time string)",
    Number.isSafeInteger(record.min_version) ? "" : "min_version (an integer)",
    record.keyrings === undefined || isStringArray(record.keyrings)
      ? ""
      : "keyrings (a list of strings)",
    record.max_steps === undefined || Number.isSafeInteger(record.max_steps)
      ? ""
      : "max_steps (an integer)",
  ].filter(Boolean);
  if (problems.length > 0) {
    throw new Error(`not a test vector: missing or wrong ${problems.join(", ")}`);
  }
  return record as unknown as Vector;
}

/** docs/spec.md §7 step 2: the unverified `keyring_version` to walk to, or `undefined` (no walk:
 * the verification refuses the document). */
function claimedKeyringVersion(document: string): number | undefined {
  try {
    return peekDocument(document).keyringVersion ?? undefined;
  } catch (error) {
    if (error instanceof DocumentError) {
      return undefined;
    }
    throw error;
  }
}

/** The verdict of `vector`: "valid" or the error's name; errors other than verdicts propagate. */
export async function runVector(vector: Vector): Promise<string> {
  const now = new Date(parseTime(vector.now, "now") * 1000);
  try {
    let keyring = await loadKeyring(vector.keyring);
    const later = vector.keyrings;
    const target = later === undefined ? undefined : claimedKeyringVersion(vector.document);
    if (later !== undefined && target !== undefined) {
      const base = keyring.version;
      const fetch = (version: number): string => {
        const raw = later[version - base - 1];
        if (raw === undefined) {
          throw new Error(`the vector has no keyring v${version}`);
        }
        return raw;
      };
      // No `now`: a walk judges no expiry (docs/spec.md §5.4); §5.3 step 10 does.
      keyring = await walkKeyrings(keyring, fetch, target, {
        maxSteps: vector.max_steps ?? MAX_KEYRING_STEPS,
      });
    }
    await verifyPinset(vector.document, { keyring, minVersion: vector.min_version, now });
    return "valid";
  } catch (error) {
    if (error instanceof DocumentError) {
      return error.name;
    }
    throw error;
  }
}
