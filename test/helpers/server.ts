// A real Mailroom server on an ephemeral port, talking to this file's database.
import { randomUUID } from "node:crypto";
import { type App, type BuildOptions, buildApp } from "../../src/app.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";

export interface TestServer {
  app: App;
  url: string;
  wsUrl: string;
  port: number;
  /** The bound SMTP port, when the server was started with `{ smtpPort: 0 }` (or a port). */
  smtpPort: number | null;
  stop(): Promise<void>;
}

export function testConfig(databaseUrl: string, overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({ LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent", LOG_FORMAT: "json" }),
    databaseUrl,
    port: 0,
    smtpPort: 0,
    // Tests do not depend on the network's DNS: those that check SPF, DKIM and DMARC turn this on
    // with DNS_SERVERS at a server they start (test/inbound-authentication.test.ts).
    mailAuth: false,
    ...overrides,
  };
}

export async function startTestServer(
  databaseUrl: string,
  overrides: Partial<Config> = {},
  /** `logger`: a test's own, to read the server's log lines; default: one at TEST_LOG_LEVEL. */
  options: BuildOptions = {},
): Promise<TestServer> {
  const config = testConfig(databaseUrl, overrides);
  const app = buildApp(config, { logger: createLogger(config), ...options });
  const { url, port, smtpPort } = await app.start();
  return { app, url, port, smtpPort, wsUrl: `${url.replace("http", "ws")}/graphql`, stop: () => app.stop() };
}

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: {
    data?: T | null;
    errors?: { message: string; path?: string[]; extensions?: Record<string, unknown> }[];
  };
}

export interface RequestOptions {
  key?: string;
  cookie?: string;
  headers?: Record<string, string>;
}

/** What a client sends: a JSON POST to /graphql. */
export async function gql<T = Record<string, unknown>>(
  server: { url: string },
  query: string,
  variables: Record<string, unknown> = {},
  options: RequestOptions = {},
): Promise<GraphQLResponse<T>> {
  const headers: Record<string, string> = { "content-type": "application/json", ...options.headers };
  if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
  if (options.cookie !== undefined) headers.cookie = options.cookie;
  const response = await fetch(`${server.url}/graphql`, {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as GraphQLResponse<T>["body"],
  };
}

/** The data, or a thrown error listing the GraphQL errors. */
export async function ok<T = Record<string, any>>(
  server: { url: string },
  query: string,
  variables: Record<string, unknown> = {},
  options: RequestOptions = {},
): Promise<T> {
  const response = await gql<T>(server, query, variables, options);
  if (response.body.errors?.length || response.status !== 200) {
    throw new Error(`GraphQL failed (${response.status}): ${JSON.stringify(response.body.errors)}`);
  }
  return response.body.data as T;
}

/**
 * One request, and the SQL statements the server ran for it alone (by its X-Request-Id: counted in
 * the request's own asynchronous context, whatever the job queue or other requests run meanwhile).
 */
export async function counted<T = Record<string, any>>(
  server: TestServer,
  query: string,
  variables: Record<string, unknown> = {},
  options: RequestOptions = {},
): Promise<{ response: GraphQLResponse<T>; statements: number }> {
  const requestId = `counted-${randomUUID()}`;
  const response = await gql<T>(server, query, variables, {
    ...options,
    headers: { ...options.headers, "x-request-id": requestId },
  });
  const statements = server.app.services.statementsOf(requestId);
  if (statements === undefined) throw new Error(`the server kept no statement count for ${requestId}`);
  return { response, statements };
}

/** The data of one request (failing on errors like ok()), and the statements it alone ran. */
export async function okCounted<T = Record<string, any>>(
  server: TestServer,
  query: string,
  variables: Record<string, unknown> = {},
  options: RequestOptions = {},
): Promise<{ data: T; statements: number }> {
  const { response, statements } = await counted<T>(server, query, variables, options);
  if (response.body.errors?.length || response.status !== 200) {
    throw new Error(`GraphQL failed (${response.status}): ${JSON.stringify(response.body.errors)}`);
  }
  return { data: response.body.data as T, statements };
}
