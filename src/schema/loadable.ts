// Every type fetched by id is a loadable node: one batched, scope-applying query per type per tick.
import { notFound } from "../errors.ts";

/** Orders rows like `ids`; an id the caller may not see becomes NOT_FOUND, exactly like a missing one. */
export function inIdOrder<T extends { id: string }>(
  ids: readonly string[],
  rows: readonly T[],
  what: string,
) {
  const byId = new Map(rows.map((row) => [String(row.id), row]));
  return ids.map((id) => byId.get(String(id)) ?? notFound(what));
}
