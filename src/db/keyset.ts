// Keyset pages: what a repository's list function receives (decoded cursors, the row limit, the
// direction), and the one page over an id column, newest first, that every "list by id" uses.
import { type SelectQueryBuilder, sql } from "kysely";

/** What a repository list function receives: decoded cursors, the row limit and the direction. */
export interface KeysetPage<K> {
  after: K | undefined;
  before: K | undefined;
  limit: number;
  /** True when paging backwards (`last`/`before`): fetch in reverse order; the caller re-reverses. */
  inverted: boolean;
}

/** Applies `page` (cursor bounds, direction, limit) to a query over `column`, a bigint id. */
export function pageById<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  column: string,
  page: KeysetPage<string>,
): SelectQueryBuilder<DB, TB, O> {
  const ref = sql.ref(column);
  let paged = query;
  if (page.after !== undefined) paged = paged.where(sql<boolean>`${ref} < ${page.after}::bigint`);
  if (page.before !== undefined) paged = paged.where(sql<boolean>`${ref} > ${page.before}::bigint`);
  return paged.orderBy(sql`${ref} ${sql.raw(page.inverted ? "ASC" : "DESC")}`).limit(page.limit);
}
