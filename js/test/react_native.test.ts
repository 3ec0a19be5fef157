/** A verified pin set as `initializeSslPinning` options: what is expressed, and what is not. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { parseNormalPattern } from "../src/hosts.js";
import type { Mode, PinSet, PinSetRule } from "../src/model.js";
import { toSslPinningOptions } from "../src/react_native.js";

const PIN_A = "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
const PIN_B = "sha256/LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";
const NOW = new Date("2025-01-15T00:00:00Z");

function rule(
  pattern: string,
  mode: Mode = "enforce",
  pins = [PIN_A, PIN_B],
  expires: Date | null = null,
): PinSetRule {
  return { pattern, ...parseNormalPattern(pattern), pins, mode, expires };
}

function pinset(...rules: PinSetRule[]): PinSet {
  return {
    channel: "com.example.app/prod",
    version: 7,
    issued: new Date("2025-01-01T00:00:00Z"),
    expires: new Date("2025-02-01T00:00:00Z"),
    refreshAfter: 3600,
    reportUri: null,
    keyringVersion: 1,
    rules,
  };
}

test("exact and **. rules become domains with bare base64 pins", () => {
  const { options, unexpressed } = toSslPinningOptions(
    pinset(rule("api.example.com"), rule("**.cdn.example.com"), rule("192.0.2.1")),
    NOW,
  );
  assert.deepEqual(options, {
    "api.example.com": {
      includeSubdomains: false,
      publicKeyHashes: [PIN_A.slice(7), PIN_B.slice(7)],
    },
    "cdn.example.com": {
      includeSubdomains: true,
      publicKeyHashes: [PIN_A.slice(7), PIN_B.slice(7)],
    },
    "192.0.2.1": { includeSubdomains: false, publicKeyHashes: [PIN_A.slice(7), PIN_B.slice(7)] },
  });
  assert.deepEqual(unexpressed, []);
});

test("what the library cannot express is reported with its reason, never widened", () => {
  const { options, unexpressed } = toSslPinningOptions(
    pinset(
      rule("*.example.com"),
      rule("report.example.com", "report-only"),
      rule("one.example.com", "enforce", [PIN_A]),
      rule("**.shared.example.com"),
      rule("shared.example.com", "enforce", [PIN_B, PIN_A]),
    ),
    NOW,
  );
  assert.deepEqual(Object.keys(options), ["shared.example.com"]);
  assert.equal(options["shared.example.com"]?.includeSubdomains, false);
  assert.deepEqual(unexpressed.map((item) => item.pattern).sort(), [
    "**.shared.example.com",
    "*.example.com",
    "one.example.com",
    "report.example.com",
  ]);
  assert.ok(unexpressed.every((item) => item.reason.length > 0));
});

test("disabled rules and rules past their expiry pin nothing (docs/spec.md §8)", () => {
  const { options, unexpressed } = toSslPinningOptions(
    pinset(
      rule("off.example.com", "disabled", []),
      rule("old.example.com", "enforce", [PIN_A, PIN_B], NOW),
    ),
    NOW,
  );
  assert.deepEqual(options, {});
  assert.deepEqual(unexpressed, []);
});

test("a host named __proto__ or constructor is a plain key of the options", () => {
  const { options } = toSslPinningOptions(pinset(rule("__proto__"), rule("constructor")), NOW);
  assert.deepEqual(Object.keys(options).sort(), ["__proto__", "constructor"]);
  assert.equal(Object.getPrototypeOf(options), Object.prototype);
});
