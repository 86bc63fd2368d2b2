// SMTP ingest throughput: messages per second that N concurrent SMTP clients (nodemailer, one
// connection each, reused) get acknowledged, against Mailroom on the embedded PostgreSQL (default
// settings: synchronous_commit on). Measured in the same run against a baseline of smtp-server +
// mailparser alone (no storage), so the ratio says what storing costs on this machine.
//   npm run bench:smtp -- [--sizes 1k,100k] [--concurrency 10,20] [--seconds 6] [--rounds 1] [--quick] [--record]
//     [--auth]
// --auth: also 1 KB with SPF, DKIM, DMARC and ARC verification on (a second listener of the same
// server, against a DNS server started here that publishes the sender's SPF, DKIM key and DMARC
// record; every message DKIM-signed) beside verification off (the server's own listener), in turn.
// --quick: about two seconds per measurement and no 10-organization row, for a combined run.
// --pg-profile: one more 1 KB measurement at the end, listed per statement from pg_stat_statements.
// --drop-indexes a,b: an experiment, those indexes dropped first (what they cost the ingest).
// --record: also append the table to bench/RESULTS.md. The last line printed is one JSON object
// with every measurement, for scripts that collect results.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { dkimSign } from "mailauth/lib/dkim/sign";
import { simpleParser } from "mailparser";
import { createTransport } from "nodemailer";
import { SMTPServer } from "smtp-server";
import { buildApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createSmtpListener } from "../src/inbound/smtp-server.ts";
import { createInbox } from "../src/inboxes/service.ts";
import { createLogger } from "../src/logger.ts";
import { bootstrapOrganization } from "../src/organizations/service.ts";
import { startDnsServer } from "../test/helpers/dns-server.ts";
import { databaseCpuPer, postmasterOf, startCpuReading } from "./lib/cpu.ts";
import { dropIndexes, openDatabase } from "./lib/database.ts";
import { enableStatementStats, resetStatementStats, statementProfile } from "./lib/pg-statements.ts";

const { values: flags } = parseArgs({
  options: {
    sizes: { type: "string", default: "1k,100k" },
    concurrency: { type: "string", default: "10" },
    seconds: { type: "string" },
    rounds: { type: "string", default: "1" },
    quick: { type: "boolean", default: false },
    record: { type: "boolean", default: false },
    auth: { type: "boolean", default: false },
    "pg-profile": { type: "boolean", default: false },
    /** An experiment: these indexes dropped before measuring, to see what they cost the ingest. */
    "drop-indexes": { type: "string" },
  },
});
const QUICK = flags.quick;
const SECONDS = Number(flags.seconds ?? process.env.BENCH_SECONDS ?? (QUICK ? 2 : 6));
/** Baseline and Mailroom measured in turn this many times each, so that a change in the machine's load hits both. */
const ROUNDS = Number(flags.rounds);
const SIZE_CHOICES: Record<string, { label: string; bytes: number }> = {
  "1k": { label: "1 KB", bytes: 1024 },
  "100k": { label: "100 KB", bytes: 100 * 1024 },
};
const SIZES = flags.sizes.split(",").map((name) => {
  const size = SIZE_CHOICES[name.trim().toLowerCase()];
  if (!size)
    throw new Error(`--sizes: unknown size ${name} (known: ${Object.keys(SIZE_CHOICES).join(", ")})`);
  return size;
});
const CONCURRENCY = flags.concurrency.split(",").map((value) => {
  const clients = Number(value);
  if (!Number.isInteger(clients) || clients < 1) throw new Error(`--concurrency: not a count: ${value}`);
  return clients;
});
const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), "RESULTS.md");

/** A message of about `bytes` bytes: a text body, plus a binary attachment for the larger sizes. */
function template(bytes: number, to: string): { head: (id: string) => string; body: string } {
  return signedTemplate?.(bytes, to) ?? plainTemplate(bytes, to);
}

/** With --auth: templates whose messages carry a valid DKIM signature of bench.test. */
let signedTemplate:
  | ((bytes: number, to: string) => { head: (id: string) => string; body: string } | undefined)
  | undefined;

function plainTemplate(bytes: number, to: string): { head: (id: string) => string; body: string } {
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
  latencies: number[];
  /** Mailroom only: messages per committed transaction (group commit). */
  batch?: number;
}

/** Rounds of one measurement as one: all their messages over all their time. */
function combined(rounds: Measurement[]): Measurement {
  const latencies = rounds.flatMap((round) => round.latencies).sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  const messages = latencies.length;
  const seconds = rounds.reduce((sum, round) => sum + round.seconds, 0);
  const batches = rounds.filter((round) => round.batch !== undefined);
  return {
    messages,
    seconds,
    perSecond: messages / seconds,
    p50: at(0.5),
    p95: at(0.95),
    size: rounds[0]?.size ?? 0,
    latencies,
    ...(batches.length > 0
      ? { batch: batches.reduce((sum, round) => sum + (round.batch as number), 0) / batches.length }
      : {}),
  };
}

/** The baseline and Mailroom, measured in turn ROUNDS times. */
async function inTurn(
  base: () => Promise<Measurement>,
  real: () => Promise<Measurement>,
): Promise<[Measurement, Measurement]> {
  const bases: Measurement[] = [];
  const reals: Measurement[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    bases.push(await base());
    reals.push(await real());
  }
  return [combined(bases), combined(reals)];
}

/**
 * `clients` senders, each on its own reused connection, sending back to back for `seconds`;
 * client i sends to recipients[i % recipients.length].
 */
async function measure(
  port: number,
  recipients: string[],
  bytes: number,
  clients: number,
  run: string,
  seconds = SECONDS,
): Promise<Measurement> {
  const transports = Array.from({ length: clients }, () =>
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
  const deadline = started + seconds * 1000;
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
  const elapsed = (performance.now() - started) / 1000;
  for (const transport of transports) transport.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    messages: latencies.length,
    seconds: elapsed,
    perSecond: latencies.length / elapsed,
    p50: at(0.5),
    p95: at(0.95),
    size,
    latencies,
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
const dns = flags.auth ? await startDnsServer() : undefined;
// With --pg-profile: a database of its own with pg_stat_statements loaded, and one more measurement
// at the end whose statements are listed per message.
const profiled = flags["pg-profile"] ? await openDatabase({ statementStats: true }) : undefined;
if (profiled) await enableStatementStats(profiled.handle.db);
const config = {
  // INGEST_GROUP_COMMIT=false in the environment measures without group commit.
  ...loadConfig({
    LOG_LEVEL: "silent",
    DATA_DIR: dataDir,
    ...(process.env.INGEST_GROUP_COMMIT ? { INGEST_GROUP_COMMIT: process.env.INGEST_GROUP_COMMIT } : {}),
  }),
  databaseUrl: profiled?.url,
  port: 0,
  // The server's own listener does not verify: with --auth, a second one does (below).
  mailAuth: false,
  ...(dns ? { dnsServers: [dns.address] } : {}),
};
// An ephemeral SMTP port: the benchmark must not collide with a server running on the default one.
const app = buildApp(config, { logger: createLogger(config), smtpPort: 0 });
const run = randomBytes(4).toString("hex");
const loadBefore = os.loadavg()[0] ?? 0;

interface Row {
  label: string;
  size: string;
  clients: number;
  organizations: number;
  rawBytes: number;
  baselinePerSecond: number;
  perSecond: number;
  ratio: number;
  p50: number;
  p95: number;
  baselineP50: number;
  baselineP95: number;
  messages: number;
  batch: number | null;
}

try {
  const startedAt = performance.now();
  const smtpPort = (await app.start()).smtpPort as number;
  process.stdout.write(
    `embedded PostgreSQL and Mailroom up in ${((performance.now() - startedAt) / 1000).toFixed(1)} s\n`,
  );
  await dropIndexes(app.services.db, flags["drop-indexes"], (line) => process.stdout.write(`${line}\n`));
  const org = await bootstrapOrganization(app.services, {
    name: "Bench",
    adminEmail: "bench@bench.test",
    adminPassword: "bench password 1234",
  });
  const inbox = await createInbox(
    app.services,
    { orgId: org.organizationId, podId: null, inboxId: null, hiddenLabels: [] },
    { username: "bench" },
  );
  const baseline = await startBaseline(config.smtpMaxMessageBytes);

  // Warm both paths (JIT, connection pools, first thread) before measuring.
  for (const port of [baseline.port, smtpPort]) await measureQuick(port, inbox.email);

  const rows: Row[] = [];
  const lines: string[] = [];
  const report = (
    label: string,
    size: string,
    organizations: number,
    base: Measurement,
    real: Measurement,
    clients: number,
  ) => {
    const row: Row = {
      label,
      size,
      clients,
      organizations,
      rawBytes: real.size,
      baselinePerSecond: base.perSecond,
      perSecond: real.perSecond,
      ratio: real.perSecond / base.perSecond,
      p50: real.p50,
      p95: real.p95,
      baselineP50: base.p50,
      baselineP95: base.p95,
      messages: real.messages,
      batch: real.batch ?? null,
    };
    rows.push(row);
    const line =
      `| ${label} (${(real.size / 1024).toFixed(1)} KiB raw) | ${clients} | ${base.perSecond.toFixed(0)} | ` +
      `${real.perSecond.toFixed(0)} | ${row.ratio.toFixed(2)} | ` +
      `${real.p50.toFixed(1)} / ${real.p95.toFixed(1)} | ${real.batch?.toFixed(1) ?? "-"} | ${real.messages} |`;
    lines.push(line);
    process.stdout.write(`${line}\n`);
  };
  process.stdout.write(
    "| message | clients | baseline msg/s | Mailroom msg/s | ratio | Mailroom p50 / p95 ms | messages per commit | messages stored |\n",
  );
  for (const clients of CONCURRENCY) {
    for (const size of SIZES) {
      const tag = `${clients}-${size.bytes}`;
      let round = 0;
      const [base, real] = await inTurn(
        () => measure(baseline.port, [inbox.email], size.bytes, clients, `${run}-base-${tag}-${++round}`),
        () =>
          measureMailroom(() =>
            measure(smtpPort, [inbox.email], size.bytes, clients, `${run}-real-${tag}-${round}`),
          ),
      );
      report(size.label, size.label, 1, base, real, clients);
    }
  }
  // The same 1 KB load spread over as many organizations as clients: each organization's events
  // commit in order (the outbox's ordering lock), so this shows what one busy organization costs.
  if (!QUICK) {
    const clients = CONCURRENCY[0] as number;
    const spread: string[] = [];
    for (let i = 0; i < clients; i++) {
      const other = await bootstrapOrganization(app.services, {
        name: `Bench ${i}`,
        adminEmail: `bench${i}@bench.test`,
        adminPassword: "bench password 1234",
      });
      const scope = { orgId: other.organizationId, podId: null, inboxId: null, hiddenLabels: [] };
      spread.push((await createInbox(app.services, scope, { username: `bench${i}` })).email);
    }
    let round = 0;
    const [base, real] = await inTurn(
      () => measure(baseline.port, [inbox.email], 1024, clients, `${run}-spread-base-${++round}`),
      () => measureMailroom(() => measure(smtpPort, spread, 1024, clients, `${run}-spread-${round}`)),
    );
    report(`1 KB, ${clients} organizations`, "1 KB", clients, base, real, clients);
  }
  await baseline.stop();

  if (dns) {
    const { signed, verifying } = await authenticationSetup(dns, inbox.email);
    signedTemplate = signed;
    try {
      const clients = CONCURRENCY[0] as number;
      await measureQuick(verifying.port, inbox.email);
      await measureQuick(smtpPort, inbox.email);
      let round = 0;
      const [off, on] = await inTurn(
        () =>
          measureMailroom(() =>
            measure(smtpPort, [inbox.email], 1024, clients, `${run}-auth-off-${++round}`),
          ),
        () =>
          measureMailroom(() =>
            measure(verifying.port, [inbox.email], 1024, clients, `${run}-auth-on-${round}`),
          ),
      );
      const authenticated = await app.services.db
        .selectFrom("messages")
        .select((eb) => eb.fn.countAll<string>().as("count"))
        .where("authenticated", "=", true)
        .executeTakeFirstOrThrow();
      process.stdout.write(`${authenticated.count} messages stored authenticated (DKIM and DMARC pass).\n`);
      // The baseline of this row is Mailroom with verification off.
      report("1 KB DKIM-signed, verification on vs off", "1 KB", 1, off, on, clients);
    } finally {
      signedTemplate = undefined;
      await verifying.stop();
      await dns.stop();
    }
  }

  if (profiled) {
    const clients = CONCURRENCY[0] as number;
    const db = profiled.handle.db;
    const postmaster = await postmasterOf(profiled.handle.pool);
    await resetStatementStats(db);
    const reading = await startCpuReading(process.pid, postmaster);
    const real = await measureMailroom(() =>
      measure(smtpPort, [inbox.email], 1024, clients, `${run}-profile`),
    );
    const cpu = await reading();
    const name = new URL(profiled.url).pathname.slice(1);
    const perMessage = (seconds: number) => ((seconds * 1e6) / real.messages).toFixed(0);
    const profile = [
      "",
      `The database's share of an ingested 1 KB message (${clients} clients, ${real.messages} messages at ` +
        `${real.perSecond.toFixed(0)} msg/s, ${real.batch?.toFixed(1)} per commit; CPU per message ` +
        `${perMessage(cpu.server)} µs in this process (server and clients) + ${perMessage(cpu.database)} µs PostgreSQL: ` +
        `${databaseCpuPer(cpu, real.messages)}), ` +
        "from pg_stat_statements; time is the backends' wall time per message (CPU and waits):",
      "",
      await statementProfile(db, name, real.messages),
      "",
    ];
    lines.push(...profile);
    process.stdout.write(`${profile.join("\n")}\n`);
  }

  const stored = await app.services.db
    .selectFrom("messages")
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .executeTakeFirstOrThrow();
  process.stdout.write(`${stored.count} messages in the database at the end (including warm-up).\n`);
  const machine = {
    nproc: os.availableParallelism(),
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    cpu: os.cpus()[0]?.model ?? "unknown CPU",
    node: process.version,
    os: `${os.platform()} ${os.release()}`,
    loadAverage: loadBefore,
  };
  if (flags.record) {
    const section = [
      "",
      `## SMTP ingest — ${new Date().toISOString()}`,
      "",
      `Command: \`npm run bench:smtp -- ${process.argv.slice(2).join(" ")}\` (${SECONDS} s per measurement;`,
      "concurrent nodemailer clients, one reused connection each, every message a new Message-ID;",
      "Mailroom on the embedded PostgreSQL with default settings).",
      `Machine: nproc ${machine.nproc}, ${machine.memoryGiB} GiB memory, ${machine.cpu}, Node ${machine.node},`,
      `${machine.os}; load average ${loadBefore.toFixed(2)} when the run started (other work on the machine shares its cores).`,
      "Baseline: smtp-server + mailparser with the same settings in the same process, storing nothing",
      `(measured in turn with Mailroom, ${ROUNDS} time(s) each; each row has its own baseline).`,
      "",
      "| message | clients | baseline msg/s | Mailroom msg/s | ratio | Mailroom p50 / p95 ms | messages per commit | messages stored |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
      ...lines,
      "",
      `${stored.count} messages in the database at the end (including warm-up).`,
      "",
    ].join("\n");
    if (!existsSync(RESULTS))
      await appendFile(
        RESULTS,
        "# Benchmark results\n\nNewest last; each section says how it was measured.\n",
      );
    await appendFile(RESULTS, section);
    process.stdout.write(`appended to ${path.relative(process.cwd(), RESULTS)}\n`);
  }
  process.stdout.write(
    `${JSON.stringify({ bench: "smtp-ingest", quick: QUICK, seconds: SECONDS, rounds: ROUNDS, machine, rows })}\n`,
  );
} finally {
  await app.stop();
  await profiled?.close();
  await rm(dataDir, { recursive: true, force: true });
}

/** A measurement against Mailroom, with how many messages its transactions committed at once. */
async function measureMailroom(run: () => Promise<Measurement>): Promise<Measurement> {
  const before = app.services.ingestQueue.stats();
  const measurement = await run();
  const after = app.services.ingestQueue.stats();
  const commits = after.commits - before.commits;
  return { ...measurement, batch: commits === 0 ? 0 : (after.messages - before.messages) / commits };
}

/**
 * For --auth: bench.test publishes SPF for 127.0.0.1, a DKIM key and DMARC p=reject; messages are
 * signed once per recipient and size over the headers that do not change (From, To, Date,
 * MIME-Version, Content-Type) and the body, so each message's Subject and Message-ID can vary
 * while its signature still verifies: the server does the whole DKIM check for every message.
 * Answers are cached by the server (a burst from one domain asks DNS once a minute).
 */
async function authenticationSetup(server: Awaited<ReturnType<typeof startDnsServer>>, to: string) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  server.zone.set("bench.test", { TXT: ["v=spf1 ip4:127.0.0.1 -all"] });
  server.zone.set("_dmarc.bench.test", { TXT: ["v=DMARC1; p=reject"] });
  server.zone.set("bench._domainkey.bench.test", {
    TXT: [`v=DKIM1; k=rsa; p=${publicKey.export({ type: "spki", format: "der" }).toString("base64")}`],
  });
  const plain = plainTemplate(1024, to);
  const date = new Date().toUTCString();
  const head = (id: string) => plain.head(id).replace(/^Date: .*\r\n/m, `Date: ${date}\r\n`);
  const result = await dkimSign(Buffer.from(head("sample") + plain.body), {
    signingDomain: "bench.test",
    selector: "bench",
    privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    canonicalization: "relaxed/relaxed",
    headerList: ["from", "to", "date", "mime-version", "content-type"],
  });
  if (result.errors.length > 0) throw new Error(`DKIM signing failed: ${JSON.stringify(result.errors)}`);
  const signed = (bytes: number, recipient: string) =>
    bytes === 1024 && recipient === to
      ? { head: (id: string) => result.signatures + head(id), body: plain.body }
      : undefined;
  const verifying = createSmtpListener(app.services, { port: 0, host: "127.0.0.1", verify: true });
  const { port } = await verifying.start();
  return { signed, verifying: { port, stop: () => verifying.stop(1_000) } };
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
