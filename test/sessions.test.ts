// Sessions: login, cookie flags, CSRF prevention for cookie-authenticated requests, logout.
import { describe, expect, it } from "vitest";
import { gql, ok } from "./helpers/server.ts";
import { organizationFixture, serverSuite } from "./helpers/suite.ts";

const { database, server } = serverSuite();
const org = organizationFixture(database);

const LOGIN =
  "mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { user { email role } } }";

async function login(password = org.adminPassword, headers: Record<string, string> = {}) {
  const response = await gql(server, LOGIN, { email: org.adminEmail.toUpperCase(), password }, { headers });
  const setCookie = response.headers.get("set-cookie") ?? "";
  return { response, setCookie, cookie: setCookie.split(";")[0] as string };
}

describe("login", () => {
  it("signs in with email and password and sets an HttpOnly, SameSite=Lax session cookie", async () => {
    const { response, setCookie, cookie } = await login();
    expect(response.body).toEqual({ data: { login: { user: { email: org.adminEmail, role: "ADMIN" } } } });
    expect(setCookie).toMatch(/^mailroom_session=[A-Za-z0-9_-]{43}; /);
    expect(setCookie).toContain("HttpOnly");
    expect(setCookie).toContain("SameSite=Lax");
    expect(setCookie).toContain("Path=/");
    expect(setCookie).not.toContain("Secure");
    const viewer = (
      await ok(server, "{ viewer { scope user { email role } apiKey { id } permissions } }", {}, { cookie })
    ).viewer;
    expect(viewer).toMatchObject({
      scope: "ORGANIZATION",
      user: { email: org.adminEmail, role: "ADMIN" },
      apiKey: null,
    });
    expect(viewer.permissions).toHaveLength(35);
  });

  it("marks the cookie Secure behind HTTPS", async () => {
    const { setCookie } = await login(org.adminPassword, { "x-forwarded-proto": "https" });
    expect(setCookie).toContain("Secure");
  });

  it("refuses a wrong password or an unknown email with one message and no cookie", async () => {
    const wrong = await login("not the password");
    const unknown = await gql(server, LOGIN, { email: "nobody@example.test", password: org.adminPassword });
    for (const response of [wrong.response, unknown]) {
      expect(response.status).toBe(200);
      expect(response.body.data).toEqual({ login: null });
      expect(response.body.errors?.[0]).toMatchObject({
        message: "Invalid email or password.",
        extensions: { code: "BAD_USER_INPUT" },
      });
      expect(response.headers.get("set-cookie")).toBeNull();
    }
  });
});

describe("CSRF prevention for cookie-authenticated requests", () => {
  it("refuses a simple form POST carrying the cookie", async () => {
    const { cookie } = await login();
    const form = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
      body: new URLSearchParams({ query: "mutation { logout }" }).toString(),
    });
    expect(form.status).toBe(403);
    const text = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "text/plain", cookie },
      body: JSON.stringify({ query: "{ viewer { scope } }" }),
    });
    expect(text.status).toBe(403);
    const get = await fetch(`${server.url}/graphql?query=${encodeURIComponent("{ viewer { scope } }")}`, {
      headers: { cookie, accept: "application/json" },
    });
    expect(get.status).toBe(403);
    // The session survived the forged logout.
    expect((await ok(server, "{ viewer { scope } }", {}, { cookie })).viewer.scope).toBe("ORGANIZATION");
  });

  it("accepts GET with the CSRF header, and leaves Bearer-key requests alone", async () => {
    const { cookie } = await login();
    const get = await fetch(`${server.url}/graphql?query=${encodeURIComponent("{ viewer { scope } }")}`, {
      headers: { cookie, accept: "application/json", "x-graphql-yoga-csrf": "1" },
    });
    expect(get.status).toBe(200);
    const bearer = await fetch(`${server.url}/graphql?query=${encodeURIComponent("{ viewer { scope } }")}`, {
      headers: { authorization: `Bearer ${org.apiKey}`, accept: "application/json" },
    });
    expect(bearer.status).toBe(200);
  });
});

describe("logout", () => {
  it("ends the session, clears the cookie, and the old cookie gets 401", async () => {
    const { cookie } = await login();
    const response = await gql(server, "mutation { logout }", {}, { cookie });
    expect(response.body).toEqual({ data: { logout: true } });
    expect(response.headers.get("set-cookie")).toMatch(/^mailroom_session=; .*Max-Age=0/);
    const after = await gql(server, "{ viewer { scope } }", {}, { cookie });
    expect(after.status).toBe(401);
    // A stale cookie is cleared with the 401, so the browser's next login is not refused.
    expect(after.headers.get("set-cookie")).toMatch(/^mailroom_session=; .*Max-Age=0/);
  });

  it("is false for an API key", async () => {
    expect(await ok(server, "mutation { logout }", {}, { key: org.apiKey })).toEqual({ logout: false });
  });
});
