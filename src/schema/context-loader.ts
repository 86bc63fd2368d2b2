// Request-scoped DataLoaders for batched reads that are not "load a node by id" (child lists,
// attachment contents). One loader per context and name, so a page of N parents costs one query.
import DataLoader from "dataloader";
import type { Context } from "./context.ts";

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

export function clearContextLoaders(context: Context): void {
  loaders.delete(context);
}
