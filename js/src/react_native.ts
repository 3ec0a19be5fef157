/**
 * A verified pin set as the options of `initializeSslPinning` from
 * `react-native-ssl-public-key-pinning` (OkHttp's CertificatePinner on Android, TrustKit on iOS):
 * `{ [domain]: { includeSubdomains, publicKeyHashes } }`, each hash the bare base64 SHA-256 of
 * a Subject Public Key Info.
 *
 * The library cannot say everything a pin set says. A rule it cannot express is returned in
 * `unexpressed` with the reason, never dropped in silence and never widened:
 * - `report-only`: the library only enforces;
 * - `*.base` (exactly one label): `includeSubdomains` pins the base and every depth below it,
 *   hosts the rule does not pin and that may serve other keys;
 * - fewer than two pins: TrustKit refuses the whole configuration then, so one rule would switch
 *   off pinning for every host on iOS;
 * - `**.base` beside an exact rule for `base`: one domain key cannot hold both; the exact rule
 *   is the more specific (docs/spec.md §8) and is kept.
 * A `disabled` rule means no pinning for its hosts, which is what leaving them out says; a rule
 * past its `expires` is absent (docs/spec.md §8).
 */

import type { PinSet, PinSetRule } from "./model.js";

/** The options object of `initializeSslPinning`. */
export type SslPinningOptions = Record<
  string,
  { includeSubdomains: boolean; publicKeyHashes: string[] }
>;

export interface UnexpressedRule {
  readonly pattern: string;
  readonly reason: string;
}

export interface SslPinningConfig {
  readonly options: SslPinningOptions;
  readonly unexpressed: readonly UnexpressedRule[];
}

/** TrustKit's minimum per domain (it refuses a configuration with fewer). */
const MIN_PINS = 2;
const PIN_PREFIX = "sha256/";

function reasonNotExpressible(rule: PinSetRule): string | undefined {
  if (rule.mode === "report-only") {
    return "report-only rules cannot be expressed: the library only enforces";
  }
  if (rule.kind === "one-label") {
    return "'*.' (one label) cannot be expressed: includeSubdomains also pins the base and deeper hosts";
  }
  if (rule.pins.length < MIN_PINS) {
    return `TrustKit needs at least ${MIN_PINS} pins per domain; this rule has ${rule.pins.length}`;
  }
  return undefined;
}

/** The enforced rules of `pinset` in force at `now` as `initializeSslPinning` options. */
export function toSslPinningOptions(pinset: PinSet, now: Date = new Date()): SslPinningConfig {
  // A Map, then Object.fromEntries: a host named "__proto__" or "constructor" stays a plain key.
  const domains = new Map<string, SslPinningOptions[string]>();
  const unexpressed: UnexpressedRule[] = [];
  const inForce = pinset.rules.filter(
    (rule) => rule.mode !== "disabled" && (rule.expires === null || now < rule.expires),
  );
  // Exact rules first, so that an exact rule takes its domain key before a `**.` rule can.
  const ordered = [...inForce].sort(
    (a, b) => Number(b.kind === "exact") - Number(a.kind === "exact"),
  );
  for (const rule of ordered) {
    const reason =
      reasonNotExpressible(rule) ??
      (domains.has(rule.base) ? `an exact rule for ${rule.base} holds that domain key` : undefined);
    if (reason !== undefined) {
      unexpressed.push({ pattern: rule.pattern, reason });
      continue;
    }
    domains.set(rule.base, {
      includeSubdomains: rule.kind === "any-depth",
      publicKeyHashes: rule.pins.map((pin) => pin.slice(PIN_PREFIX.length)),
    });
  }
  return { options: Object.fromEntries(domains), unexpressed };
}
