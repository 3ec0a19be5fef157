/**
 * Every input ends in a verdict: mutated documents and keyrings (fixed seed, bounded count) are
 * accepted or refused with a `DocumentError`, never another exception. tests/crosscheck/ checks
 * that the verdicts are the Python reference's.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { asVector } from "../scripts/vector_runner.js";
import { DocumentError, loadKeyring, peekDocument, verifyPinset } from "../src/index.js";

const VECTORS = fileURLToPath(new URL("../../../tests/vectors/", import.meta.url));
const valid = asVector(JSON.parse(readFileSync(`${VECTORS}valid-es256.json`, "utf-8")));
const MUTANTS = 300;
const TOKENS = [
  "\\u0000",
  "\\ud800",
  '"',
  "{",
  "}",
  "[",
  ",",
  "7.0",
  "1e400",
  "__proto__",
  "=",
  "\u{1f600}",
];

/** A small fixed-seed generator (mulberry32), so a failure names a reproducible mutant. */
function generator(seed: number): (limit: number) => number {
  let state = seed;
  return (limit) => {
    state = (state + 0x6d2b79f5) | 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value ^= value + Math.imul(value ^ (value >>> 7), 61 | value);
    return ((value ^ (value >>> 14)) >>> 0) % limit;
  };
}

function mutate(text: string, random: (limit: number) => number): string {
  let result = text;
  for (let change = random(3); change >= 0; change -= 1) {
    const position = random(result.length);
    const token = TOKENS[random(TOKENS.length)] ?? "";
    result =
      random(2) === 0
        ? result.slice(0, position) + token + result.slice(position)
        : result.slice(0, position) + result.slice(position + 1 + random(8));
  }
  return result;
}

async function verdict(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return "valid";
  } catch (error) {
    assert.ok(error instanceof DocumentError, `not a verdict: ${String(error)}`);
    return error.name;
  }
}

test("mutated pin sets and keyrings end in a verdict", async () => {
  const keyring = await loadKeyring(valid.keyring);
  const now = new Date(valid.now);
  const random = generator(20251130);
  const verdicts = new Set<string>();
  for (let index = 0; index < MUTANTS; index += 1) {
    const document = mutate(valid.document, random);
    verdicts.add(await verdict(() => verifyPinset(document, { keyring, minVersion: 0, now })));
    verdicts.add(await verdict(async () => peekDocument(document)));
    verdicts.add(await verdict(() => loadKeyring(mutate(valid.keyring, random))));
  }
  assert.ok(verdicts.has("FormatError") && verdicts.size > 1, [...verdicts].join(", "));
});
