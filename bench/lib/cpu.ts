// CPU time a server spends on a measurement: its own process (user + system) and the PostgreSQL
// processes of the benchmark's cluster (the backends serving it, and whatever else that cluster
// runs meanwhile). Read from /proc, so only on Linux and only for a cluster on this machine;
// elsewhere every reading is NaN. Steadier than requests per second on a shared machine: another
// process taking the cores slows the server, but does not add to its CPU time.
import { readdir, readFile } from "node:fs/promises";
import type pg from "pg";

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on every common build). */
const TICKS_PER_SECOND = 100;

/**
 * utime + stime of one process in ticks, and cutime + cstime (its children that have exited), or
 * undefined once it is gone.
 */
async function ticksOf(pid: number): Promise<{ ticks: number; exited: number; parent: number } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return {
      parent: Number(fields[1]),
      ticks: Number(fields[11]) + Number(fields[12]),
      exited: Number(fields[13]) + Number(fields[14]),
    };
  } catch {
    return undefined;
  }
}

/** The cluster's postmaster: the parent of the backend serving `pool`, if that runs on this machine. */
export async function postmasterOf(pool: pg.Pool): Promise<number | undefined> {
  const { rows } = await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
  const backend = rows[0]?.pid;
  if (backend === undefined) return undefined;
  const stat = await ticksOf(backend);
  // A server elsewhere (or in a container) has pids that mean something else here.
  if (!stat) return undefined;
  const parent = await readFile(`/proc/${stat.parent}/cmdline`, "utf8").catch(() => "");
  return parent.includes("postgres") ? stat.parent : undefined;
}

/**
 * Ticks of the whole cluster now, by kind of process: the postmaster, its running children by what
 * their title says they are (backends serving connections, walwriter, checkpointer, autovacuum…),
 * and those that have exited (a backend or autovacuum worker ending during a measurement keeps
 * counting, under "exited").
 */
async function clusterTicks(postmaster: number): Promise<Map<string, number>> {
  const byKind = new Map<string, number>();
  const add = (kind: string, ticks: number) => byKind.set(kind, (byKind.get(kind) ?? 0) + ticks);
  const own = await ticksOf(postmaster);
  add("postmaster", own ? own.ticks : Number.NaN);
  add("exited", own ? own.exited : Number.NaN);
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await ticksOf(Number(entry));
    if (stat && stat.parent === postmaster) add(await kindOf(Number(entry)), stat.ticks);
  }
  return byKind;
}

/**
 * What a PostgreSQL child process is, from its title: "postgres: walwriter" is the WAL writer,
 * "postgres: user db 127.0.0.1(5432) idle" a backend serving a connection.
 */
async function kindOf(pid: number): Promise<string> {
  const title = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).replaceAll("\0", " ").trim();
  const rest = title.replace(/^postgres:\s*/, "");
  if (/\(\d+\)|\[local\]/.test(rest)) return "backends";
  if (rest.startsWith("autovacuum worker")) return "autovacuum workers";
  if (rest.startsWith("io worker")) return "io workers";
  return rest || "other";
}

export interface CpuReading {
  /** Seconds of CPU of the server process. */
  server: number;
  /** Seconds of CPU of the PostgreSQL cluster's processes. */
  database: number;
  /** The cluster's seconds by kind of process (backends, walwriter, autovacuum worker, exited…). */
  databaseByKind: Map<string, number>;
}

/** Starts a reading; the returned function gives the CPU seconds spent since. */
export async function startCpuReading(
  serverPid: number,
  postmaster: number | undefined,
): Promise<() => Promise<CpuReading>> {
  const read = async () => ({
    server: (await ticksOf(serverPid))?.ticks ?? Number.NaN,
    database: postmaster === undefined ? new Map<string, number>() : await clusterTicks(postmaster),
  });
  const before = await read();
  return async () => {
    const after = await read();
    const byKind = new Map<string, number>();
    // A process that started during the measurement counts from zero. One that exited during it
    // moves its whole lifetime to "exited" and leaves its kind: the total is right, the split
    // shifts by its ticks before the start.
    for (const [kind, ticks] of after.database)
      byKind.set(kind, (ticks - (before.database.get(kind) ?? 0)) / TICKS_PER_SECOND);
    const database =
      postmaster === undefined ? Number.NaN : [...byKind.values()].reduce((sum, value) => sum + value, 0);
    return {
      server: (after.server - before.server) / TICKS_PER_SECOND,
      database,
      databaseByKind: byKind,
    };
  };
}

/** The cluster's CPU per unit of work by kind of process, costliest first: "backends 9,120 µs, …". */
export function databaseCpuPer(reading: CpuReading, units: number): string {
  return [...reading.databaseByKind]
    .filter(([, seconds]) => seconds > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, seconds]) => `${kind} ${Math.round((seconds * 1e6) / units).toLocaleString("en")} µs`)
    .join(", ");
}
