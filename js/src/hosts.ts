/**
 * Host patterns in normal form (docs/spec.md §3): the rule a pin set keys its pins by.
 *
 * A verifier never normalises a pattern: a signed pattern is valid only if it already is in
 * normal form (lower case, IDNA A-labels, no trailing dot, IP literals compressed), because the
 * payload must be the canonical encoding of the document it describes (§5.1 step 8).
 * `*.base` matches exactly one label and `**.base` any number (OkHttp's `CertificatePinner`).
 */

import { FormatError } from "./errors.js";
import { punycodeDecode, punycodeEncode } from "./punycode.js";

const MAX_NAME = 253;
const MAX_LABEL = 63;
// Letters, digits, hyphen, and underscore (it appears in real service names); no hyphen at the
// ends. Anchored on the whole string: no trailing line feed slips through.
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;
const ACE_PREFIX = "xn--";
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/;

export type PatternKind = "exact" | "one-label" | "any-depth";

/** A host pattern read from a verified document. */
export interface HostPattern {
  readonly kind: PatternKind;
  /** The hostname or IP literal after the wildcard prefix. */
  readonly base: string;
}

function ipv4Octets(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((part) => /^(?:0|[1-9][0-9]{0,2})$/.test(part))) {
    return undefined;
  }
  const octets = parts.map(Number);
  return octets.every((octet) => octet <= 255) ? octets : undefined;
}

/** The sixteen-bit groups of an IPv6 address without zone, or `undefined`. */
function ipv6Groups(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) {
    return undefined;
  }
  // Only the last group of the whole address may be written as an embedded IPv4 address.
  const parse = (half: string, last: boolean): number[] | undefined => {
    if (half === "") {
      return [];
    }
    const groups: number[] = [];
    const pieces = half.split(":");
    for (const [index, piece] of pieces.entries()) {
      const embedded = last && index === pieces.length - 1 && piece.includes(".");
      const octets = embedded ? ipv4Octets(piece) : undefined;
      if (octets !== undefined) {
        groups.push(
          ((octets[0] ?? 0) << 8) | (octets[1] ?? 0),
          ((octets[2] ?? 0) << 8) | (octets[3] ?? 0),
        );
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(piece)) {
        groups.push(parseInt(piece, 16));
      } else {
        return undefined;
      }
    }
    return groups;
  };
  const head = parse(halves[0] ?? "", halves.length === 1);
  const tail = halves.length === 2 ? parse(halves[1] ?? "", true) : [];
  if (head === undefined || tail === undefined) {
    return undefined;
  }
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) {
    return undefined;
  }
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

/** RFC 5952 §4: lower case, no leading zeros, the longest run (two or more, the first of equal
 * runs) of zero groups written `::`; an IPv4-mapped address (RFC 4291 §2.5.5.2) is written as
 * its IPv4 address, the one spelling every client agrees on. */
function compressIpv6(groups: readonly number[]): string {
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    const [high, low] = [groups[6] ?? 0, groups[7] ?? 0];
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join(".");
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < groups.length;) {
    let end = start;
    while (groups[end] === 0) {
      end += 1;
    }
    if (end - start > bestLength) {
      [bestStart, bestLength] = [start, end - start];
    }
    start = Math.max(end, start + 1);
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) {
    return hex.join(":");
  }
  const before = hex.slice(0, bestStart).join(":");
  const after = hex.slice(bestStart + bestLength).join(":");
  return `${before}::${after}`;
}

/** The normal form of an IP literal, or `undefined` if `text` is no IP address. */
function ipLiteral(text: string): string | undefined {
  if (ipv4Octets(text) !== undefined) {
    return text;
  }
  const groups = text.includes(":") ? ipv6Groups(text) : undefined;
  return groups === undefined ? undefined : compressIpv6(groups);
}

/** An A-label is Punycode (RFC 3492) that decodes to Unicode scalar values, not all ASCII, and
 * encodes back to the same label. Whether the U-label is valid IDNA 2008 is the signer's policy,
 * not re-judged here: the answer depends on a Unicode version, and two clients with two versions
 * would disagree about one signed document. */
function isALabel(label: string): boolean {
  const encoded = label.slice(ACE_PREFIX.length);
  const codePoints = punycodeDecode(encoded);
  return (
    codePoints !== undefined &&
    codePoints.some((point) => point >= 0x80) &&
    !codePoints.some((point) => point >= 0xd800 && point <= 0xdfff) &&
    punycodeEncode(codePoints) === encoded
  );
}

function isNormalHostname(name: string): boolean {
  const labels = name.split(".");
  return (
    name.length <= MAX_NAME &&
    labels.every(
      (label) =>
        label.length <= MAX_LABEL &&
        LABEL.test(label) &&
        (!label.startsWith(ACE_PREFIX) || isALabel(label)),
    ) &&
    // A last label that is a number makes the WHATWG URL parser read the name as an IPv4
    // address ("1.2.3" is 1.2.0.3, "0x7f.1" is 127.0.0.1).
    !NUMERIC_LABEL.test(labels[labels.length - 1] ?? "")
  );
}

/** Read a pattern that must already be in normal form; anything else is a `FormatError`. */
export function parseNormalPattern(pattern: unknown): HostPattern {
  if (typeof pattern !== "string") {
    throw new FormatError("a host pattern must be a string");
  }
  const [kind, base]: [PatternKind, string] = pattern.startsWith("**.")
    ? ["any-depth", pattern.slice(3)]
    : pattern.startsWith("*.")
      ? ["one-label", pattern.slice(2)]
      : ["exact", pattern];
  const ip = ipLiteral(base);
  // A wildcard never covers an IP address or a whole top-level domain.
  const valid =
    (ip === undefined ? isNormalHostname(base) : ip === base && kind === "exact") &&
    (kind === "exact" || base.includes("."));
  if (!valid) {
    throw new FormatError(
      `host pattern ${JSON.stringify(pattern)} is not a valid pattern in normal form`,
    );
  }
  return { kind, base };
}

/** Whether the normalised `host` falls under `pattern` (OkHttp's wildcard rules). */
export function patternMatches(pattern: HostPattern, host: string): boolean {
  if (pattern.kind === "exact") {
    return host === pattern.base;
  }
  if (!host.endsWith(`.${pattern.base}`)) {
    return pattern.kind === "any-depth" && host === pattern.base;
  }
  const prefix = host.slice(0, -pattern.base.length - 1);
  return pattern.kind === "any-depth" || !prefix.includes(".");
}
