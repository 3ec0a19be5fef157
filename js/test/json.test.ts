/** The strict JSON parser (docs/spec.md §2.3) and the canonical encoding (RFC 8785). */

import assert from "node:assert/strict";
import { test } from "node:test";

import { FormatError } from "../src/errors.js";
import { canonicalJson, JsonNumber, JsonObject, parseJson } from "../src/json.js";

const encoder = new TextEncoder();
const parse = (text: string) => parseJson(encoder.encode(text), "test");
const refused = (text: string | Uint8Array) =>
  assert.throws(
    () => parseJson(typeof text === "string" ? encoder.encode(text) : text, "test"),
    FormatError,
  );

test("values of every JSON type parse", () => {
  const value = parse(' {"a": [1, -2, true, false, null, "x"], "b": {}} ');
  assert.ok(value instanceof JsonObject);
  assert.deepEqual(value.names(), ["a", "b"]);
  const items = value.get("a") as unknown[];
  assert.equal((items[1] as JsonNumber).integer, -2);
  assert.deepEqual(items.slice(2), [true, false, null, "x"]);
});

test("a duplicate member is refused, at any depth, whichever value it has", () => {
  refused('{"a":1,"a":1}');
  refused('{"x":{"a":1,"a":2}}');
  refused('[{"__proto__":1,"__proto__":1}]');
  refused('{"a":1,"\\u0061":2}'); // the same name, spelled with an escape
});

test("__proto__ and constructor are plain member names", () => {
  const value = parse('{"__proto__":{"polluted":true},"constructor":1}');
  assert.ok(value instanceof JsonObject);
  assert.deepEqual(value.names(), ["__proto__", "constructor"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("a byte order mark is refused, not stripped", () => {
  refused(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]));
  refused("\ufeff{}");
});

test("invalid UTF-8 is refused: stray bytes, overlong forms, encoded surrogates, truncation", () => {
  for (const bytes of [
    [0x22, 0xff, 0x22],
    [0x22, 0xc0, 0xaf, 0x22],
    [0x22, 0xed, 0xa0, 0x80, 0x22],
    [0x22, 0xe2, 0x82],
  ]) {
    refused(new Uint8Array(bytes));
  }
});

test("lone surrogates and noncharacters are refused in values and names", () => {
  for (const text of [
    '"\\ud800"',
    '"\\udc00"',
    '"\\ud800\\u0041"',
    '{"\\udfff":1}',
    '"\\ufdd0"',
    '"\\ufdef"',
    '"\\ufffe"',
    '"\\uffff"',
    '"\\ud83f\\udffe"',
    '"\\udbff\\udfff"',
    '"\ufdd5"',
  ]) {
    refused(text);
  }
  assert.equal(parse('"\\ud83d\\ude00"'), "\u{1f600}");
  assert.equal(parse('"\\ufdcf\\ufdf0\\ufffd"'), "\ufdcf\ufdf0\ufffd");
});

test("every number must be an integer within ±(2^53 - 1); 7.0 is one, 0.5 and 1e400 are not", () => {
  for (const text of [
    "9007199254740991",
    "-9007199254740991",
    "7.0",
    "7e0",
    "70E-1",
    "-0",
    "1e-400",
  ]) {
    assert.ok(parse(text) instanceof JsonNumber, text);
  }
  for (const text of [
    "9007199254740992",
    "-9007199254740993",
    "0.5",
    "1e400",
    "-1e400",
    "1".repeat(5000),
    "NaN",
    "Infinity",
    "-Infinity",
    "+1",
    "01",
    "1.",
    ".5",
    "1e",
    "0x10",
    "-",
  ]) {
    refused(text);
  }
  assert.equal((parse("7") as JsonNumber).integer, 7);
  assert.equal((parse("7.0") as JsonNumber).integer, undefined); // a value of 7, not spelled as an integer
});

test("nesting of 16 levels parses and 17 is refused, for arrays and objects", () => {
  assert.ok(Array.isArray(parse("[".repeat(16) + "]".repeat(16))));
  refused("[".repeat(17) + "]".repeat(17));
  refused('{"a":'.repeat(17) + "1" + "}".repeat(17));
  refused("[".repeat(100_000)); // no stack overflow: refused at level 17
});

test("strings: raw control characters, bad escapes and short \\u escapes are refused", () => {
  for (const text of [
    '"\x00"',
    '"\x1f"',
    '"\n"',
    '"\\x41"',
    '"\\u41"',
    '"\\u004"',
    '"\\U0041"',
    "'a'",
    '"abc',
  ]) {
    refused(text);
  }
  assert.equal(parse('"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\x7f"'), '"\\/\b\f\n\r\tA\x7f');
});

test("syntax: only RFC 8259 white space, no trailing commas or extra data, no empty text", () => {
  for (const text of [
    "",
    " ",
    "[1,]",
    '{"a":1,}',
    "[1 2]",
    '{"a" 1}',
    "{1:2}",
    "1 2",
    "\u00a0[]",
    "[]\u2028",
    "tru",
    "nul",
    "[true false]",
  ]) {
    refused(text);
  }
  assert.deepEqual(parse("\t\r\n [ ] \n"), []);
});

test("canonical JSON: sorted by UTF-16 code units, RFC 8785 string escapes, integers", () => {
  const value = parse(
    '{"b":1,"a":[true,null,"\\u0001\\u001f\\"\\\\/\\u007f\\u2028é"],"\\ud83d\\ude00":0,"\\uffef":-0}',
  );
  assert.equal(
    canonicalJson(value),
    '{"a":[true,null,"\\u0001\\u001f\\"\\\\/\x7f\u2028é"],"b":1,"\u{1f600}":0,"\uffef":0}',
  );
  assert.throws(() => canonicalJson(parse("7.0")), FormatError);
});

test("a large flat document parses (bounded input, no recursion per item)", () => {
  const items = Array.from({ length: 50_000 }, (_, index) => index).join(",");
  assert.equal((parse(`[${items}]`) as unknown[]).length, 50_000);
});
