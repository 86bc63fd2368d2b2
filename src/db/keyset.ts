// Keyset pages: what a repository's list function receives (decoded cursors, the row limit, the
// direction), the one page over an id column (newest first unless asked otherwise) that every
// "list by id" uses, and the keys of lists in time order, (instant, id): messages and threads.
import { type RawBuilder, type SelectQueryBuilder, type SqlBool, sql } from "kysely";
import { isRowId } from "./ids.ts";

/** What a repository list function receives: decoded cursors, the row limit and the direction. */
export interface KeysetPage<K> {
  after: K | undefined;
  before: K | undefined;
  limit: number;
  /** True when paging backwards (`last`/`before`): fetch in reverse order; the caller re-reverses. */
  inverted: boolean;
  /** The list runs oldest first (ascending keys) instead of newest first; cursors follow the list. */
  ascending?: boolean | undefined;
}

/**
 * The SQL direction a page is read in, and the comparisons that put a key after `after` and before
 * `before` in the list's own order: newest first reads DESC and "after" is smaller; oldest first the
 * reverse; paging backwards reads the other way round.
 */
export function keysetDirection(page: Pick<KeysetPage<unknown>, "inverted" | "ascending">) {
  const ascending = page.ascending ?? false;
  const readAscending = ascending !== page.inverted;
  return {
    order: sql.raw(readAscending ? "ASC" : "DESC"),
    afterOp: sql.raw(ascending ? ">" : "<"),
    beforeOp: sql.raw(ascending ? "<" : ">"),
  };
}

/** Applies `page` (cursor bounds, direction, limit) to a query over `column`, a bigint id. */
export function pageById<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  column: string,
  page: KeysetPage<string>,
): SelectQueryBuilder<DB, TB, O> {
  const ref = sql.ref(column);
  const { order, afterOp, beforeOp } = keysetDirection(page);
  let paged = query;
  if (page.after !== undefined) paged = paged.where(sql<boolean>`${ref} ${afterOp} ${page.after}::bigint`);
  if (page.before !== undefined) paged = paged.where(sql<boolean>`${ref} ${beforeOp} ${page.before}::bigint`);
  return paged.orderBy(sql`${ref} ${order}`).limit(page.limit);
}

/**
 * The key of a list in time order: the instant as toISOString() writes it, then the row id. The
 * instants these lists order by are written from JavaScript Dates (milliseconds), so the text holds
 * them exactly and a cursor neither repeats nor skips a row of the same millisecond.
 */
export type TimeKey = [string, string];

export const timeKey = (instant: Date, id: string): TimeKey => [instant.toISOString(), id];

export const isTimeKey = (value: unknown): value is TimeKey =>
  Array.isArray(value) &&
  value.length === 2 &&
  typeof value[0] === "string" &&
  isInstantText(value[0]) &&
  typeof value[1] === "string" &&
  isRowId(value[1]);

/**
 * Exactly what toISOString() writes, and nothing else: Date.parse accepts "1" or "Tue 1 2" and
 * PostgreSQL reads such text differently or refuses it, so a forged cursor must stop here.
 */
function isInstantText(text: string): boolean {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(text) && new Date(text).toISOString() === text;
}

/** (time, id) beyond the page's cursors, in the list's order, on columns `time` and `id`. */
export function timeKeyConditions(
  page: KeysetPage<TimeKey>,
  time: string,
  id: string,
): RawBuilder<SqlBool>[] {
  const { afterOp, beforeOp } = keysetDirection(page);
  const row = sql`(${sql.ref(time)}, ${sql.ref(id)})`;
  const key = ([instant, rowId]: TimeKey) => sql`(${instant}::timestamptz, ${rowId}::bigint)`;
  const parts: RawBuilder<SqlBool>[] = [];
  if (page.after) parts.push(sql<SqlBool>`${row} ${afterOp} ${key(page.after)}`);
  if (page.before) parts.push(sql<SqlBool>`${row} ${beforeOp} ${key(page.before)}`);
  return parts;
}

/** Applies `page` to a query in (time, id) order, as pageById does for an id. */
export function pageByTime<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  time: string,
  id: string,
  page: KeysetPage<TimeKey>,
): SelectQueryBuilder<DB, TB, O> {
  const { order } = keysetDirection(page);
  let paged = query;
  for (const condition of timeKeyConditions(page, time, id)) paged = paged.where(condition);
  return paged.orderBy(sql`${sql.ref(time)} ${order}, ${sql.ref(id)} ${order}`).limit(page.limit);
}
