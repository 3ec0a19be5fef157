/**
 * Punycode (RFC 3492), as IDNA A-labels use it: decoding, and encoding to check that an A-label
 * is the one spelling of its U-label (RFC 5891 §5.3). Small enough to write here; the
 * `punycode` module of Node is deprecated and absent on React Native.
 */

const BASE = 36;
const T_MIN = 1;
const T_MAX = 26;
const SKEW = 38;
const DAMP = 700;
const INITIAL_BIAS = 72;
const INITIAL_N = 128;
const MAX_CODE_POINT = 0x10ffff;

/** RFC 3492 §6.1. */
function adapt(delta: number, pointCount: number, firstTime: boolean): number {
  let scaled = firstTime ? Math.floor(delta / DAMP) : delta >> 1;
  scaled += Math.floor(scaled / pointCount);
  let k = 0;
  while (scaled > ((BASE - T_MIN) * T_MAX) >> 1) {
    scaled = Math.floor(scaled / (BASE - T_MIN));
    k += BASE;
  }
  return k + Math.floor(((BASE - T_MIN + 1) * scaled) / (scaled + SKEW));
}

function threshold(k: number, bias: number): number {
  return k <= bias ? T_MIN : k >= bias + T_MAX ? T_MAX : k - bias;
}

/** A lower-case digit value (A-labels are lower case in normal form), or -1. */
function digitValue(char: string): number {
  const code = char.charCodeAt(0);
  if (code >= 0x61 && code <= 0x7a) {
    return code - 0x61;
  }
  if (code >= 0x30 && code <= 0x39) {
    return code - 0x30 + 26;
  }
  return -1;
}

function digitChar(value: number): string {
  return String.fromCharCode(value < 26 ? 0x61 + value : 0x30 + value - 26);
}

/** The code points Punycode `input` stands for, or `undefined` if it is not valid Punycode. */
export function punycodeDecode(input: string): number[] | undefined {
  const separator = input.lastIndexOf("-");
  const output = [...input.slice(0, Math.max(separator, 0))].map((char) => char.charCodeAt(0));
  let n = INITIAL_N;
  let bias = INITIAL_BIAS;
  let i = 0;
  for (let position = separator + 1; position < input.length;) {
    const oldI = i;
    let weight = 1;
    for (let k = BASE; ; k += BASE) {
      if (position >= input.length) {
        return undefined;
      }
      const digit = digitValue(input.charAt(position));
      position += 1;
      if (digit < 0) {
        return undefined;
      }
      i += digit * weight;
      const t = threshold(k, bias);
      if (digit < t) {
        break;
      }
      weight *= BASE - t;
      if (i > MAX_CODE_POINT * (output.length + 1) || weight > Number.MAX_SAFE_INTEGER / BASE) {
        return undefined;
      }
    }
    bias = adapt(i - oldI, output.length + 1, oldI === 0);
    n += Math.floor(i / (output.length + 1));
    i %= output.length + 1;
    if (n > MAX_CODE_POINT) {
      return undefined;
    }
    output.splice(i, 0, n);
    i += 1;
  }
  return output;
}

/** The Punycode of `codePoints` (RFC 3492 §6.3), lower case. */
export function punycodeEncode(codePoints: readonly number[]): string {
  const basic = codePoints.filter((point) => point < INITIAL_N);
  let output = String.fromCharCode(...basic);
  let handled = basic.length;
  if (handled > 0) {
    output += "-";
  }
  let n = INITIAL_N;
  let delta = 0;
  let bias = INITIAL_BIAS;
  while (handled < codePoints.length) {
    const next = Math.min(...codePoints.filter((point) => point >= n));
    delta += (next - n) * (handled + 1);
    n = next;
    for (const point of codePoints) {
      if (point < n) {
        delta += 1;
      } else if (point === n) {
        let q = delta;
        for (let k = BASE; ; k += BASE) {
          const t = threshold(k, bias);
          if (q < t) {
            break;
          }
          output += digitChar(t + ((q - t) % (BASE - t)));
          q = Math.floor((q - t) / (BASE - t));
        }
        output += digitChar(q);
        bias = adapt(delta, handled + 1, handled === basic.length);
        delta = 0;
        handled += 1;
      }
    }
    delta += 1;
    n += 1;
  }
  return output;
}
