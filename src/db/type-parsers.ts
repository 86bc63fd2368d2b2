// How the pool turns PostgreSQL's text into values, where pg's general parsers cost more than the
// values are worth on hot reads (docs/performance.md, "Reading rows"):
// - timestamptz: the text PostgreSQL writes (DateStyle ISO) read by hand, character by character,
//   instead of by pg's general date parser (three regular expressions and a Date adjusted after the
//   fact). A page of threads with their first messages carries about 200 of them.
// - text[]: the empty array `{}` (what a list computes for an aggregate its selection does not read)
//   without the general array parser.
// Anything else, and any text not in the exact shape expected, goes to pg's own parser, so the
// result is the same value in every case (test/type-parsers.test.ts compares them).
import pg from "pg";

const TIMESTAMPTZ = 1184;
const TEXT_ARRAY = 1009;
/** pg's own parser of a type's text (its typings only name the scalar built-in types). */
const pgParser = pg.types.getTypeParser as (oid: number, format: "text") => (text: string) => unknown;
const general = pgParser(TIMESTAMPTZ, "text") as (text: string) => Date | number | null;

const ZERO = 48;
/** Seconds in the hours, minutes and seconds of a UTC offset. */
const OFFSET_UNITS = [3600, 60, 1];

/** The decimal number in text[from, to), or -1 if any of those characters is not a digit. */
function digits(text: string, from: number, to: number): number {
  let value = 0;
  for (let i = from; i < to; i++) {
    // Past the end charCodeAt is NaN, which fails this test too.
    const digit = text.charCodeAt(i) - ZERO;
    if (!(digit >= 0 && digit <= 9)) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * `YYYY-MM-DD HH:MM:SS[.f{1,6}]±HH[:MM[:SS]]` → its Date (milliseconds, the fraction truncated as
 * pg's parser truncates it); anything else → pg's parser.
 */
export function parseTimestamptz(text: string): Date | number | null {
  const length = text.length;
  if (
    length < 22 ||
    text.charCodeAt(4) !== 45 || // -
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 32 || // space
    text.charCodeAt(13) !== 58 || // :
    text.charCodeAt(16) !== 58
  ) {
    return general(text);
  }
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 7);
  const day = digits(text, 8, 10);
  const hour = digits(text, 11, 13);
  const minute = digits(text, 14, 16);
  const second = digits(text, 17, 19);
  // Years before 100 would be read as 19xx by Date.UTC: leave them to the general parser.
  if (year < 100 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return general(text);
  let at = 19;
  let millis = 0;
  if (text.charCodeAt(at) === 46) {
    // . then 1 to 6 digits: the first three are the milliseconds, the rest is dropped.
    const start = ++at;
    while (at < length && at - start < 6) {
      const digit = text.charCodeAt(at) - ZERO;
      if (!(digit >= 0 && digit <= 9)) break;
      if (at - start < 3) millis = millis * 10 + digit;
      at++;
    }
    if (at === start) return general(text);
    for (let scale = at - start; scale < 3; scale++) millis *= 10;
  }
  const sign = text.charCodeAt(at);
  if (sign !== 43 && sign !== 45) return general(text); // + or -
  let offsetSeconds = 0;
  at++;
  for (let part = 0; part < 3 && at < length; part++) {
    if (part > 0) {
      if (text.charCodeAt(at) !== 58) return general(text);
      at++;
    }
    const value = digits(text, at, at + 2);
    if (value < 0) return general(text);
    offsetSeconds += value * (OFFSET_UNITS[part] as number);
    at += 2;
  }
  if (at !== length) return general(text);
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  return new Date(utc - (sign === 45 ? -offsetSeconds : offsetSeconds) * 1000);
}

const generalTextArray = pgParser(TEXT_ARRAY, "text");

/** `{}` → a new empty array; anything else → pg's parser. */
export function parseTextArray(text: string): unknown {
  return text === "{}" ? [] : generalTextArray(text);
}

/** pg's `types` for the pool: ours for timestamptz and text[] as text, pg's own for everything else. */
export const poolTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (format === "binary") return pg.types.getTypeParser(oid, format);
    if (oid === TIMESTAMPTZ) return parseTimestamptz;
    if (oid === TEXT_ARRAY) return parseTextArray;
    return pg.types.getTypeParser(oid, "text");
  }) as typeof pg.types.getTypeParser,
};
