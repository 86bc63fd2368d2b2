// The one keyset page over an id column, newest first: every "list by id" repository uses it.
import { type SelectQueryBuilder, sql } from "kysely";
import type { KeysetPage } from "../schema/connection.ts";

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
