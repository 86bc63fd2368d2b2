// A webhook sees what its creator could see (docs/webhooks.md): the recorded visibility decides which
// events get a delivery (labels as they were at the event), narrowing on update, the re-check when a
// delivery runs, what Webhook.deliveries lists, and a creator key that is deleted or expires.
import { decodeGlobalID } from "@pothos/plugin-relay";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { permissionFix } from "../src/auth/permissions.ts";
import { createInboxViaApi, createKey, createPodViaApi, deleteKey, deliver } from "./helpers/factories.ts";
import { httpEndpoint, readBody } from "./helpers/http-endpoint.ts";
import { gql, ok } from "./helpers/server.ts";
import { organizationFixture, serverSuite } from "./helpers/suite.ts";
import { sleep, until } from "./helpers/wait.ts";

/** Bodies received, by path. */
const received = new Map<string, string[]>();
/** Status codes to answer on a path, one per request; then 200. */
const scripts = new Map<string, number[]>();

const RETRY_MS = 1_000;

const receiver = httpEndpoint((req, res) =>
  readBody(req, (body) => {
    const path = req.url ?? "/";
    received.set(path, [...(received.get(path) ?? []), body]);
    res.writeHead(scripts.get(path)?.shift() ?? 200).end();
  }),
);
const { database, server } = serverSuite({
  allowPrivateWebhookUrls: true,
  workerPollIntervalMs: 50,
  // Long enough to change a webhook between a failed attempt and its retry.
  webhookRetryDelaysMs: [RETRY_MS],
});
const org = organizationFixture(database);

const CREATE = `mutation($input: CreateWebhookInput!) {
  createWebhook(input: $input) { webhook { id enabled disabledReason } }
}`;
const UPDATE = `mutation($input: UpdateWebhookInput!) {
  updateWebhook(input: $input) { webhook { id enabled disabledReason } }
}`;
const STATE = "query($id: ID!) { node(id: $id) { ... on Webhook { enabled disabledReason } } }";
const DELIVERIES = `query($id: ID!) { node(id: $id) { ... on Webhook {
  deliveries(first: 50) { edges { node { status lastError eventType } } } } } }`;

async function createWebhook(key: string, path: string, input: Record<string, unknown> = {}) {
  const data = await ok(
    server,
    CREATE,
    { input: { url: `${receiver.url}${path}`, eventTypes: ["MESSAGE_RECEIVED"], ...input } },
    { key },
  );
  return data.createWebhook.webhook.id as string;
}

/** Delivery rows of a webhook: what the database holds, whoever may list them. */
async function deliveryRows(webhookId: string) {
  return database.db
    .selectFrom("webhook_deliveries as d")
    .innerJoin("events as e", (join) =>
      join.onRef("e.org_id", "=", "d.org_id").onRef("e.id", "=", "d.event_id"),
    )
    .select(["d.status", "d.last_error", "e.message_id"])
    .where("d.webhook_id", "=", decodeGlobalID(webhookId).id)
    .orderBy("d.id")
    .execute();
}

const bodies = (path: string) => (received.get(path) ?? []).map((body) => JSON.parse(body));
const rowId = (globalId: string) => decodeGlobalID(globalId).id;
const SPAM = { labels: ["received", "spam", "unread"] };

describe("what a webhook may subscribe to", () => {
  it("refuses message events to a key without MESSAGE_READ and DOMAIN_VERIFIED without DOMAIN_READ", async () => {
    const pod = await createPodViaApi(server, org.apiKey, "only-webhooks");
    // The key found in review: it could create a MESSAGE_RECEIVED webhook and read every message.
    const onlyWebhooks = (
      await createKey(server, org.apiKey, {
        podId: pod,
        permissions: { webhookCreate: true, webhookRead: true },
      })
    ).secret;
    for (const [eventTypes, requiredPermission] of [
      [["MESSAGE_RECEIVED"], "MESSAGE_READ"],
      [["MESSAGE_BOUNCED", "DOMAIN_VERIFIED"], "MESSAGE_READ"],
      [["DOMAIN_VERIFIED"], "DOMAIN_READ"],
    ] as const) {
      const response = await gql(
        server,
        CREATE,
        { input: { url: `${receiver.url}/refused`, eventTypes } },
        { key: onlyWebhooks },
      );
      expect(response.body.data).toEqual({ createWebhook: null });
      expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "FORBIDDEN", requiredPermission });
    }
    const { webhooks } = await ok(
      server,
      "{ webhooks(first: 200) { edges { node { url } } } }",
      {},
      {
        key: org.apiKey,
      },
    );
    expect(webhooks.edges.map((edge: any) => edge.node.url)).not.toContain(`${receiver.url}/refused`);

    // The same on update: the webhook's event types after the change must be readable by the caller.
    const domainsOnly = (
      await createKey(server, org.apiKey, {
        podId: pod,
        permissions: { webhookCreate: true, webhookUpdate: true, domainRead: true },
      })
    ).secret;
    const id = await createWebhook(domainsOnly, "/domains-only", { eventTypes: ["DOMAIN_VERIFIED"] });
    const update = await gql(
      server,
      UPDATE,
      { input: { id, eventTypes: ["MESSAGE_RECEIVED"] } },
      { key: domainsOnly },
    );
    expect(update.body.errors?.[0]?.extensions).toMatchObject({
      code: "FORBIDDEN",
      requiredPermission: "MESSAGE_READ",
      fix: permissionFix("MESSAGE_READ"),
    });
  });
});

describe("what a webhook hears", () => {
  it("gets no spam when its creator could not read spam, judged by the labels at the event", async () => {
    const pod = await createPodViaApi(server, org.apiKey, "no-spam");
    const inbox = await createInboxViaApi(server, org.apiKey, { podId: pod, username: "no-spam" });
    const noSpamKey = (
      await createKey(server, org.apiKey, {
        podId: pod,
        permissions: { webhookCreate: true, webhookRead: true, messageRead: true },
      })
    ).secret;
    const hook = await createWebhook(noSpamKey, "/no-spam");
    const spam = await deliver(database.db, inbox.id, { subject: "Cheap pills", ...SPAM });
    const clean = await deliver(database.db, inbox.id, { subject: "Hello" });
    const [body] = await until(() => (bodies("/no-spam").length > 0 ? bodies("/no-spam") : undefined));
    expect(body.data).toMatchObject({
      messageId: clean.id,
      message: { subject: "Hello", labels: ["received", "unread"] },
    });
    // No delivery row exists for the spam, not merely an unsent one.
    expect((await deliveryRows(hook)).map((row) => row.message_id)).toEqual([rowId(clean.id)]);

    // Taking the spam label off later changes nothing: the event happened to spam.
    await ok(
      server,
      'mutation($id: ID!) { updateMessage(input: { id: $id, removeLabels: ["spam"] }) { message { labels } } }',
      { id: spam.id },
      { key: org.apiKey },
    );
    await deliver(database.db, inbox.id, { subject: "Also spam", ...SPAM });
    await sleep(300);
    expect(bodies("/no-spam")).toHaveLength(1);
    expect(await deliveryRows(hook)).toHaveLength(1);
  });

  it("narrows what it sees to the caller who changes it: what both could see", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "narrowed" });
    // The creator may read trash but not spam; the one who changes it, spam but not trash.
    const creator = (
      await createKey(server, org.apiKey, {
        permissions: { webhookCreate: true, messageRead: true, labelTrashRead: true },
      })
    ).secret;
    const hook = await createWebhook(creator, "/narrowed/before", { inboxIds: [inbox.id] });
    await deliver(database.db, inbox.id, { subject: "Trash seen", labels: ["received", "trash"] });
    await until(() => bodies("/narrowed/before").length === 1);

    const changer = (
      await createKey(server, org.apiKey, {
        permissions: { webhookUpdate: true, messageRead: true, labelSpamRead: true },
      })
    ).secret;
    await ok(
      server,
      UPDATE,
      { input: { id: hook, url: `${receiver.url}/narrowed/after` } },
      { key: changer },
    );
    await deliver(database.db, inbox.id, { subject: "Trash unseen", labels: ["received", "trash"] });
    await deliver(database.db, inbox.id, { subject: "Spam unseen", ...SPAM });
    const clean = await deliver(database.db, inbox.id, { subject: "Clean" });
    const [body] = await until(() =>
      bodies("/narrowed/after").length > 0 ? bodies("/narrowed/after") : undefined,
    );
    expect(body.data.messageId).toBe(clean.id);
    await sleep(300);
    expect(bodies("/narrowed/after")).toHaveLength(1);
  });

  it("carries the labels of the message as they were at the event, for every kind of message event", async () => {
    const from = await createInboxViaApi(server, org.apiKey, { username: "labels-from" });
    const to = await createInboxViaApi(server, org.apiKey, { username: "labels-to" });
    await createWebhook(org.apiKey, "/labels", {
      eventTypes: ["MESSAGE_SENT", "MESSAGE_DELIVERED", "MESSAGE_RECEIVED"],
      inboxIds: [from.id, to.id],
    });
    await ok(
      server,
      "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } } }",
      { input: { inboxId: from.id, to: [to.email], subject: "Labelled", text: "x", labels: ["project-x"] } },
      { key: org.apiKey },
    );
    const seen = await until(() => (bodies("/labels").length === 3 ? bodies("/labels") : undefined));
    const labelsOf = (type: string) => seen.find((body) => body.type === type)?.data.message.labels;
    expect(labelsOf("message.sent")).toEqual(["project-x", "sent"]);
    expect(labelsOf("message.delivered")).toEqual(["project-x", "sent"]);
    expect(labelsOf("message.received")).toEqual(["received", "unread"]);
  });

  it("checks again when a delivery runs: a webhook narrowed before a retry sends nothing", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "recheck" });
    const hook = await createWebhook(org.apiKey, "/recheck", { inboxIds: [inbox.id] });
    scripts.set("/recheck", [503]);
    await deliver(database.db, inbox.id, { subject: "Spam, retried", ...SPAM });
    await until(() => bodies("/recheck").length === 1);
    const narrower = (
      await createKey(server, org.apiKey, {
        permissions: { webhookUpdate: true, webhookRead: true, messageRead: true },
      })
    ).secret;
    await ok(server, UPDATE, { input: { id: hook, url: `${receiver.url}/recheck` } }, { key: narrower });
    const [row] = await until(async () => {
      const rows = await deliveryRows(hook);
      return rows[0]?.status === "FAILED" ? rows : undefined;
    }, RETRY_MS + 5_000);
    expect(row?.last_error).toMatch(/may no longer read this event/);
    expect(bodies("/recheck")).toHaveLength(1);
  });
});

describe("Webhook.deliveries", () => {
  it("lists only deliveries about events the caller may read", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "listed" });
    const hook = await createWebhook(org.apiKey, "/listed", { inboxIds: [inbox.id] });
    await deliver(database.db, inbox.id, { subject: "Spam", ...SPAM });
    await deliver(database.db, inbox.id, { subject: "Clean" });
    await until(() => bodies("/listed").length === 2);
    const listed = async (permissions: Record<string, boolean>) => {
      const key = (await createKey(server, org.apiKey, { permissions })).secret;
      const data = await ok(server, DELIVERIES, { id: hook }, { key });
      return data.node.deliveries.edges.length;
    };
    expect(
      (await ok(server, DELIVERIES, { id: hook }, { key: org.apiKey })).node.deliveries.edges,
    ).toHaveLength(2);
    expect(await listed({ webhookRead: true, messageRead: true, labelSpamRead: true })).toBe(2);
    expect(await listed({ webhookRead: true, messageRead: true })).toBe(1);
    expect(await listed({ webhookRead: true })).toBe(0);
  });
});

describe("a webhook whose creator key is gone", () => {
  it("is disabled when the key is deleted, sends nothing more, and runs again once re-enabled", async () => {
    const pod = await createPodViaApi(server, org.apiKey, "revoked");
    const inbox = await createInboxViaApi(server, org.apiKey, { podId: pod, username: "revoked" });
    const podKey = await createKey(server, org.apiKey, { podId: pod });
    const hook = await createWebhook(podKey.secret, "/revoked");
    await deliver(database.db, inbox.id);
    await until(() => bodies("/revoked").length === 1);

    await deleteKey(server, org.apiKey, podKey.id);
    expect((await ok(server, STATE, { id: hook }, { key: org.apiKey })).node).toEqual({
      enabled: false,
      disabledReason: "CREATOR_KEY_REVOKED",
    });
    await deliver(database.db, inbox.id);
    await sleep(300);
    expect(bodies("/revoked")).toHaveLength(1);
    expect(await deliveryRows(hook)).toHaveLength(1);

    // A person re-enables it and becomes its creator.
    const login = await gql(
      server,
      "mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { user { id } } }",
      { email: org.adminEmail, password: org.adminPassword },
    );
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const enabled = await ok(server, UPDATE, { input: { id: hook, enabled: true } }, { cookie });
    expect(enabled.updateWebhook.webhook).toMatchObject({ enabled: true, disabledReason: null });
    const row = await database.db
      .selectFrom("webhooks")
      .select(["created_by_api_key_id", "created_by_user_id"])
      .where("id", "=", rowId(hook))
      .executeTakeFirstOrThrow();
    expect(row.created_by_api_key_id).toBeNull();
    expect(row.created_by_user_id).not.toBeNull();
    await deliver(database.db, inbox.id);
    await until(() => bodies("/revoked").length === 2);
  });

  it("does not send a delivery queued before its key was deleted", async () => {
    const key = await createKey(server, org.apiKey);
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "in-flight" });
    const hook = await createWebhook(key.secret, "/in-flight", { inboxIds: [inbox.id] });
    scripts.set("/in-flight", [503]);
    await deliver(database.db, inbox.id);
    await until(() => bodies("/in-flight").length === 1);
    await deleteKey(server, org.apiKey, key.id);
    const [row] = await until(async () => {
      const rows = await deliveryRows(hook);
      return rows[0]?.status === "FAILED" ? rows : undefined;
    }, RETRY_MS + 5_000);
    expect(row?.last_error).toMatch(/disabled/);
    expect(bodies("/in-flight")).toHaveLength(1);
  });

  it("does not send a delivery queued before its key expired, and records why it stopped", async () => {
    const expiresAt = Date.now() + 2_000;
    const key = await createKey(server, org.apiKey, { expiresAt: new Date(expiresAt).toISOString() });
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "expired-in-flight" });
    const hook = await createWebhook(key.secret, "/expired-in-flight", { inboxIds: [inbox.id] });
    // Every attempt fails, so it is retried past the expiry.
    scripts.set("/expired-in-flight", new Array(10).fill(503));
    await deliver(database.db, inbox.id);
    await until(() => Date.now() > expiresAt + 100, 5_000);
    const sentBeforeExpiry = bodies("/expired-in-flight").length;
    const [row] = await until(async () => {
      const rows = await deliveryRows(hook);
      return rows[0]?.status === "FAILED" ? rows : undefined;
    }, RETRY_MS + 5_000);
    expect(row?.last_error).toMatch(/deleted or has expired/);
    expect(bodies("/expired-in-flight")).toHaveLength(sentBeforeExpiry);
    const stored = await database.db
      .selectFrom("webhooks")
      .select(["enabled", "disabled_reason"])
      .where("id", "=", rowId(hook))
      .executeTakeFirstOrThrow();
    expect(stored).toEqual({ enabled: false, disabled_reason: "CREATOR_KEY_REVOKED" });
  });

  it("reads as disabled once the key expires, before any delivery, and queues nothing for it", async () => {
    const key = await createKey(server, org.apiKey, {
      expiresAt: new Date(Date.now() + 3_000).toISOString(),
    });
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "expiring" });
    const hook = await createWebhook(key.secret, "/expiring", { inboxIds: [inbox.id] });
    expect((await ok(server, STATE, { id: hook }, { key: org.apiKey })).node.enabled).toBe(true);
    await until(async () => {
      const { node } = await ok(server, STATE, { id: hook }, { key: org.apiKey });
      return node.enabled === false ? node : undefined;
    }, 6_000).then((node) => expect(node.disabledReason).toBe("CREATOR_KEY_REVOKED"));
    await deliver(database.db, inbox.id);
    await sleep(300);
    expect(await deliveryRows(hook)).toHaveLength(0);
    expect(bodies("/expiring")).toHaveLength(0);

    // Another key takes it over; changing it without turning it on leaves it off for that reason.
    await ok(server, UPDATE, { input: { id: hook, url: `${receiver.url}/expiring` } }, { key: org.apiKey });
    expect((await ok(server, STATE, { id: hook }, { key: org.apiKey })).node).toEqual({
      enabled: false,
      disabledReason: "CREATOR_KEY_REVOKED",
    });
    await ok(server, UPDATE, { input: { id: hook, enabled: true } }, { key: org.apiKey });
    await deliver(database.db, inbox.id);
    await until(() => bodies("/expiring").length === 1);
  });

  it("is disabled by whatever deletes the key, in the deleting transaction", async () => {
    const key = await createKey(server, org.apiKey);
    const hook = await createWebhook(key.secret, "/any-path");
    // Not through the API: the rule holds for any statement that deletes a key, now or later.
    await database.db.transaction().execute(async (trx) => {
      await trx.deleteFrom("api_keys").where("id", "=", rowId(key.id)).execute();
      const row = await trx
        .selectFrom("webhooks")
        .select(["enabled", "disabled_reason"])
        .where("id", "=", rowId(hook))
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ enabled: false, disabled_reason: "CREATOR_KEY_REVOKED" });
    });
  });

  it("goes with its pod when the pod and its keys are deleted", async () => {
    const pod = await createPodViaApi(server, org.apiKey, "doomed");
    const podKey = await createKey(server, org.apiKey, { podId: pod });
    const hook = await createWebhook(podKey.secret, "/doomed");
    await ok(
      server,
      "mutation($id: ID!) { deletePod(input: { id: $id }) { deletedId } }",
      { id: pod },
      {
        key: org.apiKey,
      },
    );
    const { rows } = await sql<{ count: string }>`
      SELECT count(*) FROM webhooks WHERE id = ${rowId(hook)}`.execute(database.db);
    expect(rows[0]?.count).toBe("0");
  });
});
