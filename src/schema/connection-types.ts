// One connection type per node type, named as API.md names them (PodConnection, PodEdge, …),
// shared by every field that lists that type, instead of one per field (QueryPodsConnection, …).
import type { ObjectRef } from "@pothos/core";
import { builder } from "./builder.ts";

const connections = new Map<string, unknown>();

// biome-ignore lint/suspicious/noExplicitAny: the connection shape is generic over every node type.
export function connectionOf<T extends ObjectRef<any, any>>(ref: T) {
  const name = ref.name;
  let connection = connections.get(name);
  if (!connection) {
    connection = builder.connectionObject({ type: ref, name: `${name}Connection` }, { name: `${name}Edge` });
    connections.set(name, connection);
  }
  return connection as ReturnType<typeof builder.connectionObject<T, unknown>>;
}
