// Addresses no tenant may hold, and the human who verifies an agent (docs/permissions.md, "Reserved
// addresses" and "Agent sign-up"): the operator's local parts of the default domain are refused to
// every inbox and sign-up; a sign-up code never goes to an address this server receives mail for.
import { describe, expect, it } from "vitest";
import { RESERVED_LOCAL_PARTS } from "../src/mail/addresses.ts";
import { publishRecords, startDnsServer } from "./helpers/dns-server.ts";
import { createInboxViaApi, createOrganization } from "./helpers/factories.ts";
import { RelaySink } from "./helpers/relay.ts";
import { gql, ok } from "./helpers/server.ts";
import {
  organizationFixture,
  running,
  runningFrom,
  serverSuite,
  temporaryDirectory,
} from "./helpers/suite.ts";

const MX_HOST = "mx.reserved-test.net";
const SIGN_UP = `mutation($humanEmail: String!, $username: String!) {
  agentSignUp(input: { humanEmail: $humanEmail, username: $username }) { organizationId apiKey }
}`;
const CREATE_INBOX = "mutation($input: CreateInboxInput!) { createInbox(input: $input) { inbox { email } } }";

const dns = runningFrom(startDnsServer);
const relay = running(new RelaySink());
const dataDir = temporaryDirectory("mailroom-reserved-");
const { database, server } = serverSuite(() => ({
  dataDir: dataDir.path,
  dnsServers: [dns.address],
  mxHost: MX_HOST,
  rateLimitPerMinute: 0,
  smtpRelayUrl: `smtp://127.0.0.1:${relay.port}`,
}));
const org = organizationFixture(database, "Tenant");

/** A domain `key`'s organization has added and proven through DNS. */
async function verifiedDomain(key: string, name: string): Promise<void> {
  const created = await ok(
    server,
    "mutation($input: CreateDomainInput!) { createDomain(input: $input) { domain { id records { purpose type name value priority } } } }",
    { input: { domain: name } },
    { key },
  );
  publishRecords(dns, created.createDomain.domain.records);
  const verified = await ok(
    server,
    "mutation($id: ID!) { verifyDomain(input: { id: $id }) { domain { status } } }",
    { id: created.createDomain.domain.id },
    { key },
  );
  expect(verified.verifyDomain.domain.status).toBe("VERIFIED");
}

async function inboxCount(): Promise<number> {
  const row = await database.db
    .selectFrom("inboxes")
    .select((eb) => eb.fn.countAll<string>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

describe("reserved local parts of the default domain", () => {
  it("include the operator's addresses and the system sender's", () => {
    for (const part of [
      "postmaster",
      "abuse",
      "hostmaster",
      "webmaster",
      "admin",
      "administrator",
      "root",
      "security",
      "noreply",
      "no-reply",
      "mailer-daemon",
    ]) {
      expect(RESERVED_LOCAL_PARTS.has(part), part).toBe(true);
    }
  });

  it("are refused to every inbox, in any case, and nothing is stored", async () => {
    const before = await inboxCount();
    for (const username of [...RESERVED_LOCAL_PARTS, "Postmaster", "NO-REPLY"]) {
      const response = await gql(server, CREATE_INBOX, { input: { username } }, { key: org.apiKey });
      expect(response.body.errors?.[0]?.extensions, username).toEqual({
        code: "BAD_USER_INPUT",
        field: "username",
      });
    }
    expect(await inboxCount()).toBe(before);
  });

  it("are refused to agent sign-up, and nothing is stored", async () => {
    const before = await inboxCount();
    for (const username of ["abuse", "no-reply", "mailer-daemon"]) {
      const response = await gql(server, SIGN_UP, { humanEmail: "ann@people.example", username });
      expect(response.body.errors?.[0]?.extensions, username).toEqual({
        code: "BAD_USER_INPUT",
        field: "username",
      });
    }
    expect(await inboxCount()).toBe(before);
    expect(relay.received).toEqual([]);
  });

  it("leave support, info and sales to agents, and bind no custom domain", async () => {
    for (const username of ["support", "info", "sales"]) {
      const inbox = await createInboxViaApi(server, org.apiKey, { username });
      expect(inbox.email).toBe(`${username}@mailroom.localhost`);
    }
    await verifiedDomain(org.apiKey, "tenant-own.example");
    const custom = await createInboxViaApi(server, org.apiKey, {
      username: "postmaster",
      domain: "tenant-own.example",
    });
    expect(custom.email).toBe("postmaster@tenant-own.example");
  });
});

describe("the human who verifies an agent", () => {
  it("is never an address on the default domain, hosted or not", async () => {
    const hosted = await createInboxViaApi(server, org.apiKey, { username: "agent-reader" });
    for (const humanEmail of [hosted.email, "nobody-yet@mailroom.localhost", "X@MAILROOM.LOCALHOST"]) {
      const response = await gql(server, SIGN_UP, { humanEmail, username: "self-verifier" });
      expect(response.body.errors?.[0]?.extensions, humanEmail).toEqual({
        code: "BAD_USER_INPUT",
        field: "humanEmail",
      });
    }
    expect(relay.received).toEqual([]);
  });

  it("is never an address on a domain an organization has verified", async () => {
    const other = await createOrganization(database.db, "Other tenant");
    await verifiedDomain(other.apiKey, "agents-home.example");
    const response = await gql(server, SIGN_UP, {
      humanEmail: "boss@agents-home.example",
      username: "sneaky-agent",
    });
    expect(response.body.errors?.[0]?.extensions).toEqual({ code: "BAD_USER_INPUT", field: "humanEmail" });
    expect(relay.received).toEqual([]);
  });

  it("may be on a domain someone merely added: an unverified claim blocks no sign-up", async () => {
    const squatter = await createOrganization(database.db, "Squatter");
    await ok(
      server,
      "mutation($input: CreateDomainInput!) { createDomain(input: $input) { domain { id } } }",
      { input: { domain: "bigmail.example" } },
      { key: squatter.apiKey },
    );
    const signed = await ok(server, SIGN_UP, { humanEmail: "ann@bigmail.example", username: "ann-agent" });
    expect(signed.agentSignUp.apiKey).toMatch(/^mr_/);
    const mail = await relay.waitFor("ann@bigmail.example");
    expect(mail.raw.toString("utf8")).toMatch(/verification code: \d{6}/);
  });
});
