/**
 * Times in documents: UTC written exactly `YYYY-MM-DDTHH:MM:SSZ` (docs/spec.md §3), read as whole
 * seconds since 1970-01-01T00:00:00Z. Computed here from the calendar, not with `Date.parse`,
 * which accepts other spellings and maps years 0-99 to the twentieth century.
 */

import { FormatError } from "./errors.js";

const TIMESTAMP = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z$/;

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function daysInMonth(year: number, month: number): number {
  return month === 2 ? (isLeapYear(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Days from 1970-01-01 to the given proleptic Gregorian date: years counted from March (so
 * the leap day ends a year), in eras of 400 years of 146097 days each. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra =
    yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

/** Seconds since the epoch of a document time; a calendar-invalid time is a `FormatError`. */
export function parseTime(text: unknown, what: string): number {
  const match = typeof text === "string" ? TIMESTAMP.exec(text) : null;
  if (match === null) {
    throw new FormatError(`${what} must be a UTC time written YYYY-MM-DDTHH:MM:SSZ`);
  }
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const valid =
    year >= 1 &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth(year, month) &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59;
  if (!valid) {
    throw new FormatError(`${what} ${JSON.stringify(text)} is not a valid time`);
  }
  return daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
}

/** `seconds` since the epoch, written as documents write times (for messages). */
export function formatTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, "Z");
}

/** The one clock reading a verification judges expiry against (docs/spec.md §5.3), in whole
 * seconds: documents spell no fractions, and the Python reference drops them from its clock too. */
export function clockReading(now: Date | undefined): number {
  const instant = now ?? new Date();
  if (!(instant instanceof Date) || Number.isNaN(instant.getTime())) {
    throw new TypeError("now must be a valid Date");
  }
  return Math.floor(instant.getTime() / 1000);
}
