// Once per test run: a PostgreSQL (embedded in a temporary directory, or DATABASE_URL's server)
// with a migrated template database that every test file clones.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { createDatabase } from "../../src/db/database.ts";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../../src/db/embedded.ts";
import { migrateToLatest } from "../../src/db/migrate.ts";
import { migrateJobs } from "../../src/jobs/worker.ts";

declare module "vitest" {
  export interface ProvidedContext {
    adminUrl: string;
    templateDatabase: string;
    databasePrefix: string;
  }
}

export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

interface Prepared {
  adminUrl: string;
  templateDatabase: string;
  prefix: string;
  teardown(): Promise<void>;
}

// vitest runs this for the root and for each project of vitest.config.ts, each time from a module
// instance of its own: they share one database server and one template through the process's global
// object, torn down when the last of them is done.
const shared = globalThis as { mailroomTestDatabase?: { prepared: Promise<Prepared>; users: number } };

export async function setup(project: TestProject) {
  shared.mailroomTestDatabase ??= { prepared: prepare(), users: 0 };
  const state = shared.mailroomTestDatabase;
  state.users++;
  const { adminUrl, templateDatabase, prefix, teardown } = await state.prepared;
  project.provide("adminUrl", adminUrl);
  project.provide("templateDatabase", templateDatabase);
  project.provide("databasePrefix", prefix);
  return async () => {
    if (--state.users > 0) return;
    shared.mailroomTestDatabase = undefined;
    await teardown();
  };
}

async function prepare(): Promise<Prepared> {
  let embedded: EmbeddedPostgres | undefined;
  let dataDir: string | undefined;
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-test-"));
    embedded = await startEmbeddedPostgres({ dataDir });
    adminUrl = embedded.adminUrl;
  }
  const prefix = `mrtest_${randomBytes(4).toString("hex")}`;
  const templateDatabase = `${prefix}_template`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${templateDatabase}`);
  const template = createDatabase(databaseUrl(adminUrl, templateDatabase), { max: 1 });
  await migrateToLatest(template.db);
  // graphile-worker's schema too, so that no server started by a test has to install it.
  await migrateJobs(template.pool);
  await template.destroy();

  return {
    adminUrl,
    templateDatabase,
    prefix,
    async teardown() {
      const { rows } = await admin.query<{ datname: string }>(
        "SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname = $2",
        [`${prefix}%`, templateDatabase],
      );
      for (const { datname } of rows) {
        await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`).catch(() => {});
      }
      await admin.end();
      await embedded?.stop();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
