/**
 * Which public-key encodings a keyring may carry (docs/spec.md §4): one encoding per key.
 *
 * WebCrypto (like OpenSSL under the Python reference) loads an Ed25519 public key from any 32
 * bytes. Two spellings of one key would then be two "distinct" keys, and one key could meet a
 * threshold of two (§5.2 step 3). A small-order or mixed-order Ed25519 key is refused as well: with
 * it, verifiers using the cofactored and the cofactorless equation of RFC 8032 §5.1.7 can give
 * two verdicts on one signature. For P-256 the coordinates must be below the field prime and the
 * point on the curve.
 */

// RFC 8032 §5.1: the field prime, the curve constant d and the prime order L of the base point.
const ED_P = 2n ** 255n - 19n;
const ED_L = 2n ** 252n + 27742317777372353535851937790883648493n;
// FIPS 186-5 / SEC 2 §2.4.2: y^2 = x^3 - 3x + b over GF(p).
const P256_P = 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n;
const P256_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

function mod(value: bigint, modulus: bigint): bigint {
  const rest = value % modulus;
  return rest < 0n ? rest + modulus : rest;
}

function power(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let factor = mod(base, modulus);
  for (let rest = exponent; rest > 0n; rest >>= 1n) {
    if (rest & 1n) {
      result = (result * factor) % modulus;
    }
    factor = (factor * factor) % modulus;
  }
  return result;
}

const ED_D = mod(-121665n * power(121666n, ED_P - 2n, ED_P), ED_P);
const SQRT_MINUS_ONE = power(2n, (ED_P - 1n) / 4n, ED_P);

/** (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z (RFC 8032 §5.1.4). */
type ExtendedPoint = readonly [bigint, bigint, bigint, bigint];

/** RFC 8032 §5.1.3 steps 2-4: the x of the point with this y and sign, or `undefined`. */
function decodeX(y: bigint, sign: bigint): bigint | undefined {
  const u = mod(y * y - 1n, ED_P);
  const v = mod(ED_D * y * y + 1n, ED_P);
  let x = mod(u * power(v, 3n, ED_P) * power(u * power(v, 7n, ED_P), (ED_P - 5n) / 8n, ED_P), ED_P);
  if (mod(v * x * x - u, ED_P) !== 0n) {
    x = mod(x * SQRT_MINUS_ONE, ED_P);
  }
  if (mod(v * x * x - u, ED_P) !== 0n || (x === 0n && sign === 1n)) {
    return undefined;
  }
  return x % 2n !== sign ? ED_P - x : x;
}

/** RFC 8032 §5.1.4 point addition (complete: it also doubles). */
function add(p: ExtendedPoint, q: ExtendedPoint): ExtendedPoint {
  const a = mod((p[1] - p[0]) * (q[1] - q[0]), ED_P);
  const b = mod((p[1] + p[0]) * (q[1] + q[0]), ED_P);
  const c = mod(2n * p[3] * q[3] * ED_D, ED_P);
  const d = mod(2n * p[2] * q[2], ED_P);
  const [e, f, g, h] = [b - a, d - c, d + c, b + a];
  return [mod(e * f, ED_P), mod(g * h, ED_P), mod(f * g, ED_P), mod(e * h, ED_P)];
}

function timesOrder(point: ExtendedPoint): ExtendedPoint {
  let result: ExtendedPoint = [0n, 1n, 1n, 0n];
  let addend = point;
  for (let scalar = ED_L; scalar > 0n; scalar >>= 1n) {
    if (scalar & 1n) {
      result = add(result, addend);
    }
    addend = add(addend, addend);
  }
  return result;
}

/** Why `encoded` is not an acceptable Ed25519 public key, or `undefined`: it must be 32 bytes,
 * y below the field prime, decodable (RFC 8032 §5.1.3), and a point of prime order L. */
export function ed25519KeyProblem(encoded: Uint8Array): string | undefined {
  if (encoded.length !== 32) {
    return `an Ed25519 key is 32 bytes, not ${encoded.length}`;
  }
  const number = encoded.reduceRight((value, byte) => (value << 8n) | BigInt(byte), 0n);
  const [y, sign] = [number & ((1n << 255n) - 1n), number >> 255n];
  if (y >= ED_P) {
    return "the Ed25519 key is not in canonical encoding (y is not below 2^255 - 19)";
  }
  const x = decodeX(y, sign);
  if (x === undefined) {
    return "the Ed25519 key does not decode to a point on the curve (RFC 8032 §5.1.3)";
  }
  const multiple = timesOrder([x, y, 1n, mod(x * y, ED_P)]);
  // [L]P is the neutral element (0, 1) for P of order L, and for P = (0, 1) itself.
  if (x === 0n || multiple[0] !== 0n || multiple[1] !== multiple[2]) {
    return "the Ed25519 key is not of prime order (a small-order or mixed-order point)";
  }
  return undefined;
}

function bigEndian(bytes: Uint8Array): bigint {
  return bytes.reduce((value, byte) => (value << 8n) | BigInt(byte), 0n);
}

/** Why the coordinates are not the one encoding of a P-256 point, or `undefined`. */
export function p256KeyProblem(xBytes: Uint8Array, yBytes: Uint8Array): string | undefined {
  if (xBytes.length !== 32 || yBytes.length !== 32) {
    return `P-256 coordinates are 32 bytes each, not ${xBytes.length} and ${yBytes.length}`;
  }
  const [x, y] = [bigEndian(xBytes), bigEndian(yBytes)];
  if (x >= P256_P || y >= P256_P) {
    return "a P-256 coordinate is not below the field prime";
  }
  if (mod(y * y, P256_P) !== mod(x * x * x - 3n * x + P256_B, P256_P)) {
    return "the P-256 key is not a point on the curve";
  }
  return undefined;
}
