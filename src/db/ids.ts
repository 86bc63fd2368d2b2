// Row ids travel as decimal text (bigint columns, as pg returns them).

/** Orders ids (decimal texts of bigints, no leading zeros) without parsing them. */
export function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
