// A database of this test file's own, cloned from the migrated template.
import { randomBytes } from "node:crypto";
import { type Kysely, sql } from "kysely";
import pg from "pg";
import { inject } from "vitest";
import { createDatabase, type DatabaseHandle } from "../../src/db/database.ts";
import type { Database } from "../../src/db/types.ts";
import { databaseUrl } from "./global-setup.ts";

export interface TestDatabase extends DatabaseHandle {
  url: string;
  /** Statements sent through this handle's pool, for "no query" and N+1 checks. */
  statements: string[];
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject("adminUrl");
  const name = `${inject("databasePrefix")}_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${inject("templateDatabase")}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(adminUrl, name);
  const handle = createDatabase(url, { max: 5 });
  const statements: string[] = [];
  handle.pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const first = args[0];
      statements.push(typeof first === "string" ? first : String((first as { text?: string })?.text ?? ""));
      return query(...args);
    };
  });
  return { ...handle, url, statements };
}

/**
 * A checksum of every application table's contents, in one statement: equal before and after means
 * nothing changed. By default `last_used_at` is left out: it is written off the request path by
 * design. A test that has every key used once beforehand may keep it (`ignoredColumns: []`).
 */
export async function databaseChecksum(
  database: Pick<TestDatabase, "pool">,
  ignoredColumns: readonly string[] = ["last_used_at"],
): Promise<string> {
  const { rows: tables } = await database.pool.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'kysely_%' ORDER BY 1",
  );
  const row = "(to_jsonb(x) - $1::text[])::text";
  const parts = tables.map(
    ({ table_name }) =>
      `SELECT '${table_name}' AS t, md5(coalesce(string_agg(${row}, '|' ORDER BY ${row}), '')) AS sum FROM "${table_name}" x`,
  );
  const { rows } = await database.pool.query<{ t: string; sum: string }>(parts.join(" UNION ALL "), [
    ignoredColumns,
  ]);
  return rows.map((row) => `${row.t}:${row.sum}`).join(",");
}

/**
 * Locks the organization's row (FOR UPDATE) in `trx` until it ends: every transaction that then
 * writes a row of that organization waits (its foreign key to the organization takes a key-share
 * lock), as behind a writer that stopped answering.
 */
export async function holdOrganization(trx: Kysely<Database>, orgId: string): Promise<void> {
  await sql`SELECT 1 FROM organizations WHERE id = ${orgId} FOR UPDATE`.execute(trx);
}
