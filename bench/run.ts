// `npm run bench`: Mailroom side by side with PostGraphile v5, a bare graphql-yoga and itself without
// permission checks, on one database and one data set, in one run; then scale (10k vs a large
// organization), SMTP ingest and event fan-out. Prints the tables; `--record` appends them to
// bench/RESULTS.md with the date, the machine and the command.
//   npm run bench                 quick: under 3 minutes, large organization of 50k messages
//   npm run bench -- --full       15 s per measurement, large organization of 1,000,000 messages
//   npm run bench -- --only http,scale   a subset (http, scale, smtp, events, send)
//   npm run bench -- --only send  sendMessage with an idempotency key against without, in turns
//   npm run bench -- --rounds N   the HTTP reads N times, the servers' order turning each round
//   npm run bench -- --profile DIR   the Mailroom server runs with --cpu-prof, its profile in DIR
//                                  (bench/cpu-profile-summary.ts reads it)
//   npm run bench -- --before DIR    also the Mailroom of another checkout (e.g. a git worktree of
//                                  the commit before a change, its node_modules linked) in the reads
//   npm run bench -- --only before --before /tmp/before   sendMessage in one organization, 20 connections,
//                                 this tree against another checkout's (a git worktree), in turns
//   npm run bench -- --only profile --pg-profile   sendMessage in one organization with
//                                 pg_stat_statements loaded: the database's share of a send, per statement
//   npm run bench -- --only profile --pg-profile --drop-indexes a,b   the same without those indexes
//                                 of the seeded database: what they cost the writes (an experiment;
//                                 reads that need them get slower)
// Against a fresh embedded PostgreSQL, or a new database on DATABASE_URL's server (dropped after).
import { execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs, promisify } from "node:util";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { sql } from "kysely";
import type { TenantScope } from "../src/auth/principal.ts";
import { createDatabase } from "../src/db/database.ts";
import { migrateToLatest } from "../src/db/migrate.ts";
import { listMessages, messagesOfThreads } from "../src/mail/repository.ts";
import { listThreads } from "../src/mail/thread-repository.ts";
import { type CpuReading, databaseCpuPer, postmasterOf, startCpuReading } from "./lib/cpu.ts";
import { type Database, dropIndexes, openDatabase } from "./lib/database.ts";
import { type GraphQLRequest, graphql, type LoadResult, runLoad } from "./lib/load.ts";
import { enableStatementStats, resetStatementStats, statementProfile } from "./lib/pg-statements.ts";
import { freePort, ROOT, type ServerProcess, startMailroom, startServer } from "./lib/processes.ts";
import { startStatementCounter } from "./lib/statement-counter.ts";
import { type SeededOrganization, seedGroups } from "./seed.ts";

const { values: flags } = parseArgs({
  options: {
    full: { type: "boolean", default: false },
    record: { type: "boolean", default: false },
    only: { type: "string" },
    large: { type: "string" },
    seconds: { type: "string" },
    profile: { type: "string" },
    before: { type: "string" },
    "pg-profile": { type: "boolean", default: false },
    rounds: { type: "string" },
    "drop-indexes": { type: "string" },
  },
  strict: true,
});
const FULL = flags.full === true;
const SUITES = new Set((flags.only ?? "http,scale,smtp,events").split(",").map((s) => s.trim()));
const MODE = {
  small: 10_000,
  large: Number(flags.large ?? (FULL ? 1_000_000 : 50_000)),
  seconds: Number(flags.seconds ?? (FULL ? 15 : 3)),
  /** Per latency measurement of the scale table (one connection). */
  scaleSeconds: Number(flags.seconds ?? (FULL ? 10 : 2)),
  warmup: FULL ? 3 : 1,
  connections: 10,
  /** Sequential requests per scenario when counting statements. */
  counted: 20,
  /** Rounds of the HTTP reads, each server in turn. */
  rounds: Number(flags.rounds ?? (FULL ? 2 : 1)),
};
const MAIL_DOMAIN = "mailroom.localhost";
const execFileAsync = promisify(execFile);
const log = (message: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

// ---------------------------------------------------------------------------------------------
// The reads, in each server's own schema.

const A_OURS = `query($id: ID!) { inbox(id: $id) { threads(first: 50) { edges { node { subject messageCount
  messages(first: 3) { edges { node { from subject } } } } } } } }`;
const A_POSTGRAPHILE = `query($id: ID!) { inbox(id: $id) { threadsByOrgIdAndPodIdAndInboxId(first: 50,
  orderBy: [LAST_MESSAGE_AT_DESC, ROW_ID_DESC]) { edges { node { subject
  messageCount: messagesByOrgIdAndInboxIdAndThreadId { totalCount }
  messagesByOrgIdAndInboxIdAndThreadId(first: 3, orderBy: [CREATED_AT_ASC, ROW_ID_ASC]) {
  edges { node { fromAddress subject } } } } } } } }`;
const B_OURS = `query($inbox: ID!, $after: String) { messages(inboxId: $inbox, labels: ["received"], first: 50, after: $after) {
  edges { cursor node { id from subject createdAt labels } } pageInfo { hasNextPage endCursor } } }`;
// "received" is exactly the inbound mail (a system label no one can add or remove), which
// PostGraphile can filter on without a plugin.
const B_POSTGRAPHILE = `query($inbox: ID!, $after: Cursor) { inbox(id: $inbox) { messagesByOrgIdAndPodIdAndInboxId(
  condition: { direction: "INBOUND" }, orderBy: [ROW_ID_DESC], first: 50, after: $after) {
  edges { cursor node { id fromAddress subject createdAt labels } } pageInfo { hasNextPage endCursor } } } }`;
const TYPENAME = "{ __typename }";
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } } }`;
const MARK_READ = `mutation($id: ID!) { updateMessage(input: { id: $id, removeLabels: ["unread"] }) { message { id labels } } }`;

// ---------------------------------------------------------------------------------------------

/** Roles, grants and row-level security for PostGraphile; returns its connection string. */
async function preparePostGraphile(database: Database): Promise<string> {
  const password = randomBytes(16).toString("hex");
  const script = (await readFile(path.join(ROOT, "bench/postgraphile/rls.sql"), "utf8")).replace(
    ":'password'",
    `'${password}'`,
  );
  await sql.raw(script).execute(database.handle.db);
  const url = new URL(database.url);
  url.username = "bench_authenticator";
  url.password = password;
  return url.toString();
}

/** An HS256 JWT as PostGraphile's lazy JWT preset verifies it. */
function jwt(secret: Buffer, claims: Record<string, string>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const head = `${part({ alg: "HS256", typ: "JWT" })}.${part({
    aud: "postgraphile",
    exp: Math.floor(Date.now() / 1000) + 86_400,
    ...claims,
  })}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

// ---------------------------------------------------------------------------------------------
// Servers.

interface Contender {
  name: string;
  start(databaseUrl: string): Promise<ServerProcess>;
}

/** Node flags of a profiled server (--profile). */
function cpuProfileFlags(dir: string | undefined): string[] {
  return dir ? ["--cpu-prof", "--cpu-prof-dir", path.resolve(dir)] : [];
}

function oursContender(
  name: string,
  extraEnv: Record<string, string>,
  dataDir: string,
  profiled: string[] = [],
): Contender {
  return {
    name,
    start: (databaseUrl) =>
      startMailroom({
        name,
        databaseUrl,
        dataDir,
        env: { MAIL_DOMAIN, ...extraEnv },
        timeoutMs: 240_000,
        nodeArgs: profiled,
      }),
  };
}

function postgraphileContender(authenticatorUrl: string, secret: Buffer, readyToken: string): Contender {
  return {
    name: "PostGraphile",
    start: async (databaseUrl) => {
      const port = await freePort();
      // Behind the statement counter the address is the proxy's; the role stays the authenticator.
      const url = new URL(databaseUrl);
      const authenticator = new URL(authenticatorUrl);
      url.username = authenticator.username;
      url.password = authenticator.password;
      return startServer({
        name: "PostGraphile",
        args: ["bench/postgraphile/server.mjs"],
        env: {
          DATABASE_URL: url.toString(),
          PORT: String(port),
          JWT_SECRET_HEX: secret.toString("hex"),
          NODE_ENV: "production",
          NODE_OPTIONS: `--require ${path.join(ROOT, "bench/postgraphile/with-resolvers.cjs")}`,
        },
        port,
        readyPath: "/graphql",
        readyInit: {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${readyToken}` },
          body: JSON.stringify({ query: TYPENAME }),
        },
      });
    },
  };
}

const bareYoga: Contender = {
  name: "bare yoga",
  start: async () => {
    const port = await freePort();
    return startServer({
      name: "bare yoga",
      args: ["--import", "tsx", "bench/bare-yoga.ts"],
      env: { PORT: String(port), NODE_ENV: "production" },
      port,
      readyPath: "/graphql",
      readyInit: {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: TYPENAME }),
      },
    });
  },
};

interface Scenario {
  name: string;
  /** Who asks: an API key or a JWT, as `authorization`. */
  headers: Record<string, string>;
  /** One body; a function of n for bodies that change per request; or a thunk, read just before use. */
  request: GraphQLRequest | ((n: number) => GraphQLRequest) | { later: () => GraphQLRequest };
  /** Checks one answer before the load: the server answers this read, and answers it right. */
  check?: (data: any) => void;
}

/** The scenario's request as of now: a deferred one is read when its turn comes. */
function settled(scenario: Scenario): GraphQLRequest | ((n: number) => GraphQLRequest) {
  return "later" in scenario.request ? scenario.request.later() : scenario.request;
}

const firstRequest = (scenario: Scenario) => {
  const request = settled(scenario);
  return typeof request === "function" ? request(-1) : request;
};

/** A timed load and the CPU seconds the server and the database cluster spent during it. */
type Measured = LoadResult & { cpu: CpuReading };

/** The benchmark cluster's postmaster, when it runs on this machine (for CPU readings). */
let postmaster: number | undefined;

async function load(
  server: ServerProcess,
  scenario: Scenario,
  connections = MODE.connections,
): Promise<Measured> {
  scenario.check?.(await graphql(server.url, scenario.headers, firstRequest(scenario)));
  log(`${server.name}: ${scenario.name}`);
  const options = {
    url: server.url,
    headers: scenario.headers,
    request: settled(scenario),
    connections,
    warmupSeconds: 0,
  };
  await runLoad({ ...options, seconds: MODE.warmup });
  const reading = await startCpuReading(server.pid, postmaster);
  const result = await runLoad({ ...options, seconds: MODE.seconds });
  return { ...result, cpu: await reading() };
}

/**
 * Averages of several rounds: throughput and p50 their mean, p99 the worst, failures their sum, CPU
 * per request the total over the total.
 */
function combined(results: readonly Measured[]): Measured {
  const mean = (pick: (r: LoadResult) => number) =>
    results.reduce((sum, r) => sum + pick(r), 0) / results.length;
  const sum = (pick: (r: Measured) => number) => results.reduce((total, r) => total + pick(r), 0);
  return {
    requests: sum((r) => r.requests),
    throughput: mean((r) => r.throughput),
    p50: mean((r) => r.p50),
    p99: Math.max(...results.map((r) => r.p99)),
    failures: sum((r) => r.failures),
    cpu: {
      server: sum((r) => r.cpu.server),
      database: sum((r) => r.cpu.database),
      databaseByKind: new Map(
        [...new Set(results.flatMap((r) => [...r.cpu.databaseByKind.keys()]))].map((kind) => [
          kind,
          sum((r) => r.cpu.databaseByKind.get(kind) ?? 0),
        ]),
      ),
    },
  };
}

/** CPU per request as a table cell: server + database = total, in µs. */
function cpuCell(result: Measured): string {
  const cpu = cpuPerRequest(result);
  return `${whole(cpu.server)} + ${whole(cpu.database)} = ${whole(cpu.total)}`;
}

/** CPU microseconds per request: server process, database cluster, and both. */
function cpuPerRequest(result: Measured) {
  const per = (seconds: number) => (seconds * 1e6) / result.requests;
  return {
    server: per(result.cpu.server),
    database: per(result.cpu.database),
    total: per(result.cpu.server + result.cpu.database),
  };
}

/**
 * SQL statements per request of each read: the server restarted behind the statement counter, each
 * read sent MODE.counted times in sequence, less what the idle server sends in as long (job
 * polling, key bookkeeping).
 */
async function countStatements(
  contender: Contender,
  databaseUrl: string,
  scenarios: readonly Scenario[],
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const counter = await startStatementCounter(databaseUrl);
  const server = await contender.start(counter.url);
  try {
    // Warms what a running server has warm (its key cache, PostgreSQL's plans).
    for (const scenario of scenarios) await graphql(server.url, scenario.headers, firstRequest(scenario));
    const idleStarted = performance.now();
    const idleBefore = counter.statements();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const idlePerMs = (counter.statements() - idleBefore) / (performance.now() - idleStarted);
    for (const scenario of scenarios) {
      const request = firstRequest(scenario);
      const before = counter.statements();
      const started = performance.now();
      for (let i = 0; i < MODE.counted; i++) await graphql(server.url, scenario.headers, request);
      const idle = idlePerMs * (performance.now() - started);
      counts.set(scenario.name, Math.max(0, counter.statements() - before - idle) / MODE.counted);
    }
  } finally {
    await server.stop();
    await counter.close();
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Scale and plans.

interface ScaleRow {
  scenario: string;
  messages: number;
  p50: number;
  p99: number;
  throughput: number;
}

/** The SQL our server sends for (a) and (b), captured from the repositories, with EXPLAIN ANALYZE. */
async function explainOurs(database: Database, org: SeededOrganization, hiddenOrg: boolean): Promise<string> {
  const captured: { text: string; values: unknown[] }[] = [];
  const capture = createDatabase(database.url, { max: 1 });
  capture.pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const [text, values] = args as [string | { text: string; values?: unknown[] }, unknown[] | undefined];
      if (typeof text === "string") captured.push({ text, values: values ?? [] });
      else captured.push({ text: text.text, values: text.values ?? [] });
      return query(...args);
    };
  });
  const inboxId = org.inboxes[0]?.id as string;
  const full: TenantScope = { orgId: org.id, podId: null, inboxId: null, hiddenLabels: [] };
  const hiding: TenantScope = { ...full, hiddenLabels: ["spam", "trash"] };
  const page = { after: undefined, before: undefined, limit: 51, inverted: false };
  const sections: string[] = [];
  const explain = async (title: string, run: () => Promise<unknown>) => {
    captured.length = 0;
    await run();
    const statement = captured.at(-1);
    if (!statement) return;
    const plan = await database.handle.pool.query(
      `EXPLAIN (ANALYZE, BUFFERS) ${statement.text}`,
      statement.values,
    );
    sections.push(
      `-- ${title}\n${statement.text.replace(/\s+/g, " ").trim()}\n${plan.rows.map((r) => r["QUERY PLAN"]).join("\n")}`,
    );
  };
  try {
    // What (a) selects of each thread: subject and messageCount.
    const wanted = new Set(["subject", "messageCount"] as const);
    const threads = await listThreads(capture.db, full, { inboxId }, page, wanted);
    await explain("(a) the inbox's threads, organization key", () =>
      listThreads(capture.db, full, { inboxId }, page, wanted),
    );
    await explain("(a) the first 3 messages of each of those threads", () =>
      messagesOfThreads(
        capture.db,
        full,
        threads.slice(0, 50).map((t) => t.id),
        { limit: 4, inverted: false },
        ["from_address", "subject"],
      ),
    );
    await explain("(b) received messages, key hiding spam and trash", () =>
      listMessages(capture.db, hiding, { inboxId, labels: ["received"] }, page, [
        "from_address",
        "subject",
        "labels",
      ]),
    );
    if (hiddenOrg) {
      await explain("(a) the inbox's threads, key hiding spam and trash", () =>
        listThreads(capture.db, hiding, { inboxId }, page, wanted),
      );
    }
  } finally {
    await capture.destroy();
  }
  return sections.join("\n\n");
}

// ---------------------------------------------------------------------------------------------
// Child benchmarks (SMTP ingest, event fan-out) print one JSON line last.

async function childBenchmark(script: string, args: string[]): Promise<any> {
  const { stdout } = await execFileAsync(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  const line = stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(line);
}

// ---------------------------------------------------------------------------------------------
// Tables.

const fixed = (value: number | undefined, digits = 1) =>
  value === undefined || Number.isNaN(value) ? "–" : value.toFixed(digits);
const whole = (value: number | undefined) =>
  value === undefined || Number.isNaN(value) ? "–" : Math.round(value).toLocaleString("en");

function table(header: string[], body: string[][]): string {
  return [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...body.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** The commit measured, and whether the working tree differed from it. */
async function revision(): Promise<string> {
  try {
    const { stdout: commit } = await execFileAsync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT });
    const { stdout: changes } = await execFileAsync(
      "git",
      ["status", "--porcelain", "--untracked-files=no"],
      {
        cwd: ROOT,
      },
    );
    return `${commit.trim()}${changes.trim() ? " with uncommitted changes" : ""}`;
  } catch {
    return "unknown (not a git checkout)";
  }
}

async function machine(): Promise<string> {
  const cpus = os.cpus();
  return `${cpus.length} cores (${cpus[0]?.model.trim() ?? "unknown"}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ${os.type()} ${os.release()}; load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")} at the start (other work on the machine shares its cores)`;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const started = performance.now();
  const machineLine = await machine();
  // Taken before the run: the code measured, not whatever the tree holds when it ends.
  const code = await revision();
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const sections: string[] = [];
  const needsDatabase =
    SUITES.has("http") ||
    SUITES.has("scale") ||
    SUITES.has("send") ||
    SUITES.has("before") ||
    SUITES.has("profile");
  const database = needsDatabase
    ? await openDatabase({ statementStats: flags["pg-profile"] === true })
    : undefined;
  if (database && flags["pg-profile"]) await enableStatementStats(database.handle.db);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-server-"));
  const running: ServerProcess[] = [];
  try {
    if (database) {
      await migrateToLatest(database.handle.db);
      const readsToo = SUITES.has("http") || SUITES.has("scale");
      const sizes = [...(readsToo ? [MODE.small] : []), ...(SUITES.has("scale") ? [MODE.large] : [])];
      log(`seeding ${sizes.map((n) => n.toLocaleString("en")).join(" + ")} messages`);
      const seedStarted = performance.now();
      const onProgress = (message: string) => log(message);
      const groups = [
        ...(readsToo ? [{ name: "small", messagesPerOrganization: MODE.small }] : []),
        { name: "writes", messagesPerOrganization: 2_000, seed: 2 },
        ...(SUITES.has("scale") ? [{ name: "large", messagesPerOrganization: MODE.large, seed: 3 }] : []),
      ];
      const seeded = await seedGroups(
        database.handle.db,
        groups.map((group) => ({ mailDomain: MAIL_DOMAIN, onProgress, ...group })),
      );
      const group = (name: string) => seeded[groups.findIndex((g) => g.name === name)];
      const [small, writes, large] = [group("small"), group("writes"), group("large")];
      if (!writes || (readsToo && !small)) throw new Error("seeding returned no organizations");
      log(`seeded in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);
      await dropIndexes(database.handle.db, flags["drop-indexes"], log);
      const ours = await oursContender("Mailroom", {}, dataDir, cpuProfileFlags(flags.profile)).start(
        database.url,
      );
      running.push(ours);
      if (SUITES.has("scale") && small && large)
        sections.push(...(await scaleSuite(database, ours, small, large)));
      if (SUITES.has("http") && small)
        sections.push(...(await httpSuite(database, ours, small, writes, dataDir, running)));
      if (SUITES.has("send")) sections.push(...(await sendSuite(ours, writes)));
      if (SUITES.has("before")) sections.push(...(await sendBeforeSuite(database, ours, running)));
      if (SUITES.has("profile")) sections.push(...(await sendProfileSuite(database, ours)));
    }
    for (const server of running.splice(0)) await server.stop();
    // Stopped before the next benchmarks, whose databases share the disk: its checkpoints and
    // autovacuum after a million rows would slow their commits.
    await database?.close();

    if (SUITES.has("smtp")) {
      log("SMTP ingest");
      const args = FULL
        ? ["--sizes", "1k,100k", "--concurrency", "10,20", "--seconds", "6", "--rounds", "2"]
        : ["--quick"];
      const smtp = await childBenchmark("bench/smtp-ingest.ts", args);
      sections.push(
        `### SMTP ingest (\`npm run bench:smtp -- ${args.join(" ")}\`; baseline: smtp-server + mailparser storing nothing, measured in turn)\n\n` +
          table(
            [
              "message",
              "clients",
              "organizations",
              "baseline msg/s",
              "Mailroom msg/s",
              "ratio",
              "p50 / p95 ms",
              "messages per commit",
            ],
            (smtp.rows as any[]).map((row) => [
              row.label,
              String(row.clients),
              String(row.organizations),
              whole(row.baselinePerSecond),
              whole(row.perSecond),
              fixed(row.ratio, 2),
              `${fixed(row.p50)} / ${fixed(row.p95)}`,
              fixed(row.batch),
            ]),
          ) +
          "\n\nGoal: ≥ 1,000 msg/s at 1 KB with synchronous_commit on.",
      );
    }
    if (SUITES.has("events")) {
      log("event fan-out");
      const args = [
        "--subscribers",
        "1000",
        "--messages",
        FULL ? "100" : "30",
        "--rate",
        "10",
        "--idle",
        "5000",
      ];
      const events = await childBenchmark("bench/event-latency.ts", args);
      sections.push(
        `### Event fan-out (\`npm run bench:events -- ${args.join(" ")}\`; one inbox, \`messageReceived { subject }\`; ` +
          "latency from the SMTP `250` to the subscriber; the server and the clients share the machine)\n\n" +
          table(
            [
              "subscribers",
              "events/s",
              "deliveries",
              "deliveries/s",
              "p50 ms",
              "p99 ms (goal ≤ 50)",
              "max ms",
              "server CPU µs / delivery",
            ],
            [
              [
                whole(events.subscribers),
                String(events.rate),
                `${whole(events.delivered)} / ${whole(events.expected)}`,
                whole(events.deliveriesPerSecond),
                fixed(events.p50ms),
                fixed(events.p99ms),
                fixed(events.maxms),
                whole(events.serverCpuMicrosPerDelivery),
              ],
            ],
          ) +
          "\n\n" +
          table(
            [
              "idle graphql-ws connections",
              "connected",
              "one event reached",
              "server RSS before → after MiB (goal ≤ 400)",
              "peak RSS MiB",
            ],
            [
              [
                whole(events.idle.connections),
                whole(events.idle.connected),
                whole(events.idle.eventReceivedBy),
                `${fixed(events.idle.rssBeforeMB, 0)} → ${fixed(events.idle.rssAfterMB, 0)}`,
                fixed(events.idle.hwmMB, 0),
              ],
            ],
          ),
      );
    }
  } finally {
    for (const server of running) await server.stop();
    await database?.close();
    await rm(dataDir, { recursive: true, force: true });
  }

  const seconds = (performance.now() - started) / 1000;
  const report = [
    `## ${new Date().toISOString()} — \`${command}\``,
    `Code: ${code}. Machine: ${machineLine}. Took ${seconds.toFixed(0)} s.`,
    ...sections,
  ].join("\n\n");
  process.stdout.write(`\n${report}\n`);
  if (flags.record) {
    await appendFile(path.join(ROOT, "bench/RESULTS.md"), `\n\n${report}\n`);
    log("appended to bench/RESULTS.md");
  }
}

/** p50/p99 of (a) and (b) at the small and the large organization, one connection, on our server. */
async function scaleSuite(
  database: Database,
  server: ServerProcess,
  small: SeededOrganization,
  large: SeededOrganization,
): Promise<string[]> {
  const scale: ScaleRow[] = [];
  for (const org of [small, large]) {
    const hot = org.inboxes[0] as SeededOrganization["inboxes"][number];
    for (const [scenario, key, request] of [
      ["(a)", org.keys.full, { query: A_OURS, variables: { id: hot.globalId } }],
      [
        "(a), key hiding spam+trash",
        org.keys.hidesSpamAndTrash,
        { query: A_OURS, variables: { id: hot.globalId } },
      ],
      ["(b)", org.keys.hidesSpamAndTrash, { query: B_OURS, variables: { inbox: hot.globalId } }],
    ] as const) {
      log(`scale: ${scenario} at ${org.messages.toLocaleString("en")} messages`);
      const headers = { authorization: `Bearer ${key}` };
      await graphql(server.url, headers, request);
      const result = await runLoad({
        url: server.url,
        headers,
        request,
        connections: 1,
        seconds: MODE.scaleSeconds,
        warmupSeconds: MODE.warmup,
      });
      scale.push({
        scenario,
        messages: org.messages,
        p50: result.p50,
        p99: result.p99,
        throughput: result.throughput,
      });
    }
  }
  const body = ["(a)", "(a), key hiding spam+trash", "(b)"].map((scenario) => {
    const s = scale.find((r) => r.scenario === scenario && r.messages === small.messages);
    const l = scale.find((r) => r.scenario === scenario && r.messages === large.messages);
    return [
      scenario,
      `${fixed(s?.p50, 1)} / ${fixed(s?.p99, 1)}`,
      `${fixed(l?.p50, 1)} / ${fixed(l?.p99, 1)}`,
      fixed((l?.p50 ?? Number.NaN) / (s?.p50 ?? Number.NaN), 2),
      fixed((l?.p99 ?? Number.NaN) / (s?.p99 ?? Number.NaN), 2),
    ];
  });
  const plans = await explainOurs(database, large, true);
  await mkdir(path.join(ROOT, "bench/.out"), { recursive: true });
  await writeFile(path.join(ROOT, "bench/.out/explain.txt"), `${plans}\n`);
  return [
    "### Scale (one connection, sequential requests; the hot inbox holds about half of its organization's messages)\n\n" +
      table(
        [
          "read",
          `${small.messages.toLocaleString("en")} msgs p50 / p99 ms`,
          `${large.messages.toLocaleString("en")} msgs p50 / p99 ms`,
          "p50 ratio",
          "p99 ratio (goal ≤ 1.5)",
        ],
        body,
      ),
    `Plans at ${large.messages.toLocaleString("en")} messages (bench/.out/explain.txt):\n\n\`\`\`\n${plans}\n\`\`\``,
  ];
}

/**
 * The reads on every server, all of them running at once: each read is measured on one server
 * after the other, starting with a different one each round, so no server always goes first (cold
 * caches) or last. Then the writes, on ours; then SQL statements per request.
 */
async function httpSuite(
  database: Database,
  ours: ServerProcess,
  org: SeededOrganization,
  writer: SeededOrganization,
  dataDir: string,
  running: ServerProcess[],
): Promise<string[]> {
  const hot = org.inboxes[0] as SeededOrganization["inboxes"][number];
  const authenticatorUrl = await preparePostGraphile(database);
  postmaster = await postmasterOf(database.handle.pool);
  const secret = randomBytes(32);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const jwtFor = (hidden: string[]) =>
    bearer(
      jwt(secret, {
        role: "bench_reader",
        org_id: org.id,
        ...(hidden.length ? { hidden_labels: hidden.join(",") } : {}),
      }),
    );
  const full = bearer(org.keys.full);
  const hiding = bearer(org.keys.hidesSpamAndTrash);
  const pgFull = jwtFor([]);
  const pgHiding = jwtFor(["spam", "trash"]);
  const pgInboxId = Buffer.from(JSON.stringify(["Inbox", org.id, hot.id])).toString("base64");
  // The next pages start where each server's first page ended (noted when that page is checked).
  const cursors = { ours: "", postgraphile: "" };
  const writeIds = (
    await sql<{
      id: string;
    }>`SELECT id FROM messages WHERE org_id = ${writer.id} ORDER BY id LIMIT 1000`.execute(database.handle.db)
  ).rows.map((row) => encodeGlobalID("Message", row.id));

  const fifty = (list: any[]) => {
    if (list.length !== 50) throw new Error(`expected 50 items, got ${list.length}`);
  };
  const names = {
    typename: "{ __typename }",
    a: "(a) inbox threads(50) + messages(3)",
    b1: "(b) messages(received, 50), hides spam+trash",
    b2: "(b) next page (after)",
    read: "(c) updateMessage (mark read)",
    send: "(c) sendMessage to a hosted inbox",
  };
  const ourReads: Scenario[] = [
    { name: names.typename, headers: full, request: { query: TYPENAME } },
    {
      name: names.a,
      headers: full,
      request: { query: A_OURS, variables: { id: hot.globalId } },
      check: (data) => fifty(data.inbox.threads.edges),
    },
    {
      name: names.b1,
      headers: hiding,
      request: { query: B_OURS, variables: { inbox: hot.globalId } },
      check: (data) => {
        fifty(data.messages.edges);
        cursors.ours = data.messages.pageInfo.endCursor;
      },
    },
    {
      name: names.b2,
      headers: hiding,
      request: { later: () => ({ query: B_OURS, variables: { inbox: hot.globalId, after: cursors.ours } }) },
      check: (data) => fifty(data.messages.edges),
    },
  ];
  const pgReads: Scenario[] = [
    { name: names.typename, headers: pgFull, request: { query: TYPENAME } },
    {
      name: names.a,
      headers: pgFull,
      request: { query: A_POSTGRAPHILE, variables: { id: pgInboxId } },
      check: (data) => fifty(data.inbox.threadsByOrgIdAndPodIdAndInboxId.edges),
    },
    {
      name: names.b1,
      headers: pgHiding,
      request: { query: B_POSTGRAPHILE, variables: { inbox: pgInboxId } },
      check: (data) => {
        fifty(data.inbox.messagesByOrgIdAndPodIdAndInboxId.edges);
        cursors.postgraphile = data.inbox.messagesByOrgIdAndPodIdAndInboxId.pageInfo.endCursor;
      },
    },
    {
      name: names.b2,
      headers: pgHiding,
      request: {
        later: () => ({
          query: B_POSTGRAPHILE,
          variables: { inbox: pgInboxId, after: cursors.postgraphile },
        }),
      },
      check: (data) => fifty(data.inbox.messagesByOrgIdAndPodIdAndInboxId.edges),
    },
  ];

  const postgraphile = postgraphileContender(authenticatorUrl, secret, pgFull.authorization.slice(7));
  const unchecked = oursContender("Mailroom, checks off", { BENCH_DISABLE_AUTHORIZATION: "true" }, dataDir);
  log("starting the other servers");
  const [bare, off, pgl] = await Promise.all([
    bareYoga.start(""),
    unchecked.start(database.url),
    postgraphile.start(database.url),
  ]);
  running.push(bare, off, pgl);
  // The same reads on another checkout's server, in the same turns: a before/after in one run.
  const before = flags.before
    ? await startMailroom({
        root: path.resolve(flags.before),
        name: "Mailroom before",
        databaseUrl: database.url,
        dataDir,
        env: { MAIL_DOMAIN },
        timeoutMs: 60_000,
      })
    : undefined;
  if (before) running.push(before);
  const lineup: { server: ServerProcess; reads: Scenario[] }[] = [
    { server: ours, reads: ourReads },
    ...(before ? [{ server: before, reads: ourReads }] : []),
    { server: off, reads: ourReads.filter((s) => s.name !== names.typename) },
    { server: pgl, reads: pgReads },
    {
      server: bare,
      reads: ourReads.filter((s) => s.name === names.typename).map((s) => ({ ...s, headers: {} })),
    },
  ];
  const results = new Map<string, Measured[]>();
  const keyOf = (scenario: string, server: string) => `${scenario}\u0000${server}`;
  for (let round = 0; round < MODE.rounds; round++) {
    for (const [index, name] of [names.typename, names.a, names.b1, names.b2].entries()) {
      const turn = round + index;
      const order = [...lineup.slice(turn % lineup.length), ...lineup.slice(0, turn % lineup.length)];
      for (const { server, reads } of order) {
        const scenario = reads.find((s) => s.name === name);
        if (!scenario) continue;
        const result = await load(server, scenario);
        results.set(keyOf(name, server.name), [...(results.get(keyOf(name, server.name)) ?? []), result]);
      }
    }
  }
  const peaks = new Map<string, number>();
  const others = [...(before ? [before] : []), off, pgl, bare];
  for (const server of [ours, ...others]) peaks.set(server.name, await server.peakRssMiB());
  for (const server of others) {
    await server.stop();
    running.splice(running.indexOf(server), 1);
  }

  // Writes last, on ours alone: the deliveries sendMessage queues would load anything after it.
  const writes: Scenario[] = [
    {
      name: names.read,
      headers: bearer(writer.keys.full),
      request: (n) => ({
        query: MARK_READ,
        variables: { id: writeIds[(n + writeIds.length) % writeIds.length] },
      }),
    },
  ];
  const [from, to] = writer.inboxes as [
    SeededOrganization["inboxes"][number],
    SeededOrganization["inboxes"][number],
  ];
  const text = "Hello from the benchmark. ".repeat(40);
  const send: Scenario = {
    name: names.send,
    headers: bearer(writer.keys.full),
    request: (n) => ({
      query: SEND,
      variables: { input: { inboxId: from.globalId, to: [to.email], subject: `Bench ${n}`, text } },
    }),
  };
  // Statements before the sends, whose queued deliveries would be counted with whatever follows.
  const statements = new Map<string, Map<string, number>>();
  log("counting SQL statements");
  statements.set(
    ours.name,
    await countStatements(oursContender("Mailroom", {}, dataDir), database.url, [...ourReads, ...writes]),
  );
  statements.set(pgl.name, await countStatements(postgraphile, database.url, pgReads));
  for (const scenario of [...writes, send])
    results.set(keyOf(scenario.name, ours.name), [await load(ours, scenario)]);

  const rows = Object.values(names).flatMap((name) =>
    [ours, ...others].flatMap((server) => {
      const measured = results.get(keyOf(name, server.name));
      if (!measured) return [];
      const result = combined(measured);
      const cpu = cpuPerRequest(result);
      return [
        [
          name,
          server.name,
          whole(result.throughput),
          fixed(result.p50, 0),
          fixed(result.p99, 0),
          `${whole(cpu.server)} + ${whole(cpu.database)} = ${whole(cpu.total)}`,
          fixed(statements.get(server.name)?.get(name)),
          whole(peaks.get(server.name)),
          String(result.failures),
        ],
      ];
    }),
  );
  const throughput = (scenario: string, server: string) => {
    const measured = results.get(keyOf(scenario, server));
    return measured ? combined(measured).throughput : Number.NaN;
  };
  const ratio = (scenario: string, a: string, b: string) => throughput(scenario, a) / throughput(scenario, b);
  const cpuOf = (scenario: string, server: string) => {
    const measured = results.get(keyOf(scenario, server));
    return measured ? cpuPerRequest(combined(measured)).total : Number.NaN;
  };
  const goals: [string, number, string][] = [
    ["(a) Mailroom / PostGraphile", ratio(names.a, ours.name, pgl.name), "≥ 1.3"],
    [
      "(a) CPU per request (server + PostgreSQL), Mailroom / PostGraphile",
      cpuOf(names.a, ours.name) / cpuOf(names.a, pgl.name),
      "≤ 0.77",
    ],
    [
      "(b) CPU per request (server + PostgreSQL), Mailroom / PostGraphile",
      cpuOf(names.b1, ours.name) / cpuOf(names.b1, pgl.name),
      "–",
    ],
    ["(b) Mailroom / PostGraphile", ratio(names.b1, ours.name, pgl.name), "–"],
    ["(b) next page, Mailroom / PostGraphile", ratio(names.b2, ours.name, pgl.name), "–"],
    ...(before
      ? ([
          ["(a) Mailroom / Mailroom before", ratio(names.a, ours.name, before.name), "–"],
          [
            "(a) CPU per request, Mailroom / Mailroom before",
            cpuOf(names.a, ours.name) / cpuOf(names.a, before.name),
            "–",
          ],
        ] as [string, number, string][])
      : []),
    ["(a) checks on / checks off", ratio(names.a, ours.name, off.name), "≥ 0.90"],
    ["(b) checks on / checks off", ratio(names.b1, ours.name, off.name), "≥ 0.90"],
    ["{ __typename }: Mailroom / bare yoga", ratio(names.typename, ours.name, bare.name), "≥ 0.8"],
  ];
  return [
    `### HTTP (${MODE.connections} connections, ${MODE.seconds} s each after ${MODE.warmup} s of warm-up, ` +
      `${MODE.rounds} round${MODE.rounds > 1 ? "s" : ""} with the servers in turn; ` +
      `${org.messages.toLocaleString("en")} messages in the organization)\n\n` +
      table(
        [
          "scenario",
          "server",
          "req/s",
          "p50 ms",
          "p99 ms",
          "CPU µs / request: server + PostgreSQL = total",
          "SQL statements / request",
          "peak RSS MiB",
          "failed",
        ],
        rows,
      ) +
      "\n\nPeak RSS is each server's over all its reads (ours: before the writes). CPU is read from " +
      "/proc over each timed run: the server's process, and every process of the benchmark's PostgreSQL " +
      "cluster (its backends serving the load, plus the idle servers' polling and background work).",
    table(
      ["ratio", "measured", "goal"],
      goals.map(([n, v, g]) => [n, fixed(v, 2), g]),
    ),
  ];
}

/**
 * sendMessage with a fresh idempotency key per request against the same sends without one, on one
 * server, in alternating turns (each round starts with the other), so that the deliveries the sends
 * queue load both alike. The key costs a lookup before the send and an INSERT in its transaction.
 */
async function sendSuite(ours: ServerProcess, writer: SeededOrganization): Promise<string[]> {
  const [from, to] = writer.inboxes as [
    SeededOrganization["inboxes"][number],
    SeededOrganization["inboxes"][number],
  ];
  const text = "Hello from the benchmark. ".repeat(40);
  const run = randomBytes(4).toString("hex");
  const headers = { authorization: `Bearer ${writer.keys.full}` };
  const scenarios: Scenario[] = [
    {
      name: "sendMessage, no key",
      headers,
      request: (n) => ({
        query: SEND,
        variables: { input: { inboxId: from.globalId, to: [to.email], subject: `Bench ${n}`, text } },
      }),
    },
    {
      name: "sendMessage, idempotencyKey",
      headers,
      request: (n) => ({
        query: SEND,
        variables: {
          input: {
            inboxId: from.globalId,
            to: [to.email],
            subject: `Bench ${n}`,
            text,
            idempotencyKey: `bench-${run}-${n}-${Math.random().toString(36).slice(2)}`,
          },
        },
      }),
    },
  ];
  const rounds = FULL ? 4 : 3;
  const results = new Map<string, Measured[]>();
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? scenarios : [...scenarios].reverse();
    for (const scenario of order)
      results.set(scenario.name, [...(results.get(scenario.name) ?? []), await load(ours, scenario)]);
  }
  const rows = scenarios.map((scenario) => {
    const result = combined(results.get(scenario.name) ?? []);
    return [
      scenario.name,
      fixed(result.throughput, 1),
      fixed(result.p50, 0),
      fixed(result.p99, 0),
      String(result.failures),
    ];
  });
  const throughput = (name: string) => combined(results.get(name) ?? []).throughput;
  const ratio = throughput("sendMessage, idempotencyKey") / throughput("sendMessage, no key");
  return [
    `### Idempotent sends (${MODE.connections} connections, ${MODE.seconds} s each after ${MODE.warmup} s of warm-up, ` +
      `${rounds} rounds in alternating order; every request a new message to a hosted inbox, every key new)\n\n` +
      table(["scenario", "req/s", "p50 ms", "p99 ms", "failed"], rows),
    table(["ratio (throughput)", "measured", "goal"], [["with key / without", fixed(ratio, 2), "≥ 0.90"]]),
  ];
}

/** sendMessage from one inbox of `writer` to another, a new subject each time. */
function oneOrganizationSend(writer: SeededOrganization): Scenario {
  const text = "Hello from the benchmark. ".repeat(40);
  const [from, to] = writer.inboxes as [
    SeededOrganization["inboxes"][number],
    SeededOrganization["inboxes"][number],
  ];
  return {
    name: "sendMessage, one organization",
    headers: { authorization: `Bearer ${writer.keys.full}` },
    request: (n) => ({
      query: SEND,
      variables: { input: { inboxId: from.globalId, to: [to.email], subject: `Bench ${n}`, text } },
    }),
  };
}

/**
 * sendMessage to a hosted inbox, one organization, 20 connections: this tree against the checkout at
 * `--before` (say `git worktree add --detach /tmp/before <commit>`, node_modules symlinked), each on
 * a database of its own on the same PostgreSQL server (the old one migrated by its own server), each
 * seeded alike, in alternating turns, so both share the machine's load alike.
 */
async function sendBeforeSuite(
  database: Database,
  ours: ServerProcess,
  running: ServerProcess[],
): Promise<string[]> {
  const root = flags.before;
  if (!root) throw new Error("--only before needs --before <checkout of the commit before>");
  // For the CPU readings: the database's share, when only this suite runs.
  postmaster ??= await postmasterOf(database.handle.pool);
  const connections = 20;
  const name = `mailroom_before_${randomBytes(4).toString("hex")}`;
  await sql`CREATE DATABASE ${sql.id(name)}`.execute(database.handle.db);
  const url = new URL(database.url);
  url.pathname = `/${name}`;
  const beforeDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-before-"));
  const before = await startMailroom({
    root,
    name: "Mailroom before",
    databaseUrl: url.toString(),
    dataDir: beforeDir,
    env: { MAIL_DOMAIN },
    timeoutMs: 240_000,
  });
  running.push(before);
  const handle = createDatabase(url.toString(), { max: 4 });
  const seedGroup = { name: "writes", messagesPerOrganization: 2_000, seed: 2, mailDomain: MAIL_DOMAIN };
  let theirs: SeededOrganization | undefined;
  try {
    [theirs] = await seedGroups(handle.db, [seedGroup]);
  } finally {
    await handle.destroy();
  }
  const [mine] = await seedGroups(database.handle.db, [{ ...seedGroup, name: "send-before" }]);
  if (!theirs || !mine) throw new Error("seeding returned no organizations");
  const contenders = [
    { server: ours, scenario: oneOrganizationSend(mine), results: [] as Measured[] },
    { server: before, scenario: oneOrganizationSend(theirs), results: [] as Measured[] },
  ];
  const load1 = (os.loadavg()[0] ?? 0).toFixed(2);
  const rounds = FULL ? 4 : 3;
  // Where each server's backends wait while it sends: sampled every 20 ms from pg_stat_activity.
  const waits = new Map<string, Map<string, number>>();
  const databases = new Map([
    [ours.name, new URL(database.url).pathname.slice(1)],
    [before.name, name],
  ]);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const contender of order) {
      const samples = waits.get(contender.server.name) ?? new Map<string, number>();
      waits.set(contender.server.name, samples);
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const { rows } = await sql<{ wait: string; n: number }>`
            SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait, count(*)::int AS n
            FROM pg_stat_activity
            WHERE datname = ${databases.get(contender.server.name)} AND state = 'active' AND pid <> pg_backend_pid()
            GROUP BY 1`.execute(database.handle.db);
          for (const row of rows) samples.set(row.wait, (samples.get(row.wait) ?? 0) + row.n);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      try {
        contender.results.push(await load(contender.server, contender.scenario, connections));
      } finally {
        sampling = false;
        await sampler;
      }
    }
  }
  const waitRows = [...waits].map(([server, samples]) => {
    const total = [...samples.values()].reduce((a, b) => a + b, 0) || 1;
    const top = [...samples].sort((a, b) => b[1] - a[1]).slice(0, 5);
    return [server, top.map(([wait, n]) => `${wait} ${Math.round((100 * n) / total)} %`).join(", ")];
  });
  const load2 = (os.loadavg()[0] ?? 0).toFixed(2);
  const [now, then] = contenders.map((c) => combined(c.results)) as [Measured, Measured];
  const rows = contenders.map((c) => {
    const result = combined(c.results);
    return [
      c.server.name,
      fixed(result.throughput, 1),
      fixed(result.p50, 0),
      fixed(result.p99, 0),
      String(result.failures),
      c.results.map((r) => fixed(r.throughput, 0)).join(" / "),
      cpuCell(result),
    ];
  });
  return [
    `### sendMessage before and after (${connections} connections, one organization, ${MODE.seconds} s each after ` +
      `${MODE.warmup} s of warm-up, ${rounds} rounds in alternating order; before: ${root}; load average ${load1} → ${load2})\n\n` +
      table(
        ["server", "req/s", "p50 ms", "p99 ms", "failed", "per round", "CPU µs/req: server + db = total"],
        rows,
      ),
    table(
      ["ratio (throughput)", "measured", "goal"],
      [
        ["after / before", fixed(now.throughput / then.throughput, 2), "≥ 4"],
        [
          "CPU per request, after / before",
          fixed(cpuPerRequest(now).total / cpuPerRequest(then).total, 2),
          "–",
        ],
        ["after, req/s", fixed(now.throughput, 0), "≥ 1,000"],
      ],
    ),
    "Where the active backends of each server's database were, sampled every 20 ms during its loads " +
      "(`pg_stat_activity`; CPU: active, not waiting):\n\n" +
      table(["server", "backends' time (top 5)"], waitRows),
  ];
}

/**
 * `--only profile` (needs --pg-profile): sendMessage in one organization, 20 connections, one warm-up
 * load, then one load with the statement statistics reset first, read once every delivery job of
 * those sends has run, so that each send's job is counted with it.
 */
async function sendProfileSuite(database: Database, ours: ServerProcess): Promise<string[]> {
  if (!flags["pg-profile"]) throw new Error("--only profile needs --pg-profile");
  postmaster ??= await postmasterOf(database.handle.pool);
  const connections = 20;
  const [mine] = await seedGroups(database.handle.db, [
    { name: "send-profile", messagesPerOrganization: 2_000, seed: 2, mailDomain: MAIL_DOMAIN },
  ]);
  if (!mine) throw new Error("seeding returned no organization");
  const scenario = oneOrganizationSend(mine);
  await load(ours, scenario, connections);
  const db = database.handle.db;
  // Jobs due now, and those still in the job outbox (not yet handed to graphile-worker).
  const pending = async () =>
    Number(
      (
        await sql<{ n: string }>`SELECT ((SELECT count(*) FROM graphile_worker.jobs WHERE run_at <= now())
          + (SELECT count(*) FROM job_outbox))::text AS n`.execute(db)
      ).rows[0]?.n,
    );
  const drained = async () => {
    const deadline = Date.now() + 60_000;
    while ((await pending()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  };
  await drained();
  await resetStatementStats(db);
  const reading = await startCpuReading(ours.pid, postmaster);
  const result = await runLoad({
    url: ours.url,
    headers: scenario.headers,
    request: settled(scenario),
    connections,
    warmupSeconds: 0,
    seconds: MODE.seconds,
  });
  await drained();
  const cpu = await reading();
  const name = new URL(database.url).pathname.slice(1);
  const sends = result.requests - result.failures;
  return [
    `#### The database's share of a send (pg_stat_statements over one more ${MODE.seconds} s load of ${ours.name}: ` +
      `${sends} sends at ${fixed(result.throughput, 1)} req/s; read after their delivery jobs ran; CPU per send ` +
      `${fixed((cpu.server * 1e6) / sends, 0)} µs server + ${fixed((cpu.database * 1e6) / sends, 0)} µs PostgreSQL: ` +
      `${databaseCpuPer(cpu, sends)})\n\n` +
      `Per send; time is the backends' wall time in each statement (CPU and waits, such as the WAL flush of a COMMIT).\n\n${await statementProfile(db, name, sends)}`,
  ];
}

await main();
