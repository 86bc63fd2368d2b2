// Relay connections over keyset pagination: opaque cursors that carry the sort key, never OFFSET; and
// one connection type per node type, named as the contract names them (PodConnection, PodEdge, …),
// shared by every field that lists that type instead of one per field (QueryPodsConnection, …).
import type { ObjectRef } from "@pothos/core";
import { isRowId } from "../db/ids.ts";
import type { KeysetPage } from "../db/keyset.ts";
import { badUserInput } from "../errors.ts";
import { builder } from "./builder.ts";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "./page-size.ts";

export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE };

export interface ConnectionArgs {
  first?: number | null | undefined;
  last?: number | null | undefined;
  after?: string | null | undefined;
  before?: string | null | undefined;
}

export function encodeCursor(key: unknown): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

function decodeCursor<K>(cursor: string, field: string, isKey: (value: unknown) => value is K): K {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (isKey(value)) return value;
  } catch {
    // fall through
  }
  throw badUserInput(`${field} is not a cursor this list produced.`, field);
}

export function validatePageSize(args: ConnectionArgs): void {
  for (const field of ["first", "last"] as const) {
    const size = args[field];
    if (size != null && (size < 0 || size > MAX_PAGE_SIZE)) {
      throw badUserInput(`${field} must be between 0 and ${MAX_PAGE_SIZE}.`, field);
    }
  }
}

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: {
    hasNextPage: boolean;
    hasPreviousPage: boolean;
    startCursor: string | null;
    endCursor: string | null;
  };
}

/** How a list that has cursors of its own (event cursors) writes and reads them. */
export interface CursorCodec<K> {
  encode(key: K): string;
  /** BAD_USER_INPUT naming `field` for a cursor this list did not issue. */
  decode(cursor: string, field: string): K;
}

/** How an edge writes its cursor: shared by every edge of a page. */
interface EdgeCursors<T, K> {
  keyOf: (node: T) => K;
  encode: (key: K) => string;
}

/**
 * An edge whose cursor is encoded when read. A class rather than an object literal with a getter:
 * V8 builds each such literal through its slow path, and a page of threads with their messages
 * makes about 200 edges per response.
 */
class Edge<T, K> {
  constructor(
    readonly node: T,
    private readonly cursors: EdgeCursors<T, K>,
  ) {}

  get cursor(): string {
    return this.cursors.encode(this.cursors.keyOf(this.node));
  }
}

/**
 * One page of a keyset-paginated list: fetches one row more than asked to learn whether another
 * page follows. Forward by default (`first`/`after`); backward with `last`/`before`.
 */
export async function keysetConnection<T, K>(
  args: ConnectionArgs,
  keyOf: (node: T) => K,
  isKey: (value: unknown) => value is K,
  fetch: (page: KeysetPage<K>) => Promise<readonly T[]>,
  options: { ascending?: boolean; cursor?: CursorCodec<K> } = {},
): Promise<Connection<T>> {
  validatePageSize(args);
  const decode = (cursor: string, field: string) =>
    options.cursor ? options.cursor.decode(cursor, field) : decodeCursor(cursor, field, isKey);
  const encode = options.cursor?.encode ?? encodeCursor;
  const after = args.after ? decode(args.after, "after") : undefined;
  const before = args.before ? decode(args.before, "before") : undefined;
  const inverted = args.first == null && (args.last != null || before !== undefined);
  const size = (inverted ? args.last : args.first) ?? DEFAULT_PAGE_SIZE;
  const rows =
    size === 0 ? [] : await fetch({ after, before, limit: size + 1, inverted, ascending: options.ascending });
  const more = rows.length > size;
  const page = rows.slice(0, size);
  if (inverted) page.reverse();
  // Cursors are encoded only when a selection reads them.
  const cursorOf = (node: T | undefined) => (node === undefined ? null : encode(keyOf(node)));
  const cursors: EdgeCursors<T, K> = { keyOf, encode };
  const edges = page.map((node) => new Edge(node, cursors));
  return {
    edges,
    pageInfo: {
      hasNextPage: inverted ? before !== undefined : more,
      hasPreviousPage: inverted ? more : after !== undefined,
      get startCursor() {
        return cursorOf(page[0]);
      },
      get endCursor() {
        return cursorOf(page.at(-1));
      },
    },
  };
}

/** The common key: a numeric id (as a decimal string), newest first. */
export const isIdKey = (value: unknown): value is string => typeof value === "string" && isRowId(value);

const connections = new Map<string, unknown>();

/** `descriptions` are read when the type is first made. */
// biome-ignore lint/suspicious/noExplicitAny: the connection shape is generic over every node type.
export function connectionOf<T extends ObjectRef<any, any>>(
  ref: T,
  descriptions: { connection?: string; edge?: string } = {},
) {
  const name = ref.name;
  let connection = connections.get(name);
  if (!connection) {
    connection = builder.connectionObject(
      {
        type: ref,
        name: `${name}Connection`,
        description:
          descriptions.connection ??
          `A page of ${name} objects (a Relay connection): \`edges\` in order, \`pageInfo\` to fetch the next page.`,
      },
      {
        name: `${name}Edge`,
        description: descriptions.edge ?? `One ${name} in a page, with the cursor that resumes after it.`,
      },
    );
    connections.set(name, connection);
  }
  return connection as ReturnType<typeof builder.connectionObject<T, unknown>>;
}
