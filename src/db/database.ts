// Kysely over a pg.Pool: the only way the application talks to PostgreSQL.
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

export function createDatabase(connectionString: string, options: { max?: number } = {}): DatabaseHandle {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 20,
    // A database restart or failover breaks idle connections; the pool replaces them on next use.
    idleTimeoutMillis: 30_000,
    application_name: "mailroom",
  });
  // An idle client's error (the server went away) must not crash the process; the next query fails instead.
  pool.on("error", () => {});
  let statements = 0;
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    log: () => {
      statements++;
    },
  });
  return { db, pool, destroy: () => db.destroy(), statementCount: () => statements };
}
