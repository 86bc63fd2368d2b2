// Test data made through the application's own services and API, never by hand-written SQL.
import { randomBytes } from "node:crypto";
import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import { loadConfig } from "../../src/config.ts";
import type { Db } from "../../src/db/database.ts";
import type { MessageData } from "../../src/mail/message.ts";
import { storeMessage } from "../../src/mail/store.ts";
import { bootstrapOrganization } from "../../src/organizations/service.ts";
import { ok } from "./server.ts";

export interface TestOrganization {
  organizationId: string;
  apiKey: string;
  adminEmail: string;
  adminPassword: string;
}

export async function createOrganization(db: Db, name = "Acme"): Promise<TestOrganization> {
  const adminEmail = `admin-${randomBytes(4).toString("hex")}@example.test`;
  const adminPassword = "correct horse battery staple";
  const result = await bootstrapOrganization(
    { db, config: loadConfig({}) },
    { name, adminEmail, adminPassword },
  );
  return { ...result, adminPassword };
}

export const CREATE_KEY = `mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { secret apiKey { id name prefix scope permissions { inboxRead podRead podCreate apiKeyCreate apiKeyRead } expiresAt } }
}`;

/** A key made through the API by `creatorKey`: what a client would do. */
export async function createKey(
  server: { url: string },
  creatorKey: string,
  input: Record<string, unknown> = {},
): Promise<{ secret: string; id: string; apiKey: Record<string, any> }> {
  const data = await ok(server, CREATE_KEY, { input: { name: "test key", ...input } }, { key: creatorKey });
  return {
    secret: data.createApiKey.secret,
    id: data.createApiKey.apiKey.id,
    apiKey: data.createApiKey.apiKey,
  };
}

export const DELETE_KEY = "mutation($id: ID!) { deleteApiKey(input: { id: $id }) { deletedId } }";

/** Deletes (revokes) the key with global id `id`, as the holder of `deleterKey` would. */
export async function deleteKey(server: { url: string }, deleterKey: string, id: string): Promise<void> {
  await ok(server, DELETE_KEY, { id }, { key: deleterKey });
}

export async function createPodViaApi(server: { url: string }, key: string, name = "Pod"): Promise<string> {
  const data = await ok(
    server,
    `mutation($name: String!) { createPod(input: { name: $name }) { pod { id } } }`,
    { name },
    { key },
  );
  return data.createPod.pod.id;
}

export async function createInboxViaApi(
  server: { url: string },
  key: string,
  input: Record<string, unknown>,
): Promise<{ id: string; email: string }> {
  const data = await ok(
    server,
    `mutation($input: CreateInboxInput!) { createInbox(input: $input) { inbox { id email } } }`,
    { input },
    { key },
  );
  return data.createInbox.inbox;
}

let messageCounter = 0;

/** Stores a received message in an inbox (given by global id) through the same code the mail pipeline uses. */
export async function deliver(
  db: Db,
  inboxGlobalId: string,
  data: Partial<MessageData> = {},
): Promise<{ id: string; threadId: string; messageIdHeader: string }> {
  const inboxId = decodeGlobalID(inboxGlobalId).id;
  const inbox = await db
    .selectFrom("inboxes")
    .select(["org_id", "pod_id", "id"])
    .where("id", "=", inboxId)
    .executeTakeFirstOrThrow();
  messageCounter++;
  const messageIdHeader = data.messageIdHeader ?? `<m${messageCounter}.${Date.now()}@sender.test>`;
  const { message } = await db.transaction().execute((trx) =>
    storeMessage(
      trx,
      { orgId: inbox.org_id, podId: inbox.pod_id, inboxId: inbox.id },
      {
        messageIdHeader,
        from: "sender@sender.test",
        to: ["inbox@mailroom.localhost"],
        subject: `Message ${messageCounter}`,
        text: `Body ${messageCounter}`,
        html: null,
        inReplyTo: null,
        references: [],
        labels: ["received", "unread"],
        direction: "INBOUND",
        sizeBytes: 100,
        createdAt: new Date(Date.now() + messageCounter),
        ...data,
      },
      "MESSAGE_RECEIVED",
    ),
  );
  return {
    id: encodeGlobalID("Message", message.id),
    threadId: encodeGlobalID("Thread", message.thread_id),
    messageIdHeader,
  };
}

/**
 * Nodes no mutation makes, as rows for a delivered message: an attachment on it, its MESSAGE_RECEIVED
 * event and (given a webhook) a delivery of that event. Global ids by type name.
 */
export async function nodesOfMessage(
  db: Db,
  messageGlobalId: string,
  webhookGlobalId?: string,
): Promise<{ Attachment: string; Event: string; WebhookDelivery?: string }> {
  const message = await db
    .selectFrom("messages")
    .select(["org_id", "id"])
    .where("id", "=", decodeGlobalID(messageGlobalId).id)
    .executeTakeFirstOrThrow();
  const attachment = await db
    .insertInto("attachments")
    .values({
      org_id: message.org_id,
      message_id: message.id,
      filename: "a.txt",
      content_type: "text/plain",
      size_bytes: 1,
      content: Buffer.from("a"),
    })
    .returning("id")
    .executeTakeFirstOrThrow();
  const event = await db
    .selectFrom("events")
    .select("id")
    .where("org_id", "=", message.org_id)
    .where("message_id", "=", message.id)
    .executeTakeFirstOrThrow();
  const nodes = {
    Attachment: encodeGlobalID("Attachment", attachment.id),
    Event: encodeGlobalID("Event", event.id),
  };
  if (!webhookGlobalId) return nodes;
  const delivery = await db
    .insertInto("webhook_deliveries")
    .values({ org_id: message.org_id, webhook_id: decodeGlobalID(webhookGlobalId).id, event_id: event.id })
    .returning("id")
    .executeTakeFirstOrThrow();
  return { ...nodes, WebhookDelivery: encodeGlobalID("WebhookDelivery", delivery.id) };
}
