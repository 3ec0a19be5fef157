/**
 * The `report_uri` of a pin set (docs/spec.md §3): `null`, or exactly
 * `http(s)://host[:port][/path][?query]` with a lower-case scheme, a host in normal form (an IPv6
 * address in brackets), a port 1-65535 without leading zeros, RFC 3986 path and query characters,
 * no user info, no fragment, at most 2048 characters.
 */

import { FormatError } from "./errors.js";
import { parseNormalPattern } from "./hosts.js";

const MAX_URI = 2048;
const MAX_PORT = 65535;
// RFC 3986 §3.3 pchar; a percent-encoding has two hex digits.
const PCHAR = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})";
const HOST = "([a-z0-9._-]+|\\[[0-9a-f:]+\\])";
const PORT = "(?::([1-9][0-9]{0,4}))?";
const PATH_AND_QUERY = `(?:/${PCHAR}*)*(?:\\?(?:${PCHAR}|[/?])*)?`;
const REPORT_URI = new RegExp(`^https?://${HOST}${PORT}${PATH_AND_QUERY}$`);

function isNormalHost(host: string): boolean {
  const bracketed = host.startsWith("[");
  const bare = bracketed ? host.slice(1, -1) : host;
  try {
    return parseNormalPattern(bare).kind === "exact" && bare.includes(":") === bracketed;
  } catch {
    return false;
  }
}

export function checkReportUri(value: unknown): string {
  if (typeof value !== "string" || value.length > MAX_URI) {
    throw new FormatError(`report_uri must be a string of at most ${MAX_URI} characters`);
  }
  const match = REPORT_URI.exec(value);
  const [host, port] = [match?.[1], match?.[2]];
  if (host === undefined || !isNormalHost(host) || Number(port ?? 1) > MAX_PORT) {
    throw new FormatError(
      `report_uri ${JSON.stringify(value.slice(0, 80))} is not http(s)://host[:port][/path][?query] ` +
        "with a host in normal form, a port up to 65535 and RFC 3986 characters",
    );
  }
  return value;
}
