// Row ids travel as decimal text (bigint columns, as pg returns them).

/** The largest value of a PostgreSQL bigint. */
const MAX_BIGINT = 9_223_372_036_854_775_807n;

/**
 * Whether `text` is an id a bigint identity column can hold, written canonically (digits, no sign,
 * no leading zero). Every id that reaches SQL from outside is checked here first: anything else
 * could only fail inside PostgreSQL ("out of range for type bigint"), which must never happen.
 */
export function isRowId(text: string): boolean {
  return /^[1-9]\d{0,18}$/.test(text) && (text.length < 19 || BigInt(text) <= MAX_BIGINT);
}

/** Orders ids (decimal texts of bigints, no leading zeros) without parsing them. */
export function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
