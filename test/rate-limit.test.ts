// Rate limits (docs/permissions.md, "Rate limits"): per key, per session, per IP for anonymous callers, the stricter
// login buckets, graphql-ws operations, Redis shared by two nodes, and failing closed (503) while
// Redis is unreachable, with recovery once it answers again.
import { randomBytes } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { createClient } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import WebSocket from "ws";
import { RATE_LIMIT_UNAVAILABLE_MESSAGE, SENSITIVE_LIMITS } from "../src/auth/rate-limit.ts";
import type { Config } from "../src/config.ts";
import { createKey } from "./helpers/factories.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { databaseSuite, organizationFixture } from "./helpers/suite.ts";

const REDIS = { host: "127.0.0.1", port: 6379 };

/** A PING to the machine's Redis; the Redis tests run only when it answers. */
async function redisAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(REDIS);
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}
const redisAvailable = await redisAnswers();
if (!redisAvailable) console.warn("No Redis answers at 127.0.0.1:6379: skipping the Redis rate-limit tests.");

const database = databaseSuite();
const org = organizationFixture(database);
const servers: TestServer[] = [];

async function serve(overrides: Partial<Config>): Promise<TestServer> {
  const server = await startTestServer(database.url, overrides);
  servers.push(server);
  return server;
}

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

/**
 * A server for one test only, stopped when it ends: each holds a pool, a LISTEN connection and one
 * per job runner, and a file that kept seven alive at once used up a shared PostgreSQL's connections.
 */
async function serveInTest(overrides: Partial<Config>): Promise<TestServer> {
  const server = await startTestServer(database.url, overrides);
  onTestFinished(() => server.stop());
  return server;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { data?: any; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}

/** A JSON POST to /graphql from `from` (any 127.0.0.0/8 address: a distinct client IP). */
function post(
  server: TestServer,
  query: string,
  options: { key?: string; authorization?: string; cookie?: string; from?: string; variables?: object } = {},
): Promise<Answer> {
  const url = new URL(`${server.url}/graphql`);
  const body = JSON.stringify({ query, variables: options.variables ?? {} });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  if (options.authorization) headers.authorization = options.authorization;
  if (options.cookie) headers.cookie = options.cookie;
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        headers,
        localAddress: options.from ?? "127.0.0.1",
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(text) });
        });
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

/** `RateLimit-Policy: "name";q=…;w=…` and `RateLimit: "name";r=…;t=…`, parsed. */
function limitHeaders(answer: Answer) {
  const policy = /^"([^"]+)";q=(\d+);w=(\d+)$/.exec(String(answer.headers["ratelimit-policy"]));
  const limit = /^"([^"]+)";r=(\d+);t=(\d+)$/.exec(String(answer.headers.ratelimit));
  if (!policy || !limit) throw new Error(`no RateLimit headers in ${JSON.stringify(answer.headers)}`);
  return {
    policy: policy[1],
    q: Number(policy[2]),
    w: Number(policy[3]),
    name: limit[1],
    r: Number(limit[2]),
    t: Number(limit[3]),
    retryAfter:
      answer.headers["retry-after"] === undefined ? undefined : Number(answer.headers["retry-after"]),
  };
}

function expectRateLimited(answer: Answer, policy: string, q: number, w: number) {
  expect(answer.status).toBe(429);
  expect(answer.body.errors).toHaveLength(1);
  expect(answer.body.errors?.[0]?.extensions?.code).toBe("RATE_LIMITED");
  const headers = limitHeaders(answer);
  expect(headers).toMatchObject({ policy, name: policy, q, w, r: 0 });
  expect(headers.t).toBeGreaterThanOrEqual(1);
  expect(headers.t).toBeLessThanOrEqual(w);
  // The headers agree: Retry-After is the RateLimit reset, the limit is the policy's quota.
  expect(headers.retryAfter).toBe(headers.t);
}

const VIEWER = "{ viewer { scope } }";
const LOGIN =
  "mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { user { email } } }";

describe("with the in-memory store", () => {
  const LIMIT = 5;
  let server: TestServer;
  beforeAll(async () => {
    server = await serve({ rateLimitPerMinute: LIMIT });
  });

  it("counts each key down in the headers, then answers 429 with headers that agree", async () => {
    const key = (await createKey(server, org.apiKey)).secret;
    for (let i = 1; i <= LIMIT; i++) {
      const answer = await post(server, VIEWER, { key });
      expect(answer.status).toBe(200);
      expect(limitHeaders(answer)).toMatchObject({ policy: "default", q: LIMIT, w: 60, r: LIMIT - i });
      expect(answer.headers["retry-after"]).toBeUndefined();
    }
    const refused = await post(server, VIEWER, { key });
    expectRateLimited(refused, "default", LIMIT, 60);
    // Refused before anything is parsed: the whole body is the one error.
    expect(refused.body).toEqual({
      errors: [
        {
          message: expect.stringMatching(/^Too many requests\. Try again in \d+ seconds\.$/),
          extensions: { code: "RATE_LIMITED" },
        },
      ],
    });
  });

  it("isolates keys: one key's exhaustion leaves another (and the IP) alone", async () => {
    const exhausted = (await createKey(server, org.apiKey)).secret;
    const other = (await createKey(server, org.apiKey)).secret;
    for (let i = 0; i < LIMIT; i++) await post(server, VIEWER, { key: exhausted, from: "127.0.0.11" });
    expect((await post(server, VIEWER, { key: exhausted, from: "127.0.0.11" })).status).toBe(429);
    const fine = await post(server, VIEWER, { key: other, from: "127.0.0.11" });
    expect(fine.status).toBe(200);
    expect(limitHeaders(fine).r).toBe(LIMIT - 1);
    expect((await post(server, "{ __typename }", { from: "127.0.0.11" })).status).toBe(200);
  });

  it("counts anonymous calls and unusable credentials per IP", async () => {
    const key = (await createKey(server, org.apiKey)).secret;
    const ip = "127.0.0.12";
    // A malformed and an unknown (well-formed) key are the IP's requests: 401 while within the limit.
    const malformed = await post(server, VIEWER, { authorization: "Bearer not-a-key", from: ip });
    const unknown = await post(server, VIEWER, { key: `mr_${"A".repeat(38)}`, from: ip });
    for (const answer of [malformed, unknown]) {
      expect(answer.status).toBe(401);
      expect(limitHeaders(answer).policy).toBe("default");
    }
    expect(limitHeaders(unknown).r).toBe(LIMIT - 2);
    for (let i = 0; i < LIMIT - 2; i++)
      expect((await post(server, "{ __typename }", { from: ip })).status).toBe(200);
    expectRateLimited(await post(server, "{ __typename }", { from: ip }), "default", LIMIT, 60);
    // Refused before authentication is even looked at: 429, not 401.
    expectRateLimited(
      await post(server, VIEWER, { authorization: "Bearer nope", from: ip }),
      "default",
      LIMIT,
      60,
    );
    // Another address, and a valid key from this one, are still served.
    expect((await post(server, "{ __typename }", { from: "127.0.0.13" })).status).toBe(200);
    expect((await post(server, VIEWER, { key, from: ip })).status).toBe(200);
  });

  it("applies the same per-key limit to graphql-ws operations, failing only the refused operation", async () => {
    const key = (await createKey(server, org.apiKey)).secret;
    const client = createClient({
      url: server.wsUrl,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { Authorization: `Bearer ${key}` },
    });
    try {
      const run = () =>
        new Promise<{ data?: unknown; errors?: readonly { message: string; extensions?: any }[] }>(
          (resolve, reject) => {
            let result: { data?: unknown; errors?: readonly { message: string; extensions?: any }[] } = {};
            client.subscribe(
              { query: VIEWER },
              {
                next: (value) => {
                  result = value as typeof result;
                },
                error: (error) => (Array.isArray(error) ? resolve({ errors: error }) : reject(error)),
                complete: () => resolve(result),
              },
            );
          },
        );
      for (let i = 0; i < LIMIT; i++)
        expect(await run()).toEqual({ data: { viewer: { scope: "ORGANIZATION" } } });
      const refused = await run();
      expect(refused.errors?.[0]?.extensions?.code).toBe("RATE_LIMITED");
      expect(refused.errors?.[0]?.message).toMatch(/^Too many requests/);
      // The connection stays open; HTTP with the same key is refused too (one bucket per key).
      expect((await run()).errors?.[0]?.extensions?.code).toBe("RATE_LIMITED");
      expect((await post(server, VIEWER, { key })).status).toBe(429);
    } finally {
      await client.dispose();
    }
  });

  it("counts a signed-in person per session, not per IP", async () => {
    const loginServer = await serveInTest({ rateLimitPerMinute: LIMIT });
    const ip = "127.0.0.14";
    const signedIn = await post(loginServer, LOGIN, {
      from: ip,
      variables: { email: org.adminEmail, password: org.adminPassword },
    });
    expect(signedIn.status).toBe(200);
    const cookie = String(signedIn.headers["set-cookie"]).split(";")[0] as string;
    for (let i = 0; i < LIMIT - 1; i++) await post(loginServer, "{ __typename }", { from: ip });
    expect((await post(loginServer, "{ __typename }", { from: ip })).status).toBe(429);
    const asSession = await post(loginServer, VIEWER, { cookie, from: ip });
    expect(asSession.status).toBe(200);
    expect(limitHeaders(asSession).r).toBe(LIMIT - 1);
  });

  it("is off with RATE_LIMIT_PER_MINUTE=0", async () => {
    const unlimited = await serveInTest({ rateLimitPerMinute: 0 });
    for (let i = 0; i < 3; i++) {
      const answer = await post(unlimited, VIEWER, { key: org.apiKey, from: "127.0.0.15" });
      expect(answer.status).toBe(200);
      expect(answer.headers.ratelimit).toBeUndefined();
    }
  });
});

describe("login", () => {
  const { perIp, perTarget } = SENSITIVE_LIMITS.login;
  let server: TestServer;
  beforeAll(async () => {
    // A generous default, so only login's own, much stricter, buckets can refuse.
    server = await serve({ rateLimitPerMinute: 1000 });
  });
  const attempt = (email: string, from: string, password = "wrong password") =>
    post(server, LOGIN, { from, variables: { email, password } });

  it("is limited per IP, far below the default, before the password is checked", async () => {
    const ip = "127.0.0.21";
    for (let i = 0; i < perIp.limit; i++) {
      const answer = await attempt(`nobody-${i}@example.test`, ip);
      expect(answer.status).toBe(200);
      expect(answer.body.data).toEqual({ login: null });
    }
    // Even the right password is refused now: the limit is checked first.
    const refused = await attempt(org.adminEmail, ip, org.adminPassword);
    expectRateLimited(refused, "login-ip", perIp.limit, perIp.windowSeconds);
    expect(refused.headers["set-cookie"]).toBeUndefined();
    expect(refused.body).toEqual({
      data: { login: null },
      errors: [expect.objectContaining({ path: ["login"] })],
    });
    // Other queries from that IP, and logins from another IP, go on.
    expect((await post(server, "{ __typename }", { from: ip })).status).toBe(200);
    expect((await attempt("someone@example.test", "127.0.0.22")).status).toBe(200);
  });

  it("is limited per target email across IPs", async () => {
    const target = `target-${randomBytes(3).toString("hex")}@example.test`;
    // Spread over addresses so that no single IP reaches its own limit.
    for (let i = 0; i < perTarget.limit; i++) {
      expect((await attempt(i % 2 ? target : target.toUpperCase(), `127.0.0.${30 + (i % 3)}`)).status).toBe(
        200,
      );
    }
    expectRateLimited(
      await attempt(target, "127.0.0.33"),
      "login-target",
      perTarget.limit,
      perTarget.windowSeconds,
    );
    // The same fresh address may still try another email.
    expect((await attempt("other@example.test", "127.0.0.33")).status).toBe(200);
  });
});

/** A TCP proxy in front of the machine's Redis that can be stopped, restarted and paused. */
async function startRedisProxy() {
  const sockets = new Set<net.Socket>();
  let paused = false;
  const held: (() => void)[] = [];
  let server: net.Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const listener = net.createServer((client) => {
        const upstream = net.connect(REDIS);
        sockets.add(client).add(upstream);
        // Paused: bytes are held, not lost (a slow Redis), and flushed on resume.
        client.on("data", (data) => (paused ? held.push(() => upstream.write(data)) : upstream.write(data)));
        upstream.on("data", (data) => client.write(data));
        const close = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on("error", close).on("close", close);
        upstream.on("error", close).on("close", close);
      });
      server = listener;
      listener.once("error", reject);
      listener.listen(port, "127.0.0.1", () => {
        port = (listener.address() as net.AddressInfo).port;
        resolve();
      });
    });
  await listen();
  return {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    /** Closes the port and every connection through it: Redis is gone. */
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
    /** The same port again. */
    start: listen,
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      for (const flush of held.splice(0)) flush();
    },
  };
}

async function eventually<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function expectUnavailable(answer: Answer) {
  expect(answer.status).toBe(503);
  expect(answer.headers["retry-after"]).toBe("60");
  expect(answer.body).toEqual({
    errors: [{ message: RATE_LIMIT_UNAVAILABLE_MESSAGE, extensions: { code: "SERVICE_UNAVAILABLE" } }],
  });
}

describe.skipIf(!redisAvailable)("with Redis", () => {
  const prefix = () => `mailroom-test-${randomBytes(6).toString("hex")}:`;

  it("shares one limit between two server instances", async () => {
    const shared = {
      rateLimitPerMinute: 4,
      redisUrl: `redis://${REDIS.host}:${REDIS.port}`,
      redisKeyPrefix: prefix(),
    };
    const [first, second] = [await serveInTest(shared), await serveInTest(shared)] as [
      TestServer,
      TestServer,
    ];
    const key = (await createKey(first, org.apiKey)).secret;
    const answers = [
      await post(first, VIEWER, { key }),
      await post(second, VIEWER, { key }),
      await post(first, VIEWER, { key }),
      await post(second, VIEWER, { key }),
    ];
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
    expect(answers.map((answer) => limitHeaders(answer).r)).toEqual([3, 2, 1, 0]);
    expectRateLimited(await post(first, VIEWER, { key }), "default", 4, 60);
    expectRateLimited(await post(second, VIEWER, { key }), "default", 4, 60);
  });

  it("answers 503 with Retry-After: 60 when Redis cannot be reached, never a 500", async () => {
    const dead = await serveInTest({
      rateLimitPerMinute: 100,
      redisUrl: "redis://127.0.0.1:1",
      redisKeyPrefix: prefix(),
    });
    expectUnavailable(await post(dead, VIEWER, { key: org.apiKey }));
    expectUnavailable(await post(dead, "{ __typename }"));
  });

  it("fails closed while Redis is gone or stalls, and recovers when it is back", async () => {
    const proxy = await startRedisProxy();
    const server = await serveInTest({
      rateLimitPerMinute: 100,
      redisUrl: proxy.url,
      redisKeyPrefix: prefix(),
    });
    const statuses: number[] = [];
    const probe = async () => {
      const answer = await post(server, VIEWER, { key: org.apiKey });
      statuses.push(answer.status);
      return answer;
    };
    try {
      expect((await eventually(probe, (answer) => answer.status === 200)).status).toBe(200);

      await proxy.stop();
      expectUnavailable(await eventually(probe, (answer) => answer.status === 503));

      await proxy.start();
      const back = await eventually(probe, (answer) => answer.status === 200);
      expect(back.status).toBe(200);
      expect(limitHeaders(back).policy).toBe("default");

      // A Redis that accepts but does not answer must not hold requests: the short command timeout.
      proxy.pause();
      const started = Date.now();
      expectUnavailable(await probe());
      expect(Date.now() - started).toBeLessThan(5000);
      proxy.resume();
      expect((await eventually(probe, (answer) => answer.status === 200)).status).toBe(200);
      expect(statuses.every((status) => status === 200 || status === 503)).toBe(true);
    } finally {
      await proxy.stop();
    }
  });
});
