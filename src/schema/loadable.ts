// Every type fetched by id is a loadable node: one batched, scope-applying query per type per tick.

import { notFound } from "../errors.ts";
import { builder } from "./builder.ts";
import type { Context } from "./context.ts";
import { clearContextLoaders } from "./context-loader.ts";
import { resetResponseBudget } from "./response-budget.ts";

/** Orders rows like `ids`; an id the caller may not see becomes NOT_FOUND, exactly like a missing one. */
export function inIdOrder<T extends { id: string }>(
  ids: readonly string[],
  rows: readonly T[],
  what: string,
) {
  const byId = new Map(rows.map((row) => [String(row.id), row]));
  return ids.map((id) => byId.get(String(id)) ?? notFound(what));
}

/** Every loadable node type's loader, so a long-lived context (a subscription) can start afresh. */
const loadableRefs: { getDataloader: (context: Context) => { clearAll: () => unknown } }[] = [];

/** builder.loadableNodeRef, remembered so clearLoaders() can reach its request-scoped DataLoader. */
export const loadableNodeRef: typeof builder.loadableNodeRef = ((
  ...args: Parameters<typeof builder.loadableNodeRef>
) => {
  const ref = builder.loadableNodeRef(...args);
  loadableRefs.push(ref as unknown as (typeof loadableRefs)[number]);
  return ref;
}) as typeof builder.loadableNodeRef;

export function clearLoaders(context: Context): void {
  for (const ref of loadableRefs) ref.getDataloader(context).clearAll();
  clearContextLoaders(context);
  resetResponseBudget(context);
}
