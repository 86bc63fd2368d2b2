// Servers under test as child processes: started, awaited until they answer, measured (peak RSS),
// stopped. Each runs alone while the load generator (this process) drives it.
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "../..");

export interface ServerProcess {
  name: string;
  url: string;
  pid: number;
  /** VmHWM: the process's peak resident memory so far, in MiB. */
  peakRssMiB(): Promise<number>;
  rssMiB(): Promise<number>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

async function statusKiB(pid: number, field: "VmHWM" | "VmRSS"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return Number(match?.[1] ?? Number.NaN);
}

export interface StartOptions {
  name: string;
  args: string[];
  env: Record<string, string | undefined>;
  port: number;
  /** Answers 2xx once the server can take requests. */
  readyPath: string;
  /** How to ask: some servers only answer POSTs on their GraphQL path. */
  readyInit?: RequestInit;
  timeoutMs?: number;
}

export async function startServer(options: StartOptions): Promise<ServerProcess> {
  const child: ChildProcess = spawn(process.execPath, options.args, {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${options.port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${options.name} exited (${child.exitCode}):\n${output}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${options.name} did not become ready:\n${output}`);
    }
    try {
      const response = await fetch(`${url}${options.readyPath}`, options.readyInit);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const pid = child.pid as number;
  return {
    name: options.name,
    url,
    pid,
    peakRssMiB: async () => (await statusKiB(pid, "VmHWM")) / 1024,
    rssMiB: async () => (await statusKiB(pid, "VmRSS")) / 1024,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface MailroomOptions {
  /** The checkout whose src/main.ts runs (another commit's tree, for a before/after run). */
  root?: string;
  databaseUrl: string;
  dataDir: string;
  name?: string;
  /** Added to (and overriding) the benchmark defaults: no SMTP port, no rate limit, quiet logs. */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Node flags before the script (--cpu-prof…). */
  nodeArgs?: string[];
}

/** A Mailroom server as benchmarks run it: production mode, rate limits off, on a free port. */
export async function startMailroom(options: MailroomOptions): Promise<ServerProcess> {
  const port = await freePort();
  return startServer({
    name: options.name ?? "Mailroom",
    args: [...(options.nodeArgs ?? []), "--import", "tsx", path.join(options.root ?? ROOT, "src/main.ts")],
    env: {
      DATABASE_URL: options.databaseUrl,
      DATA_DIR: options.dataDir,
      PORT: String(port),
      SMTP_PORT: "0",
      RATE_LIMIT_PER_MINUTE: "0",
      LOG_LEVEL: "warn",
      NODE_ENV: "production",
      ...options.env,
    },
    port,
    readyPath: "/readyz",
    timeoutMs: options.timeoutMs ?? 120_000,
  });
}
