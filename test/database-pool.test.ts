// src/db/database.ts's pool: a connection that dies while a request holds it (a failover, an
// administrator's pg_terminate_backend) fails that request's statements and nothing else. It must
// not take the process down, and the pool must not hand the dead connection out again.
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type DatabaseHandle } from "../src/db/database.ts";
import { databaseSuite } from "./helpers/suite.ts";

const database = databaseSuite();
let handle: DatabaseHandle;

beforeAll(() => {
  handle = createDatabase(database.url, { max: 1 });
});
afterAll(async () => {
  await handle?.destroy();
});

describe("database pool", () => {
  it("survives a connection that ends while it is checked out, and replaces it", async () => {
    const client = await handle.pool.connect();
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    // Not events.once: it listens for 'error' too, which would hide what this test is about.
    const ended = new Promise((resolve) => client.once("end", resolve));
    // The backend goes while the client is out of the pool: pg emits 'error' on the client when its
    // socket closes, an uncaught exception (which fails this run) unless something listens.
    const failed = await client
      .query("SELECT pg_terminate_backend(pg_backend_pid())")
      .catch((error) => error);
    expect(failed).toMatchObject({ code: "57P01" });
    await ended;
    await expect(client.query("SELECT 1")).rejects.toThrow();
    client.release();

    const { rows: next } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(handle.db);
    expect(next[0]?.pid).not.toBe(rows[0]?.pid);
    expect(next[0]?.pid).toEqual(expect.any(Number));
    expect(handle.pool.totalCount).toBe(1);
  });
});
