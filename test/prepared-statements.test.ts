// src/db/database.ts runs statements with parameters as named prepared statements. What that must
// keep: results unchanged, one statement per text and connection, a bound on how many, statements
// without parameters untouched, and a connection that recovers when a migration changes what a
// prepared statement returns.
import { sql } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import {
  CUSTOM_PLAN,
  createDatabase,
  type DatabaseHandle,
  MAX_PREPARED_PER_CONNECTION,
} from "../src/db/database.ts";
import { databaseSuite } from "./helpers/suite.ts";

const database = databaseSuite();
const handles: DatabaseHandle[] = [];

afterAll(async () => {
  for (const handle of handles) await handle.destroy();
});

/** One connection, so every statement and pg_prepared_statements see the same session. */
function single(preparedStatements?: boolean): DatabaseHandle {
  const handle = createDatabase(database.url, { max: 1, preparedStatements });
  handles.push(handle);
  return handle;
}

async function preparedTexts(handle: DatabaseHandle): Promise<string[]> {
  const { rows } = await sql<{ statement: string }>`
    SELECT statement FROM pg_prepared_statements WHERE name LIKE 'mr\\_%' ORDER BY statement`.execute(
    handle.db,
  );
  return rows.map((row) => row.statement);
}

describe("prepared statements", () => {
  it("prepares a statement with parameters once per connection, and leaves the others alone", async () => {
    const handle = single();
    for (const n of [1, 2, 3]) {
      const { rows } = await sql<{ n: number }>`SELECT ${n}::int + 1 AS n`.execute(handle.db);
      expect(rows).toEqual([{ n: n + 1 }]);
    }
    await sql`SELECT 1`.execute(handle.db);
    expect(await preparedTexts(handle)).toEqual(["SELECT $1::int + 1 AS n"]);
  });

  it(`keeps at most ${MAX_PREPARED_PER_CONNECTION} per connection, and runs the rest unnamed`, async () => {
    const handle = single();
    for (let i = 0; i < MAX_PREPARED_PER_CONNECTION + 30; i++) {
      const { rows } = await sql<{ n: number }>`SELECT ${i}::int AS n, ${sql.lit(i)} AS k`.execute(handle.db);
      expect(rows).toEqual([{ n: i, k: i }]);
    }
    expect(await preparedTexts(handle)).toHaveLength(MAX_PREPARED_PER_CONNECTION);
  });

  it("fails once when a migration changes a prepared statement's result, then stops preparing", async () => {
    const handle = single();
    const other = single(false);
    await sql`CREATE TABLE prepared_probe (id int)`.execute(other.db);
    await sql`INSERT INTO prepared_probe VALUES (1)`.execute(other.db);
    const read = () =>
      sql<Record<string, unknown>>`SELECT * FROM prepared_probe WHERE id = ${1}`.execute(handle.db);
    expect((await read()).rows).toEqual([{ id: 1 }]);
    await sql`ALTER TABLE prepared_probe ADD COLUMN label text DEFAULT 'new'`.execute(other.db);
    await expect(read()).rejects.toMatchObject({ code: "0A000" });
    expect((await read()).rows).toEqual([{ id: 1, label: "new" }]);
    expect((await sql<{ n: number }>`SELECT ${5}::int AS n`.execute(handle.db)).rows).toEqual([{ n: 5 }]);
  });

  it("leaves a statement marked CUSTOM_PLAN unnamed, planned for its values each time", async () => {
    const handle = single();
    for (let i = 0; i < 7; i++) {
      const { rows } = await sql<{ n: number }>`SELECT ${i}::int AS n ${CUSTOM_PLAN}`.execute(handle.db);
      expect(rows).toEqual([{ n: i }]);
    }
    expect(await preparedTexts(handle)).toEqual([]);
  });

  it("prepares nothing when switched off", async () => {
    const handle = single(false);
    await sql`SELECT ${1}::int AS n`.execute(handle.db);
    await sql`SELECT ${1}::int AS n`.execute(handle.db);
    expect(await preparedTexts(handle)).toEqual([]);
  });
});
