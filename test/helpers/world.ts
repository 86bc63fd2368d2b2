// "A fresh organization with pods, inboxes and keys": createTenant makes the ones a test names, and
// createWorld one of every kind of object, made through the API as a client would (and mail through
// the store, as SMTP would), for tests that need them all. test/helpers/suite.ts has them as fixtures.
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

export interface TenantSpec<P extends string, I extends string, K extends string> {
  /** The organization's name (createOrganization's default when left out). */
  name?: string;
  /** Pods by the names the test calls them (their names too), made in this order. */
  pods?: readonly P[];
  /**
   * Inboxes by the names the test calls them: the pod each goes in (none: the organization's default
   * pod) and its username. Made after the pods, in this order.
   */
  inboxes?: Record<I, { pod?: NoInfer<P>; username: string }>;
  /** Keys made by the organization's key after the inboxes, each scoped to one of the pods or inboxes. */
  keys?: Record<K, { pod: NoInfer<P> } | { inbox: NoInfer<I> }>;
}

export interface Tenant<P extends string, I extends string, K extends string> {
  org: TestOrganization;
  /** Global ids. */
  pods: Record<P, string>;
  inboxes: Record<I, { id: string; email: string }>;
  /** Secrets. */
  keys: Record<K, string>;
}

/** Makes a new organization and, through the API with its key, what the spec names. */
export async function createTenant<P extends string, I extends string, K extends string>(
  server: TestServer,
  database: Pick<TestDatabase, "db">,
  spec: TenantSpec<P, I, K>,
): Promise<Tenant<P, I, K>> {
  const org = await createOrganization(database.db, spec.name);
  const key = org.apiKey;
  const pods = {} as Record<P, string>;
  for (const name of spec.pods ?? []) pods[name] = await createPodViaApi(server, key, name);
  const inboxes = {} as Record<I, { id: string; email: string }>;
  for (const [name, { pod, username }] of entries(spec.inboxes)) {
    inboxes[name] = await createInboxViaApi(
      server,
      key,
      pod === undefined ? { username } : { podId: pods[pod], username },
    );
  }
  const keys = {} as Record<K, string>;
  for (const [name, scope] of entries(spec.keys)) {
    const input = "pod" in scope ? { podId: pods[scope.pod] } : { inboxId: inboxes[scope.inbox].id };
    keys[name] = (await createKey(server, key, input)).secret;
  }
  return { org, pods, inboxes, keys };
}

/**
 * The tenant scope tests mostly need: pods A and B; inboxes a and a2 in A, b in B (usernames
 * `${prefix}-a`, `${prefix}-a2`, `${prefix}-b`); a key of pod A and a key of inbox a.
 */
export function podsAandB(prefix: string): TenantSpec<"A" | "B", "a" | "a2" | "b", "podA" | "inboxA"> {
  return {
    pods: ["A", "B"],
    inboxes: {
      a: { pod: "A", username: `${prefix}-a` },
      a2: { pod: "A", username: `${prefix}-a2` },
      b: { pod: "B", username: `${prefix}-b` },
    },
    keys: { podA: { pod: "A" }, inboxA: { inbox: "a" } },
  };
}

function entries<N extends string, V>(record: Record<N, V> | undefined): [N, V][] {
  return Object.entries(record ?? {}) as [N, V][];
}

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
  const suffix = Math.random().toString(36).slice(2, 8);
  const { org, pods, inboxes, keys } = await createTenant(server, database, {
    name,
    pods: ["A", "B"],
    inboxes: {
      a: { pod: "A", username: `world-a-${suffix}` },
      b: { pod: "B", username: `world-b-${suffix}` },
    },
    keys: { pod: { pod: "A" }, inbox: { inbox: "a" } },
  });
  const key = org.apiKey;
  const viewer = await ok(server, "{ viewer { organization { id } } }", {}, { key });
  const { A: podId, B: otherPodId } = pods;
  const { a: inbox, b: other } = inboxes;
  const message = await deliver(database.db, inbox.id);
  const { pod, inbox: inboxKey } = keys;
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
