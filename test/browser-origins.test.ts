// Browsers and origins (docs/permissions.md, "Browsers"): the session cookie works only for the
// server's own pages and the origins listed in CORS_ORIGINS. A page on another origin of the same
// site (another port of the same host: the SameSite=Lax cookie is sent along) can neither use the
// cookie nor sign the browser in, and gets no credentialed CORS; Bearer keys work from anywhere.
import { beforeAll, describe, expect, it } from "vitest";
import { gql, ok } from "./helpers/server.ts";
import { organizationFixture, serverSuite } from "./helpers/suite.ts";

const LISTED = "https://console.example.test";
const MINT_KEY = 'mutation { createApiKey(input: { name: "minted by a page" }) { secret apiKey { id } } }';
const LOGIN =
  "mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { user { email } } }";

const { database, server } = serverSuite({ corsOrigins: [LISTED] });
const org = organizationFixture(database);
let cookie: string;
/** Same host, another port: same site, another origin. */
let sibling: string;
let own: string;

beforeAll(async () => {
  own = server.url;
  sibling = `http://127.0.0.1:${server.port === 65535 ? 65534 : server.port + 1}`;
  const signedIn = await gql(server, LOGIN, { email: org.adminEmail, password: org.adminPassword });
  cookie = (signedIn.headers.get("set-cookie") ?? "").split(";")[0] as string;
  expect(cookie).toMatch(/^mailroom_session=/);
});

async function keyCount(): Promise<number> {
  const row = await database.db
    .selectFrom("api_keys")
    .select((eb) => eb.fn.countAll<string>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

describe("the session cookie from another origin", () => {
  it("is refused: a sibling page cannot mint (or read) an organization key", async () => {
    const before = await keyCount();
    const response = await gql(server, MINT_KEY, {}, { cookie, headers: { origin: sibling } });
    expect(response.status).toBe(403);
    expect(response.body.errors?.[0]?.extensions).toEqual({ code: "FORBIDDEN" });
    expect(JSON.stringify(response.body)).not.toContain("mr_");
    expect(await keyCount()).toBe(before);
    const read = await gql(server, "{ viewer { scope } }", {}, { cookie, headers: { origin: "null" } });
    expect(read.status).toBe(403);
  });

  it("works from the server's own pages, from listed origins and without an Origin (no browser)", async () => {
    for (const headers of [{ origin: own }, { origin: LISTED }, {} as Record<string, string>]) {
      const data = await ok(server, "{ viewer { scope } }", {}, { cookie, headers });
      expect(data.viewer.scope).toBe("ORGANIZATION");
    }
    // Behind a proxy that terminated TLS, the page's origin is https.
    const proxied = `https://${new URL(own).host}`;
    await ok(
      server,
      "{ viewer { scope } }",
      {},
      { cookie, headers: { origin: proxied, "x-forwarded-proto": "https" } },
    );
  });

  it("cannot be set by another origin either (login is refused there)", async () => {
    const response = await gql(
      server,
      LOGIN,
      { email: org.adminEmail, password: org.adminPassword },
      { headers: { origin: sibling } },
    );
    expect(response.status).toBe(403);
    expect(response.body.errors?.[0]?.extensions).toEqual({ code: "FORBIDDEN" });
    expect(response.headers.get("set-cookie")).toBeNull();
  });

  it("leaves Bearer keys alone: any origin may call with a key it holds", async () => {
    const data = await ok(
      server,
      "{ viewer { scope } }",
      {},
      { key: org.apiKey, headers: { origin: sibling } },
    );
    expect(data.viewer.scope).toBe("ORGANIZATION");
  });
});

describe("CORS", () => {
  async function preflight(origin: string) {
    return fetch(`${server.url}/graphql`, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
      },
    });
  }

  it("is never credentialed for an origin that is not listed", async () => {
    for (const origin of [sibling, "https://evil.example", "null"]) {
      const answer = await preflight(origin);
      expect(answer.headers.get("access-control-allow-credentials"), origin).toBeNull();
      const response = await gql(
        server,
        "{ viewer { scope } }",
        {},
        { key: org.apiKey, headers: { origin } },
      );
      expect(response.headers.get("access-control-allow-credentials"), origin).toBeNull();
    }
  });

  it("is credentialed for the origins in CORS_ORIGINS, and names exactly that origin", async () => {
    const answer = await preflight(LISTED);
    expect(answer.headers.get("access-control-allow-origin")).toBe(LISTED);
    expect(answer.headers.get("access-control-allow-credentials")).toBe("true");
    const response = await gql(server, "{ viewer { scope } }", {}, { cookie, headers: { origin: LISTED } });
    expect(response.headers.get("access-control-allow-origin")).toBe(LISTED);
    expect(response.headers.get("access-control-allow-credentials")).toBe("true");
  });
});
