// Operations (docs/operations.md, "Metrics and logs"): GET /metrics and its access rules, the
// product's own metrics moving with real traffic, X-Request-Id on every response, one access-log line
// per request without secrets, one-line errors when a port is taken, and the CLI reading a password
// from stdin.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type App, buildApp, StartupError } from "../src/app.ts";
import { MAX_OPERATION_LABELS, OTHER_OPERATIONS } from "../src/server/observability.ts";
import { ROOT, runNode } from "./helpers/process.ts";
import { gql, ok, testConfig } from "./helpers/server.ts";
import { smtpTransport } from "./helpers/smtp.ts";
import { sseSubscribe } from "./helpers/subscriptions.ts";
import { runningFrom, serverOn, serverSuite, tenantFixture } from "./helpers/suite.ts";
import { podsAandB } from "./helpers/world.ts";

/** A pino logger writing into `lines`, as the server's would to stdout. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split("\n").filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { logger: pino({ level: "debug" }, stream), lines, raw };
}

const captured = capturingLogger();
const { database, server } = serverSuite({}, { smtpPort: 0, logger: captured.logger });
const { inboxes, keys, org } = tenantFixture({ database, server }, podsAandB("obs"));
const withToken = serverOn(database, { metricsToken: "a-metrics-token-of-length" });
const publicHost = serverOn(database, { host: "0.0.0.0" });

async function scrape(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/metrics`, { headers });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** The value of one sample line (`name{labels} value`), 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.split(" ").pop());
  }
  return 0;
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("GET /metrics", () => {
  it("is served on a loopback HOST without a token, in Prometheus text format", async () => {
    const { status, headers, text } = await scrape(server.url);
    expect(status).toBe(200);
    expect(headers.get("content-type")).toContain("text/plain");
    for (const name of [
      "mailroom_smtp_replies_total",
      "mailroom_subscriptions_open",
      "mailroom_event_delivery_lag_seconds",
      "mailroom_db_pool_connections",
      "mailroom_jobs",
      "mailroom_graphql_errors_total",
      "graphql_envelop_request_duration",
      "graphql_yoga_http_duration",
      "mailroom_process_resident_memory_bytes",
    ]) {
      expect(text, name).toContain(`# TYPE ${name} `);
    }
    expect(sample(text, "mailroom_db_pool_connections", { state: "total" })).toBeGreaterThan(0);
  });

  it("with METRICS_TOKEN needs the bearer token, even from loopback", async () => {
    expect((await scrape(withToken.url)).status).toBe(401);
    expect((await scrape(withToken.url, { authorization: "Bearer wrong-token-wrong-token" })).status).toBe(
      401,
    );
    expect((await scrape(withToken.url, { authorization: "a-metrics-token-of-length" })).status).toBe(401);
    const allowed = await scrape(withToken.url, { authorization: "Bearer a-metrics-token-of-length" });
    expect(allowed.status).toBe(200);
    expect(allowed.text).toContain("mailroom_jobs");
  });

  it("without METRICS_TOKEN is not served when HOST is not loopback", async () => {
    const url = `http://127.0.0.1:${publicHost.port}`;
    const response = await scrape(url);
    expect(response.status).toBe(404);
    expect(response.text).not.toContain("mailroom_");
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it("counts GraphQL requests and errors by operation and code", async () => {
    await gql(server, "query NobodyHere { viewer { scope } }");
    await ok(server, "query Me { viewer { scope } }", {}, { key: org.apiKey });
    const { text } = await scrape(server.url);
    expect(
      sample(text, "mailroom_graphql_errors_total", { operation: "NobodyHere", code: "UNAUTHENTICATED" }),
    ).toBe(1);
    expect(
      sample(text, "mailroom_graphql_request_duration_seconds_count", { operation: "Me" }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(text, "graphql_envelop_request_duration_count", { operationType: "query" }),
    ).toBeGreaterThan(0);
  });

  it("keeps label values a client chooses bounded: operation names past the limit share one series", async () => {
    const auth = { authorization: "Bearer a-metrics-token-of-length" };
    const names = Array.from({ length: MAX_OPERATION_LABELS + 50 }, (_, i) => `Op${i}`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(names.slice(i, i + 25).map((name) => gql(withToken, `query ${name} { nope }`)));
    }
    // An error path carries list indexes: it must not become a label either.
    await gql(withToken, "query Paths { viewer { scope } }", {}, { key: org.apiKey });
    const { text } = await scrape(withToken.url, auth);
    const operations = new Set<string>();
    for (const line of text.split("\n")) {
      if (line.startsWith("#")) continue;
      if (/operationName=|path=/.test(line)) throw new Error(`an unbounded label is exported: ${line}`);
      const match = /[{,]operation="([^"]*)"/.exec(line);
      if (match?.[1]) operations.add(match[1]);
    }
    expect(operations.size).toBeLessThanOrEqual(MAX_OPERATION_LABELS + 1);
    expect(operations).toContain(OTHER_OPERATIONS);
    expect(sample(text, "mailroom_graphql_errors_total", { operation: OTHER_OPERATIONS })).toBeGreaterThan(0);
  });

  it("counts SMTP replies, open subscriptions and event delivery lag as mail arrives", async () => {
    const before = await scrape(server.url);
    const subscriber = await sseSubscribe(server.url, org.apiKey, "subscription { events { type } }");
    await until("the subscription to be counted", async () => {
      const { text } = await scrape(server.url);
      return sample(text, "mailroom_subscriptions_open", { transport: "sse" }) === 1;
    });
    const transport = smtpTransport(server.smtpPort as number);
    try {
      await transport.sendMail({
        from: "someone@example.net",
        to: inboxes.a.email,
        subject: "counted",
        text: "hello",
      });
      await expect(
        transport.sendMail({ from: "someone@example.net", to: "nobody-here@mailroom.localhost", text: "x" }),
      ).rejects.toThrow(/550/);
    } finally {
      transport.close();
    }
    await subscriber.waitFor(1, 15_000);
    const after = await scrape(server.url);
    const delta = (labels: Record<string, string>) =>
      sample(after.text, "mailroom_smtp_replies_total", labels) -
      sample(before.text, "mailroom_smtp_replies_total", labels);
    expect(delta({ stage: "data", result: "accepted", code: "250" })).toBe(1);
    expect(delta({ stage: "rcpt", result: "refused", code: "550" })).toBe(1);
    expect(sample(after.text, "mailroom_event_delivery_lag_seconds_count")).toBeGreaterThan(
      sample(before.text, "mailroom_event_delivery_lag_seconds_count"),
    );
    await subscriber.dispose();
    await until("the closed subscription to be uncounted", async () => {
      const { text } = await scrape(server.url);
      return sample(text, "mailroom_subscriptions_open", { transport: "sse" }) === 0;
    });
  });

  it("reports background jobs by task and state from the job tables", async () => {
    await database.pool.query(
      "SELECT graphile_worker.add_job('observability-probe', '{}'::json, run_at => now() + interval '1 day')",
    );
    const { text } = await scrape(server.url);
    expect(sample(text, "mailroom_jobs", { task: "observability-probe", state: "queued" })).toBe(1);
    await database.pool.query(
      "DELETE FROM graphile_worker._private_jobs WHERE task_id IN (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'observability-probe')",
    );
  });
});

describe("request ids and the access log", () => {
  it("answers every response with an X-Request-Id, its own or the caller's (cleaned and bounded)", async () => {
    const responses = await Promise.all([
      fetch(`${server.url}/healthz`),
      fetch(`${server.url}/graphql`, { headers: { accept: "text/html" } }),
      fetch(`${server.url}/files/not-a-token`),
      fetch(`${server.url}/metrics`),
      fetch(`${server.url}/graphql?query=%7B__typename%7D`),
    ]);
    const ids = responses.map((response) => response.headers.get("x-request-id"));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(ids).size).toBe(ids.length);

    const given = await fetch(`${server.url}/healthz`, { headers: { "x-request-id": "trace-42.abc:DEF_x" } });
    expect(given.headers.get("x-request-id")).toBe("trace-42.abc:DEF_x");
    const hostile = await fetch(`${server.url}/healthz`, { headers: { "x-request-id": 'a b"<script>;c' } });
    expect(hostile.headers.get("x-request-id")).toBe("abscriptc");
    const long = await fetch(`${server.url}/healthz`, { headers: { "x-request-id": "x".repeat(5000) } });
    expect(long.headers.get("x-request-id")).toBe("x".repeat(128));
    const unusable = await fetch(`${server.url}/healthz`, { headers: { "x-request-id": "<<>>" } });
    expect(unusable.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("logs one line per request: id, operation, status and duration, and never a secret", async () => {
    const secretQuery = `/graphql?query=${encodeURIComponent("query Secretive { viewer { scope } }")}&password=hunter2hunter2`;
    const response = await fetch(`${server.url}${secretQuery}`, {
      headers: {
        authorization: `Bearer ${keys.podA}`,
        "x-request-id": "access-log-1",
        accept: "application/json",
      },
    });
    expect(response.status).toBe(200);
    const post = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${keys.podA}`,
        "x-request-id": "access-log-2",
      },
      body: JSON.stringify({
        query:
          'mutation { login(input: { email: "a@b.test", password: "hunter2hunter2" }) { user { email } } }',
      }),
    });
    await post.text();
    await fetch(`${server.url}/files/some-download-token-value`, {
      headers: { "x-request-id": "access-log-3" },
    });
    const lineFor = (id: string) =>
      until(`the access-log line of ${id}`, async () => captured.lines.filter((line) => line.reqId === id));
    const [first] = await lineFor("access-log-1");
    expect(first).toMatchObject({
      msg: "request",
      method: "GET",
      path: "/graphql",
      operation: "Secretive",
      status: 200,
    });
    expect(typeof first?.ms).toBe("number");
    // The SQL statements the request itself ran (the key's lookup may be cached: zero or more).
    expect(first?.sql).toBe(server.app.services.statementsOf("access-log-1"));
    expect(await lineFor("access-log-1")).toHaveLength(1);
    const [second] = await lineFor("access-log-2");
    expect(second).toMatchObject({ method: "POST", path: "/graphql", operation: "anonymous", status: 200 });
    const [third] = await lineFor("access-log-3");
    expect(third).toMatchObject({ path: "/files/[token]", status: 404 });
    const everything = captured.raw.join("\n");
    for (const secret of [keys.podA, "hunter2hunter2", "some-download-token-value", org.apiKey]) {
      expect(everything).not.toContain(secret);
    }
  });

  it("gives a WebSocket upgrade its X-Request-Id and one access-log line when it closes", async () => {
    const socket = new WebSocket(`${server.url.replace("http", "ws")}/graphql`, "graphql-transport-ws", {
      headers: { "x-request-id": "ws-upgrade-1" },
    });
    let requestId: string | string[] | undefined;
    socket.once("upgrade", (response) => {
      requestId = response.headers["x-request-id"];
    });
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    expect(requestId).toBe("ws-upgrade-1");
    socket.send(
      JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${keys.podA}` } }),
    );
    await new Promise((resolve) => socket.once("message", resolve));
    socket.close(1000);
    const lines = await until("the WebSocket's access-log line", async () => {
      const found = captured.lines.filter((line) => line.reqId === "ws-upgrade-1");
      return found.length > 0 ? found : undefined;
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      msg: "websocket",
      method: "GET",
      path: "/graphql",
      status: 101,
      closeCode: 1000,
    });
    expect(captured.raw.join("\n")).not.toContain(keys.podA);
  });
});

/** A TCP port some other process holds. */
function takenPort(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const holder = createServer();
    holder.listen(0, "127.0.0.1", () => {
      const { port } = holder.address() as { port: number };
      resolve({ port, close: () => new Promise((done) => holder.close(() => done())) });
    });
  });
}

describe("a port that is taken", () => {
  const holder = runningFrom(async () => {
    const taken = await takenPort();
    return { port: taken.port, stop: taken.close };
  });

  it("stops start() with one line naming the port and the variable, for HTTP and SMTP", async () => {
    const silent = pino({ level: "silent" });
    const attempts: [App, RegExp][] = [
      [
        buildApp(testConfig(database.url, { port: holder.port }), { logger: silent }),
        /^HTTP port \d+ on 127\.0\.0\.1 is already in use .*set PORT/,
      ],
      [
        buildApp(testConfig(database.url), { logger: silent, smtpPort: holder.port }),
        /^SMTP port \d+ on 127\.0\.0\.1 is already in use .*set SMTP_PORT/,
      ],
    ];
    for (const [app, message] of attempts) {
      const error = await app.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      await app.stop();
      expect(error).toBeInstanceOf(StartupError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain("\n");
    }
  });

  it("npm start prints that one line (pretty on request) and no stack trace", async () => {
    const run = runNode("src/main.ts", [], {
      DATABASE_URL: database.url,
      PORT: String(holder.port),
      SMTP_PORT: "0",
      LOG_FORMAT: "pretty",
    });
    expect(await run.exited).toBe(1);
    const output = run.output();
    expect(output).toMatch(
      /FATAL.*Mailroom could not start: HTTP port \d+ on 127\.0\.0\.1 is already in use/,
    );
    expect(output).not.toContain('{"level"');
    expect(output).not.toMatch(/\n\s+at /);
  }, 90_000);
});

describe("bootstrap --admin-password-stdin", () => {
  it("reads the password from standard input, so no command line carries it", async () => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        path.join(ROOT, "src/cli.ts"),
        "bootstrap",
        "--org",
        "Stdin",
        "--admin-email",
        "stdin@example.test",
        "--admin-password-stdin",
        "--json",
      ],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: database.url }, stdio: ["pipe", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stdin.end("a passphrase from stdin\n");
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, out).toBe(0);
    const printed = JSON.parse(out.trim().split("\n").pop() as string) as Record<string, string>;
    expect(printed.adminPassword).toBeUndefined();
    expect(out).not.toContain("a passphrase from stdin");
    const login = await gql(
      server,
      'mutation { login(input: { email: "stdin@example.test", password: "a passphrase from stdin" }) { user { email } } }',
    );
    expect(login.body.errors).toBeUndefined();
  }, 90_000);
});
