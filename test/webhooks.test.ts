import { permissionFix } from "../src/auth/permissions.ts";
// Webhooks (docs/webhooks.md): create/list/update/delete, the one-time derived secret, URL safety, and scopes.

import { lookup } from "node:dns/promises";
import { statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { decodeGlobalID } from "@pothos/plugin-relay";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { isPublicAddress } from "../src/net/address-policy.ts";
import { SECRET_KEY_FILE, webhookSigningSecret } from "../src/webhooks/secret.ts";
import { createOrganization } from "./helpers/factories.ts";
import { gql, ok, startTestServer } from "./helpers/server.ts";
import { serverSuite, temporaryDirectory, tenantFixture } from "./helpers/suite.ts";

const WEBHOOK_FIELDS = "id url eventTypes enabled podIds inboxIds createdAt pod { id } inbox { id }";
const CREATE = `mutation($input: CreateWebhookInput!) {
  createWebhook(input: $input) { secret webhook { ${WEBHOOK_FIELDS} } }
}`;
const UPDATE = `mutation($input: UpdateWebhookInput!) { updateWebhook(input: $input) { webhook { ${WEBHOOK_FIELDS} } } }`;
const DELETE = "mutation($id: ID!) { deleteWebhook(input: { id: $id }) { deletedId } }";
const LIST = `query($first: Int, $after: String) {
  webhooks(first: $first, after: $after) { edges { cursor node { id url } } pageInfo { hasNextPage endCursor } }
}`;
const NODE = "query($id: ID!) { node(id: $id) { id ... on Webhook { url eventTypes enabled } } }";
// A public address literal: passes the address policy without needing DNS in the test environment.
const PUBLIC_URL = "https://1.1.1.1/hooks/mailroom";

const dataDir = temporaryDirectory("mailroom-webhooks-");
const { database, server } = serverSuite(() => ({ dataDir: dataDir.path }));
const {
  org,
  pods,
  inboxes: { a: inboxA, b: inboxB },
  keys,
} = tenantFixture(
  { database, server },
  {
    pods: ["A", "B"],
    inboxes: { a: { pod: "A", username: "hooks-a" }, b: { pod: "B", username: "hooks-b" } },
    keys: { podA: { pod: "A" }, podB: { pod: "B" }, inboxA: { inbox: "a" } },
  },
);

const rowId = (globalId: string) => decodeGlobalID(globalId).id;

async function create(input: Record<string, unknown>, key = org.apiKey) {
  return (await ok(server, CREATE, { input: { eventTypes: ["MESSAGE_RECEIVED"], ...input } }, { key }))
    .createWebhook;
}

async function createError(input: Record<string, unknown>, key = org.apiKey, on = server) {
  const response = await gql(on, CREATE, { input: { eventTypes: ["MESSAGE_RECEIVED"], ...input } }, { key });
  expect(response.body.data).toEqual({ createWebhook: null });
  return response.body.errors?.[0]?.extensions;
}

async function listIds(key: string): Promise<string[]> {
  const data = await ok(server, LIST, { first: 200 }, { key });
  return data.webhooks.edges.map((edge: any) => edge.node.id);
}

describe("webhooks", () => {
  it("creates, reads, lists, updates and deletes a webhook", async () => {
    const created = await create({ url: PUBLIC_URL, eventTypes: ["MESSAGE_RECEIVED", "DOMAIN_VERIFIED"] });
    expect(created.webhook).toMatchObject({
      url: PUBLIC_URL,
      eventTypes: ["MESSAGE_RECEIVED", "DOMAIN_VERIFIED"],
      enabled: true,
      pod: null,
      inbox: null,
      podIds: null,
      inboxIds: null,
    });
    const id = created.webhook.id;
    expect(decodeGlobalID(id).typename).toBe("Webhook");
    expect(Date.parse(created.webhook.createdAt)).not.toBeNaN();

    expect((await ok(server, NODE, { id }, { key: org.apiKey })).node).toEqual({
      id,
      url: PUBLIC_URL,
      eventTypes: ["MESSAGE_RECEIVED", "DOMAIN_VERIFIED"],
      enabled: true,
    });
    expect(await listIds(org.apiKey)).toContain(id);

    const updated = await ok(
      server,
      UPDATE,
      { input: { id, url: "https://8.8.8.8/other", eventTypes: ["MESSAGE_BOUNCED"], enabled: false } },
      { key: org.apiKey },
    );
    expect(updated.updateWebhook.webhook).toMatchObject({
      id,
      url: "https://8.8.8.8/other",
      eventTypes: ["MESSAGE_BOUNCED"],
      enabled: false,
    });
    // Omitted fields stay as they are.
    const enabled = await ok(server, UPDATE, { input: { id, enabled: true } }, { key: org.apiKey });
    expect(enabled.updateWebhook.webhook).toMatchObject({
      url: "https://8.8.8.8/other",
      eventTypes: ["MESSAGE_BOUNCED"],
      enabled: true,
    });

    expect((await ok(server, DELETE, { id }, { key: org.apiKey })).deleteWebhook).toEqual({ deletedId: id });
    const gone = await gql(server, NODE, { id }, { key: org.apiKey });
    expect(gone.body.data).toEqual({ node: null });
    expect(gone.body.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    expect(await listIds(org.apiKey)).not.toContain(id);
    const again = await gql(server, DELETE, { id }, { key: org.apiKey });
    expect(again.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
  });

  it("stores the URL as it will be called (normalized) and de-duplicates event types", async () => {
    const { webhook } = await create({
      url: "HTTPS://1.1.1.1:443/a/../hook",
      eventTypes: ["MESSAGE_SENT", "MESSAGE_SENT"],
    });
    expect(webhook.url).toBe("https://1.1.1.1/hook");
    expect(webhook.eventTypes).toEqual(["MESSAGE_SENT"]);
  });

  it("paginates newest first with first/after", async () => {
    const fresh = await createOrganization(database.db, "Paging");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await create({ url: `${PUBLIC_URL}/${i}` }, fresh.apiKey)).webhook.id);
    const page1 = (await ok(server, LIST, { first: 2 }, { key: fresh.apiKey })).webhooks;
    expect(page1.edges.map((e: any) => e.node.id)).toEqual([ids[4], ids[3]]);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = (
      await ok(server, LIST, { first: 2, after: page1.pageInfo.endCursor }, { key: fresh.apiKey })
    ).webhooks;
    expect(page2.edges.map((e: any) => e.node.id)).toEqual([ids[2], ids[1]]);
    const page3 = (
      await ok(server, LIST, { first: 2, after: page2.pageInfo.endCursor }, { key: fresh.apiKey })
    ).webhooks;
    expect(page3.edges.map((e: any) => e.node.id)).toEqual([ids[0]]);
    expect(page3.pageInfo.hasNextPage).toBe(false);
    // Another organization's webhooks never show up.
    expect(await listIds(org.apiKey)).not.toContain(ids[0]);
  });
});

describe("the webhook secret", () => {
  it("is a Standard Webhooks secret, returned once and derivable only with the server key", async () => {
    const first = await create({ url: PUBLIC_URL });
    const second = await create({ url: PUBLIC_URL });
    for (const { secret } of [first, second]) {
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(secret.slice("whsec_".length), "base64")).toHaveLength(32);
    }
    expect(first.secret).not.toBe(second.secret);

    // Not readable again: the type has no field that could carry it.
    const type = await ok(server, '{ __type(name: "Webhook") { fields { name } } }', {}, { key: org.apiKey });
    const fields = type.__type.fields.map((f: any) => f.name);
    expect(fields.some((name: string) => /secret|salt/i.test(name))).toBe(false);

    // Recomputable from the stored salt and the key file: what the delivery code will do.
    const row = await database.db
      .selectFrom("webhooks")
      .select("secret_salt")
      .where("id", "=", rowId(first.webhook.id))
      .executeTakeFirstOrThrow();
    expect(
      webhookSigningSecret({ dataDir: dataDir.path, webhookSecretKey: undefined }, row.secret_salt),
    ).toBe(first.secret);
    const keyFile = path.join(dataDir.path, SECRET_KEY_FILE);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    // A different server key yields a different secret: the salt alone is worthless.
    expect(
      webhookSigningSecret({ dataDir: dataDir.path, webhookSecretKey: "k".repeat(32) }, row.secret_salt),
    ).not.toBe(first.secret);
  });

  it("appears nowhere in the database", async () => {
    const { secret } = await create({ url: PUBLIC_URL });
    const body = secret.slice("whsec_".length);
    const raw = Buffer.from(body, "base64");
    const tables = await database.pool.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    );
    let dump = "";
    for (const { table_name } of tables.rows) {
      const rows = await database.pool.query(`SELECT t::text AS row FROM ${table_name} t`);
      dump += rows.rows.map((r) => r.row).join("\n");
    }
    // Sanity: the dump does hold the webhook rows.
    expect(dump).toContain(PUBLIC_URL);
    for (const needle of [
      secret,
      body,
      raw.toString("hex"),
      raw.toString("base64url"),
      Buffer.from(secret).toString("hex"),
    ]) {
      expect(dump).not.toContain(needle);
    }
  });

  it("refuses a WEBHOOK_SECRET_KEY shorter than 32 characters", () => {
    expect(() => loadConfig({ WEBHOOK_SECRET_KEY: "short" })).toThrow(
      /^Invalid configuration: WEBHOOK_SECRET_KEY expected at least 32 characters/,
    );
    expect(loadConfig({ WEBHOOK_SECRET_KEY: "x".repeat(32) }).webhookSecretKey).toBe("x".repeat(32));
  });

  it("uses WEBHOOK_SECRET_KEY when it is set, the same on every node", async () => {
    const key = "a-shared-server-key-of-at-least-32-characters";
    const other = await startTestServer(database.url, { dataDir: dataDir.path, webhookSecretKey: key });
    try {
      const { secret, webhook } = (
        await ok(
          other,
          CREATE,
          { input: { url: PUBLIC_URL, eventTypes: ["MESSAGE_SENT"] } },
          { key: org.apiKey },
        )
      ).createWebhook;
      const row = await database.db
        .selectFrom("webhooks")
        .select("secret_salt")
        .where("id", "=", rowId(webhook.id))
        .executeTakeFirstOrThrow();
      expect(webhookSigningSecret({ dataDir: "/nonexistent", webhookSecretKey: key }, row.secret_salt)).toBe(
        secret,
      );
    } finally {
      await other.stop();
    }
  });
});

describe("webhook URLs", () => {
  it.each([
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
    "http://10.0.0.5/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://[fd12:3456::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://[::ffff:0:7f00:1]/hook",
    "http://[64:ff9b:1::a00:1]/hook",
    "http://[64:ff9b::7f00:1]/hook",
    "http://[2002:a00:1::1]/hook",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
    "http://0x7f.1/hook",
    "http://2130706433/hook",
  ])("refuses %s (private, loopback or otherwise internal)", async (url) => {
    expect(await createError({ url })).toMatchObject({ code: "BAD_USER_INPUT", field: "url" });
  });

  it("refuses a host name that resolves to a loopback or private address", async () => {
    // The machine's own name resolves locally (/etc/hosts) to a loopback or private address.
    const name = os.hostname();
    const addresses = await lookup(name, { all: true }).catch(() => []);
    expect(addresses.length).toBeGreaterThan(0);
    expect(addresses.every(({ address }) => !isPublicAddress(address))).toBe(true);
    expect(await createError({ url: `https://${name}/hook` })).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "url",
    });
  });

  it.each([
    ["not a url", "not a url"],
    ["a relative URL", "/hooks"],
    ["another scheme", "ftp://1.1.1.1/hook"],
    ["a javascript: URL", "javascript:alert(1)"],
    ["credentials", "https://user:secret@1.1.1.1/hook"],
    ["a user name", "https://user@1.1.1.1/hook"],
    ["more than 2048 characters", `https://1.1.1.1/${"a".repeat(2048)}`],
  ])("refuses %s", async (_what, url) => {
    expect(await createError({ url })).toMatchObject({ code: "BAD_USER_INPUT", field: "url" });
  });

  it("checks the URL on update too", async () => {
    const { webhook } = await create({ url: PUBLIC_URL });
    const response = await gql(
      server,
      UPDATE,
      { input: { id: webhook.id, url: "http://10.1.1.1/" } },
      { key: org.apiKey },
    );
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "url" });
    const node = await ok(server, NODE, { id: webhook.id }, { key: org.apiKey });
    expect(node.node.url).toBe(PUBLIC_URL);
  });

  it("refuses an empty list of event types", async () => {
    expect(await createError({ url: PUBLIC_URL, eventTypes: [] })).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "eventTypes",
    });
    const { webhook } = await create({ url: PUBLIC_URL });
    const response = await gql(
      server,
      UPDATE,
      { input: { id: webhook.id, eventTypes: [] } },
      { key: org.apiKey },
    );
    expect(response.body.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "eventTypes",
    });
  });

  it("allows private and loopback URLs when ALLOW_PRIVATE_WEBHOOK_URLS is set", async () => {
    const permissive = await startTestServer(database.url, {
      dataDir: dataDir.path,
      allowPrivateWebhookUrls: true,
    });
    try {
      for (const url of [
        "http://127.0.0.1:9999/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.0.0.5/",
      ]) {
        const data = await ok(
          permissive,
          CREATE,
          { input: { url, eventTypes: ["MESSAGE_RECEIVED"] } },
          { key: org.apiKey },
        );
        expect(data.createWebhook.webhook.url).toBe(new URL(url).href);
      }
      // Still only http(s), still no credentials.
      expect(await createError({ url: "https://u:p@localhost/" }, org.apiKey, permissive)).toMatchObject({
        code: "BAD_USER_INPUT",
        field: "url",
      });
      expect(await createError({ url: "file:///etc/passwd" }, org.apiKey, permissive)).toMatchObject({
        code: "BAD_USER_INPUT",
        field: "url",
      });
    } finally {
      await permissive.stop();
    }
  });
});

describe("webhook scopes", () => {
  it("gives a pod key its own pod's webhooks only; others are NOT_FOUND and absent", async () => {
    const mine = (await create({ url: PUBLIC_URL }, keys.podA)).webhook;
    expect(mine.pod).toEqual({ id: pods.A });
    expect(mine.inbox).toBeNull();
    const theirs = (await create({ url: PUBLIC_URL }, keys.podB)).webhook;
    const orgWide = (await create({ url: PUBLIC_URL })).webhook;

    const seenByA = await listIds(keys.podA);
    expect(seenByA).toContain(mine.id);
    expect(seenByA).not.toContain(theirs.id);
    expect(seenByA).not.toContain(orgWide.id);
    const seenByOrg = await listIds(org.apiKey);
    expect(seenByOrg).toEqual(expect.arrayContaining([mine.id, theirs.id, orgWide.id]));

    for (const id of [theirs.id, orgWide.id]) {
      const node = await gql(server, NODE, { id }, { key: keys.podA });
      expect(node.body.data).toEqual({ node: null });
      expect(node.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
      const update = await gql(server, UPDATE, { input: { id, enabled: false } }, { key: keys.podA });
      expect(update.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
      const remove = await gql(server, DELETE, { id }, { key: keys.podA });
      expect(remove.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
    }
    // Untouched by those attempts.
    expect((await ok(server, NODE, { id: theirs.id }, { key: keys.podB })).node.enabled).toBe(true);
    // The owner and the organization may change it.
    await ok(server, UPDATE, { input: { id: mine.id, enabled: false } }, { key: keys.podA });
    await ok(server, DELETE, { id: mine.id }, { key: org.apiKey });
  });

  it("accepts delivery filters inside the caller's scope and NOT_FOUND for any outside it", async () => {
    const filtered = await create(
      { url: PUBLIC_URL, podIds: [pods.A, pods.A], inboxIds: [inboxA.id] },
      keys.podA,
    );
    expect(filtered.webhook.podIds).toEqual([pods.A]);
    expect(filtered.webhook.inboxIds).toEqual([inboxA.id]);
    expect((await create({ url: PUBLIC_URL, podIds: [pods.A, pods.B] })).webhook.podIds).toEqual([
      pods.A,
      pods.B,
    ]);

    for (const input of [
      { podIds: [pods.B] },
      { inboxIds: [inboxB.id] },
      { podIds: [inboxA.id] },
      { inboxIds: ["bogus"] },
    ]) {
      expect(await createError({ url: PUBLIC_URL, ...input }, keys.podA)).toEqual({ code: "NOT_FOUND" });
    }
    const otherOrg = await createOrganization(database.db, "Other");
    expect(await createError({ url: PUBLIC_URL, podIds: [pods.A] }, otherOrg.apiKey)).toEqual({
      code: "NOT_FOUND",
    });
  });

  it("treats a mistyped or foreign id like a missing one", async () => {
    const otherOrg = await createOrganization(database.db, "Foreign");
    const foreign = (await create({ url: PUBLIC_URL }, otherOrg.apiKey)).webhook.id;
    for (const id of [foreign, pods.A, "not-an-id"]) {
      const response = await gql(server, UPDATE, { input: { id, enabled: false } }, { key: org.apiKey });
      expect(response.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
      const remove = await gql(server, DELETE, { id }, { key: org.apiKey });
      expect(remove.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
    }
  });

  it("denies an inbox key every webhook field (its ceiling has no WEBHOOK_* permission)", async () => {
    const list = await gql(server, LIST, {}, { key: keys.inboxA });
    expect(list.body.data).toEqual({ webhooks: null });
    expect(list.body.errors?.[0]?.extensions).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "WEBHOOK_READ",
      fix: permissionFix("WEBHOOK_READ"),
    });
    expect(await createError({ url: PUBLIC_URL }, keys.inboxA)).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "WEBHOOK_CREATE",
      fix: permissionFix("WEBHOOK_CREATE"),
    });
  });

  it("prints @requires on every webhook field that needs a permission", async () => {
    const { printSchemaSdl } = await import("../src/schema/print.ts");
    const { Kind, parse } = await import("graphql");
    const document = parse(printSchemaSdl());
    const requiredOn = (typeName: string, fieldName: string) => {
      for (const definition of document.definitions) {
        if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION || definition.name.value !== typeName) continue;
        const field = definition.fields?.find((candidate) => candidate.name.value === fieldName);
        const argument = field?.directives
          ?.find((directive) => directive.name.value === "requires")
          ?.arguments?.find((arg) => arg.name.value === "permission");
        return argument?.value.kind === Kind.ENUM ? argument.value.value : undefined;
      }
      return undefined;
    };
    expect(requiredOn("Query", "webhooks")).toBe("WEBHOOK_READ");
    expect(requiredOn("Mutation", "createWebhook")).toBe("WEBHOOK_CREATE");
    expect(requiredOn("Mutation", "updateWebhook")).toBe("WEBHOOK_UPDATE");
    expect(requiredOn("Mutation", "deleteWebhook")).toBe("WEBHOOK_DELETE");
  });
});
