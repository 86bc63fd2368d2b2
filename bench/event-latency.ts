// From SMTP 250 to the WebSocket event: deliveries/s and p50/p99 with N subscribers on one node, and
// what many idle graphql-ws connections cost the server in memory (VmRSS/VmHWM of its process).
//   npm run bench:events -- [--subscribers 1000] [--messages 100] [--rate 10] [--idle 5000]
//                           [--idle-mode subscribed|connected] [--ramp 100] [--quick] [--profile DIR]
//                           [--replay N]
// --quick: 200 subscribers, 30 messages at 10/s (a few seconds once the database is up).
// --idle N: first opens N connections (each with one subscription on an inbox that gets no mail, unless
// --idle-mode connected), reports the server's RSS before and after, then checks one event reaches all.
// --replay N: first writes N events in one SQL statement (copies of the warm-up message's event, so
// each names that one message) and measures how fast one WebSocket subscriber resuming from the cursor
// before them receives them all: events/s, and the server's CPU per event.
// --profile DIR: the server runs with --cpu-prof and writes its profile to DIR when it stops.
// The server runs as its own process (`node --import tsx src/main.ts`) on a fresh embedded database
// (or DATABASE_URL); this process holds the clients and sends the mail with nodemailer. The last line
// printed is one JSON object with every number.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { type Client, createClient } from "graphql-ws";
import nodemailer from "nodemailer";
import pg from "pg";
import WebSocket from "ws";

const { values } = parseArgs({
  options: {
    subscribers: { type: "string" },
    messages: { type: "string" },
    rate: { type: "string" },
    idle: { type: "string" },
    "idle-mode": { type: "string" },
    ramp: { type: "string" },
    quick: { type: "boolean", default: false },
    profile: { type: "string" },
    replay: { type: "string" },
  },
});
const QUICK = values.quick ?? false;
const SUBSCRIBERS = Number(values.subscribers ?? (QUICK ? 200 : 1000));
const MESSAGES = Number(values.messages ?? (QUICK ? 30 : 100));
const RATE = Number(values.rate ?? 10);
const IDLE = Number(values.idle ?? 0);
const IDLE_MODE = values["idle-mode"] ?? "subscribed";
/** Connections opened at once; the next batch starts when this one is acknowledged. */
const RAMP = Number(values.ramp ?? 100);
const REPLAY = Number(values.replay ?? 0);
const ROOT = path.resolve(import.meta.dirname, "..");
if (IDLE_MODE !== "subscribed" && IDLE_MODE !== "connected")
  throw new Error("--idle-mode subscribed|connected");

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number) => Number(n.toFixed(1));

/** The server process's resident memory now and at its peak, in MiB (Linux /proc). */
function serverMemory(pid: number): { rssMB: number; hwmMB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rssMB: round(kb("VmRSS") / 1024), hwmMB: round(kb("VmHWM") / 1024) };
}

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

/** CPU seconds (user + system) the server process has used so far (Linux /proc). */
function serverCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

interface Connection {
  client: Client;
  /** Resolves true once acknowledged, false if the connection closed first. */
  ready: Promise<boolean>;
}

/** `count` graphql-ws connections, `RAMP` at a time; `subscribe` starts each one's subscription. */
async function connect(
  wsUrl: string,
  apiKey: string,
  count: number,
  subscribe: ((client: Client) => void) | null,
): Promise<{ connections: Connection[]; connected: number }> {
  const connections: Connection[] = [];
  let connected = 0;
  for (let i = 0; i < count; i += RAMP) {
    const batch: Connection[] = [];
    for (let j = i; j < Math.min(count, i + RAMP); j++) {
      let settle: (ok: boolean) => void = () => {};
      const ready = new Promise<boolean>((resolve) => {
        settle = resolve;
      });
      const client = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        onNonLazyError: () => settle(false),
        connectionParams: { Authorization: `Bearer ${apiKey}` },
        on: { connected: () => settle(true), closed: () => settle(false) },
      });
      subscribe?.(client);
      batch.push({ client, ready });
    }
    for (const ok of await Promise.all(batch.map((c) => c.ready))) if (ok) connected++;
    connections.push(...batch);
  }
  return { connections, connected };
}

async function main() {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-"));
  const env: Record<string, string | undefined> = {
    ...process.env,
    DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    RATE_LIMIT_PER_MINUTE: "0",
  };
  const cli = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli.ts",
      "bootstrap",
      "--org",
      "Bench",
      "--admin-email",
      "bench@example.test",
      "--json",
    ],
    { cwd: ROOT, env },
  );
  let out = "";
  cli.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  await new Promise((r) => cli.once("exit", r));
  const { apiKey } = JSON.parse(out.trim().split("\n").at(-1) as string) as { apiKey: string };
  // Chosen once the embedded PostgreSQL has recorded its port, so that neither takes the other's.
  const postgresPort = env.DATABASE_URL
    ? undefined
    : (JSON.parse(readFileSync(path.join(dataDir, "postgres.json"), "utf8")) as { port: number }).port;
  const ports: number[] = [];
  while (ports.length < 2) {
    const port = await freePort();
    if (port !== postgresPort && !ports.includes(port)) ports.push(port);
  }
  const [httpPort, smtpPort] = ports as [number, number];
  Object.assign(env, { PORT: String(httpPort), SMTP_PORT: String(smtpPort) });

  const nodeFlags = values.profile ? ["--cpu-prof", "--cpu-prof-dir", path.resolve(values.profile)] : [];
  // The server's logs go to our stderr, so that stdout is the one JSON line.
  const server = spawn(process.execPath, [...nodeFlags, "--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", 2, 2],
  });
  const pid = server.pid as number;
  // Phases in seconds since the server started, to window its CPU profile (cpu-profile-summary --from/--to).
  const spawnedAt = performance.now();
  const sinceSpawn = (at: number) => round((at - spawnedAt) / 1000);
  const url = `http://127.0.0.1:${httpPort}`;
  const wsUrl = `ws://127.0.0.1:${httpPort}/graphql`;
  let exited = false;
  server.once("exit", () => {
    exited = true;
  });
  for (;;) {
    if (exited) throw new Error("the server exited before it was ready");
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {}
    await sleep(100);
  }
  const gql = async (query: string, variables = {}) =>
    (await (
      await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ query, variables }),
      })
    ).json()) as any;
  const createInbox = async (username: string) =>
    (
      await gql("mutation($u: String!) { createInbox(input: { username: $u }) { inbox { id email } } }", {
        u: username,
      })
    ).data.createInbox.inbox as { id: string; email: string };
  const inbox = await createInbox("bench");
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port: smtpPort,
    secure: false,
    pool: true,
    maxConnections: 2,
    tls: { rejectUnauthorized: false },
  });
  // One message first, so the latency run measures a warm server (compiled paths, open pools).
  await transport.sendMail({ from: "load@example.test", to: inbox.email, subject: "warm-up", text: "x" });
  await sleep(500);
  const startMemory = serverMemory(pid);
  const result: Record<string, unknown> = { quick: QUICK, server: { start: startMemory } };

  if (REPLAY > 0) {
    const info = JSON.parse(readFileSync(path.join(dataDir, "postgres.json"), "utf8")) as {
      user: string;
      password: string;
      port: number;
    };
    const db = new pg.Client({
      connectionString:
        env.DATABASE_URL ??
        `postgres://${info.user}:${encodeURIComponent(info.password)}@127.0.0.1:${info.port}/mailroom`,
    });
    await db.connect();
    const seedStarted = performance.now();
    const { rows } = await db.query<{ xid: string; id: string }>(
      `SELECT xid::text AS xid, id::text AS id FROM events WHERE type = 'MESSAGE_RECEIVED' ORDER BY id DESC LIMIT 1`,
    );
    const from = rows[0] as { xid: string; id: string };
    await db.query(
      `INSERT INTO events (org_id, type, pod_id, inbox_id, thread_id, message_id, domain_id, payload, message_labels)
       SELECT org_id, type, pod_id, inbox_id, thread_id, message_id, domain_id, payload, message_labels
       FROM events, generate_series(1, $2::int) WHERE id = $1::bigint`,
      [from.id, REPLAY],
    );
    await db.end();
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    await sleep(500);
    const after = Buffer.from(`event:${from.xid}:${from.id}`).toString("base64url");
    let received = 0;
    let done: () => void = () => {};
    const all = new Promise<void>((resolve) => {
      done = resolve;
    });
    const cpuBefore = serverCpuSeconds(pid);
    const started = performance.now();
    const { connections } = await connect(wsUrl, apiKey, 1, (client) =>
      client.subscribe(
        {
          query:
            "subscription($after: String) { events(after: $after) { cursor type message { id subject } } }",
          variables: { after },
        },
        {
          next: () => {
            if (++received === REPLAY) done();
          },
          error: (error) => console.error("replay subscription failed", error),
          complete: () => {},
        },
      ),
    );
    await Promise.race([all, sleep(120_000)]);
    const seconds = (performance.now() - started) / 1000;
    const cpuSeconds = serverCpuSeconds(pid) - cpuBefore;
    result.replay = {
      events: REPLAY,
      received,
      seedSeconds: round(seedSeconds),
      seconds: round(seconds),
      eventsPerSecond: Math.round(received / seconds),
      serverCpuMicrosPerEvent: Math.round((cpuSeconds * 1e6) / Math.max(1, received)),
      window: { fromS: sinceSpawn(started), toS: sinceSpawn(performance.now()) },
    };
    await Promise.all(connections.map((c) => c.client.dispose()));
    await sleep(500);
  }

  if (IDLE > 0) {
    const idleInbox = await createInbox("idle");
    let received = 0;
    const before = serverMemory(pid);
    const startedAt = performance.now();
    const { connections, connected } = await connect(
      wsUrl,
      apiKey,
      IDLE,
      IDLE_MODE === "subscribed"
        ? (client) =>
            client.subscribe(
              {
                query: "subscription($id: ID) { messageReceived(inboxId: $id) { subject } }",
                variables: { id: idleInbox.id },
              },
              { next: () => void received++, error: () => {}, complete: () => {} },
            )
        : null,
    );
    const rampSeconds = (performance.now() - startedAt) / 1000;
    await sleep(3000); // let the server settle (timers, GC) before reading its memory
    const after = serverMemory(pid);
    // Every idle subscription is live: one message reaches each of them.
    let reachedAll: number | null = null;
    if (IDLE_MODE === "subscribed") {
      await transport.sendMail({
        from: "load@example.test",
        to: idleInbox.email,
        subject: "ping",
        text: "x",
      });
      const deadline = performance.now() + 30_000;
      while (received < connected && performance.now() < deadline) await sleep(50);
      reachedAll = received;
    }
    const afterEvent = serverMemory(pid);
    result.idle = {
      mode: IDLE_MODE,
      connections: IDLE,
      connected,
      eventReceivedBy: reachedAll,
      rampSeconds: round(rampSeconds),
      rssBeforeMB: before.rssMB,
      rssAfterMB: after.rssMB,
      rssAfterEventMB: afterEvent.rssMB,
      hwmMB: afterEvent.hwmMB,
      perConnectionKB: Math.round(((after.rssMB - before.rssMB) * 1024) / Math.max(1, connected)),
    };
    await Promise.all(connections.map((c) => c.client.dispose()));
    await sleep(1000);
  }

  if (SUBSCRIBERS > 0 && MESSAGES > 0) {
    const arrivals = new Map<number, number[]>();
    let delivered = 0;
    const { connections, connected } = await connect(wsUrl, apiKey, SUBSCRIBERS, (client) =>
      client.subscribe<{ messageReceived: { subject: string } }>(
        {
          query: "subscription($id: ID) { messageReceived(inboxId: $id) { subject } }",
          variables: { id: inbox.id },
        },
        {
          next: ({ data }) => {
            const seq = Number(data?.messageReceived.subject.split(" ")[1]);
            const list = arrivals.get(seq) ?? [];
            list.push(performance.now());
            arrivals.set(seq, list);
            delivered++;
          },
          error: () => {},
          complete: () => {},
        },
      ),
    );
    await sleep(500);
    const connectedMemory = serverMemory(pid);

    const acked = new Map<number, number>();
    const cpuBefore = serverCpuSeconds(pid);
    const started = performance.now();
    const sends: Promise<unknown>[] = [];
    for (let seq = 0; seq < MESSAGES; seq++) {
      const due = started + (seq * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      sends.push(
        transport
          .sendMail({
            from: "load@example.test",
            to: inbox.email,
            subject: `seq ${seq}`,
            text: "x".repeat(800),
          })
          .then(() => acked.set(seq, performance.now())),
      );
    }
    await Promise.all(sends);
    const deadline = performance.now() + 10_000;
    while (delivered < MESSAGES * connected && performance.now() < deadline) await sleep(50);
    const elapsed = (performance.now() - started) / 1000;
    const cpuSeconds = serverCpuSeconds(pid) - cpuBefore;
    result.profileWindow = { fromS: sinceSpawn(started), toS: sinceSpawn(performance.now()) };

    const latencies: number[] = [];
    for (const [seq, times] of arrivals) {
      const at250 = acked.get(seq);
      if (at250 !== undefined) for (const t of times) latencies.push(t - at250);
    }
    latencies.sort((a, b) => a - b);
    Object.assign(result, {
      subscribers: SUBSCRIBERS,
      connected,
      messages: MESSAGES,
      rate: RATE,
      delivered,
      expected: MESSAGES * SUBSCRIBERS,
      deliveriesPerSecond: Math.round(delivered / elapsed),
      p50ms: round(percentile(latencies, 50)),
      p99ms: round(percentile(latencies, 99)),
      maxms: round(latencies.at(-1) ?? Number.NaN),
      // What the server spent, whatever else the machine was doing: less noisy than the latencies.
      serverCpuSeconds: round(cpuSeconds),
      serverCpuMillisPerMessage: round((cpuSeconds * 1e3) / MESSAGES),
      serverCpuMicrosPerDelivery: Math.round((cpuSeconds * 1e6) / Math.max(1, delivered)),
    });
    (result.server as Record<string, unknown>).subscribed = connectedMemory;
    await Promise.all(connections.map((c) => c.client.dispose()));
  }

  (result.server as Record<string, unknown>).end = serverMemory(pid);
  result.loadAverage = os.loadavg().map(round);
  console.log(JSON.stringify(result));
  transport.close();
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  await rm(dataDir, { recursive: true, force: true });
}

await main();
