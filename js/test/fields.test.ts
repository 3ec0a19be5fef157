/**
 * The field checks, one by one: base64 spellings (docs/spec.md §2.2, §3), times (§3.4), host
 * patterns (§3.1), report URIs (§3.3), Punycode (RFC 3492) and the key encodings (§4.1). The
 * vectors and tests/crosscheck/ judge whole documents; these name the edge a failure is at.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { base64urlDecode, standardBase64Decode } from "../src/base64.js";
import { ed25519KeyProblem, p256KeyProblem } from "../src/curves.js";
import { FormatError } from "../src/errors.js";
import { parseNormalPattern, patternMatches } from "../src/hosts.js";
import { punycodeDecode, punycodeEncode } from "../src/punycode.js";
import { parseTime } from "../src/time.js";
import { checkReportUri } from "../src/uri.js";

test("base64url: one unpadded spelling per byte string", () => {
  assert.deepEqual([...base64urlDecode("AQID", "t")], [1, 2, 3]);
  assert.deepEqual([...base64urlDecode("-_8", "t")], [0xfb, 0xff]);
  assert.deepEqual([...base64urlDecode("", "t")], []);
  for (const text of [
    "AQI=",
    "AQID=",
    "+/8",
    "AQ ID",
    "AQ\nID",
    "A",
    "AQJ",
    "AR",
    "é",
    "\u{1f600}",
    7,
    null,
  ]) {
    assert.throws(() => base64urlDecode(text, "t"), FormatError, String(text));
  }
});

test("standard base64 of pins: padded, one spelling", () => {
  const pin = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  assert.equal(standardBase64Decode(pin)?.length, 32);
  for (const text of [
    pin.slice(0, -1),
    pin.replace("+", "-"),
    `${pin.slice(0, -2)}V=`,
    `${pin}=`,
    ` ${pin}`,
  ]) {
    assert.equal(standardBase64Decode(text), undefined, text);
  }
});

test("times: the exact spelling of an instant that exists", () => {
  assert.equal(parseTime("1970-01-01T00:00:00Z", "t"), 0);
  assert.equal(parseTime("2024-02-29T12:34:56Z", "t"), Date.UTC(2024, 1, 29, 12, 34, 56) / 1000);
  assert.equal(parseTime("0001-01-01T00:00:00Z", "t"), -62135596800);
  assert.equal(parseTime("9999-12-31T23:59:59Z", "t"), 253402300799);
  for (const text of [
    "2025-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2024-00-01T00:00:00Z",
    "2024-01-00T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T00:60:00Z",
    "2024-12-31T23:59:60Z",
    "2024-01-01 00:00:00Z",
    "2024-01-01T00:00:00z",
    "2024-01-01T00:00:00",
    "2024-01-01T00:00:00.000Z",
    "2024-01-01T00:00:00+00:00",
    "2024-1-01T00:00:00Z",
    "+02024-01-01T00:00:00Z",
    "2024-01-01T00:00:00Z\n",
    "\u0662\u0660\u0662\u0664-01-01T00:00:00Z",
    "",
    1704067200,
    null,
  ]) {
    assert.throws(() => parseTime(text, "t"), FormatError, String(text));
  }
});

test("host patterns: the grammar of docs/spec.md §3.1", () => {
  const label63 = "a".repeat(63);
  const name253 = [label63, label63, label63, "b".repeat(61)].join(".");
  const valid = [
    "example.com",
    "*.example.com",
    "**.example.com",
    "*.co.uk",
    "localhost",
    "_srv._tcp.example.com",
    "ab--cd.example.com",
    "r1---sn.example.com",
    "xn--bcher-kva.example",
    "xn--ls8h.example",
    name253,
    `**.${name253}`,
    `${label63}.example`,
    "192.0.2.1",
    "0.0.0.0",
    "255.255.255.255",
    "2001:db8::1",
    "::1",
    "::",
    "1::",
    "2001:db8:0:1:1:1:1:1",
    "2001:0:0:1::1",
    "::102:304",
    "__proto__",
  ];
  for (const pattern of valid) {
    assert.equal(parseNormalPattern(pattern).base, pattern.replace(/^\*\*?\./, ""), pattern);
  }
  const refused = [
    "",
    "Example.com",
    "example.com.",
    ".example.com",
    "a..b",
    "*.",
    "**.",
    "*",
    "*.com",
    "**.localhost",
    "*.*.example.com",
    "a*.example.com",
    "-a.example.com",
    "a-.example.com",
    "a b.example",
    "a\u0000.b",
    "example.com\n",
    "bücher.example",
    "XN--bcher-kva.example",
    "xn--.example",
    "xn--bcher-kva0.example",
    "xn---.example",
    "xn---ls8h.example",
    "xn--zzzzzzzzzzzzzzz.example",
    `${label63}a.example`,
    `a${name253}`,
    "1.2.3",
    "example.123",
    "example.0x7f",
    "example.0x",
    "0x",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.4.",
    "*.192.0.2.1",
    "**.2001:db8::1",
    "2001:DB8::1",
    "2001:db8:0:0:0:0:0:1",
    "2001:0db8::1",
    "2001:db8::0:1",
    "[2001:db8::1]",
    "::ffff:192.0.2.1",
    "::ffff:c000:201",
    "fe80::1%eth0",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    ":::",
    "1.2.3.4::",
    "::1.2.3.4.5",
    "0:0:0:0:0:0:0:0",
    "1:0:0:2:0:0:0:3",
  ];
  for (const pattern of refused) {
    assert.throws(() => parseNormalPattern(pattern), FormatError, JSON.stringify(pattern));
  }
  assert.throws(() => parseNormalPattern(7), FormatError);
});

test("host patterns match as OkHttp's CertificatePinner", () => {
  const exact = parseNormalPattern("api.example.com");
  const one = parseNormalPattern("*.example.com");
  const any = parseNormalPattern("**.example.com");
  assert.ok(
    patternMatches(exact, "api.example.com") && !patternMatches(exact, "x.api.example.com"),
  );
  assert.ok(patternMatches(one, "a.example.com") && !patternMatches(one, "a.b.example.com"));
  assert.ok(!patternMatches(one, "example.com") && !patternMatches(one, "aexample.com"));
  assert.ok(patternMatches(any, "example.com") && patternMatches(any, "a.b.example.com"));
  assert.ok(!patternMatches(any, "badexample.com"));
});

test("Punycode: RFC 3492 §7.1 samples round-trip; bad digits and overflow are refused", () => {
  const samples: Array<[string, string]> = [
    ["bcher-kva", "bücher"],
    ["ihqwcrb4cv8a8dqg056pqjye", "他们为什么不说中文"],
    ["ls8h", "\u{1f4a9}"],
    ["-> $1.00 <--", "-> $1.00 <-"],
  ];
  for (const [encoded, text] of samples) {
    const points = [...text].map((char) => char.codePointAt(0) ?? 0);
    assert.deepEqual(punycodeDecode(encoded), points, encoded);
    assert.equal(punycodeEncode(points), encoded, text);
  }
  for (const encoded of [
    "99999999999999999",
    "zzzzzzzzzzzzzzzzzzzzzzzzzzz",
    "a%b",
    "bcher-kvA",
    "bcher-kv",
  ]) {
    const decoded = punycodeDecode(encoded);
    assert.ok(decoded === undefined || punycodeEncode(decoded) !== encoded, encoded);
  }
});

test("report URIs: the grammar of docs/spec.md §3.3", () => {
  for (const uri of [
    "https://pins.example.com/report",
    "http://a.example",
    "https://[2001:db8::1]:443/r?x=/?&y=%2F",
    "https://192.0.2.1:65535",
  ]) {
    assert.equal(checkReportUri(uri), uri);
  }
  for (const uri of [
    "HTTPS://a.example/",
    "https://A.example/",
    "https://a.example:0/",
    "https://a.example:65536/",
    "https://a.example:01/",
    "https://a.example:/",
    "https://a.example/#f",
    "https://u@a.example/",
    "https://[::ffff:1.2.3.4]/",
    "https://[1.2.3.4]/",
    "https://2001:db8::1/",
    "https://a.example/%g0",
    "https://a.example/a b",
    "https://a.example/\n",
    "ftp://a.example/",
    "https://",
    "https:///x",
    "https://*.example.com/",
    "https://a.example./",
    `https://a.example/${"a".repeat(2048)}`,
    7,
  ]) {
    assert.throws(() => checkReportUri(uri), FormatError, String(uri));
  }
});

test("Ed25519 keys: canonical, on the curve, of prime order", () => {
  const little = (value: bigint, sign = 0n) => {
    const number = value | (sign << 255n);
    return Uint8Array.from({ length: 32 }, (_, index) =>
      Number((number >> BigInt(8 * index)) & 0xffn),
    );
  };
  const p = 2n ** 255n - 19n;
  // RFC 8032 §7.1 TEST 1 public key.
  const valid = Uint8Array.from(
    Buffer.from("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "hex"),
  );
  assert.equal(ed25519KeyProblem(valid), undefined);
  for (const [label, key] of [
    ["neutral", little(1n)],
    ["order 2", little(p - 1n)],
    ["order 4", little(0n)],
    ["y + p", little(p + 1n)],
    ["x = 0 with sign", little(1n, 1n)],
    ["31 bytes", valid.subarray(1)],
  ] as const) {
    assert.notEqual(ed25519KeyProblem(key), undefined, label);
  }
});

test("P-256 keys: coordinates below p and on the curve", () => {
  const hex = (text: string) => Uint8Array.from(Buffer.from(text, "hex"));
  // The P-256 base point (SEC 2 §2.4.2).
  const x = hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
  const y = hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
  assert.equal(p256KeyProblem(x, y), undefined);
  const yPlusOne = Uint8Array.from(y);
  yPlusOne[31] = (yPlusOne[31] ?? 0) + 1;
  assert.notEqual(p256KeyProblem(x, yPlusOne), undefined);
  assert.notEqual(p256KeyProblem(hex("ff".repeat(32)), y), undefined);
  assert.notEqual(p256KeyProblem(x.subarray(1), y), undefined);
});
