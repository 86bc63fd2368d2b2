// `npm run cli -- bootstrap`, against a database given by DATABASE_URL.
import { describe, expect, it } from "vitest";
import { runCli } from "./helpers/process.ts";
import { ok } from "./helpers/server.ts";
import { serverSuite } from "./helpers/suite.ts";

const { database, server } = serverSuite();

describe("mailroom bootstrap", () => {
  it("--json prints one line with the organization, the key (once) and the administrator", async () => {
    const { code, output } = await runCli(
      [
        "bootstrap",
        "--org",
        "Initech",
        "--admin-email",
        "Bill@Initech.test",
        "--admin-password",
        "tps reports please",
        "--json",
      ],
      { DATABASE_URL: database.url },
    );
    expect(code, output).toBe(0);
    const lines = output.trim().split("\n");
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0] as string);
    expect(Object.keys(result).sort()).toEqual(["adminEmail", "apiKey", "organizationId"]);
    expect(result.adminEmail).toBe("bill@initech.test");
    expect(result.apiKey).toMatch(/^mr_[0-9A-Za-z]{38}$/);
    const viewer = (
      await ok(server, "{ viewer { scope organization { id name status } } }", {}, { key: result.apiKey })
    ).viewer;
    expect(viewer).toEqual({
      scope: "ORGANIZATION",
      organization: { id: result.organizationId, name: "Initech", status: "ACTIVE" },
    });
    const login = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query:
          'mutation { login(input: { email: "bill@initech.test", password: "tps reports please" }) { user { role } } }',
      }),
    });
    expect(await login.json()).toEqual({ data: { login: { user: { role: "ADMIN" } } } });
  });

  it("prints the key for a person, and a generated password when none is given", async () => {
    const { code, output } = await runCli(
      ["bootstrap", "--org", "Hooli", "--admin-email", "gavin@hooli.test"],
      {
        DATABASE_URL: database.url,
      },
    );
    expect(code, output).toBe(0);
    expect(output).toMatch(/Organization API key \(shown once, store it now\):\n {2}mr_[0-9A-Za-z]{38}\n/);
    expect(output).toMatch(/password: \S{20,}/);
  });

  it("explains its usage on bad arguments", async () => {
    const missing = await runCli(["bootstrap", "--org", "X"], { DATABASE_URL: database.url });
    expect(missing.code).toBe(2);
    expect(missing.output).toContain("bootstrap needs --org and --admin-email");
    const unknown = await runCli(["frobnicate"], { DATABASE_URL: database.url });
    expect(unknown.code).toBe(2);
    expect(unknown.output).toContain("Usage:");
  });
});
