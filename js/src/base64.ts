/**
 * Base64 with one spelling per byte string (RFC 4648 §3.5): the unpadded base64url of JWS
 * segments and JWK coordinates (RFC 7515 §2), and the padded standard base64 of pins.
 *
 * Written here rather than taken from `Buffer` or `atob`: those skip characters outside the
 * alphabet, accept either alphabet, and ignore non-zero unused bits, so two spellings would read
 * as one document (docs/spec.md §2). They are also missing on React Native.
 */

import { FormatError } from "./errors.js";

const URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const STANDARD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function encode(bytes: Uint8Array, alphabet: string): string {
  let text = "";
  for (let index = 0; index < bytes.length; index += 3) {
    const chunk = bytes.subarray(index, index + 3);
    const bits = ((chunk[0] ?? 0) << 16) | ((chunk[1] ?? 0) << 8) | (chunk[2] ?? 0);
    for (let sextet = 0; sextet <= chunk.length; sextet += 1) {
      text += alphabet.charAt((bits >> (18 - 6 * sextet)) & 0x3f);
    }
  }
  return text;
}

/** The bytes of unpadded `text` in `alphabet`, or `undefined` unless that is their one spelling. */
function decode(text: string, alphabet: string): Uint8Array | undefined {
  if (text.length % 4 === 1) {
    return undefined;
  }
  const bytes = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let bitCount = 0;
  let written = 0;
  for (const char of text) {
    const value = alphabet.indexOf(char);
    if (value < 0) {
      return undefined;
    }
    bits = ((bits << 6) | value) & 0xffffff;
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      bytes[written] = (bits >> bitCount) & 0xff;
      written += 1;
    }
  }
  // The bits left over in the last character must be zero (RFC 4648 §3.5).
  return (bits & ((1 << bitCount) - 1)) === 0 ? bytes : undefined;
}

/** Unpadded base64url (RFC 7515 §2); any other character, `=` included, is refused. */
export function base64urlDecode(text: unknown, what: string): Uint8Array {
  const bytes = typeof text === "string" ? decode(text, URL_ALPHABET) : undefined;
  if (bytes === undefined) {
    throw new FormatError(`${what} is not canonical unpadded base64url`);
  }
  return bytes;
}

/** Padded standard base64 (RFC 4648 §4) in its one spelling, or `undefined`. */
export function standardBase64Decode(text: string): Uint8Array | undefined {
  const unpadded = text.replace(/={1,2}$/, "");
  const bytes = decode(unpadded, STANDARD_ALPHABET);
  return bytes !== undefined && standardBase64Encode(bytes) === text ? bytes : undefined;
}

export function standardBase64Encode(bytes: Uint8Array): string {
  const text = encode(bytes, STANDARD_ALPHABET);
  return text + "=".repeat((4 - (text.length % 4)) % 4);
}
