// The GraphQL edge: operation limits (graphql-armor) rejected at parse/validation with no resolver
// run, request body limit, malformed JSON, batching, masked unexpected errors, field suggestions.
import { randomBytes } from "node:crypto";
import http from "node:http";
import { getIntrospectionQuery } from "graphql";
import { createClient } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { loadConfig } from "../src/config.ts";
import { maxRequestBodyBytes, OPERATION_LIMITS } from "../src/server/armor.ts";
import { counted, gql, ok, startTestServer } from "./helpers/server.ts";
import { organizationFixture, serverSuite } from "./helpers/suite.ts";

// The server under test runs with the default configuration.
const MAX_REQUEST_BODY_BYTES = maxRequestBodyBytes(loadConfig({}));

const { database, server } = serverSuite();
const org = organizationFixture(database);

const podNamed = (name: string) => `createPod(input: { name: "${name}" })`;

async function podNames(): Promise<string[]> {
  const data = await ok(server, "{ pods(first: 100) { edges { node { name } } } }", {}, { key: org.apiKey });
  return data.pods.edges.map((edge: { node: { name: string } }) => edge.node.name);
}

/**
 * Sends `query` (a mutation that would create the pod `name`) and proves nothing ran: no SQL
 * statement between a warm-up and the answer, and no pod of that name afterwards.
 */
async function expectRejectedBeforeResolvers(query: string, name: string, message: string) {
  // Warm the credential cache so the request under test needs no statement of its own.
  await ok(server, "{ viewer { scope } }", {}, { key: org.apiKey });
  await new Promise((resolve) => setTimeout(resolve, 50));
  const { response, statements } = await counted(server, query, {}, { key: org.apiKey });
  // A request error (GraphQL over HTTP): no `data` at all, so nothing was executed.
  expect(response.body.data).toBeUndefined();
  expect(response.body.errors).toEqual([
    expect.objectContaining({ message, extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }),
  ]);
  // The limits are in the README, never in a message.
  expect(JSON.stringify(response.body)).not.toMatch(/\d/);
  expect(statements).toBe(0);
  expect(await podNames()).not.toContain(name);
}

describe("operation limits", () => {
  it("a query within every limit runs (control for the rejections below)", async () => {
    const name = `ok-${randomBytes(3).toString("hex")}`;
    const data = await ok(server, `mutation { ${podNamed(name)} { pod { name } } }`, {}, { key: org.apiKey });
    expect(data.createPod.pod.name).toBe(name);
    expect(await podNames()).toContain(name);
  });

  it("rejects a query nested too deeply", async () => {
    const name = "too-deep";
    let selection = "id";
    for (let i = 0; i < 4; i++) selection = `pod { inboxes { edges { node { ${selection} } } } }`;
    await expectRejectedBeforeResolvers(
      `mutation { ${podNamed(name)} { ${selection} } }`,
      name,
      "Query is nested too deeply.",
    );
  });

  it("rejects too many aliases", async () => {
    const name = "too-many-aliases";
    const aliases = Array.from(
      { length: OPERATION_LIMITS.maxAliases + 1 },
      (_, i) => `a${i}: ${podNamed(`${name}`)} { pod { id } }`,
    ).join(" ");
    await expectRejectedBeforeResolvers(`mutation { ${aliases} }`, name, "Query uses too many aliases.");
  });

  it("rejects a query that costs too much", async () => {
    const name = "too-expensive";
    const query = `mutation { ${podNamed(name)} { pod { inboxes(first: 100) { edges { node {
      threads(first: 100) { edges { node { messages(first: 100) { edges { node { id } } } } } } } } } } } }`;
    await expectRejectedBeforeResolvers(
      query,
      name,
      "Query is too expensive: ask for fewer fields or smaller pages.",
    );
  });

  it("rejects too many directives", async () => {
    const name = "too-many-directives";
    const fields = Array.from(
      { length: OPERATION_LIMITS.maxDirectives + 1 },
      () => "id @include(if: true)",
    ).join(" ");
    await expectRejectedBeforeResolvers(
      `mutation { ${podNamed(name)} { pod { ${fields} } } }`,
      name,
      "Query uses too many directives.",
    );
  });

  it("rejects too many tokens while parsing", async () => {
    const name = "too-many-tokens";
    const fields = Array.from({ length: OPERATION_LIMITS.maxTokens }, () => "__typename").join(" ");
    await expectRejectedBeforeResolvers(
      `mutation { ${podNamed(name)} { pod { ${fields} } } }`,
      name,
      "Query is too large.",
    );
  });

  it("applies the same limits over graphql-ws, failing the operation but not the connection", async () => {
    const client = createClient({
      url: server.wsUrl,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { Authorization: `Bearer ${org.apiKey}` },
    });
    const run = (query: string) =>
      new Promise<unknown>((resolve, reject) => {
        let result: unknown;
        client.subscribe(
          { query },
          {
            next: (value) => {
              result = value;
            },
            error: (error) => (Array.isArray(error) ? resolve({ errors: error }) : reject(error)),
            complete: () => resolve(result),
          },
        );
      });
    try {
      const tooLarge = `{ viewer { ${Array.from({ length: OPERATION_LIMITS.maxTokens }, () => "scope").join(" ")} } }`;
      expect(await run(tooLarge)).toEqual({
        errors: [expect.objectContaining({ message: "Query is too large." })],
      });
      let selection = "id";
      for (let i = 0; i < 4; i++) selection = `pod { inboxes { edges { node { ${selection} } } } }`;
      expect(await run(`{ viewer { ${selection} } }`)).toEqual({
        errors: [expect.objectContaining({ message: "Query is nested too deeply." })],
      });
      expect(await run("{ viewer { scope } }")).toEqual({ data: { viewer: { scope: "ORGANIZATION" } } });
    } finally {
      await client.dispose();
    }
  });

  it("leaves introspection on: GraphiQL's full introspection query passes every limit", async () => {
    const query = getIntrospectionQuery({
      descriptions: true,
      specifiedByUrl: true,
      directiveIsRepeatable: true,
      schemaDescription: true,
      inputValueDeprecation: true,
    });
    const response = await gql(server, query);
    expect(response.status).toBe(200);
    expect(response.body.errors).toBeUndefined();
    const schema = (response.body.data as { __schema: { directives: { name: string }[] } }).__schema;
    expect(schema.directives.map((d) => d.name)).toContain("requires");
  });
});

/** A raw POST, so the body, its framing and its headers are exactly what the test says. */
function rawPost(
  body: Buffer | string,
  headers: Record<string, string>,
  chunked = false,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(`${server.url}/graphql`);
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        headers: chunked ? headers : { ...headers, "content-length": String(Buffer.byteLength(body)) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        response.on("error", reject);
      },
    );
    // The server may answer and close before the whole body is sent: that is the point.
    request.on("error", (error) => reject(error));
    if (chunked) {
      const data = Buffer.from(body);
      for (let offset = 0; offset < data.length; offset += 64 * 1024) {
        request.write(data.subarray(offset, offset + 64 * 1024));
      }
    } else {
      request.write(body);
    }
    request.end();
  });
}

describe("request bodies", () => {
  const oversize = () =>
    JSON.stringify({ query: "{ viewer { scope } }", variables: { pad: "x".repeat(MAX_REQUEST_BODY_BYTES) } });

  it("refuses a body whose Content-Length is over the limit with 413", async () => {
    const response = await rawPost(oversize(), {
      "content-type": "application/json",
      authorization: `Bearer ${org.apiKey}`,
    });
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body).errors[0].extensions.code).toBe("REQUEST_ENTITY_TOO_LARGE");
  });

  it("refuses a chunked body (no Content-Length) once it grows past the limit with 413", async () => {
    const response = await rawPost(
      oversize(),
      {
        "content-type": "application/json",
        authorization: `Bearer ${org.apiKey}`,
        "transfer-encoding": "chunked",
      },
      true,
    );
    expect(response.status).toBe(413);
  });

  it("accepts a body just under the limit", async () => {
    const body = JSON.stringify({
      query: "{ viewer { scope } }",
      variables: { pad: "x".repeat(MAX_REQUEST_BODY_BYTES - 200) },
    });
    const response = await rawPost(body, {
      "content-type": "application/json",
      authorization: `Bearer ${org.apiKey}`,
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ data: { viewer: { scope: "ORGANIZATION" } } });
  });

  it("answers malformed JSON with 400", async () => {
    const response = await rawPost('{"query": "{ viewer { scope } }"', {
      "content-type": "application/json",
      authorization: `Bearer ${org.apiKey}`,
    });
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body).errors[0]).toMatchObject({
      message: "POST body sent invalid JSON.",
      extensions: { code: "BAD_REQUEST" },
    });
  });

  it("refuses a batch (a JSON array) with 400 and runs none of it", async () => {
    const name = "batched";
    const body = JSON.stringify([
      { query: `mutation { ${podNamed(name)} { pod { id } } }` },
      { query: "{ viewer { scope } }" },
    ]);
    const response = await rawPost(body, {
      "content-type": "application/json",
      authorization: `Bearer ${org.apiKey}`,
    });
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body).errors[0].message).toBe("Batching is not supported.");
    expect(await podNames()).not.toContain(name);
  });
});

describe("errors outside development", () => {
  it("treats only NODE_ENV=development as development", () => {
    expect(loadConfig({}).development).toBe(false);
    expect(loadConfig({ NODE_ENV: "production" })).toMatchObject({ production: true, development: false });
    expect(loadConfig({ NODE_ENV: "test" }).development).toBe(false);
    expect(loadConfig({ NODE_ENV: "development" })).toMatchObject({ production: false, development: true });
  });

  // A schema that drifted under the server (a column renamed by hand): an error no code path expects.
  // Every input a client can send is checked before it reaches the database (test/hostile-input.test.ts),
  // so the fault has to come from the environment.
  const UNEXPECTED = `mutation { createPod(input: { name: "drifted" }) { pod { id } } }`;
  beforeAll(async () => {
    await database.pool.query("ALTER TABLE pods RENAME COLUMN client_id TO client_id_drifted");
  });
  afterAll(async () => {
    await database.pool.query("ALTER TABLE pods RENAME COLUMN client_id_drifted TO client_id");
  });

  it("masks unexpected errors in production: no message, no stack", async () => {
    const production = await startTestServer(database.url, { production: true, development: false });
    try {
      const response = await gql(production, UNEXPECTED, {}, { key: org.apiKey });
      expect(response.body.errors).toEqual([
        {
          message: "Unexpected error.",
          locations: expect.any(Array),
          path: ["createPod"],
          extensions: { code: "INTERNAL_SERVER_ERROR" },
        },
      ]);
      expect(JSON.stringify(response.body)).not.toMatch(/0x00|stack|postgres|at /i);
    } finally {
      await production.stop();
    }
  });

  it("masks them on a default start too (NODE_ENV unset); only NODE_ENV=development shows details", async () => {
    const masked = await gql(server, UNEXPECTED, {}, { key: org.apiKey });
    expect(masked.body.errors?.[0]?.message).toBe("Unexpected error.");
    expect(masked.body.errors?.[0]?.extensions).toEqual({ code: "INTERNAL_SERVER_ERROR" });

    const development = await startTestServer(database.url, { development: true });
    try {
      const detailed = await gql(development, UNEXPECTED, {}, { key: org.apiKey });
      expect(detailed.body.errors?.[0]?.message).toBe("Unexpected error.");
      expect(detailed.body.errors?.[0]?.extensions?.originalError).toMatchObject({
        message: expect.any(String),
      });
      // Development also suggests field names; elsewhere the suggestion is cut from the message.
      const suggested = await gql(development, "{ viewr { scope } }", {}, { key: org.apiKey });
      expect(suggested.body.errors?.[0]?.message).toMatch(/Did you mean "viewer"\?/);
    } finally {
      await development.stop();
    }
    const blocked = await gql(server, "{ viewr { scope } }", {}, { key: org.apiKey });
    expect(blocked.body.errors?.[0]?.message).toBe('Cannot query field "viewr" on type "Query".');
  });
});
