// Keyset pages: what a repository's list function receives (decoded cursors, the row limit, the
// direction), and the one page over an id column (newest first unless asked otherwise) that every
// "list by id" uses.
import { type SelectQueryBuilder, sql } from "kysely";

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
