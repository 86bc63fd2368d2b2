// Kysely over a pg.Pool: the only way the application talks to PostgreSQL.
import { createHash } from "node:crypto";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { Database } from "./types.ts";

export type Db = Kysely<Database>;

export interface DatabaseHandle {
  db: Db;
  pool: pg.Pool;
  destroy(): Promise<void>;
  /** SQL statements this handle has executed: the measure behind "a list must not issue a query per item". */
  statementCount(): number;
}

export interface DatabaseOptions {
  max?: number;
  /** Run statements with parameters as named prepared statements (see prepareStatements). */
  preparedStatements?: boolean;
}

export function createDatabase(connectionString: string, options: DatabaseOptions = {}): DatabaseHandle {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 20,
    // A database restart or failover breaks idle connections; the pool replaces them on next use.
    idleTimeoutMillis: 30_000,
    application_name: "mailroom",
  });
  // An idle client's error (the server went away) must not crash the process; the next query fails instead.
  pool.on("error", () => {});
  // A client's connection can also end while it is checked out, between two statements (a failover,
  // pg_terminate_backend). pg then emits 'error' on the client, which the pool no longer listens to
  // once it is handed out: without this listener that is an uncaught exception. Its pending and later
  // queries fail on their own, and the pool drops the client when it is released.
  pool.on("connect", (client) => client.on("error", () => {}));
  if (options.preparedStatements ?? true) prepareStatements(pool);
  let statements = 0;
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    log: () => {
      statements++;
    },
  });
  return { db, pool, destroy: () => db.destroy(), statementCount: () => statements };
}

/**
 * Named prepared statements a connection keeps at most. Texts beyond run unnamed: the hot ones are
 * met first, and lists of ids (one placeholder per id) must not fill the server with plans.
 */
export const MAX_PREPARED_PER_CONNECTION = 200;

/** SQL text → statement name, so a repeated text is hashed once per process (bounded). */
const names = new Map<string, string>();
const MAX_NAMES = 10_000;

function nameOf(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `mr_${createHash("sha256").update(text).digest("base64url").slice(0, 32)}`;
    if (names.size < MAX_NAMES) names.set(text, name);
  }
  return name;
}

/** "cached plan must not change result type": a migration changed what a prepared SELECT returns. */
const PLAN_RESULT_CHANGED = "0A000";

/**
 * Statements with parameters (what Kysely sends as `query(text, values)`) run as named prepared
 * statements, one per distinct text and connection: PostgreSQL parses and plans each once per
 * connection instead of at every execution, which was a third of its time on a page of threads.
 * Queries given as objects (graphile-worker names its own) and statements without parameters
 * (BEGIN, COMMIT) pass through unchanged. A migration run by another node can change what a prepared
 * statement returns; its next execution fails once, and the connection stops preparing.
 */
function prepareStatements(pool: pg.Pool): void {
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    const prepared = new Set<string>();
    let preparing = true;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const [text, values] = args;
      if (
        preparing &&
        args.length === 2 &&
        typeof text === "string" &&
        Array.isArray(values) &&
        values.length > 0
      ) {
        const name = nameOf(text);
        if (prepared.has(name) || prepared.size < MAX_PREPARED_PER_CONNECTION) {
          prepared.add(name);
          return query({ name, text, values }).catch((error: { code?: string }) => {
            if (error.code === PLAN_RESULT_CHANGED) preparing = false;
            throw error;
          });
        }
      }
      return query(...args);
    };
  });
}
