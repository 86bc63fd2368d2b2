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
 * Ticks of the whole cluster now: the postmaster, its running children (backends, checkpointer,
 * autovacuum…) and those that have exited (a backend ending during a measurement keeps counting).
 */
async function clusterTicks(postmaster: number): Promise<number> {
  const own = await ticksOf(postmaster);
  let total = own ? own.ticks + own.exited : Number.NaN;
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await ticksOf(Number(entry));
    if (stat && stat.parent === postmaster) total += stat.ticks;
  }
  return total;
}

export interface CpuReading {
  /** Seconds of CPU of the server process. */
  server: number;
  /** Seconds of CPU of the PostgreSQL cluster's processes. */
  database: number;
}

/** Starts a reading; the returned function gives the CPU seconds spent since. */
export async function startCpuReading(
  serverPid: number,
  postmaster: number | undefined,
): Promise<() => Promise<CpuReading>> {
  const read = async () => ({
    server: (await ticksOf(serverPid))?.ticks ?? Number.NaN,
    database: postmaster === undefined ? Number.NaN : await clusterTicks(postmaster),
  });
  const before = await read();
  return async () => {
    const after = await read();
    return {
      server: (after.server - before.server) / TICKS_PER_SECOND,
      database: (after.database - before.database) / TICKS_PER_SECOND,
    };
  };
}
