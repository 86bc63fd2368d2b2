// SMTP ingest throughput: messages per second that 10 concurrent SMTP clients (nodemailer, one
// connection each, reused) get acknowledged, for 1 KB and 100 KB messages, against Mailroom on
// the embedded PostgreSQL. Measured in the same run against a baseline of smtp-server + mailparser
// alone (no storage), so the ratio says what storing costs on this machine. Appends the numbers to
// bench/RESULTS.md. Run: npm run bench:smtp  (BENCH_SECONDS=n per measurement, default 6)
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { simpleParser } from "mailparser";
import { createTransport } from "nodemailer";
import { SMTPServer } from "smtp-server";
import { buildApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createInbox } from "../src/inboxes/service.ts";
import { createLogger } from "../src/logger.ts";
import { bootstrapOrganization } from "../src/organizations/service.ts";

const CLIENTS = 10;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const SIZES = [
  { label: "1 KB", bytes: 1024 },
  { label: "100 KB", bytes: 100 * 1024 },
];
const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), "RESULTS.md");

/** A message of about `bytes` bytes: a text body, plus a binary attachment for the larger sizes. */
function template(bytes: number, to: string): { head: (id: string) => string; body: string } {
  const attachmentBytes = bytes > 4096 ? Math.floor(((bytes - 1024) * 3) / 4 / 1.03) : 0;
  const text = "The quick brown fox jumps over the lazy dog. ".repeat(14).slice(0, 600);
  const boundary = "bench-boundary-42";
  let body: string;
  let contentType: string;
  if (attachmentBytes === 0) {
    contentType = "text/plain; charset=utf-8";
    body = `${text}\r\n`;
  } else {
    contentType = `multipart/mixed; boundary="${boundary}"`;
    const encoded = (
      randomBytes(attachmentBytes)
        .toString("base64")
        .match(/.{1,76}/g) ?? []
    ).join("\r\n");
    body =
      `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${text}\r\n` +
      `--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="data.bin"\r\n` +
      `Content-Transfer-Encoding: base64\r\n\r\n${encoded}\r\n--${boundary}--\r\n`;
  }
  const head = (id: string) =>
    `From: Bench Sender <sender@bench.test>\r\nTo: ${to}\r\nSubject: Benchmark message ${id}\r\n` +
    `Message-ID: <${id}@bench.test>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: ${contentType}\r\n\r\n`;
  return { head, body };
}

interface Measurement {
  messages: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p95: number;
  size: number;
}

/**
 * CLIENTS senders, each on its own reused connection, sending back to back for SECONDS; client i
 * sends to recipients[i % recipients.length].
 */
async function measure(port: number, recipients: string[], bytes: number, run: string): Promise<Measurement> {
  const transports = Array.from({ length: CLIENTS }, () =>
    createTransport({
      host: "127.0.0.1",
      port,
      secure: false,
      pool: true,
      maxConnections: 1,
      maxMessages: Infinity,
    }),
  );
  const latencies: number[] = [];
  let sequence = 0;
  let size = 0;
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  await Promise.all(
    transports.map(async (transport, client) => {
      const to = recipients[client % recipients.length] as string;
      const { head, body } = template(bytes, to);
      while (performance.now() < deadline) {
        const raw = Buffer.from(head(`${run}-${sequence++}`) + body);
        size = raw.length;
        const sent = performance.now();
        const info = await transport.sendMail({ envelope: { from: "sender@bench.test", to: [to] }, raw });
        if (!/^250 /.test(info.response)) throw new Error(`not accepted: ${info.response}`);
        latencies.push(performance.now() - sent);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const transport of transports) transport.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    messages: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50: at(0.5),
    p95: at(0.95),
    size,
  };
}

/** smtp-server + mailparser with the listener's own settings, and nothing stored. */
async function startBaseline(maxBytes: number) {
  const server = new SMTPServer({
    size: maxBytes,
    rejectOversized: true,
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        simpleParser(Buffer.concat(chunks), {
          skipImageLinks: true,
          skipHtmlToText: true,
          skipTextToHtml: true,
          skipTextLinks: true,
        }).then(
          () => callback(null, "OK"),
          (error: Error) => callback(error),
        );
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (server.server.address() as AddressInfo).port,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-smtp-"));
const config = {
  ...loadConfig({ LOG_LEVEL: "silent", DATA_DIR: dataDir }),
  databaseUrl: undefined,
  port: 0,
};
// An ephemeral SMTP port: the benchmark must not collide with a server running on the default one.
const app = buildApp(config, { logger: createLogger(config), smtpPort: 0 });
const run = randomBytes(4).toString("hex");
const loadBefore = os.loadavg()[0] ?? 0;
try {
  const startedAt = performance.now();
  const smtpPort = (await app.start()).smtpPort as number;
  process.stdout.write(
    `embedded PostgreSQL and Mailroom up in ${((performance.now() - startedAt) / 1000).toFixed(1)} s\n`,
  );
  const org = await bootstrapOrganization(app.services.db, {
    name: "Bench",
    adminEmail: "bench@bench.test",
    adminPassword: "bench password 1234",
  });
  const inbox = await createInbox(
    app.services.db,
    config,
    { orgId: org.organizationId, podId: null, inboxId: null, hiddenLabels: [] },
    { username: "bench" },
  );
  const baseline = await startBaseline(config.smtpMaxMessageBytes);

  // Warm both paths (JIT, connection pools, first thread) before measuring.
  for (const port of [baseline.port, smtpPort]) await measureQuick(port, inbox.email);

  const rows: string[] = [];
  const report = (label: string, base: Measurement, real: Measurement) => {
    const row =
      `| ${label} (${(real.size / 1024).toFixed(1)} KiB raw) | ${base.perSecond.toFixed(0)} | ` +
      `${real.perSecond.toFixed(0)} | ${(real.perSecond / base.perSecond).toFixed(2)} | ` +
      `${real.p50.toFixed(1)} / ${real.p95.toFixed(1)} | ${real.messages} |`;
    rows.push(row);
    process.stdout.write(`${row}\n`);
  };
  let baseline1k: Measurement | undefined;
  for (const size of SIZES) {
    const base = await measure(baseline.port, [inbox.email], size.bytes, `${run}-base-${size.bytes}`);
    const real = await measure(smtpPort, [inbox.email], size.bytes, `${run}-real-${size.bytes}`);
    baseline1k ??= base;
    report(size.label, base, real);
  }
  // The same 1 KB load spread over 10 organizations: an organization's events commit one at a
  // time (the outbox's ordering lock), so this shows what one busy organization costs.
  const spread: string[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const other = await bootstrapOrganization(app.services.db, {
      name: `Bench ${i}`,
      adminEmail: `bench${i}@bench.test`,
      adminPassword: "bench password 1234",
    });
    const scope = { orgId: other.organizationId, podId: null, inboxId: null, hiddenLabels: [] };
    spread.push((await createInbox(app.services.db, config, scope, { username: `bench${i}` })).email);
  }
  report(
    "1 KB, 10 organizations",
    baseline1k as Measurement,
    await measure(smtpPort, spread, 1024, `${run}-spread`),
  );
  await baseline.stop();

  const stored = await app.services.db
    .selectFrom("messages")
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .executeTakeFirstOrThrow();
  const section = [
    "",
    `## SMTP ingest — ${new Date().toISOString()}`,
    "",
    `Command: \`npm run bench:smtp\` (BENCH_SECONDS=${SECONDS}; ${CLIENTS} concurrent nodemailer clients, one reused`,
    "connection each, every message a new Message-ID; Mailroom on the embedded PostgreSQL with default settings).",
    `Machine: nproc ${os.availableParallelism()}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory,`,
    `${os.cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}, ${os.platform()} ${os.release()};`,
    `load average ${loadBefore.toFixed(2)} when the run started (other work on the machine shares its cores).`,
    "Baseline: smtp-server + mailparser with the same settings in the same process, storing nothing",
    "(the 1 KB baseline is the reference for the 10-organization row).",
    "",
    "| message | baseline msg/s | Mailroom msg/s | ratio | Mailroom p50 / p95 ms | messages stored |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    `${stored.count} messages in the database at the end (including warm-up).`,
    "",
  ].join("\n");
  if (!existsSync(RESULTS))
    await appendFile(RESULTS, "# Benchmark results\n\nNewest last; each section says how it was measured.\n");
  await appendFile(RESULTS, section);
  process.stdout.write(`appended to ${path.relative(process.cwd(), RESULTS)}\n`);
} finally {
  await app.stop();
  await rm(dataDir, { recursive: true, force: true });
}

async function measureQuick(port: number, to: string) {
  const transport = createTransport({ host: "127.0.0.1", port, secure: false });
  const { head, body } = template(1024, to);
  for (let i = 0; i < 20; i++) {
    await transport.sendMail({
      envelope: { from: "sender@bench.test", to: [to] },
      raw: Buffer.from(head(`${run}-warm-${port}-${i}`) + body),
    });
  }
  transport.close();
}
