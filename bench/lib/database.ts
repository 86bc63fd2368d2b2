// The benchmarks' database: a fresh one on DATABASE_URL's server (dropped afterwards), or a fresh
// embedded PostgreSQL in a temporary directory.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import pg from "pg";
import { createDatabase, type DatabaseHandle, type Db } from "../../src/db/database.ts";
import { startEmbeddedPostgres } from "../../src/db/embedded.ts";

export interface Database {
  url: string;
  adminUrl: string;
  handle: DatabaseHandle;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /**
   * Load pg_stat_statements (bench/lib/pg-statements.ts): the embedded cluster is restarted with it
   * preloaded, with planning times tracked; a server on DATABASE_URL must preload it already.
   */
  statementStats?: boolean;
}

/** The benchmark's database; close() may be called more than once. */
export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
  const database = await createBenchDatabase(options);
  let closing: Promise<void> | undefined;
  return { ...database, close: () => (closing ??= database.close()) };
}

async function createBenchDatabase(options: DatabaseOptions): Promise<Database> {
  const external = process.env.DATABASE_URL;
  if (external) {
    const name = `mailroom_bench_${randomBytes(4).toString("hex")}`;
    const admin = new URL(external);
    admin.pathname = "/postgres";
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`CREATE DATABASE ${name}`);
    await client.end();
    const url = new URL(external);
    url.pathname = `/${name}`;
    const handle = createDatabase(url.toString(), { max: 4 });
    return {
      url: url.toString(),
      adminUrl: admin.toString(),
      handle,
      close: async () => {
        await handle.destroy();
        const drop = new pg.Client({ connectionString: admin.toString() });
        await drop.connect();
        await drop.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await drop.end();
      },
    };
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-db-"));
  let embedded = await startEmbeddedPostgres({ dataDir });
  if (options.statementStats) {
    const admin = new pg.Client({ connectionString: embedded.adminUrl });
    await admin.connect();
    await admin.query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
    await admin.query("ALTER SYSTEM SET pg_stat_statements.track_planning = on");
    await admin.end();
    await embedded.stop();
    embedded = await startEmbeddedPostgres({ dataDir });
  }
  const handle = createDatabase(embedded.url, { max: 4 });
  return {
    url: embedded.url,
    adminUrl: embedded.adminUrl,
    handle,
    close: async () => {
      await handle.destroy();
      await embedded.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A statement as the application sent it: what a benchmark explains. */
export interface CapturedStatement {
  text: string;
  values: unknown[];
}

/** A one-connection database handle that records every statement sent through it, in `captured`. */
export function capturingDatabase(url: string): { handle: DatabaseHandle; captured: CapturedStatement[] } {
  const handle = createDatabase(url, { max: 1 });
  const captured: CapturedStatement[] = [];
  handle.pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const [text, values] = args as [string | { text: string; values?: unknown[] }, unknown[] | undefined];
      captured.push(
        typeof text === "string"
          ? { text, values: values ?? [] }
          : { text: text.text, values: text.values ?? [] },
      );
      return query(...args);
    };
  });
  return { handle, captured };
}

/**
 * `--drop-indexes a,b`: drops those indexes (an experiment, to see what they cost the writes) and
 * says so through `log`.
 */
export async function dropIndexes(
  db: Db,
  list: string | undefined,
  log: (line: string) => void,
): Promise<void> {
  for (const index of (list ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean)) {
    log(`dropping index ${index}`);
    await sql`DROP INDEX ${sql.id(index)}`.execute(db);
  }
}
