// Custom domains (docs/permissions.md, "Domains are proven, not claimed"): registration, DKIM keys, DNS records, verification against a real DNS
// server on 127.0.0.1, and who may see and change which domain.
import { createPrivateKey, createPublicKey, createSign, createVerify } from "node:crypto";
import { domainToASCII } from "node:url";
import { decodeGlobalID } from "@pothos/plugin-relay";
import { describe, expect, it } from "vitest";
import { permissionFix } from "../src/auth/permissions.ts";
import { loadConfig } from "../src/config.ts";
import { publishRecords, startDnsServer } from "./helpers/dns-server.ts";
import { createInboxViaApi, createOrganization } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { runningFrom, serverSuite, temporaryDirectory, tenantFixture } from "./helpers/suite.ts";

const MX_HOST = "mx.mailroom-test.net";
const DOMAIN_FIELDS = `id domain status lastError verifiedAt lastCheckedAt createdAt pod { id }
  records { purpose type name value priority required status verified found }`;
const CREATE = `mutation($input: CreateDomainInput!) { createDomain(input: $input) { domain { ${DOMAIN_FIELDS} } } }`;
const VERIFY = `mutation($id: ID!) { verifyDomain(input: { id: $id }) { domain { ${DOMAIN_FIELDS} } } }`;
const DELETE = "mutation($id: ID!) { deleteDomain(input: { id: $id }) { deletedId } }";
const LIST = `query($first: Int, $after: String) {
  domains(first: $first, after: $after) { edges { node { id domain } } pageInfo { hasNextPage endCursor } }
}`;
const NODE = `query($id: ID!) { node(id: $id) { id ... on Domain { ${DOMAIN_FIELDS} } } }`;

interface DnsRecord {
  purpose: "MX" | "SPF" | "DKIM" | "DMARC";
  type: "MX" | "TXT";
  name: string;
  value: string;
  priority: number | null;
  required: boolean;
  status: string;
  verified: boolean;
  found: string[];
}

const dns = runningFrom(startDnsServer);
const dataDir = temporaryDirectory("mailroom-domains-");
const { database, server } = serverSuite(() => ({
  dataDir: dataDir.path,
  dnsServers: [dns.address],
  mxHost: MX_HOST,
}));
const { org, pods, keys } = tenantFixture(
  { database, server },
  {
    pods: ["A", "B"],
    inboxes: { a: { pod: "A", username: "domains-a" } },
    keys: { podA: { pod: "A" }, inboxA: { inbox: "a" } },
  },
);
let counter = 0;

const rowId = (globalId: string) => decodeGlobalID(globalId).id;
const uniqueName = (label: string) => `${label}-${++counter}.example-mail.com`;

async function create(input: Record<string, unknown>, key = org.apiKey) {
  return (await ok(server, CREATE, { input }, { key })).createDomain.domain;
}

async function errorOf(query: string, variables: Record<string, unknown>, key = org.apiKey) {
  const response = await gql(server, query, variables, { key });
  expect(response.status).toBe(200);
  return response.body.errors?.[0]?.extensions;
}

async function listNames(key: string): Promise<string[]> {
  return (await ok(server, LIST, { first: 200 }, { key })).domains.edges.map((e: any) => e.node.domain);
}

const recordOf = (domain: { records: DnsRecord[] }, purpose: DnsRecord["purpose"]) =>
  domain.records.find((r) => r.purpose === purpose) as DnsRecord;

/** Publishes the records the API asks for, as a DNS host would, except those named. */
function publish(records: DnsRecord[], except: DnsRecord["purpose"][] = []) {
  publishRecords(dns, records, except);
}

async function events(domainGlobalId: string) {
  return database.db
    .selectFrom("events")
    .selectAll()
    .where("domain_id", "=", rowId(domainGlobalId))
    .execute();
}

describe("createDomain", () => {
  it("registers a domain with the four records to publish, pending verification", async () => {
    const name = uniqueName("acme");
    const domain = await create({ domain: `  ${name.toUpperCase()}. ` });
    expect(domain).toMatchObject({
      domain: name,
      status: "PENDING",
      pod: null,
      lastError: null,
      verifiedAt: null,
      lastCheckedAt: null,
    });
    expect(decodeGlobalID(domain.id).typename).toBe("Domain");
    const records = domain.records as DnsRecord[];
    expect(records.map((r) => [r.purpose, r.type, r.name, r.required])).toEqual([
      ["MX", "MX", name, true],
      ["SPF", "TXT", name, true],
      ["DKIM", "TXT", `mailroom._domainkey.${name}`, true],
      ["DMARC", "TXT", `_dmarc.${name}`, false],
    ]);
    expect(recordOf(domain, "MX")).toMatchObject({ value: MX_HOST, priority: 10 });
    expect(recordOf(domain, "SPF").value).toMatch(/^v=spf1 .*~all$/);
    expect(recordOf(domain, "SPF").value).toContain(MX_HOST);
    expect(recordOf(domain, "DKIM").value).toMatch(/^v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+=*$/);
    expect(recordOf(domain, "DMARC").value).toMatch(/^v=DMARC1; p=quarantine(;|$)/);
    for (const record of records) {
      expect(record).toMatchObject({ status: "PENDING", verified: false, found: [] });
      if (record.type === "TXT") expect(record.priority).toBeNull();
    }

    const node = await ok(server, NODE, { id: domain.id }, { key: org.apiKey });
    expect(node.node).toEqual(domain);
    expect(await listNames(org.apiKey)).toContain(name);
  });

  it("publishes a DKIM key that verifies signatures made with the stored private key, which is never exposed", async () => {
    const domain = await create({ domain: uniqueName("dkim") });
    const p = /p=([A-Za-z0-9+/=]+)$/.exec(recordOf(domain, "DKIM").value)?.[1] as string;
    const publicKey = createPublicKey({ key: Buffer.from(p, "base64"), format: "der", type: "spki" });
    expect(publicKey.asymmetricKeyType).toBe("rsa");
    expect(publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);

    const row = await database.db
      .selectFrom("domains")
      .select(["dkim_private_key", "dkim_selector"])
      .where("id", "=", rowId(domain.id))
      .executeTakeFirstOrThrow();
    expect(row.dkim_selector).toBe("mailroom");
    const privateKey = createPrivateKey(row.dkim_private_key);
    const message = "From: agent@example.com\r\nSubject: signed\r\n";
    const signature = createSign("sha256").update(message).sign(privateKey);
    expect(createVerify("sha256").update(message).verify(publicKey, signature)).toBe(true);
    expect(createVerify("sha256").update(`${message}tampered`).verify(publicKey, signature)).toBe(false);

    // Nothing in the API carries the private key.
    const body = JSON.stringify((await gql(server, NODE, { id: domain.id }, { key: org.apiKey })).body);
    expect(body).not.toContain("PRIVATE KEY");
    const privateBody = row.dkim_private_key.split("\n")[1] as string;
    expect(body).not.toContain(privateBody);
    const type = await ok(server, '{ __type(name: "Domain") { fields { name } } }', {}, { key: org.apiKey });
    expect(type.__type.fields.some((f: any) => /private|key/i.test(f.name))).toBe(false);
  });

  it.each([
    "not a domain",
    "localhost",
    "mail.localhost",
    "-bad.example.com",
    "bad-.example.com",
    "a..b.com",
    "com",
    "http://example.com",
    "user@example.com",
    "example.123",
    `${"a".repeat(64)}.com`,
    "",
  ])("refuses %j as a domain name", async (domain) => {
    expect(await errorOf(CREATE, { input: { domain } })).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "domain",
    });
  });

  it("accepts an internationalized name, stored as punycode", async () => {
    const unicode = `bücher-${++counter}.example`;
    const domain = await create({ domain: unicode });
    expect(domain.domain).toMatch(/^xn--bcher-/);
    expect(domain.domain).toBe(domainToASCII(unicode));
  });

  it("refuses the service's own mail domain, and a name the organization already added (CONFLICT)", async () => {
    for (const domain of ["mailroom.localhost", "MAILROOM.LOCALHOST", "team.mailroom.localhost", MX_HOST]) {
      expect(await errorOf(CREATE, { input: { domain } })).toMatchObject({
        code: "CONFLICT",
        field: "domain",
      });
    }
    const name = uniqueName("taken");
    await create({ domain: name });
    expect(await errorOf(CREATE, { input: { domain: name } })).toMatchObject({
      code: "CONFLICT",
      field: "domain",
    });
    expect(await errorOf(CREATE, { input: { domain: `${name.toUpperCase()}.` } })).toMatchObject({
      code: "CONFLICT",
    });
  });

  it("lets anyone add a name nobody has proven: an unverified claim blocks no one", async () => {
    const name = uniqueName("squatted");
    await create({ domain: name });
    const owner = await createOrganization(database.db, "Real owner");
    const added = (await ok(server, CREATE, { input: { domain: name } }, { key: owner.apiKey })).createDomain
      .domain;
    expect(added).toMatchObject({ domain: name, status: "PENDING" });
    expect(await listNames(owner.apiKey)).toEqual([name]);
  });
});

describe("who owns a name", () => {
  it("is decided by verification; afterwards nobody else may add or verify it, and no one is named", async () => {
    const name = uniqueName("contested");
    const squatter = await createOrganization(database.db, "Squatter Ltd");
    const owner = await createOrganization(database.db, "Owner Inc");
    const squatted = (await ok(server, CREATE, { input: { domain: name } }, { key: squatter.apiKey }))
      .createDomain.domain;
    const owned = (await ok(server, CREATE, { input: { domain: name } }, { key: owner.apiKey })).createDomain
      .domain;
    // Only the real owner can publish its DKIM key: the squatter's verification fails on it.
    publish(owned.records);
    const failed = (await ok(server, VERIFY, { id: squatted.id }, { key: squatter.apiKey })).verifyDomain
      .domain;
    expect(failed.status).toBe("FAILED");
    expect(recordOf(failed, "DKIM").verified).toBe(false);
    const verified = (await ok(server, VERIFY, { id: owned.id }, { key: owner.apiKey })).verifyDomain.domain;
    expect(verified.status).toBe("VERIFIED");

    // Now the name is the owner's: the squatter cannot verify it even with every record right, and
    // nobody can add it; the answer names neither organization.
    for (const record of owned.records as DnsRecord[]) dns.zone.delete(record.name);
    publish(squatted.records);
    const refusals = [
      await gql(server, VERIFY, { id: squatted.id }, { key: squatter.apiKey }),
      await gql(server, CREATE, { input: { domain: name } }, { key: org.apiKey }),
    ];
    for (const refused of refusals) {
      expect(refused.body.errors?.[0]?.extensions).toEqual({ code: "CONFLICT", field: "domain" });
      const text = JSON.stringify(refused.body);
      for (const secret of ["Owner", "Squatter", owned.id]) {
        expect(text).not.toContain(secret);
      }
    }
    const row = await database.db
      .selectFrom("domains")
      .select("status")
      .where("id", "=", rowId(squatted.id))
      .executeTakeFirstOrThrow();
    expect(row.status).toBe("FAILED");

    // Deleting the verified domain frees the name: the other claim may now be proven.
    await ok(server, DELETE, { id: owned.id }, { key: owner.apiKey });
    for (const record of owned.records as DnsRecord[]) dns.zone.delete(record.name);
    publish(squatted.records);
    const now = (await ok(server, VERIFY, { id: squatted.id }, { key: squatter.apiKey })).verifyDomain.domain;
    expect(now.status).toBe("VERIFIED");
  });
});

describe("verifyDomain", () => {
  it("marks a domain VERIFIED when MX, SPF and DKIM match, and writes one DOMAIN_VERIFIED event", async () => {
    const created = await create({ domain: uniqueName("verified") });
    publish(created.records);
    const queriesBefore = dns.queries.length;
    const verified = (await ok(server, VERIFY, { id: created.id }, { key: org.apiKey })).verifyDomain.domain;
    expect(dns.queries.length).toBeGreaterThan(queriesBefore); // really asked our DNS server
    expect(verified.status).toBe("VERIFIED");
    expect(verified.lastError).toBeNull();
    expect(Date.parse(verified.verifiedAt)).not.toBeNaN();
    expect(Date.parse(verified.lastCheckedAt)).not.toBeNaN();
    for (const record of verified.records as DnsRecord[]) {
      expect(record).toMatchObject({ status: "VERIFIED", verified: true });
    }
    expect(recordOf(verified, "MX").found).toEqual([`10 ${MX_HOST}`]);
    expect(recordOf(verified, "DKIM").found).toEqual([recordOf(created, "DKIM").value]);

    const written = await events(created.id);
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({
      type: "DOMAIN_VERIFIED",
      org_id: String(org.organizationId),
      pod_id: null,
      inbox_id: null,
      payload: { domain: created.domain },
    });

    // Verifying again changes nothing and announces nothing new.
    const again = (await ok(server, VERIFY, { id: created.id }, { key: org.apiKey })).verifyDomain.domain;
    expect(again.status).toBe("VERIFIED");
    expect(again.verifiedAt).toBe(verified.verifiedAt);
    expect(await events(created.id)).toHaveLength(1);
    // The per-record results are kept, not only returned once.
    expect((await ok(server, NODE, { id: created.id }, { key: org.apiKey })).node.records).toEqual(
      again.records,
    );
  });

  it("marks it FAILED with per-record status when DKIM is missing, then VERIFIED once it is right", async () => {
    const created = await create({ domain: uniqueName("no-dkim") }, keys.podA);
    publish(created.records, ["DKIM", "DMARC"]);
    const failed = (await ok(server, VERIFY, { id: created.id }, { key: keys.podA })).verifyDomain.domain;
    expect(failed.status).toBe("FAILED");
    expect(failed.verifiedAt).toBeNull();
    expect(recordOf(failed, "MX")).toMatchObject({ status: "VERIFIED", verified: true });
    expect(recordOf(failed, "SPF")).toMatchObject({ status: "VERIFIED", verified: true });
    expect(recordOf(failed, "DKIM")).toMatchObject({ status: "MISSING", verified: false, found: [] });
    expect(recordOf(failed, "DMARC")).toMatchObject({ status: "MISSING", verified: false });
    expect(failed.lastError).toContain("DKIM");
    expect(failed.lastError).toContain(`mailroom._domainkey.${created.domain}`);
    expect(failed.lastError).not.toContain("DMARC"); // optional: reported, not a reason to fail
    expect(await events(created.id)).toHaveLength(0);

    // A DKIM record with another key is INVALID, and shows what was found.
    const wrong = "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrongwrongwrong";
    dns.zone.set(`mailroom._domainkey.${created.domain}`, { TXT: [wrong] });
    const invalid = (await ok(server, VERIFY, { id: created.id }, { key: keys.podA })).verifyDomain.domain;
    expect(invalid.status).toBe("FAILED");
    expect(recordOf(invalid, "DKIM")).toMatchObject({ status: "INVALID", verified: false, found: [wrong] });

    // Published correctly (DMARC still absent): verified, with DMARC reported as missing.
    dns.zone.delete(`mailroom._domainkey.${created.domain}`);
    publish(created.records.filter((r: DnsRecord) => r.purpose === "DKIM"));
    const verified = (await ok(server, VERIFY, { id: created.id }, { key: keys.podA })).verifyDomain.domain;
    expect(verified.status).toBe("VERIFIED");
    expect(verified.lastError).toBeNull();
    expect(recordOf(verified, "DMARC")).toMatchObject({
      status: "MISSING",
      verified: false,
      required: false,
    });
    const written = await events(created.id);
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({ type: "DOMAIN_VERIFIED", pod_id: rowId(pods.A) });
  });

  it("fails when the MX points elsewhere or SPF does not name the mail host", async () => {
    const created = await create({ domain: uniqueName("wrong-mx") });
    publish(created.records);
    dns.zone.set(created.domain, {
      MX: [{ priority: 5, exchange: "mx.elsewhere.example" }],
      TXT: ["v=spf1 include:_spf.elsewhere.example -all", "unrelated=txt"],
    });
    const failed = (await ok(server, VERIFY, { id: created.id }, { key: org.apiKey })).verifyDomain.domain;
    expect(failed.status).toBe("FAILED");
    expect(recordOf(failed, "MX")).toMatchObject({ status: "INVALID", found: ["5 mx.elsewhere.example"] });
    expect(recordOf(failed, "SPF")).toMatchObject({
      status: "INVALID",
      found: ["v=spf1 include:_spf.elsewhere.example -all"],
    });
    expect(recordOf(failed, "DKIM").status).toBe("VERIFIED");
    // A merged SPF record that also authorizes the mail host is fine.
    dns.zone.set(created.domain, {
      MX: [{ priority: 10, exchange: `${MX_HOST}.` }],
      TXT: [`v=spf1 include:_spf.elsewhere.example a:${MX_HOST} ~all`],
    });
    const verified = (await ok(server, VERIFY, { id: created.id }, { key: org.apiKey })).verifyDomain.domain;
    expect(verified.status).toBe("VERIFIED");
  });

  it("treats a name unknown to DNS as every record missing", async () => {
    const created = await create({ domain: uniqueName("unpublished") });
    const failed = (await ok(server, VERIFY, { id: created.id }, { key: org.apiKey })).verifyDomain.domain;
    expect(failed.status).toBe("FAILED");
    expect((failed.records as DnsRecord[]).map((r) => r.status)).toEqual([
      "MISSING",
      "MISSING",
      "MISSING",
      "MISSING",
    ]);
  });
});

describe("domain scopes", () => {
  it("gives a pod key its pod's domains plus shared ones read-only; other pods' are NOT_FOUND and absent", async () => {
    const shared = await create({ domain: uniqueName("shared") });
    const ofB = await create({ domain: uniqueName("pod-b"), podId: pods.B });
    expect(ofB.pod).toEqual({ id: pods.B });
    const ofA = await create({ domain: uniqueName("pod-a") }, keys.podA);
    expect(ofA.pod).toEqual({ id: pods.A });

    const seen = await listNames(keys.podA);
    expect(seen).toContain(shared.domain);
    expect(seen).toContain(ofA.domain);
    expect(seen).not.toContain(ofB.domain);
    expect(await listNames(org.apiKey)).toEqual(
      expect.arrayContaining([shared.domain, ofA.domain, ofB.domain]),
    );

    // Shared: readable by the pod key, but a write is NOT_FOUND (only organization-wide callers change it).
    expect((await ok(server, NODE, { id: shared.id }, { key: keys.podA })).node.domain).toBe(shared.domain);
    expect(await errorOf(VERIFY, { id: shared.id }, keys.podA)).toEqual({ code: "NOT_FOUND" });
    expect(await errorOf(DELETE, { id: shared.id }, keys.podA)).toEqual({ code: "NOT_FOUND" });

    // Another pod's: invisible everywhere.
    const node = await gql(server, NODE, { id: ofB.id }, { key: keys.podA });
    expect(node.body.data).toEqual({ node: null });
    expect(node.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
    expect(await errorOf(VERIFY, { id: ofB.id }, keys.podA)).toEqual({ code: "NOT_FOUND" });
    expect(await errorOf(DELETE, { id: ofB.id }, keys.podA)).toEqual({ code: "NOT_FOUND" });
    expect(await errorOf(CREATE, { input: { domain: uniqueName("x"), podId: pods.B } }, keys.podA)).toEqual({
      code: "NOT_FOUND",
    });
    expect(await listNames(org.apiKey)).toEqual(expect.arrayContaining([shared.domain, ofB.domain]));

    // Its own: the pod key may verify and delete it.
    await ok(server, VERIFY, { id: ofA.id }, { key: keys.podA });
    await ok(server, DELETE, { id: ofA.id }, { key: keys.podA });
    expect(await listNames(keys.podA)).not.toContain(ofA.domain);
  });

  it("treats foreign and mistyped ids like missing ones", async () => {
    const other = await createOrganization(database.db, "Foreign");
    const foreign = (
      await ok(server, CREATE, { input: { domain: uniqueName("foreign") } }, { key: other.apiKey })
    ).createDomain.domain;
    for (const id of [foreign.id, pods.A, "nonsense"]) {
      expect(await errorOf(VERIFY, { id })).toEqual({ code: "NOT_FOUND" });
      expect(await errorOf(DELETE, { id })).toEqual({ code: "NOT_FOUND" });
    }
    expect(await errorOf(CREATE, { input: { domain: uniqueName("y"), podId: "nonsense" } })).toEqual({
      code: "NOT_FOUND",
    });
  });

  it("denies an inbox key every domain field (its ceiling has no DOMAIN_* permission)", async () => {
    const list = await gql(server, LIST, {}, { key: keys.inboxA });
    expect(list.body.data).toEqual({ domains: null });
    expect(list.body.errors?.[0]?.extensions).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "DOMAIN_READ",
      fix: permissionFix("DOMAIN_READ"),
    });
    expect(await errorOf(CREATE, { input: { domain: uniqueName("z") } }, keys.inboxA)).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "DOMAIN_CREATE",
      fix: permissionFix("DOMAIN_CREATE"),
    });
  });
});

describe("deleteDomain", () => {
  it("deletes a domain and frees its name for anyone", async () => {
    const name = uniqueName("freed");
    const domain = await create({ domain: name });
    expect((await ok(server, DELETE, { id: domain.id }, { key: org.apiKey })).deleteDomain).toEqual({
      deletedId: domain.id,
    });
    expect(await listNames(org.apiKey)).not.toContain(name);
    expect(await errorOf(NODE, { id: domain.id })).toEqual({ code: "NOT_FOUND" });
    expect(await errorOf(DELETE, { id: domain.id })).toEqual({ code: "NOT_FOUND" });
    const other = await createOrganization(database.db, "Next owner");
    const again = (await ok(server, CREATE, { input: { domain: name } }, { key: other.apiKey })).createDomain
      .domain;
    expect(again.domain).toBe(name);
  });

  it("refuses to delete a domain while inboxes have addresses on it", async () => {
    const domain = await create({ domain: uniqueName("in-use"), podId: pods.A });
    publish(domain.records);
    await ok(server, VERIFY, { id: domain.id }, { key: org.apiKey });
    const inbox = await createInboxViaApi(server, org.apiKey, {
      podId: pods.A,
      username: "agent",
      domain: domain.domain,
    });
    expect(inbox.email).toBe(`agent@${domain.domain}`);
    expect(await errorOf(DELETE, { id: domain.id })).toMatchObject({ code: "CONFLICT" });
    await ok(
      server,
      "mutation($id: ID!) { deleteInbox(input: { id: $id }) { deletedId } }",
      { id: inbox.id },
      {
        key: org.apiKey,
      },
    );
    await ok(server, DELETE, { id: domain.id }, { key: org.apiKey });
  });
});

describe("DNS_SERVERS and MX_HOST", () => {
  it("parses comma-separated host[:port] addresses and refuses names", () => {
    expect(
      loadConfig({ DNS_SERVERS: "1.1.1.1, 127.0.0.1:5353,[::1]:53,2606:4700::1111" }).dnsServers,
    ).toEqual(["1.1.1.1", "127.0.0.1:5353", "[::1]:53", "2606:4700::1111"]);
    expect(loadConfig({}).dnsServers).toBeUndefined();
    for (const bad of ["dns.google", "1.1.1.1:0", "1.1.1.1:99999", "[::1", ","]) {
      expect(() => loadConfig({ DNS_SERVERS: bad })).toThrow(/^Invalid configuration: DNS_SERVERS expected/);
    }
    expect(loadConfig({ MX_HOST: "MX.Example.com" }).mxHost).toBe("mx.example.com");
    expect(() => loadConfig({ MX_HOST: "not a host" })).toThrow(/^Invalid configuration: MX_HOST/);
  });
});

describe("domains pagination", () => {
  it("lists newest first, two at a time", async () => {
    const fresh = await createOrganization(database.db, "Paging");
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      names.push(
        (await ok(server, CREATE, { input: { domain: uniqueName("page") } }, { key: fresh.apiKey }))
          .createDomain.domain.domain,
      );
    }
    const first = (await ok(server, LIST, { first: 2 }, { key: fresh.apiKey })).domains;
    expect(first.edges.map((e: any) => e.node.domain)).toEqual([names[2], names[1]]);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const second = (
      await ok(server, LIST, { first: 2, after: first.pageInfo.endCursor }, { key: fresh.apiKey })
    ).domains;
    expect(second.edges.map((e: any) => e.node.domain)).toEqual([names[0]]);
    expect(second.pageInfo.hasNextPage).toBe(false);
  });
});
