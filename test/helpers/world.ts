// "A fresh organization with pods, inboxes and keys": one of every kind of object, made through the
// API as a client would (and mail through the store, as SMTP would), for tests that need them all.
import type { TestDatabase } from "./database.ts";
import {
  createInboxViaApi,
  createKey,
  createOrganization,
  createPodViaApi,
  deliver,
  type TestOrganization,
} from "./factories.ts";
import { ok, type TestServer } from "./server.ts";

export interface World {
  org: TestOrganization;
  /** A global id of each Node type (pod A, its inbox A, a message and thread there, …). */
  ids: Record<
    | "Organization"
    | "Pod"
    | "Inbox"
    | "Thread"
    | "Message"
    | "Draft"
    | "Webhook"
    | "Domain"
    | "ListEntry"
    | "ApiKey",
    string
  >;
  /** Pod B and its inbox: in the organization, outside pod A. */
  otherPodId: string;
  otherInboxId: string;
  /** Full-access keys of each scope, the pod key in pod A and the inbox key on inbox A. */
  keys: { organization: string; pod: string; inbox: string };
}

/** Builds a World in its own new organization (needs a server with ALLOW_PRIVATE_WEBHOOK_URLS). */
export async function createWorld(
  server: TestServer,
  database: Pick<TestDatabase, "db">,
  name = "World",
): Promise<World> {
  const org = await createOrganization(database.db, name);
  const key = org.apiKey;
  const viewer = await ok(server, "{ viewer { organization { id } } }", {}, { key });
  const podId = await createPodViaApi(server, key, `${name} A`);
  const otherPodId = await createPodViaApi(server, key, `${name} B`);
  const suffix = Math.random().toString(36).slice(2, 8);
  const inbox = await createInboxViaApi(server, key, { podId, username: `world-a-${suffix}` });
  const other = await createInboxViaApi(server, key, { podId: otherPodId, username: `world-b-${suffix}` });
  const message = await deliver(database.db, inbox.id);
  const pod = (await createKey(server, key, { podId })).secret;
  const inboxKey = (await createKey(server, key, { inboxId: inbox.id })).secret;
  const created = async (mutation: string, input: Record<string, unknown>, creator: string) => {
    const data = await ok(server, mutation, { input }, { key: creator });
    return (Object.values(Object.values(data)[0] as object)[0] as { id: string }).id;
  };
  return {
    org,
    ids: {
      Organization: viewer.viewer.organization.id,
      Pod: podId,
      Inbox: inbox.id,
      Thread: message.threadId,
      Message: message.id,
      Draft: await created(
        "mutation($input: CreateDraftInput!) { createDraft(input: $input) { draft { id } } }",
        { inboxId: inbox.id, to: ["someone@example.test"], subject: "World" },
        key,
      ),
      Webhook: await created(
        "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }",
        { url: "https://hooks.example.test/world", eventTypes: ["MESSAGE_RECEIVED"] },
        pod,
      ),
      Domain: await created(
        "mutation($input: CreateDomainInput!) { createDomain(input: $input) { domain { id } } }",
        { domain: `${suffix}.world.example.test` },
        pod,
      ),
      ListEntry: await created(
        "mutation($input: CreateListEntryInput!) { createListEntry(input: $input) { listEntry { id } } }",
        { direction: "RECEIVE", type: "BLOCK", entry: "spam.example.test", inboxId: inbox.id },
        key,
      ),
      ApiKey: (await createKey(server, key, { inboxId: inbox.id, name: "world inbox key" })).id,
    },
    otherPodId,
    otherInboxId: other.id,
    keys: { organization: key, pod, inbox: inboxKey },
  };
}
