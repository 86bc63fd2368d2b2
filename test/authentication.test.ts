// docs/permissions.md "Callers" and "Failing authentication": one 401 for every cause, public fields,
// revocation on every node, expiry, WebSocket refusal and closing.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { generateApiKey } from "../src/auth/keys.ts";
import { createKey, deleteKey } from "./helpers/factories.ts";
import { gql, ok, type TestServer } from "./helpers/server.ts";
import { eagerWsClient } from "./helpers/subscriptions.ts";
import { organizationFixture, serverOn, serverSuite } from "./helpers/suite.ts";

const MESSAGE = "Authentication required. Provide a valid session cookie or Bearer token.";
const EXPECTED_401 = { errors: [{ message: MESSAGE, extensions: { code: "UNAUTHENTICATED" } }] };

const { database, server } = serverSuite();
const other = serverOn(database);
const org = organizationFixture(database);

async function expect401(response: Awaited<ReturnType<typeof gql>>) {
  expect(response.status).toBe(401);
  expect(response.headers.get("www-authenticate")).toBe('Bearer realm="API", charset="UTF-8"');
  expect(response.body).toEqual(EXPECTED_401);
}

async function waitFor401(target: TestServer, key: string, withinMs: number) {
  const started = Date.now();
  for (;;) {
    const response = await gql(target, "{ viewer { scope } }", {}, { key });
    if (response.status === 401) {
      await expect401(response);
      return Date.now() - started;
    }
    if (Date.now() - started > withinMs) throw new Error(`still accepted after ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("HTTP authentication failures", () => {
  it("answers missing, malformed, unknown, deleted and expired credentials identically", async () => {
    const deleted = await createKey(server, org.apiKey);
    await deleteKey(server, org.apiKey, deleted.id);
    const expiring = await createKey(server, org.apiKey, {
      expiresAt: new Date(Date.now() + 1500).toISOString(),
    });
    await ok(server, "{ viewer { scope } }", {}, { key: expiring.secret });
    await new Promise((r) => setTimeout(r, 1600));

    const unknown = "mr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" + "000000";
    const causes: Record<string, Record<string, string>> = {
      missing: {},
      malformed: { authorization: "Bearer not-a-key" },
      "not bearer": { authorization: `Basic ${org.apiKey}` },
      unknown: { authorization: `Bearer ${generateWellFormed()}` },
      "bad checksum": { authorization: `Bearer ${unknown}` },
      deleted: { authorization: `Bearer ${deleted.secret}` },
      expired: { authorization: `Bearer ${expiring.secret}` },
      "unknown session": { cookie: "mailroom_session=forged-session-token" },
    };
    for (const [cause, headers] of Object.entries(causes)) {
      const response = await gql(server, "{ viewer { scope } }", {}, { headers });
      expect(response.status, cause).toBe(401);
      await expect401(response);
    }
  });

  it("lets anonymous callers use only public fields", async () => {
    expect((await gql(server, "{ __typename }")).status).toBe(200);
    const introspection = await gql(
      server,
      '{ __schema { queryType { name } } __type(name: "ApiKey") { name } }',
    );
    expect(introspection.status).toBe(200);
    expect(introspection.body.data).toEqual({
      __schema: { queryType: { name: "Query" } },
      __type: { name: "ApiKey" },
    });
    const login = await gql(
      server,
      'mutation { login(input: { email: "nobody@example.test", password: "wrong password" }) { user { email } } }',
    );
    expect(login.status).toBe(200);
    expect(login.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const page = await fetch(`${server.url}/graphql`, { headers: { accept: "text/html" } });
    expect(page.status).toBe(200);

    for (const query of [
      "{ viewer { scope } }",
      "{ organization { name } }",
      "{ __typename viewer { scope } }",
      "mutation { logout }",
      "query Q { ...F } fragment F on Query { pods { edges { cursor } } }",
    ]) {
      await expect401(await gql(server, query));
    }
  });

  it("answers a present but invalid credential with 401 even for a public field", async () => {
    await expect401(await gql(server, "{ __typename }", {}, { key: "mr_bogus" }));
    await expect401(
      await gql(
        server,
        'mutation { login(input: { email: "a@b.c", password: "x" }) { user { email } } }',
        {},
        { key: "junk" },
      ),
    );
  });

  it("answers malformed tokens of any length or alphabet with 401, never 500", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.string({ unit: "grapheme", maxLength: 50 }),
          fc.constantFrom("mr_", `mr_${"A".repeat(38)}`, `mr_${"A".repeat(5000)}`, "Bearer", "\t", "null"),
        ),
        async (token) => {
          // HTTP headers carry Latin-1 bytes only; anything else a client would have to percent-encode.
          const headerSafe = [...token]
            .map((c) => (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) > 0x7e ? "%" : c))
            .join("");
          const response = await gql(
            server,
            "{ viewer { scope } }",
            {},
            { headers: { authorization: `Bearer ${headerSafe}` } },
          );
          expect(response.status).toBe(401);
        },
      ),
      { numRuns: 150 },
    );
  });
});

/** A key with a valid checksum that was never issued. */
const generateWellFormed = generateApiKey;

describe("revocation and expiry", () => {
  it("refuses a deleted key on its very next request, on this node and on another node within a second", async () => {
    const victim = await createKey(server, org.apiKey, { name: "victim" });
    // Both nodes have it cached.
    await ok(server, "{ viewer { scope } }", {}, { key: victim.secret });
    await ok(other, "{ viewer { scope } }", {}, { key: victim.secret });
    await deleteKey(server, org.apiKey, victim.id);
    await expect401(await gql(server, "{ viewer { scope } }", {}, { key: victim.secret }));
    const elapsed = await waitFor401(other, victim.secret, 1000);
    console.info(`second node refused the deleted key after ${elapsed} ms`);
  });

  it("a key may delete itself; it is refused at once", async () => {
    const self = await createKey(server, org.apiKey, { name: "self" });
    await deleteKey(server, self.secret, self.id);
    await expect401(await gql(server, "{ viewer { scope } }", {}, { key: self.secret }));
  });

  it("honours expiresAt, past which the key is treated as deleted", async () => {
    const expiresAt = new Date(Date.now() + 1200);
    const key = await createKey(server, org.apiKey, { expiresAt: expiresAt.toISOString() });
    expect(new Date(key.apiKey.expiresAt).getTime()).toBe(expiresAt.getTime());
    await ok(server, "{ viewer { scope } }", {}, { key: key.secret });
    await new Promise((r) => setTimeout(r, expiresAt.getTime() - Date.now() + 50));
    await expect401(await gql(server, "{ viewer { scope } }", {}, { key: key.secret }));
    const past = await gql(
      server,
      'mutation { createApiKey(input: { name: "x", expiresAt: "2001-01-01T00:00:00Z" }) { secret } }',
      {},
      { key: org.apiKey },
    );
    expect(past.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "expiresAt" });
  });

  it("updates lastUsedAt off the request path, at most once a minute", async () => {
    const key = await createKey(server, org.apiKey, { name: "used" });
    const lastUsed = async () =>
      (
        await ok(
          server,
          "query($id: ID!) { node(id: $id) { ... on ApiKey { lastUsedAt } } }",
          { id: key.id },
          { key: org.apiKey },
        )
      ).node.lastUsedAt as string | null;
    expect(await lastUsed()).toBeNull();
    await ok(server, "{ viewer { scope } }", {}, { key: key.secret });
    let first: string | null = null;
    for (let i = 0; i < 40 && !first; i++) {
      await new Promise((r) => setTimeout(r, 25));
      first = await lastUsed();
    }
    expect(first).not.toBeNull();
    await ok(server, "{ viewer { scope } }", {}, { key: key.secret });
    await ok(other, "{ viewer { scope } }", {}, { key: key.secret });
    await new Promise((r) => setTimeout(r, 200));
    expect(await lastUsed()).toBe(first);
  });
});

describe("WebSocket authentication", () => {
  function connect(target: TestServer, authorization?: string) {
    let closed: { code: number; at: number } | undefined;
    const client = eagerWsClient(target.wsUrl, authorization, {
      closed: (event) => {
        closed = { code: (event as { code: number }).code, at: Date.now() };
      },
    });
    const query = (q: string) =>
      new Promise<any>((resolve, reject) => {
        let result: unknown;
        client.subscribe(
          { query: q },
          { next: (value) => (result = value), error: reject, complete: () => resolve(result) },
        );
      });
    return { client, query, closed: () => closed };
  }

  async function waitClosed(connection: ReturnType<typeof connect>, withinMs: number) {
    const started = Date.now();
    while (!connection.closed()) {
      if (Date.now() - started > withinMs) throw new Error("socket still open");
      await new Promise((r) => setTimeout(r, 10));
    }
    return connection.closed() as { code: number; at: number };
  }

  it("runs operations with the key from connection_init and refuses a bad or missing one with 4401", async () => {
    const good = connect(server, `Bearer ${org.apiKey}`);
    expect(await good.query("{ viewer { scope } }")).toEqual({ data: { viewer: { scope: "ORGANIZATION" } } });
    await good.client.dispose();
    for (const bad of [undefined, "Bearer mr_nope", `Bearer ${generateWellFormed()}`]) {
      const refused = connect(server, bad);
      expect((await waitClosed(refused, 2000)).code).toBe(4401);
      await refused.client.dispose();
    }
  });

  it("closes open connections of a deleted key within a second, on every node", async () => {
    const key = await createKey(server, org.apiKey, { name: "ws" });
    const here = connect(server, `Bearer ${key.secret}`);
    const there = connect(other, `Bearer ${key.secret}`);
    await here.query("{ viewer { scope } }");
    await there.query("{ viewer { scope } }");
    const deletedAt = Date.now();
    await deleteKey(server, org.apiKey, key.id);
    for (const connection of [here, there]) {
      const closed = await waitClosed(connection, 1000);
      expect(closed.code).toBe(4401);
      expect(closed.at - deletedAt).toBeLessThan(1000);
      await connection.client.dispose();
    }
  });

  it("closes a connection when its key expires", async () => {
    const expiresAt = Date.now() + 1000;
    const key = await createKey(server, org.apiKey, { expiresAt: new Date(expiresAt).toISOString() });
    const connection = connect(server, `Bearer ${key.secret}`);
    await connection.query("{ viewer { scope } }");
    const closed = await waitClosed(connection, 2500);
    expect(closed.code).toBe(4401);
    expect(closed.at - expiresAt).toBeLessThan(1000);
    await connection.client.dispose();
  });
});
