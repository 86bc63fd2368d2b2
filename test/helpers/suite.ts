// A test file's set-up and tear-down in one line each: its database, its server(s), an organization
// (with pods, inboxes and keys, or a whole World). Each function registers its own beforeAll/afterAll
// and returns, at once, the object the file's tests use; beforeAll fills that object in place. So a
// file names `database`, `server` and `org` at its top, where it used to declare them with `let`, and
// its tests read exactly as before.
//
// Hooks run in the order they are registered and tear down in reverse (vitest's "stack" order):
// register what the server needs (a relay, a DNS server) before serverSuite, and it is stopped after
// the server; call the fixtures after serverSuite, and they run once the server is up. For example:
//
//   const relay = running(new RelaySink());
//   const { database, server } = serverSuite(() => ({ smtpRelayUrl: `smtp://127.0.0.1:${relay.port}` }), {
//     smtpPort: 0,
//   });
//   const { org, pods, inboxes: { a: inboxA }, keys } = tenantFixture({ database, server }, podsAandB("x"));
//
// Only objects can be filled in place: a pod's id or a key's secret is read as `pods.A`, `keys.podA`.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import type { BuildOptions } from "../../src/app.ts";
import type { Config } from "../../src/config.ts";
import { createTestDatabase, type TestDatabase } from "./database.ts";
import { createOrganization, type TestOrganization } from "./factories.ts";
import { startTestServer, type TestServer } from "./server.ts";
import { createTenant, createWorld, type Tenant, type TenantSpec, type World } from "./world.ts";

/** An object that beforeAll fills in: typed as what it will hold, empty until then. */
function later<T extends object>(): T {
  return {} as T;
}

/** A service of the file's own (a relay sink, a receiver), started before its tests and stopped after them. */
export function running<T extends { start(): Promise<unknown>; stop(): unknown }>(service: T): T {
  beforeAll(() => service.start());
  afterAll(() => service.stop());
  return service;
}

/**
 * What `start` makes (a plain object: its properties are copied into the one returned now), kept for
 * the file's tests and ended by `end` after them, unless `start` failed.
 */
function startedFor<T extends object>(start: () => Promise<T>, end: (value: T) => unknown): T {
  const value = later<T>();
  let started = false;
  beforeAll(async () => {
    Object.assign(value, await start());
    started = true;
  });
  afterAll(async () => {
    if (started) await end(value);
  });
  return value;
}

/** What `start` makes (a plain object with stop(), such as a DNS server), for the file's tests. */
export function runningFrom<T extends { stop(): unknown }>(start: () => Promise<T>): T {
  return startedFor(start, (service) => service.stop());
}

/** A temporary directory of this file's, removed after all of its tests; `.path` once beforeAll ran. */
export function temporaryDirectory(prefix: string): { path: string } {
  const directory = later<{ path: string }>();
  beforeAll(async () => {
    directory.path = await mkdtemp(path.join(os.tmpdir(), prefix));
  });
  afterAll(async () => {
    if (directory.path) await rm(directory.path, { recursive: true, force: true });
  });
  return directory;
}

/** This file's own database (cloned from the migrated template), destroyed after all of its tests. */
export function databaseSuite(): TestDatabase {
  return startedFor(createTestDatabase, (database) => database.destroy());
}

/** Configuration overrides, or a function giving them once the file's earlier beforeAll hooks have run. */
export type SuiteConfig = Partial<Config> | ((database: TestDatabase) => Partial<Config>);
/** `logger`: the file's own (to read log lines); default: one at TEST_LOG_LEVEL. */
export type SuiteBuildOptions = BuildOptions;

export interface ServerSuite {
  database: TestDatabase;
  server: TestServer;
  /** Starts a server with the suite's configuration as `server` again, after a test stopped it. */
  replaceServer(): Promise<void>;
}

/**
 * This file's database and a server on it (startTestServer with these overrides and build options),
 * stopped and destroyed after all of its tests.
 */
export function serverSuite(config: SuiteConfig = {}, build: SuiteBuildOptions = {}): ServerSuite {
  const database = databaseSuite();
  const server = serverOn(database, config, build);
  return {
    database,
    server,
    async replaceServer() {
      Object.assign(server, await startTestServer(database.url, resolve(config, database), build));
    },
  };
}

/**
 * A server on the file's database (another node beside the suite's, or one that starts after other
 * set-up), stopped before the database is destroyed.
 */
export function serverOn(
  database: TestDatabase,
  config: SuiteConfig = {},
  build: SuiteBuildOptions = {},
): TestServer {
  return startedFor(
    () => startTestServer(database.url, resolve(config, database), build),
    (server) => server.stop(),
  );
}

function resolve(config: SuiteConfig, database: TestDatabase): Partial<Config> {
  return typeof config === "function" ? config(database) : config;
}

/** A new organization (createOrganization: its administrator and a full-access key) in the database. */
export function organizationFixture(database: TestDatabase, name?: string): TestOrganization {
  const org = later<TestOrganization>();
  beforeAll(async () => {
    Object.assign(org, await createOrganization(database.db, name));
  });
  return org;
}

/**
 * A new organization with the pods, inboxes and keys the spec names (createTenant). The inboxes are
 * objects from the start, so a file may take them apart at its top: `inboxes: { a: inboxA }`.
 */
export function tenantFixture<const P extends string, const I extends string, const K extends string>(
  suite: Pick<ServerSuite, "database" | "server">,
  spec: TenantSpec<P, I, K>,
): Tenant<P, I, K> {
  const tenant: Tenant<P, I, K> = { org: later(), pods: later(), inboxes: later(), keys: later() };
  for (const name of Object.keys(spec.inboxes ?? {}) as I[]) tenant.inboxes[name] = later();
  beforeAll(async () => {
    const made = await createTenant(suite.server, suite.database, spec);
    Object.assign(tenant.org, made.org);
    Object.assign(tenant.pods, made.pods);
    Object.assign(tenant.keys, made.keys);
    for (const name of Object.keys(made.inboxes) as I[])
      Object.assign(tenant.inboxes[name], made.inboxes[name]);
  });
  return tenant;
}

/** A World (createWorld: one of every Node type, keys of each scope) in its own organization. */
export function worldFixture(suite: Pick<ServerSuite, "database" | "server">, name?: string): World {
  const world = later<World>();
  beforeAll(async () => {
    Object.assign(world, await createWorld(suite.server, suite.database, name));
  });
  return world;
}
