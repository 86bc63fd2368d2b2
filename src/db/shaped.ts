// Statements built with Kysely once per shape, then run with each request's values: building the same
// `sql` fragments and walking them with the compiler on every request was about 6 % of a nested
// read's CPU (docs/performance.md, "Statements built once per shape").
import { CompiledQuery, type QueryResult, type RawBuilder } from "kysely";
import { LRUCache } from "lru-cache";
import type { Db } from "./database.ts";

const PLACEHOLDER = Symbol("shaped statement parameter");

/** Stands for a parameter in a shape's builder; the compiled statement takes the run's value there. */
export interface Placeholder {
  readonly [PLACEHOLDER]: string;
}

export type Placeholders<V> = { readonly [K in keyof V]-?: Placeholder };

interface Compiled {
  sql: string;
  /** Per parameter of the statement: the name of the run's value, or a constant of the shape. */
  parameters: ({ name: string } | { constant: unknown })[];
}

/**
 * A statement whose text depends only on `shape` (JSON-serializable: scope kind, hidden labels,
 * direction, which columns), and whose values come from `values` on each run.
 *
 * `build` must be a function of its two arguments alone, written at module level: whatever it puts
 * in the statement comes either from the shape, which keys the cache, or from a placeholder, which
 * each run fills with its own value. A value of a request reaching the statement any other way would
 * be reused by the next request of that shape; a builder that closes over nothing cannot do that.
 */
export function shapedStatement<S, V extends Record<string, unknown>, R>(
  build: (shape: S, values: Placeholders<V>) => RawBuilder<R>,
  names: readonly (keyof V & string)[],
  maxShapes = 200,
): (db: Db, shape: S, values: V) => Promise<QueryResult<R>> {
  const shapes = new LRUCache<string, Compiled>({ max: maxShapes });
  const placeholders = Object.fromEntries(
    names.map((name) => [name, { [PLACEHOLDER]: name } satisfies Placeholder]),
  ) as unknown as Placeholders<V>;
  return (db, shape, values) => {
    const key = JSON.stringify(shape);
    let compiled = shapes.get(key);
    if (!compiled) {
      const query = build(shape, placeholders).compile(db);
      compiled = {
        sql: query.sql,
        parameters: query.parameters.map((parameter) =>
          isPlaceholder(parameter) ? { name: parameter[PLACEHOLDER] } : { constant: parameter },
        ),
      };
      shapes.set(key, compiled);
    }
    const parameters = compiled.parameters.map((parameter) =>
      "name" in parameter ? values[parameter.name] : parameter.constant,
    );
    return db.executeQuery(CompiledQuery.raw(compiled.sql, parameters) as CompiledQuery<R>);
  };
}

function isPlaceholder(value: unknown): value is Placeholder {
  return typeof value === "object" && value !== null && PLACEHOLDER in value;
}
