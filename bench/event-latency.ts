// From SMTP 250 to the WebSocket event: p50/p99 with N subscribers on one node.
//   npm run bench:events -- [--subscribers 1000] [--messages 100] [--rate 10]
// The server runs as its own process (`node --import tsx src/main.ts`) on a fresh embedded database
// (or DATABASE_URL); this process holds the subscribers and sends the mail with nodemailer.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createClient } from "graphql-ws";
import nodemailer from "nodemailer";
import WebSocket from "ws";

const { values } = parseArgs({
  options: {
    subscribers: { type: "string", default: "1000" },
    messages: { type: "string", default: "100" },
    rate: { type: "string", default: "10" },
  },
});
const SUBSCRIBERS = Number(values.subscribers);
const MESSAGES = Number(values.messages);
const RATE = Number(values.rate);
const ROOT = path.resolve(import.meta.dirname, "..");

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

async function main() {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-"));
  const [httpPort, smtpPort] = [await freePort(), await freePort()];
  const env = {
    ...process.env,
    DATA_DIR: dataDir,
    PORT: String(httpPort),
    SMTP_PORT: String(smtpPort),
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

  const server = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env,
    stdio: "inherit",
  });
  const url = `http://127.0.0.1:${httpPort}`;
  for (;;) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  const gql = async (query: string, variables = {}) =>
    (await (
      await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ query, variables }),
      })
    ).json()) as any;
  const inbox = (await gql('mutation { createInbox(input: { username: "bench" }) { inbox { id email } } }'))
    .data.createInbox.inbox;

  // Subscribers, connected gradually.
  const arrivals = new Map<number, number[]>();
  let delivered = 0;
  const clients: ReturnType<typeof createClient>[] = [];
  const subscribed: Promise<void>[] = [];
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const client = createClient({
      url: `ws://127.0.0.1:${httpPort}/graphql`,
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
      connectionParams: { Authorization: `Bearer ${apiKey}` },
    });
    clients.push(client);
    subscribed.push(
      new Promise<void>((resolve) => {
        client.on("connected", () => resolve());
      }),
    );
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
    );
    if (i % 50 === 49) await Promise.all(subscribed.slice(-50));
  }
  await Promise.all(subscribed);
  await new Promise((r) => setTimeout(r, 500));

  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port: smtpPort,
    secure: false,
    pool: true,
    maxConnections: 2,
    tls: { rejectUnauthorized: false },
  });
  const acked = new Map<number, number>();
  const started = performance.now();
  const sends: Promise<unknown>[] = [];
  for (let seq = 0; seq < MESSAGES; seq++) {
    const due = started + (seq * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
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
  while (delivered < MESSAGES * SUBSCRIBERS && performance.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  const elapsed = (performance.now() - started) / 1000;

  const latencies: number[] = [];
  for (const [seq, times] of arrivals) {
    const at250 = acked.get(seq);
    if (at250 !== undefined) for (const t of times) latencies.push(t - at250);
  }
  latencies.sort((a, b) => a - b);
  const result = {
    subscribers: SUBSCRIBERS,
    messages: MESSAGES,
    rate: RATE,
    delivered,
    expected: MESSAGES * SUBSCRIBERS,
    deliveriesPerSecond: Math.round(delivered / elapsed),
    p50ms: Number(percentile(latencies, 50).toFixed(1)),
    p99ms: Number(percentile(latencies, 99).toFixed(1)),
    maxms: Number((latencies.at(-1) ?? Number.NaN).toFixed(1)),
  };
  console.log(JSON.stringify(result));
  transport.close();
  await Promise.all(clients.map((c) => c.dispose()));
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  await rm(dataDir, { recursive: true, force: true });
}

await main();
