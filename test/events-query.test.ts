// Query.events: the caller's events as pages, oldest first, with the subscription's cursors and rule
// (docs/events.md, "One cursor"): order, scope, visibility by the labels an event recorded, filters,
// paging and forged cursors, the statements a page costs, and the same events, cursors and messages
// as the subscription's replay of the same range, also after messages were hidden or deleted.
import { decodeGlobalID } from "@pothos/plugin-relay";
import { beforeAll, describe, expect, it } from "vitest";
import { recordEvent } from "../src/events/outbox.ts";
import {
  createInboxViaApi,
  createKey,
  createOrganization,
  createPodViaApi,
  deliver,
} from "./helpers/factories.ts";
import { gql, ok, okCounted } from "./helpers/server.ts";
import { wsSubscribe } from "./helpers/subscriptions.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";

const { database, server } = serverSuite();
const {
  org,
  pods,
  inboxes: { a: inboxA, b: inboxB },
} = tenantFixture(
  { database, server },
  {
    pods: ["A", "B"],
    inboxes: { a: { pod: "A", username: "poll-a" }, b: { pod: "B", username: "poll-b" } },
  },
);
/** The organization's history, oldest first: what each event is about. */
const history: Record<"a1" | "b1" | "spam" | "a2", { id: string; threadId: string }> & { domain: string } =
  {} as never;

const NODE = "id cursor type createdAt message { id subject } thread { id } inbox { id } domain { id }";
const EVENTS = `query($first: Int, $after: String, $types: [EventType!], $podIds: [ID!], $inboxIds: [ID!]) {
  events(first: $first, after: $after, types: $types, podIds: $podIds, inboxIds: $inboxIds) {
    edges { cursor node { ${NODE} } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

type Page = {
  edges: { cursor: string; node: Record<string, any> }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string; endCursor: string };
};

async function page(key: string, variables: Record<string, unknown> = {}): Promise<Page> {
  return (await ok(server, EVENTS, variables, { key })).events;
}

/** What each event of a page is about: a message (by the history's names) or the domain. */
function about(events: { node: Record<string, any> }[] | Record<string, any>[]): string[] {
  const names = new Map<string, string>(
    Object.entries(history).map(([name, value]) => [typeof value === "string" ? value : value.id, name]),
  );
  return events.map((edge) => {
    const node = "node" in edge ? edge.node : edge;
    return names.get(node.domain?.id ?? node.message?.id) ?? "?";
  });
}

beforeAll(async () => {
  history.a1 = await deliver(database.db, inboxA.id, { subject: "a1" });
  history.b1 = await deliver(database.db, inboxB.id, { subject: "b1" });
  history.spam = await deliver(database.db, inboxA.id, { subject: "spam", labels: ["received", "spam"] });
  history.a2 = await deliver(database.db, inboxA.id, { subject: "a2" });
  // A domain of the whole organization, verified: the event verifyDomain writes (DNS is tested elsewhere).
  const domain = await ok(
    server,
    "mutation($input: CreateDomainInput!) { createDomain(input: $input) { domain { id } } }",
    { input: { domain: "poll.example.test" } },
    { key: org.apiKey },
  );
  history.domain = domain.createDomain.domain.id;
  await database.db.transaction().execute((trx) =>
    recordEvent(trx, {
      orgId: org.organizationId,
      type: "DOMAIN_VERIFIED",
      domainId: decodeGlobalID(history.domain).id,
      payload: { domain: "poll.example.test" },
    }),
  );
});

describe("Query.events", () => {
  it("lists the caller's events oldest first; each edge's cursor is its event's cursor", async () => {
    const { edges, pageInfo } = await page(org.apiKey);
    expect(about(edges)).toEqual(["a1", "b1", "spam", "a2", "domain"]);
    expect(edges.map((e) => e.node.type)).toEqual([
      "MESSAGE_RECEIVED",
      "MESSAGE_RECEIVED",
      "MESSAGE_RECEIVED",
      "MESSAGE_RECEIVED",
      "DOMAIN_VERIFIED",
    ]);
    for (const edge of edges) expect(edge.cursor).toBe(edge.node.cursor);
    expect(edges[0]?.node).toMatchObject({
      message: { id: history.a1.id, subject: "a1" },
      thread: { id: history.a1.threadId },
      inbox: { id: inboxA.id },
      domain: null,
    });
    const ids = edges.map((e) => BigInt(decodeGlobalID(e.node.id).id));
    expect([...ids].sort((x, y) => (x < y ? -1 : 1))).toEqual(ids);
    expect(pageInfo).toEqual({
      hasNextPage: false,
      hasPreviousPage: false,
      startCursor: edges[0]?.cursor,
      endCursor: edges.at(-1)?.cursor,
    });
  });

  it("shows each caller only what it may see: scope, MESSAGE_READ, DOMAIN_READ, hidden labels", async () => {
    const keys = {
      pod: (await createKey(server, org.apiKey, { podId: pods.A })).secret,
      inbox: (await createKey(server, org.apiKey, { inboxId: inboxA.id })).secret,
      noSpam: (await createKey(server, org.apiKey, { permissions: { messageRead: true, domainRead: true } }))
        .secret,
      noMessages: (
        await createKey(server, org.apiKey, { permissions: { inboxRead: true, domainRead: true } })
      ).secret,
      neither: (await createKey(server, org.apiKey, { permissions: { inboxRead: true } })).secret,
    };
    const seen = async (key: string) => about((await page(key)).edges);
    // The organization's domain lies outside any pod: pod and inbox keys do not hear it.
    expect(await seen(keys.pod)).toEqual(["a1", "spam", "a2"]);
    expect(await seen(keys.inbox)).toEqual(["a1", "spam", "a2"]);
    expect(await seen(keys.noSpam)).toEqual(["a1", "b1", "a2", "domain"]);
    expect(await seen(keys.noMessages)).toEqual(["domain"]);
    expect(await seen(keys.neither)).toEqual([]);
  });

  it("filters by types, podIds and inboxIds", async () => {
    const filtered = async (variables: Record<string, unknown>) =>
      about((await page(org.apiKey, variables)).edges);
    expect(await filtered({ types: ["DOMAIN_VERIFIED"] })).toEqual(["domain"]);
    expect(await filtered({ types: ["MESSAGE_SENT"] })).toEqual([]);
    expect(await filtered({ podIds: [pods.B] })).toEqual(["b1"]);
    expect(await filtered({ inboxIds: [inboxA.id] })).toEqual(["a1", "spam", "a2"]);
    expect(await filtered({ inboxIds: [inboxA.id, inboxB.id], types: ["MESSAGE_RECEIVED"] })).toEqual([
      "a1",
      "b1",
      "spam",
      "a2",
    ]);
    const other = await createOrganization(database.db, "Other");
    const theirPod = await createPodViaApi(server, other.apiKey, "T");
    expect(await filtered({ podIds: [theirPod] })).toEqual([]);
  });

  it("pages forward with first and after, and says where it ends", async () => {
    const all = (await page(org.apiKey)).edges;
    const walked: Page["edges"] = [];
    let after: string | undefined;
    for (let pages = 0; ; pages++) {
      const next = await page(org.apiKey, { first: 2, after });
      walked.push(...next.edges);
      expect(next.pageInfo.hasPreviousPage).toBe(after !== undefined);
      expect(next.pageInfo.endCursor).toBe(next.edges.at(-1)?.cursor);
      if (!next.pageInfo.hasNextPage) {
        expect(pages).toBe(2);
        break;
      }
      expect(next.edges).toHaveLength(2);
      after = next.pageInfo.endCursor;
    }
    expect(walked).toEqual(all);
    // After the newest event: nothing yet, and no cursor to move to (the client keeps its own).
    const end = await page(org.apiKey, { after: all.at(-1)?.cursor });
    expect(end.edges).toEqual([]);
    expect(end.pageInfo).toMatchObject({ hasNextPage: false, endCursor: null });
    expect((await page(org.apiKey, { first: 0 })).edges).toEqual([]);
    // A page from any event's cursor is the rest of the list.
    expect((await page(org.apiKey, { after: all[1]?.cursor })).edges).toEqual(all.slice(2));
  });

  it("refuses a forged cursor naming `after`, and a page larger than 200 naming `first`", async () => {
    const refused = async (variables: Record<string, unknown>) =>
      (await gql(server, EVENTS, variables, { key: org.apiKey })).body.errors?.[0]?.extensions;
    const pods = await ok(server, "{ pods(first: 1) { pageInfo { endCursor } } }", {}, { key: org.apiKey });
    for (const forged of [
      "%%%",
      Buffer.from("event:x").toString("base64url"),
      Buffer.from("event:-1").toString("base64url"),
      Buffer.from('["1","1"]').toString("base64url"),
      pods.pods.pageInfo.endCursor,
    ]) {
      expect(await refused({ after: forged }), forged).toEqual({ code: "BAD_USER_INPUT", field: "after" });
    }
    expect(await refused({ first: 201 })).toEqual({ code: "BAD_USER_INPUT", field: "first" });
    expect(await refused({ first: -1 })).toEqual({ code: "BAD_USER_INPUT", field: "first" });
    expect((await page(org.apiKey, { first: 200 })).edges).toHaveLength(5);
  });

  it("needs an authenticated caller", async () => {
    const response = await gql(server, "{ events { edges { cursor } } }");
    expect(response.body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    expect(response.body.data ?? null).toBeNull();
  });

  it("costs the same statements for a page of 1, 10 and 50 events, messages included", async () => {
    const own = await createOrganization(database.db, "Statements");
    const box = await createInboxViaApi(server, own.apiKey, { username: "statements" });
    for (let i = 0; i < 50; i++) await deliver(database.db, box.id, { subject: `s${i}` });
    const query = `query($n: Int) { events(first: $n) { edges { cursor node { id type cursor
      message { id subject labels } thread { id } inbox { id } } } pageInfo { hasNextPage endCursor } } }`;
    await ok(server, query, { n: 1 }, { key: own.apiKey }); // warms the key cache
    const counts: number[] = [];
    for (const n of [1, 10, 50]) {
      const { data, statements } = await okCounted(server, query, { n }, { key: own.apiKey });
      counts.push(statements);
      expect(data.events.edges).toHaveLength(n);
      expect(data.events.edges[n - 1].node.message.subject).toBe(`s${n - 1}`);
    }
    // The events, their messages, the inboxes and the threads: one statement each.
    expect(counts).toEqual([4, 4, 4]);
  });
});

describe("polling and the subscription's replay", () => {
  it("deliver the same events, cursors and messages for a range, also after mail was hidden or deleted", async () => {
    const own = await createOrganization(database.db, "Agree");
    const box = await createInboxViaApi(server, own.apiKey, { username: "agree" });
    const noSpam = (
      await createKey(server, own.apiKey, { permissions: { messageRead: true, threadRead: true } })
    ).secret;
    const m1 = await deliver(database.db, box.id, { subject: "m1" });
    const m2 = await deliver(database.db, box.id, { subject: "m2" });
    const m3 = await deliver(database.db, box.id, { subject: "m3" });
    const arrivedAsSpam = await deliver(database.db, box.id, {
      subject: "spam",
      labels: ["received", "spam"],
    });
    const m4 = await deliver(database.db, box.id, { subject: "m4" });
    const update =
      "mutation($input: UpdateMessageInput!) { updateMessage(input: $input) { message { id } } }";
    // Since they happened: m2 became spam, m3's thread was deleted for good, and the spam was unmarked.
    await ok(server, update, { input: { id: m2.id, addLabels: ["spam"] } }, { key: own.apiKey });
    await ok(
      server,
      "mutation($input: DeleteThreadInput!) { deleteThread(input: $input) { deletedId } }",
      { input: { id: m3.threadId, permanent: true } },
      { key: own.apiKey },
    );
    await ok(
      server,
      update,
      { input: { id: arrivedAsSpam.id, removeLabels: ["spam"] } },
      { key: own.apiKey },
    );

    const replayed = async (key: string, after: string, count: number) => {
      const subscriber = await wsSubscribe(
        server.wsUrl,
        key,
        `subscription($after: String) { events(after: $after) { ${NODE} } }`,
        { after },
      );
      const events = await subscriber.waitFor(count);
      await new Promise((r) => setTimeout(r, 200));
      expect(subscriber.errors).toEqual([]);
      expect(subscriber.received).toHaveLength(count);
      await subscriber.dispose();
      return events.map((e) => e.events);
    };
    const shown = (nodes: Record<string, any>[]) => nodes.map((n) => n.message?.id ?? null);

    // Who cannot read spam: every event that was clean when it happened, spam or deleted now or not;
    // the message only while it may still be read. The one that arrived as spam never.
    const polled = (await page(noSpam)).edges.map((e) => e.node);
    expect(shown(polled)).toEqual([m1.id, null, null, m4.id]);
    expect(polled[2]?.thread).toBeNull();
    expect(await replayed(noSpam, polled[0]?.cursor, 3)).toEqual(polled.slice(1));

    // Who can: all five, the deleted one without its message.
    const everything = (await page(own.apiKey)).edges.map((e) => e.node);
    expect(shown(everything)).toEqual([m1.id, m2.id, null, arrivedAsSpam.id, m4.id]);
    expect(await replayed(own.apiKey, everything[0]?.cursor, 4)).toEqual(everything.slice(1));
    expect(everything.map((n) => n.cursor)).toEqual(
      expect.arrayContaining(polled.map((n: Record<string, any>) => n.cursor)),
    );
  });
});
