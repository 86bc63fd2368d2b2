// A database that is down or does not answer: every client sees HTTP 503 SERVICE_UNAVAILABLE with
// Retry-After (graphql-ws: that code on an operation, close 4503 at connection_init), never a masked
// 200 or a 500, within the configured bounds; and everything works again once the database is back.
// The faults are injected by a TCP proxy between this file's server and its database.
import { randomBytes } from "node:crypto";
import type { Client } from "graphql-ws";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "../src/auth/keys.ts";
import { createInboxViaApi, createKey } from "./helpers/factories.ts";
import { type GraphQLResponse, gql } from "./helpers/server.ts";
import { eagerWsClient } from "./helpers/subscriptions.ts";
import { databaseSuite, organizationFixture, serverOn } from "./helpers/suite.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";

const DATABASE_TIMEOUT_MS = 1000;
const STATEMENT_TIMEOUT_MS = 1000;
/** Scheduling noise on a loaded machine (two cores shared by parallel test files). */
const MARGIN_MS = 1000;

const INBOXES = "{ inboxes(first: 5) { edges { node { id } } } }";
const CREATE_POD = "mutation($name: String!) { createPod(input: { name: $name }) { pod { id } } }";
const LOGIN =
  "mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { user { email } } }";

const database = databaseSuite();
let proxy: TcpProxy;
beforeAll(async () => {
  proxy = await TcpProxy.start(database.url);
});
afterAll(() => proxy?.close());
// The server reaches its database through the proxy; the tests read and write it beside the proxy.
const server = serverOn(database, () => ({
  databaseUrl: proxy.url(database.url),
  databaseTimeoutMs: DATABASE_TIMEOUT_MS,
  statementTimeoutMs: STATEMENT_TIMEOUT_MS,
}));
const org = organizationFixture(database, "Faults");
let inboxId: string;

beforeAll(async () => {
  inboxId = (
    await createInboxViaApi(server, org.apiKey, { username: `faults-${randomBytes(4).toString("hex")}` })
  ).id;
});

function expect503(response: GraphQLResponse, path?: string) {
  expect(response.status).toBe(503);
  expect(response.headers.get("retry-after")).toMatch(/^[1-9]\d*$/);
  expect(response.body.errors?.map((e) => e.extensions?.code)).toEqual(["SERVICE_UNAVAILABLE"]);
  if (path !== undefined) expect(response.body.errors?.[0]?.path).toEqual([path]);
  // Nothing of the cause reaches the client.
  expect(JSON.stringify(response.body)).not.toMatch(/ECONN|terminated|timeout|postgres|stack/i);
}

async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = Date.now();
  const result = await work();
  return { result, ms: Date.now() - started };
}

async function readyz(): Promise<number> {
  return (await fetch(`${server.url}/readyz`)).status;
}

async function waitUntilReady(withinMs: number): Promise<number> {
  const started = Date.now();
  while ((await readyz()) !== 200) {
    if (Date.now() - started > withinMs) throw new Error("/readyz never answered 200");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - started;
}

/** A key made while the database is up and never used since: no cache on this node knows it. */
async function freshKey(): Promise<string> {
  return (await createKey(server, org.apiKey, { name: "fresh" })).secret;
}

/** A session cookie from a login, never used since (the session is not cached either). */
async function freshSession(): Promise<string> {
  const response = await gql(server, LOGIN, { email: org.adminEmail, password: org.adminPassword });
  expect(response.status).toBe(200);
  return (response.headers.get("set-cookie") ?? "").split(";")[0] as string;
}

const MESSAGE_RECEIVED = "subscription($id: ID) { messageReceived(inboxId: $id) { id } }";
/** Reads the events table before it goes live: fails inside the stream when the database is away. */
const EVENTS = "subscription { events { id } }";

/** The SSE request a client makes for a subscription: its status, headers and the events' payloads. */
async function sse(key: string, query: string) {
  const controller = new AbortController();
  const response = await fetch(`${server.url}/graphql`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "text/event-stream",
      authorization: `Bearer ${key}`,
    },
    body: JSON.stringify({
      query,
      variables: query === MESSAGE_RECEIVED ? { id: inboxId } : {},
    }),
    signal: controller.signal,
  });
  const reader = response.body?.getReader();
  let text = "";
  const deadline = Date.now() + 5000;
  while (!/data: \{/.test(text) && Date.now() < deadline && reader) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  controller.abort();
  const payloads = [...text.matchAll(/^data: (\{.*\})$/gm)].map((m) => JSON.parse(m[1] as string));
  return { status: response.status, headers: response.headers, payloads };
}

interface WsConnection {
  client: Client;
  closed: Promise<number>;
  acknowledged: Promise<boolean>;
  /** The last result of an operation, or the errors it ended with. */
  run(query: string): Promise<{ data?: unknown; errors?: { extensions?: Record<string, unknown> }[] }>;
}

function wsConnect(key: string): WsConnection {
  let onClosed: (code: number) => void = () => {};
  let onAck: (ok: boolean) => void = () => {};
  const closed = new Promise<number>((resolve) => {
    onClosed = resolve;
  });
  const acknowledged = new Promise<boolean>((resolve) => {
    onAck = resolve;
  });
  const client = eagerWsClient(server.wsUrl, `Bearer ${key}`, {
    connected: () => onAck(true),
    closed: (event) => {
      onAck(false);
      onClosed((event as { code: number }).code);
    },
  });
  const run = (query: string) =>
    new Promise<any>((resolve, reject) => {
      let result: unknown;
      client.subscribe(
        { query },
        {
          next: (value) => (result = value),
          error: (error) => (Array.isArray(error) ? resolve({ errors: error }) : reject(error)),
          complete: () => resolve(result),
        },
      );
    });
  return { client, closed, acknowledged, run };
}

describe("a database that is down", () => {
  it("answers 503 SERVICE_UNAVAILABLE with Retry-After on every path, then recovers", async () => {
    // Before: a cached key (used once), a fresh key, a fresh session and an open WebSocket.
    expect((await gql(server, INBOXES, {}, { key: org.apiKey })).status).toBe(200);
    const uncachedKey = await freshKey();
    const cookie = await freshSession();
    const open = wsConnect(org.apiKey);
    expect(await open.acknowledged).toBe(true);

    await proxy.down();
    try {
      const query = await timed(() => gql(server, INBOXES, {}, { key: org.apiKey }));
      expect503(query.result, "inboxes");
      expect(query.ms).toBeLessThan(DATABASE_TIMEOUT_MS + MARGIN_MS);

      expect503(await gql(server, CREATE_POD, { name: "while down" }, { key: org.apiKey }), "createPod");
      expect503(await gql(server, INBOXES, {}, { key: uncachedKey }));
      expect503(await gql(server, INBOXES, {}, { key: generateApiKey() }));
      expect503(await gql(server, INBOXES, {}, { cookie }));

      const codes = (payloads: any[]) => payloads.flatMap((p) => p.errors.map((e: any) => e.extensions.code));
      const refusedStream = await sse(uncachedKey, MESSAGE_RECEIVED);
      expect(refusedStream.status).toBe(503);
      expect(refusedStream.headers.get("retry-after")).toMatch(/^[1-9]\d*$/);
      expect(codes(refusedStream.payloads)).toEqual(["SERVICE_UNAVAILABLE"]);
      // A stream that has started (status 200 sent) can only carry the code in its event.
      const failedStream = await sse(org.apiKey, EVENTS);
      expect(codes(failedStream.payloads)).toEqual(["SERVICE_UNAVAILABLE"]);

      // graphql-ws: an operation on an open connection fails with the code; a new connection whose key
      // cannot be checked is closed with 4503 (which clients retry), not 4401 (which tells them the key is bad).
      for (const operation of [INBOXES, EVENTS]) {
        const result = await open.run(operation);
        expect(result.errors?.map((e) => e.extensions?.code)).toEqual(["SERVICE_UNAVAILABLE"]);
      }
      const refused = wsConnect(uncachedKey);
      expect(await refused.closed).toBe(4503);
      await refused.client.dispose();

      const ready = await timed(readyz);
      expect(ready.result).toBe(503);
      expect(ready.ms).toBeLessThan(DATABASE_TIMEOUT_MS + MARGIN_MS);
    } finally {
      await proxy.up();
    }

    await waitUntilReady(10_000);
    expect((await gql(server, INBOXES, {}, { key: org.apiKey })).status).toBe(200);
    expect((await gql(server, INBOXES, {}, { key: uncachedKey })).status).toBe(200);
    expect((await gql(server, INBOXES, {}, { cookie })).status).toBe(200);
    expect(await open.run(INBOXES)).toMatchObject({ data: { inboxes: { edges: expect.any(Array) } } });
    const again = wsConnect(uncachedKey);
    expect(await again.acknowledged).toBe(true);
    await again.client.dispose();
    await open.client.dispose();
  }, 30_000);
});

describe("a database that does not answer", () => {
  it("answers /readyz 503 within DATABASE_TIMEOUT_MS and requests 503 within the read timeout", async () => {
    // Connections already open (the pool's, the LISTEN one) freeze along with new ones.
    expect((await gql(server, INBOXES, {}, { key: org.apiKey })).status).toBe(200);
    const uncachedKey = await freshKey();

    proxy.pause();
    try {
      const ready = await timed(readyz);
      expect(ready.result).toBe(503);
      expect(ready.ms).toBeLessThan(DATABASE_TIMEOUT_MS + MARGIN_MS);

      // On a pooled connection: the client gives up a little after statement_timeout (which a frozen
      // server cannot enforce); on a new one, after DATABASE_TIMEOUT_MS.
      const bound = STATEMENT_TIMEOUT_MS + DATABASE_TIMEOUT_MS + MARGIN_MS;
      const requests = await Promise.all([
        timed(() => gql(server, INBOXES, {}, { key: org.apiKey })),
        timed(() => gql(server, CREATE_POD, { name: "while frozen" }, { key: org.apiKey })),
        timed(() => gql(server, INBOXES, {}, { key: uncachedKey })),
      ]);
      for (const { result, ms } of requests) {
        expect503(result);
        expect(ms).toBeLessThan(bound);
      }
    } finally {
      proxy.resume();
    }

    await waitUntilReady(5_000);
    // Connections that timed out were closed, not handed out again behind a statement that never ends:
    // a burst larger than the pool's idle connections answers at once.
    const burst = await timed(() =>
      Promise.all(Array.from({ length: 10 }, () => gql(server, INBOXES, {}, { key: org.apiKey }))),
    );
    expect(burst.result.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(burst.ms).toBeLessThan(DATABASE_TIMEOUT_MS);
    expect((await gql(server, INBOXES, {}, { key: uncachedKey })).status).toBe(200);
  }, 30_000);
});

describe("a statement that runs too long", () => {
  it("is cancelled by statement_timeout and answered 503, the database untouched", async () => {
    // A lock held elsewhere keeps the statement waiting, as a slow plan or a busy table would.
    const pods = () => sql<{ n: string }>`SELECT count(*) AS n FROM pods`.execute(database.db);
    const before = (await pods()).rows[0]?.n;
    const held = database.db.transaction().execute(async (trx) => {
      await sql`LOCK TABLE inboxes, pods IN ACCESS EXCLUSIVE MODE`.execute(trx);
      await new Promise((resolve) =>
        setTimeout(resolve, STATEMENT_TIMEOUT_MS + DATABASE_TIMEOUT_MS + MARGIN_MS),
      );
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const [query, mutation] = await Promise.all([
      timed(() => gql(server, INBOXES, {}, { key: org.apiKey })),
      timed(() => gql(server, CREATE_POD, { name: "cancelled" }, { key: org.apiKey })),
    ]);
    for (const { result, ms } of [query, mutation]) {
      expect503(result);
      // Cancelled by the server at statement_timeout, well before the client's own read timeout.
      expect(ms).toBeGreaterThanOrEqual(STATEMENT_TIMEOUT_MS - 100);
      expect(ms).toBeLessThan(STATEMENT_TIMEOUT_MS + DATABASE_TIMEOUT_MS);
    }
    await held;
    expect((await pods()).rows[0]?.n).toBe(before);
    expect((await gql(server, INBOXES, {}, { key: org.apiKey })).status).toBe(200);
  }, 30_000);
});

describe("a connection that stops answering", () => {
  it("is closed after the read timeout and replaced, not handed out again", async () => {
    expect((await gql(server, INBOXES, {}, { key: org.apiKey })).status).toBe(200);
    // Every pooled connection goes silent; new ones would work. Enough requests at once to take each
    // idle connection (the pool holds at most 20, one of them the job worker's).
    proxy.freezeOpen();
    try {
      const first = await Promise.all(
        Array.from({ length: 19 }, () => gql(server, INBOXES, {}, { key: org.apiKey })),
      );
      for (const response of first) if (response.status !== 200) expect503(response);
      // Without closing them, the silent connections would go back to the pool and fail these too.
      const second = await timed(() =>
        Promise.all(Array.from({ length: 10 }, () => gql(server, INBOXES, {}, { key: org.apiKey }))),
      );
      expect(second.result.map((r) => r.status)).toEqual(Array(10).fill(200));
      expect(second.ms).toBeLessThan(DATABASE_TIMEOUT_MS);
    } finally {
      proxy.resume();
    }
  }, 30_000);
});

describe("a credential check the database cannot answer", () => {
  it("closes a WebSocket with 4503 (retry), never 4401 (your key is bad)", async () => {
    const open = wsConnect(org.apiKey);
    expect(await open.acknowledged).toBe(true);
    // The LISTEN connection comes back after an outage and every open connection's key is checked
    // again; this one's check waits on a lock until statement_timeout cancels it.
    const closedOrTimedOut = Promise.race([
      open.closed,
      new Promise((resolve) => setTimeout(resolve, 10_000)),
    ]);
    const held = database.db.transaction().execute(async (trx) => {
      await sql`LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE`.execute(trx);
      await closedOrTimedOut;
    });
    await proxy.down();
    await proxy.up();
    const code = await closedOrTimedOut;
    expect(code).toBe(4503);
    await held;
    await open.client.dispose();
  }, 30_000);
});
