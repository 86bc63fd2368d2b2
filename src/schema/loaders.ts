// Request-scoped batching: every type fetched by id is a loadable node (one batched, scope-applying
// query per type per tick), and other batched reads (child lists, attachment contents) get a named
// DataLoader per context, so a page of N parents costs one query, not N.
import DataLoader from "dataloader";
import { notFound } from "../errors.ts";
import { builder } from "./builder.ts";
import type { Context } from "./context.ts";
import { resetResponseBudget } from "./response-budget.ts";

const loaders = new WeakMap<Context, Map<string, DataLoader<unknown, unknown>>>();

export function contextLoader<K, V>(
  context: Context,
  name: string,
  batch: (keys: readonly K[]) => Promise<readonly (V | Error)[]>,
  cacheKeyFn?: (key: K) => string,
): DataLoader<K, V> {
  let byName = loaders.get(context);
  if (!byName) {
    byName = new Map();
    loaders.set(context, byName);
  }
  let loader = byName.get(name) as DataLoader<K, V> | undefined;
  if (!loader) {
    loader = new DataLoader<K, V, string>(batch, cacheKeyFn ? { cacheKeyFn } : {}) as DataLoader<K, V>;
    byName.set(name, loader as DataLoader<unknown, unknown>);
  }
  return loader;
}

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

/** Forgets everything a long-lived context (a subscription) cached, so the next event starts afresh. */
export function clearLoaders(context: Context): void {
  for (const ref of loadableRefs) ref.getDataloader(context).clearAll();
  loaders.delete(context);
  resetResponseBudget(context);
}
