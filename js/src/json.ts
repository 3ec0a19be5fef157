/**
 * Strict JSON (docs/spec.md §2) and its one canonical encoding (RFC 8785).
 *
 * `JSON.parse` is not strict enough for a signed format: it keeps the last of two duplicate
 * members, skips nothing but also refuses nothing that I-JSON (RFC 7493) forbids, turns big
 * integers into nearby doubles, and gives `__proto__` a meaning on plain objects. This parser
 * refuses every one of those, so that this verifier and the Python reference read the same bytes
 * the same way or not at all. Objects become `JsonObject` (a `Map` inside, so any member name is
 * just data); numbers stay as their source text until a caller asks for an integer.
 */

import { FormatError } from "./errors.js";
import { MAX_JSON_DEPTH, MAX_SAFE_INTEGER } from "./limits.js";

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

/** A JSON number as written. Every number of a document is a safe integer (the parser refuses
 * others); `integer` is set only when it is written as one, without fraction or exponent. */
export class JsonNumber {
  readonly integer: number | undefined;

  constructor(readonly text: string) {
    this.integer = /^-?(?:0|[1-9][0-9]*)$/.test(text) ? Number(text) : undefined;
  }
}

/** A JSON object: member names are data, never properties of a JavaScript object. */
export class JsonObject {
  constructor(readonly members: ReadonlyMap<string, JsonValue>) {}

  get(name: string): JsonValue | undefined {
    return this.members.get(name);
  }

  names(): string[] {
    return [...this.members.keys()];
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decode strict UTF-8: invalid sequences (surrogates, overlongs) are refused; a BOM is kept as
 * U+FEFF so that the parser refuses it instead of silently stripping it. */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new FormatError(`${what} is not UTF-8`);
  }
}

/** Parse `bytes` as strict UTF-8 I-JSON (docs/spec.md §2.3). */
export function parseJson(bytes: Uint8Array, what: string): JsonValue {
  return parseJsonText(decodeUtf8(bytes, what), what);
}

/** Parse text that `decodeUtf8` produced (a BOM in it is refused like any stray character). */
export function parseJsonText(text: string, what: string): JsonValue {
  return new StrictParser(text, what).parseDocument();
}

/** Noncharacters (U+FDD0..U+FDEF and the last two code points of every plane): I-JSON
 * (RFC 7493 §2.1) refuses them, and so does the Python reference. */
function isNoncharacter(codePoint: number): boolean {
  return (codePoint >= 0xfdd0 && codePoint <= 0xfdef) || (codePoint & 0xfffe) === 0xfffe;
}

const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?/y;
const HEX4 = /^[0-9A-Fa-f]{4}$/;

class StrictParser {
  private position = 0;

  constructor(
    private readonly text: string,
    private readonly what: string,
  ) {}

  parseDocument(): JsonValue {
    const value = this.parseValue(1);
    this.skipWhitespace();
    if (this.position !== this.text.length) {
      this.fail("extra data after the JSON value");
    }
    return value;
  }

  private fail(reason: string): never {
    throw new FormatError(`${this.what} is not valid JSON: ${reason} at offset ${this.position}`);
  }

  private skipWhitespace(): void {
    // RFC 8259 §2: only space, tab, line feed and carriage return (no BOM, no U+00A0).
    while (/[ \t\n\r]/.test(this.text.charAt(this.position))) {
      this.position += 1;
    }
  }

  private parseValue(depth: number): JsonValue {
    this.skipWhitespace();
    const char = this.text.charAt(this.position);
    if (char === "{" || char === "[") {
      if (depth > MAX_JSON_DEPTH) {
        this.fail(`nested deeper than ${MAX_JSON_DEPTH}`);
      }
      return char === "{" ? this.parseObject(depth) : this.parseArray(depth);
    }
    if (char === '"') {
      return this.parseString();
    }
    for (const [literal, value] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ] as const) {
      if (this.text.startsWith(literal, this.position)) {
        this.position += literal.length;
        return value;
      }
    }
    return this.parseNumber();
  }

  private parseObject(depth: number): JsonObject {
    const members = new Map<string, JsonValue>();
    this.position += 1;
    this.skipWhitespace();
    if (this.text.charAt(this.position) === "}") {
      this.position += 1;
      return new JsonObject(members);
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text.charAt(this.position) !== '"') {
        this.fail("expected a member name");
      }
      const name = this.parseString();
      if (members.has(name)) {
        this.fail(`the member ${JSON.stringify(name)} appears twice`);
      }
      this.skipWhitespace();
      this.expect(":");
      members.set(name, this.parseValue(depth + 1));
      if (this.endOfContainer("}")) {
        return new JsonObject(members);
      }
    }
  }

  private parseArray(depth: number): JsonValue[] {
    const items: JsonValue[] = [];
    this.position += 1;
    this.skipWhitespace();
    if (this.text.charAt(this.position) === "]") {
      this.position += 1;
      return items;
    }
    for (;;) {
      items.push(this.parseValue(depth + 1));
      if (this.endOfContainer("]")) {
        return items;
      }
    }
  }

  /** After a member or item: `true` at the closing bracket, `false` after a comma. */
  private endOfContainer(close: string): boolean {
    this.skipWhitespace();
    const char = this.text.charAt(this.position);
    if (char === close || char === ",") {
      this.position += 1;
      return char === close;
    }
    return this.fail(`expected "," or "${close}"`);
  }

  private expect(char: string): void {
    if (this.text.charAt(this.position) !== char) {
      this.fail(`expected "${char}"`);
    }
    this.position += 1;
  }

  private parseNumber(): JsonNumber {
    NUMBER.lastIndex = this.position;
    const match = NUMBER.exec(this.text);
    if (match === null) {
      // NaN, Infinity, a lone "-", or anything else that is no JSON value.
      return this.fail("expected a JSON value");
    }
    // I-JSON (RFC 7493 §2.2), as docs/spec.md §2 reads it: every number's value is an integer
    // within ±(2^53 - 1), so that every parser reads it exactly. `7.0` and `7e0` are the value 7
    // here (the schema still refuses them where an integer is due); `0.5` and `1e400` are none.
    if (!Number.isSafeInteger(Number(match[0]))) {
      this.fail(`the number ${match[0]} is not an integer within ±${MAX_SAFE_INTEGER}`);
    }
    const number = new JsonNumber(match[0]);
    this.position += match[0].length;
    return number;
  }

  private parseString(): string {
    this.position += 1;
    let result = "";
    for (;;) {
      const code = this.text.charCodeAt(this.position);
      if (Number.isNaN(code)) {
        this.fail("unterminated string");
      }
      if (code === 0x22) {
        this.position += 1;
        return this.checkedString(result);
      }
      if (code < 0x20) {
        this.fail("a control character inside a string");
      }
      if (code === 0x5c) {
        result += this.parseEscape();
      } else {
        result += this.text.charAt(this.position);
        this.position += 1;
      }
    }
  }

  private parseEscape(): string {
    const char = this.text.charAt(this.position + 1);
    if (char === "u") {
      const hex = this.text.slice(this.position + 2, this.position + 6);
      if (!HEX4.test(hex)) {
        this.fail("a \\u escape needs four hex digits");
      }
      this.position += 6;
      return String.fromCharCode(parseInt(hex, 16));
    }
    const escaped = ESCAPES[char];
    if (escaped === undefined) {
      this.fail("an invalid escape");
    }
    this.position += 2;
    return escaped;
  }

  /** I-JSON (RFC 7493 §2.1): no lone surrogate (only a \u escape can spell one, since the UTF-8
   * decoder refused encoded surrogates) and no noncharacter, in names and values alike. */
  private checkedString(value: string): string {
    for (let index = 0; index < value.length; index += 1) {
      const codePoint = value.codePointAt(index) ?? 0;
      if (codePoint >= 0xd800 && codePoint <= 0xdfff) {
        this.fail("a string holds a lone surrogate");
      }
      if (isNoncharacter(codePoint)) {
        this.fail("a string holds a noncharacter");
      }
      if (codePoint > 0xffff) {
        index += 1;
      }
    }
    return value;
  }
}

/**
 * The RFC 8785 (JCS) encoding of `value`. Strings use ECMAScript's `JSON.stringify`, whose
 * escaping is the one RFC 8785 §3.2.2.2 specifies; member names are sorted by UTF-16 code units
 * (§3.2.3), which is what `Array.prototype.sort` compares. Only integers occur in the documents,
 * so a number is written as its integer value; any other number is refused.
 */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (value instanceof JsonNumber) {
    if (value.integer === undefined) {
      throw new FormatError(`the number ${value.text} has no canonical form in this format`);
    }
    return String(value.integer);
  }
  if (Array.isArray(value)) {
    return `[${value.map(canonicalJson).join(",")}]`;
  }
  const names = value.names().sort();
  const members = names.map(
    (name) => `${JSON.stringify(name)}:${canonicalJson(value.get(name) ?? null)}`,
  );
  return `{${members.join(",")}}`;
}
