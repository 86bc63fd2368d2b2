// `npm run bench`: Mailroom side by side with PostGraphile v5, a bare graphql-yoga and itself without
// permission checks, on one database and one data set, in one run; then scale (10k vs a large
// organization), SMTP ingest and event fan-out. Prints the tables; `--record` appends them to
// bench/RESULTS.md with the date, the machine and the command.
//   npm run bench                 quick: about 3 minutes, large organization of 100k messages
//   npm run bench -- --full       15 s per measurement, large organization of 1,000,000 messages
//   npm run bench -- --only http,scale   a subset (http, scale, smtp, events)
// Against a fresh embedded PostgreSQL, or a new database on DATABASE_URL's server (dropped after).
import { execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs, promisify } from "node:util";
import { sql } from "kysely";
import pg from "pg";
import type { TenantScope } from "../src/auth/principal.ts";
import { createDatabase, type DatabaseHandle } from "../src/db/database.ts";
import { startEmbeddedPostgres } from "../src/db/embedded.ts";
import { migrateToLatest } from "../src/db/migrate.ts";
import { listMessages, listThreads, messagesOfThreads } from "../src/mail/repository.ts";
import { type GraphQLRequest, graphql, type LoadResult, runLoad } from "./lib/load.ts";
import { freePort, ROOT, type ServerProcess, startServer } from "./lib/processes.ts";
import { startStatementCounter } from "./lib/statement-counter.ts";
import { type SeededOrganization, seed } from "./seed.ts";

const { values: flags } = parseArgs({
  options: {
    full: { type: "boolean", default: false },
    record: { type: "boolean", default: false },
    only: { type: "string" },
    large: { type: "string" },
    seconds: { type: "string" },
  },
  strict: true,
});
const FULL = flags.full === true;
const SUITES = new Set((flags.only ?? "http,scale,smtp,events").split(",").map((s) => s.trim()));
const MODE = {
  small: 10_000,
  large: Number(flags.large ?? (FULL ? 1_000_000 : 100_000)),
  seconds: Number(flags.seconds ?? (FULL ? 15 : 3)),
  warmup: FULL ? 3 : 1,
  connections: 10,
  /** Sequential requests per scenario when counting statements. */
  counted: 20,
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

interface Row {
  scenario: string;
  server: string;
  result: LoadResult;
  statements?: number;
  peakRssMiB?: number;
}

interface Database {
  url: string;
  adminUrl: string;
  handle: DatabaseHandle;
  close(): Promise<void>;
}

async function openDatabase(): Promise<Database> {
  const external = process.env.DATABASE_URL;
  if (external) {
    const name = `mailroom_bench_${randomBytes(4).toString("hex")}`;
    const admin = new URL(external);
    admin.pathname = "/postgres";
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`CREATE DATABASE ${name}`);
    await client.end();
    const url = new URL(external);
    url.pathname = `/${name}`;
    const handle = createDatabase(url.toString(), { max: 4 });
    return {
      url: url.toString(),
      adminUrl: admin.toString(),
      handle,
      close: async () => {
        await handle.destroy();
        const drop = new pg.Client({ connectionString: admin.toString() });
        await drop.connect();
        await drop.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await drop.end();
      },
    };
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-db-"));
  const embedded = await startEmbeddedPostgres({ dataDir });
  const handle = createDatabase(embedded.url, { max: 4 });
  return {
    url: embedded.url,
    adminUrl: embedded.adminUrl,
    handle,
    close: async () => {
      await handle.destroy();
      await embedded.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

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

function oursContender(name: string, extraEnv: Record<string, string>, dataDir: string): Contender {
  return {
    name,
    start: async (databaseUrl) => {
      const port = await freePort();
      return startServer({
        name,
        args: ["--import", "tsx", "src/main.ts"],
        env: {
          DATABASE_URL: databaseUrl,
          DATA_DIR: dataDir,
          PORT: String(port),
          SMTP_PORT: "0",
          RATE_LIMIT_PER_MINUTE: "0",
          LOG_LEVEL: "warn",
          NODE_ENV: "production",
          MAIL_DOMAIN,
          ...extraEnv,
        },
        port,
        readyPath: "/readyz",
      });
    },
  };
}

function postgraphileContender(authenticatorUrl: string, secret: Buffer, readyToken: string): Contender {
  return {
    name: "PostGraphile",
    start: async (databaseUrl) => {
      const port = await freePort();
      // The counting run swaps the server's address for the proxy's; the role stays the authenticator.
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
  request: GraphQLRequest | ((n: number) => GraphQLRequest);
  /** Checks one answer before the load: the server answers this read, and answers it right. */
  check?: (data: any) => void;
  /** Not counted in the statement pass (writes would change what later reads see). */
  uncounted?: boolean;
}

const firstRequest = (scenario: Scenario) =>
  typeof scenario.request === "function" ? scenario.request(-1) : scenario.request;

/**
 * Starts the server, checks and loads every scenario, notes its peak memory; then restarts it
 * behind the statement counter and sends each read MODE.counted times in sequence, less what the
 * idle server sends in the same time (job polling, key bookkeeping).
 */
async function measure(
  contender: Contender,
  scenarios: Scenario[],
  databaseUrl: string | undefined,
  rows: Row[],
): Promise<void> {
  log(`${contender.name}: starting`);
  const server = await contender.start(databaseUrl ?? "");
  const measured: Row[] = [];
  try {
    for (const scenario of scenarios) {
      scenario.check?.(await graphql(server.url, scenario.headers, firstRequest(scenario)));
      log(`${contender.name}: ${scenario.name}`);
      const result = await runLoad({
        url: server.url,
        headers: scenario.headers,
        request: scenario.request,
        connections: MODE.connections,
        seconds: MODE.seconds,
        warmupSeconds: MODE.warmup,
      });
      measured.push({ scenario: scenario.name, server: contender.name, result });
    }
    const peak = await server.peakRssMiB();
    for (const row of measured) row.peakRssMiB = peak;
  } finally {
    await server.stop();
  }
  rows.push(...measured);
  const counted = scenarios.filter((s) => !s.uncounted);
  if (databaseUrl === undefined || counted.length === 0) return;
  const counter = await startStatementCounter(databaseUrl);
  const proxied = await contender.start(counter.url);
  try {
    for (const scenario of counted) {
      // Warms what a running server has warm (its key cache, PostgreSQL's plans).
      await graphql(proxied.url, scenario.headers, firstRequest(scenario));
    }
    const idleStarted = performance.now();
    const idleBefore = counter.statements();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const idlePerMs = (counter.statements() - idleBefore) / (performance.now() - idleStarted);
    for (const scenario of counted) {
      const request = firstRequest(scenario);
      const before = counter.statements();
      const started = performance.now();
      for (let i = 0; i < MODE.counted; i++) await graphql(proxied.url, scenario.headers, request);
      const idle = idlePerMs * (performance.now() - started);
      const row = measured.find((r) => r.scenario === scenario.name);
      if (row) row.statements = Math.max(0, counter.statements() - before - idle) / MODE.counted;
    }
  } finally {
    await proxied.stop();
    await counter.close();
  }
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
    const threads = await listThreads(capture.db, full, { inboxId }, page, new Set());
    await explain("(a) the inbox's threads, organization key", () =>
      listThreads(capture.db, full, { inboxId }, page, new Set()),
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
        listThreads(capture.db, hiding, { inboxId }, page, new Set()),
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

function throughputOf(rows: Row[], scenario: string, server: string): number | undefined {
  return rows.find((r) => r.scenario === scenario && r.server === server)?.result.throughput;
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
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const sections: string[] = [];
  const needsDatabase = SUITES.has("http") || SUITES.has("scale");
  const database = needsDatabase ? await openDatabase() : undefined;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-server-"));
  try {
    let small: SeededOrganization | undefined;
    let large: SeededOrganization | undefined;
    let writes: SeededOrganization | undefined;
    if (database) {
      await migrateToLatest(database.handle.db);
      log(`seeding ${MODE.small.toLocaleString("en")} + ${MODE.large.toLocaleString("en")} messages`);
      const seedStarted = performance.now();
      const onProgress = (message: string) => log(message);
      [small] = await seed(database.handle.db, {
        name: "small",
        messagesPerOrganization: MODE.small,
        mailDomain: MAIL_DOMAIN,
        onProgress,
      });
      [writes] = await seed(database.handle.db, {
        name: "writes",
        messagesPerOrganization: 2_000,
        seed: 2,
        mailDomain: MAIL_DOMAIN,
      });
      if (SUITES.has("scale")) {
        [large] = await seed(database.handle.db, {
          name: "large",
          messagesPerOrganization: MODE.large,
          seed: 3,
          mailDomain: MAIL_DOMAIN,
          onProgress,
        });
      }
      log(`seeded in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);
    }

    // Scale before the HTTP suite: its writes queue deliveries that would load these latencies.
    if (SUITES.has("scale") && database && small && large) {
      const scale: ScaleRow[] = [];
      const server = await oursContender("Mailroom", {}, dataDir).start(database.url);
      try {
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
              seconds: MODE.seconds,
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
      } finally {
        await server.stop();
      }
      const body = ["(a)", "(a), key hiding spam+trash", "(b)"].map((scenario) => {
        const [s, l] = [
          scale.find((r) => r.scenario === scenario && r.messages === small?.messages),
          scale.find((r) => r.scenario === scenario && r.messages === large?.messages),
        ];
        return [
          scenario,
          `${fixed(s?.p50, 1)} / ${fixed(s?.p99, 1)}`,
          `${fixed(l?.p50, 1)} / ${fixed(l?.p99, 1)}`,
          fixed((l?.p50 ?? Number.NaN) / (s?.p50 ?? Number.NaN), 2),
          fixed((l?.p99 ?? Number.NaN) / (s?.p99 ?? Number.NaN), 2),
        ];
      });
      sections.push(
        `### Scale (one connection, sequential requests; the hot inbox holds about half of its organization's messages)\n\n` +
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
      );
      const plans = await explainOurs(database, large, true);
      await mkdir(path.join(ROOT, "bench/.out"), { recursive: true });
      await writeFile(path.join(ROOT, "bench/.out/explain.txt"), `${plans}\n`);
      sections.push(
        `Plans at ${large.messages.toLocaleString("en")} messages (bench/.out/explain.txt):\n\n\`\`\`\n${plans}\n\`\`\``,
      );
    }

    if (SUITES.has("http") && database && small && writes) {
      const org = small;
      const writer = writes;
      const hot = org.inboxes[0] as SeededOrganization["inboxes"][number];
      const rows: Row[] = [];
      const authenticatorUrl = await preparePostGraphile(database);
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

      // Cursors for the next pages and ids for the writes, read through each server's own API.
      const probe = await oursContender("probe", {}, dataDir).start(database.url);
      const { endCursor, writeIds } = await (async () => {
        try {
          const data = await graphql(probe.url, hiding, {
            query: B_OURS,
            variables: { inbox: hot.globalId },
          });
          const ids: string[] = [];
          let after: string | null = null;
          while (ids.length < 1_000) {
            const page: any = await graphql(probe.url, bearer(writer.keys.full), {
              query: `query($after: String) { messages(first: 200, after: $after) {
                edges { node { id } } pageInfo { hasNextPage endCursor } } }`,
              variables: { after },
            });
            ids.push(...page.messages.edges.map((e: any) => e.node.id));
            if (!page.messages.pageInfo.hasNextPage) break;
            after = page.messages.pageInfo.endCursor;
          }
          return { endCursor: data.messages.pageInfo.endCursor as string, writeIds: ids };
        } finally {
          await probe.stop();
        }
      })();
      const postgraphile = postgraphileContender(authenticatorUrl, secret, pgFull.authorization.slice(7));
      const pgEndCursor = await (async () => {
        const server = await postgraphile.start(database.url);
        try {
          const data = await graphql(server.url, pgHiding, {
            query: B_POSTGRAPHILE,
            variables: { inbox: pgInboxId },
          });
          return data.inbox.messagesByOrgIdAndPodIdAndInboxId.pageInfo.endCursor as string;
        } finally {
          await server.stop();
        }
      })();

      const fifty = (list: any[]) => {
        if (list.length !== 50) throw new Error(`expected 50 items, got ${list.length}`);
      };
      const names = {
        typename: "{ __typename }",
        a: "(a) inbox threads(50) + messages(3)",
        b1: "(b) messages(received, 50), hides spam+trash",
        b2: "(b) next page (after)",
        send: "(c) sendMessage to a hosted inbox",
        read: "(c) updateMessage (mark read)",
      };
      const ourReads: Scenario[] = [
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
          check: (data) => fifty(data.messages.edges),
        },
        {
          name: names.b2,
          headers: hiding,
          request: { query: B_OURS, variables: { inbox: hot.globalId, after: endCursor } },
          check: (data) => fifty(data.messages.edges),
        },
      ];
      const [from, to] = writer.inboxes as [
        SeededOrganization["inboxes"][number],
        SeededOrganization["inboxes"][number],
      ];
      const text = "Hello from the benchmark. ".repeat(40);

      await measure(
        bareYoga,
        [{ name: names.typename, headers: {}, request: { query: TYPENAME } }],
        undefined,
        rows,
      );
      await measure(
        oursContender("Mailroom, checks off", { BENCH_DISABLE_AUTHORIZATION: "true" }, dataDir),
        ourReads,
        database.url,
        rows,
      );
      await measure(
        postgraphile,
        [
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
            check: (data) => fifty(data.inbox.messagesByOrgIdAndPodIdAndInboxId.edges),
          },
          {
            name: names.b2,
            headers: pgHiding,
            request: { query: B_POSTGRAPHILE, variables: { inbox: pgInboxId, after: pgEndCursor } },
            check: (data) => fifty(data.inbox.messagesByOrgIdAndPodIdAndInboxId.edges),
          },
        ],
        database.url,
        rows,
      );
      await measure(
        oursContender("Mailroom", {}, dataDir),
        [
          { name: names.typename, headers: full, request: { query: TYPENAME } },
          ...ourReads,
          {
            name: names.read,
            headers: bearer(writer.keys.full),
            request: (n) => ({
              query: MARK_READ,
              variables: { id: writeIds[(n + writeIds.length) % writeIds.length] },
            }),
          },
        ],
        database.url,
        rows,
      );
      // Sending last, on a server of its own: the deliveries it queues would load anything after it.
      await measure(
        oursContender("Mailroom", {}, dataDir),
        [
          {
            name: names.send,
            headers: bearer(writer.keys.full),
            request: (n) => ({
              query: SEND,
              variables: { input: { inboxId: from.globalId, to: [to.email], subject: `Bench ${n}`, text } },
            }),
            uncounted: true,
          },
        ],
        database.url,
        rows,
      );

      sections.push(
        `### HTTP (${MODE.connections} connections, ${MODE.seconds} s each after ${MODE.warmup} s of warm-up; ` +
          `${MODE.small.toLocaleString("en")} messages in the organization)\n\n` +
          table(
            [
              "scenario",
              "server",
              "req/s",
              "p50 ms",
              "p99 ms",
              "SQL statements / request",
              "peak RSS MiB",
              "failed",
            ],
            Object.values(names).flatMap((name) =>
              rows
                .filter((r) => r.scenario === name)
                .map((r) => [
                  name,
                  r.server,
                  whole(r.result.throughput),
                  fixed(r.result.p50, 0),
                  fixed(r.result.p99, 0),
                  fixed(r.statements),
                  whole(r.peakRssMiB),
                  String(r.result.failures),
                ]),
            ),
          ),
      );
      const ratio = (scenario: string, a: string, b: string) => {
        const [x, y] = [throughputOf(rows, scenario, a), throughputOf(rows, scenario, b)];
        return x === undefined || y === undefined ? Number.NaN : x / y;
      };
      const goals: [string, number, string][] = [
        ["(a) Mailroom / PostGraphile", ratio(names.a, "Mailroom", "PostGraphile"), "≥ 1.3"],
        ["(b) Mailroom / PostGraphile", ratio(names.b1, "Mailroom", "PostGraphile"), "–"],
        ["(b) next page, Mailroom / PostGraphile", ratio(names.b2, "Mailroom", "PostGraphile"), "–"],
        ["(a) checks on / checks off", ratio(names.a, "Mailroom", "Mailroom, checks off"), "≥ 0.90"],
        ["(b) checks on / checks off", ratio(names.b1, "Mailroom", "Mailroom, checks off"), "≥ 0.90"],
        ["{ __typename }: Mailroom / bare yoga", ratio(names.typename, "Mailroom", "bare yoga"), "≥ 0.8"],
      ];
      sections.push(
        table(
          ["ratio (throughput)", "measured", "goal"],
          goals.map(([n, v, g]) => [n, fixed(v, 2), g]),
        ),
      );
    }

    if (SUITES.has("smtp")) {
      log("SMTP ingest");
      const smtp = await childBenchmark("bench/smtp-ingest.ts", FULL ? [] : ["--quick"]);
      sections.push(`### SMTP ingest\n\n\`\`\`json\n${JSON.stringify(smtp, null, 2)}\n\`\`\``);
    }
    if (SUITES.has("events")) {
      log("event fan-out");
      const events = await childBenchmark("bench/event-latency.ts", FULL ? [] : ["--quick"]);
      sections.push(`### Event fan-out\n\n\`\`\`json\n${JSON.stringify(events, null, 2)}\n\`\`\``);
    }
  } finally {
    await database?.close();
    await rm(dataDir, { recursive: true, force: true });
  }

  const seconds = (performance.now() - started) / 1000;
  const report = [
    `## ${new Date().toISOString()} — \`${command}\``,
    `Machine: ${machineLine}. Took ${seconds.toFixed(0)} s.`,
    ...sections,
  ].join("\n\n");
  process.stdout.write(`\n${report}\n`);
  if (flags.record) {
    await appendFile(path.join(ROOT, "bench/RESULTS.md"), `\n\n${report}\n`);
    log("appended to bench/RESULTS.md");
  }
}

await main();
