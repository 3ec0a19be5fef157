/**
 * The public API around the spec's steps: input types, caller mistakes (never verdicts), the
 * channel check of docs/spec.md §8, and the walk's bounds. Fixtures are committed vectors.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import {
  DocumentError,
  ExpiredError,
  FormatError,
  KeyringError,
  loadKeyring,
  MAX_PINSET_BYTES,
  peekDocument,
  SizeError,
  verifyPinset,
  walkKeyrings,
} from "../src/index.js";
import { asVector } from "../scripts/vector_runner.js";

const VECTORS = fileURLToPath(new URL("../../../tests/vectors/", import.meta.url));
const fixture = (name: string) =>
  asVector(JSON.parse(readFileSync(`${VECTORS}${name}.json`, "utf-8")));
const valid = fixture("valid-eddsa");
const rotation = fixture("rotation-root-valid");
const NOW = new Date("2025-01-15T00:00:00Z");

test("a valid pin set verifies from a string and from bytes alike", async () => {
  const keyring = await loadKeyring(valid.keyring);
  const fromString = await verifyPinset(valid.document, { keyring, minVersion: 0, now: NOW });
  const fromBytes = await verifyPinset(new TextEncoder().encode(valid.document), {
    keyring,
    minVersion: 0,
    now: NOW,
  });
  assert.deepEqual(fromBytes, fromString);
  assert.equal(fromString.channel, "com.example.app/prod");
  assert.ok(fromString.rules.some((rule) => rule.mode === "disabled"));
  assert.ok(fromString.expires instanceof Date && fromString.issued < fromString.expires);
  assert.deepEqual(keyring.raw, new TextEncoder().encode(valid.keyring));
});

test("the channel asked for must be the pin set's (docs/spec.md §8)", async () => {
  const keyring = await loadKeyring(valid.keyring);
  const options = { keyring, minVersion: 0, now: NOW };
  assert.equal(
    (await verifyPinset(valid.document, { ...options, channel: "com.example.app/prod" })).version,
    7,
  );
  await assert.rejects(
    verifyPinset(valid.document, { ...options, channel: "com.example.app/beta" }),
    FormatError,
  );
});

test("the size cap comes before any decoding, for strings and bytes", async () => {
  const keyring = await loadKeyring(valid.keyring);
  const options = { keyring, minVersion: 0, now: NOW };
  await assert.rejects(verifyPinset("{".repeat(MAX_PINSET_BYTES + 1), options), SizeError);
  await assert.rejects(verifyPinset(new Uint8Array(MAX_PINSET_BYTES + 1), options), SizeError);
  // Fewer UTF-16 code units than the cap, more UTF-8 bytes than it.
  await assert.rejects(verifyPinset("é".repeat(MAX_PINSET_BYTES / 2 + 1), options), SizeError);
  await assert.rejects(verifyPinset(new Uint8Array(MAX_PINSET_BYTES), options), FormatError);
});

test("a string with a lone surrogate has no UTF-8 bytes: a FormatError", async () => {
  const keyring = await loadKeyring(valid.keyring);
  await assert.rejects(
    verifyPinset(`${valid.document}\ud800`, { keyring, minVersion: 0, now: NOW }),
    FormatError,
  );
  await assert.rejects(loadKeyring("\udc00"), FormatError);
});

test("hostile bytes end in a DocumentError, never another exception", async () => {
  const keyring = await loadKeyring(valid.keyring);
  const inputs = [
    "",
    "null",
    "[]",
    "{}",
    '{"payload":"","signatures":[]}',
    "\u0000",
    "{".repeat(40),
    '"\\ud800"',
    valid.document.slice(0, -1),
  ];
  for (const input of inputs) {
    await assert.rejects(
      verifyPinset(input, { keyring, minVersion: 0, now: NOW }),
      DocumentError,
      JSON.stringify(input),
    );
    await assert.rejects(loadKeyring(input), DocumentError, JSON.stringify(input));
    assert.throws(() => peekDocument(input), DocumentError, JSON.stringify(input));
  }
});

test("caller mistakes are TypeError or RangeError, not verdicts on the document", async () => {
  const keyring = await loadKeyring(valid.keyring);
  for (const minVersion of [-1, 1.5, Number.NaN, 2 ** 53, "1" as unknown as number]) {
    await assert.rejects(
      verifyPinset(valid.document, { keyring, minVersion, now: NOW }),
      RangeError,
    );
  }
  await assert.rejects(
    verifyPinset(valid.document, { keyring, minVersion: 0, now: new Date("x") }),
    TypeError,
  );
  await assert.rejects(
    verifyPinset(7 as unknown as string, { keyring, minVersion: 0, now: NOW }),
    TypeError,
  );
});

test("the trust anchor's expiry is judged only when asked", async () => {
  const expired = fixture("rotation-from-expired-anchor");
  const keyring = await loadKeyring(expired.keyring);
  await assert.rejects(loadKeyring(expired.keyring, { now: NOW }), ExpiredError);
  assert.equal(keyring.version, 1);
});

test("a walk fetches one keyring per step, and returns the final keyring's bytes", async () => {
  const trusted = await loadKeyring(rotation.keyring);
  const fetched: number[] = [];
  const target = peekDocument(rotation.document).keyringVersion ?? 0;
  const walked = await walkKeyrings(
    trusted,
    async (version) => {
      fetched.push(version);
      return rotation.keyrings?.[version - 2] ?? "";
    },
    target,
  );
  assert.deepEqual(fetched, [2]);
  assert.equal(walked.version, 2);
  assert.deepEqual(walked.raw, new TextEncoder().encode(rotation.keyrings?.[0]));
  const pinset = await verifyPinset(rotation.document, {
    keyring: walked,
    minVersion: 0,
    now: NOW,
  });
  assert.equal(pinset.keyringVersion, 2);
  await assert.rejects(
    verifyPinset(rotation.document, { keyring: trusted, minVersion: 0, now: NOW }),
    KeyringError,
  );
});

test("a walk beyond maxSteps is refused before fetching; one to the trusted version fetches nothing", async () => {
  const trusted = await loadKeyring(rotation.keyring);
  const fetchNothing = (version: number): string => assert.fail(`fetched v${version}`);
  await assert.rejects(walkKeyrings(trusted, fetchNothing, 258), KeyringError);
  await assert.rejects(walkKeyrings(trusted, fetchNothing, 5, { maxSteps: 3 }), KeyringError);
  assert.equal(await walkKeyrings(trusted, fetchNothing, 1), trusted);
  assert.equal(await walkKeyrings(trusted, fetchNothing, 0), trusted);
  await assert.rejects(walkKeyrings(trusted, fetchNothing, -1), RangeError);
  await assert.rejects(walkKeyrings(trusted, fetchNothing, 2, { maxSteps: -1 }), RangeError);
});

test("a fetch error propagates unchanged", async () => {
  const trusted = await loadKeyring(rotation.keyring);
  const failure = new Error("network down");
  await assert.rejects(
    walkKeyrings(trusted, () => Promise.reject(failure), 2),
    (error) => error === failure,
  );
});
