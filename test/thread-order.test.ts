// Thread lists for callers that cannot see some labels walk indexes (thread_visibility) instead of
// aggregating the whole scope; what they return must still be exactly what docs/permissions.md says: the
// threads holding a visible message, ordered by their last visible message, with their visible
// counts. A model computes that from the raw rows after random deliveries, relabelings and deletes,
// and every combination of hidden labels (8 keys) pages through the list forwards and backwards.
import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import { beforeAll, describe, expect, it } from "vitest";
import { prng } from "../bench/seed.ts";
import { createKey, deliver } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";

const HIDING = ["spam", "blocked", "trash"] as const;
const FLAGS = { spam: "labelSpamRead", blocked: "labelBlockedRead", trash: "labelTrashRead" } as const;

const { database, server } = serverSuite();
const tenant = tenantFixture(
  { database, server },
  {
    pods: ["Order"],
    inboxes: { a: { pod: "Order", username: "order-a" }, b: { pod: "Order", username: "order-b" } },
  },
);
const { org } = tenant;
const inboxes = [tenant.inboxes.a, tenant.inboxes.b];
/** One organization key per combination of hidden labels (bit i: HIDING[i] hidden). */
const keys: string[] = [];
let podKey: string;

beforeAll(async () => {
  for (let mask = 0; mask < 8; mask++) {
    const permissions: Record<string, boolean> = { threadRead: true, messageRead: true, inboxRead: true };
    HIDING.forEach((label, bit) => {
      permissions[FLAGS[label]] = (mask & (1 << bit)) === 0;
    });
    keys.push((await createKey(server, org.apiKey, { permissions })).secret);
  }
  podKey = (
    await createKey(server, org.apiKey, {
      podId: tenant.pods.Order,
      permissions: { threadRead: true, messageRead: true, inboxRead: true, labelBlockedRead: true },
    })
  ).secret;
});

interface ModelThread {
  id: string;
  inbox: string;
  last: string;
  count: number;
}

/** What a caller hiding `hidden` must see, from the rows themselves. */
async function model(hidden: readonly string[], inboxId?: string): Promise<ModelThread[]> {
  const orgId = org.organizationId;
  const rows = await database.db
    .selectFrom("messages")
    .select(["thread_id", "inbox_id", "labels", "created_at"])
    .where("org_id", "=", orgId)
    .execute();
  const threads = new Map<string, { inbox: string; last: Date; count: number }>();
  for (const row of rows) {
    if (row.labels.some((label) => hidden.includes(label))) continue;
    const inbox = encodeGlobalID("Inbox", row.inbox_id);
    if (inboxId !== undefined && inbox !== inboxId) continue;
    const thread = threads.get(row.thread_id) ?? { inbox, last: row.created_at, count: 0 };
    thread.count++;
    if (row.created_at > thread.last) thread.last = row.created_at;
    threads.set(row.thread_id, thread);
  }
  return [...threads.entries()]
    .map(([id, t]) => ({
      id: encodeGlobalID("Thread", id),
      inbox: t.inbox,
      last: t.last.toISOString(),
      count: t.count,
    }))
    .sort((a, b) => (a.last === b.last ? compareIds(b.id, a.id) : a.last < b.last ? 1 : -1));
}

function compareIds(a: string, b: string): number {
  const [x, y] = [BigInt(decodeGlobalID(a).id), BigInt(decodeGlobalID(b).id)];
  return x < y ? -1 : x > y ? 1 : 0;
}

const NODE = "id lastMessageAt messageCount inbox { id }";

/** Every page of `threads`, forwards with first/after. */
async function pageForwards(key: string, inbox: string | null = null) {
  const seen: ModelThread[] = [];
  let after: string | null = null;
  for (;;) {
    const data: any = await ok(
      server,
      `query($after: String, $inbox: ID) { threads(first: 3, after: $after, inboxId: $inbox) {
        edges { node { ${NODE} } } pageInfo { hasNextPage endCursor } } }`,
      { inbox, after },
      { key },
    );
    seen.push(...data.threads.edges.map(({ node }: any) => toModel(node)));
    if (!data.threads.pageInfo.hasNextPage) return seen;
    after = data.threads.pageInfo.endCursor;
  }
}

/** Every page of `threads`, backwards with last/before, put back in list order. */
async function pageBackwards(key: string, inbox: string | null = null) {
  const seen: ModelThread[][] = [];
  let before: string | null = null;
  for (;;) {
    const data: any = await ok(
      server,
      `query($before: String, $inbox: ID) { threads(last: 4, before: $before, inboxId: $inbox) {
        edges { node { ${NODE} } } pageInfo { hasPreviousPage startCursor } } }`,
      { inbox, before },
      { key },
    );
    seen.unshift(data.threads.edges.map(({ node }: any) => toModel(node)));
    if (!data.threads.pageInfo.hasPreviousPage) return seen.flat();
    before = data.threads.pageInfo.startCursor;
  }
}

const toModel = (node: any): ModelThread => ({
  id: node.id,
  inbox: node.inbox.id,
  last: node.lastMessageAt,
  count: node.messageCount,
});

async function expectEveryViewMatches() {
  for (let mask = 0; mask < 8; mask++) {
    const hidden = HIDING.filter((_, bit) => (mask & (1 << bit)) !== 0);
    const key = keys[mask] as string;
    const all = await model(hidden);
    expect({ mask, list: await pageForwards(key) }).toEqual({ mask, list: all });
    expect({ mask, list: await pageBackwards(key) }).toEqual({ mask, list: all });
    const inbox = inboxes[mask % 2]?.id as string;
    expect({ mask, inbox, list: await pageForwards(key, inbox) }).toEqual({
      mask,
      inbox,
      list: await model(hidden, inbox),
    });
  }
  // A pod key seeing blocked mail but neither spam nor trash.
  expect(await pageForwards(podKey)).toEqual(await model(["spam", "trash"]));
}

describe("thread order for callers hiding labels", () => {
  it("matches the model after random deliveries, relabelings and deletes", async () => {
    const random = prng(20261130);
    const threads: { inbox: string; head: string; messages: string[] }[] = [];
    const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
    const someHiding = () => HIDING.filter(() => random() < 0.25);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 14; i++) {
        const labels = ["received", ...someHiding()];
        if (threads.length > 0 && random() < 0.55) {
          const thread = pick(threads);
          const reply = await deliver(database.db, thread.inbox, { inReplyTo: thread.head, labels });
          thread.messages.push(reply.id);
        } else {
          const inbox = pick(inboxes).id;
          const head = await deliver(database.db, inbox, { labels });
          threads.push({ inbox, head: head.messageIdHeader, messages: [head.id] });
        }
      }
      for (let i = 0; i < 6; i++) {
        const message = pick(pick(threads).messages);
        const add = someHiding();
        const remove = HIDING.filter((label) => !add.includes(label) && random() < 0.4);
        await ok(
          server,
          "mutation($id: ID!, $add: [String!], $remove: [String!]) { updateMessage(input: { id: $id, addLabels: $add, removeLabels: $remove }) { message { id } } }",
          { id: message, add, remove },
          { key: org.apiKey },
        );
      }
      // The first delete moves a thread to trash; deleting it again removes it for good.
      const deleted = pick(threads);
      const threadId = (
        await ok(
          server,
          "query($id: ID!) { message(id: $id) { thread { id } } }",
          { id: deleted.messages[0] },
          {
            key: org.apiKey,
          },
        )
      ).message.thread.id;
      const { deleteThread } = await ok(
        server,
        "mutation($id: ID!) { deleteThread(input: { id: $id }) { deletedId } }",
        { id: threadId },
        { key: org.apiKey },
      );
      expect(deleteThread.deletedId).toBe(threadId);
      const gone = await gql(
        server,
        "query($id: ID!) { thread(id: $id) { id } }",
        { id: threadId },
        { key: org.apiKey },
      );
      if (gone.body.data?.thread === null) threads.splice(threads.indexOf(deleted), 1);
      await expectEveryViewMatches();
    }
  });

  it("stays right when many label changes hit one thread at once", async () => {
    const inbox = inboxes[0]?.id as string;
    const head = await deliver(database.db, inbox, { labels: ["received"] });
    const replies = [];
    for (let i = 0; i < 8; i++) {
      replies.push(
        await deliver(database.db, inbox, { inReplyTo: head.messageIdHeader, labels: ["received"] }),
      );
    }
    await Promise.all(
      replies.map((reply, i) =>
        ok(
          server,
          "mutation($id: ID!, $add: [String!]) { updateMessage(input: { id: $id, addLabels: $add }) { message { id } } }",
          { id: reply.id, add: [HIDING[i % 3]] },
          { key: org.apiKey },
        ),
      ),
    );
    await expectEveryViewMatches();
  });
});
