// Allow/block list entries: levels (organization, pod, inbox), validation, duplicates,
// scopes, and the lookup the mail pipeline uses.
import { decodeGlobalID } from "@pothos/plugin-relay";
import { describe, expect, it } from "vitest";
import { listEntriesFor } from "../src/list-entries/repository.ts";
import { createInboxViaApi, createOrganization, createPodViaApi } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";
import { podsAandB } from "./helpers/world.ts";

const ENTRY_FIELDS = "id direction type entry createdAt pod { id } inbox { id }";
const CREATE = `mutation($input: CreateListEntryInput!) { createListEntry(input: $input) { listEntry { ${ENTRY_FIELDS} } } }`;
const DELETE = "mutation($id: ID!) { deleteListEntry(input: { id: $id }) { deletedId } }";
const LIST = `query($direction: ListDirection!, $type: ListType!, $podId: ID, $inboxId: ID, $first: Int, $after: String) {
  listEntries(direction: $direction, type: $type, podId: $podId, inboxId: $inboxId, first: $first, after: $after) {
    edges { node { id entry } } pageInfo { hasNextPage endCursor }
  }
}`;
const NODE = "query($id: ID!) { node(id: $id) { id ... on ListEntry { entry direction type } } }";

const { database, server } = serverSuite();
const {
  org,
  pods,
  inboxes: { a: inboxA, a2: inboxA2, b: inboxB },
  keys,
} = tenantFixture({ database, server }, podsAandB("lists"));

const rowId = (globalId: string) => decodeGlobalID(globalId).id;
const RECEIVE_BLOCK = { direction: "RECEIVE", type: "BLOCK" };

async function create(input: Record<string, unknown>, key = org.apiKey) {
  return (await ok(server, CREATE, { input: { ...RECEIVE_BLOCK, ...input } }, { key })).createListEntry
    .listEntry;
}

async function createError(input: Record<string, unknown>, key = org.apiKey) {
  const response = await gql(server, CREATE, { input: { ...RECEIVE_BLOCK, ...input } }, { key });
  expect(response.body.data).toEqual({ createListEntry: null });
  return response.body.errors?.[0]?.extensions;
}

async function entries(key: string, variables: Record<string, unknown> = {}): Promise<string[]> {
  const data = await ok(server, LIST, { ...RECEIVE_BLOCK, first: 200, ...variables }, { key });
  return data.listEntries.edges.map((e: any) => e.node.entry);
}

describe("list entries", () => {
  it("creates entries at the organization, pod and inbox level, lower-cased", async () => {
    const orgLevel = await create({ entry: "  Spammer@Example.COM " });
    expect(orgLevel).toMatchObject({
      ...RECEIVE_BLOCK,
      entry: "spammer@example.com",
      pod: null,
      inbox: null,
    });
    expect(decodeGlobalID(orgLevel.id).typename).toBe("ListEntry");
    const podLevel = await create({ entry: "Bulk.Example.org", podId: pods.A });
    expect(podLevel).toMatchObject({ entry: "bulk.example.org", pod: { id: pods.A }, inbox: null });
    const inboxLevel = await create({ entry: "x@y.example", inboxId: inboxA.id, podId: pods.A });
    expect(inboxLevel).toMatchObject({ entry: "x@y.example", pod: { id: pods.A }, inbox: { id: inboxA.id } });

    expect((await ok(server, NODE, { id: podLevel.id }, { key: org.apiKey })).node).toEqual({
      id: podLevel.id,
      entry: "bulk.example.org",
      ...RECEIVE_BLOCK,
    });
    expect(await entries(org.apiKey)).toEqual(
      expect.arrayContaining(["spammer@example.com", "bulk.example.org", "x@y.example"]),
    );
  });

  it("keeps the four lists apart", async () => {
    await create({ entry: "only-send-allow.example", direction: "SEND", type: "ALLOW" });
    expect(await entries(org.apiKey, { direction: "SEND", type: "ALLOW" })).toContain(
      "only-send-allow.example",
    );
    for (const [direction, type] of [
      ["SEND", "BLOCK"],
      ["RECEIVE", "ALLOW"],
      ["RECEIVE", "BLOCK"],
    ]) {
      expect(await entries(org.apiKey, { direction, type })).not.toContain("only-send-allow.example");
    }
  });

  it.each([
    "",
    "   ",
    "not an address",
    "a@b",
    "@example.com",
    "user@",
    "user@-bad.com",
    "us er@example.com",
    "a..b@example.com",
    "http://example.com",
    "localhost",
    "com",
    `${"a".repeat(65)}@example.com`,
  ])("refuses %j as an entry", async (entry) => {
    expect(await createError({ entry })).toMatchObject({ code: "BAD_USER_INPUT", field: "entry" });
  });

  it("refuses a duplicate on the same list at the same level (CONFLICT), and allows it elsewhere", async () => {
    await create({ entry: "dup@example.com" });
    expect(await createError({ entry: "DUP@example.com" })).toMatchObject({
      code: "CONFLICT",
      field: "entry",
    });
    await create({ entry: "dup@example.com", podId: pods.A });
    expect(await createError({ entry: "dup@example.com", podId: pods.A })).toMatchObject({
      code: "CONFLICT",
    });
    await create({ entry: "dup@example.com", inboxId: inboxA.id });
    expect(await createError({ entry: "dup@example.com", inboxId: inboxA.id })).toMatchObject({
      code: "CONFLICT",
    });
    await create({ entry: "dup@example.com", type: "ALLOW" });
    await create({ entry: "dup@example.com", direction: "SEND" });
  });

  it("refuses an inbox that is not in the named pod", async () => {
    expect(await createError({ entry: "a@example.com", podId: pods.B, inboxId: inboxA.id })).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "inboxId",
    });
  });

  it("filters by pod (its own and its inboxes' entries) and by inbox", async () => {
    await create({ entry: "filter-org.example" });
    await create({ entry: "filter-pod-a.example", podId: pods.A });
    await create({ entry: "filter-inbox-a2.example", inboxId: inboxA2.id });
    await create({ entry: "filter-pod-b.example", podId: pods.B });
    const ofPodA = (await entries(org.apiKey, { podId: pods.A })).filter((e) => e.startsWith("filter-"));
    expect(ofPodA.sort()).toEqual(["filter-inbox-a2.example", "filter-pod-a.example"]);
    const ofInbox = (await entries(org.apiKey, { inboxId: inboxA2.id })).filter((e) =>
      e.startsWith("filter-"),
    );
    expect(ofInbox).toEqual(["filter-inbox-a2.example"]);
  });

  it("deletes an entry", async () => {
    const entry = await create({ entry: "delete-me.example" });
    expect((await ok(server, DELETE, { id: entry.id }, { key: org.apiKey })).deleteListEntry).toEqual({
      deletedId: entry.id,
    });
    expect(await entries(org.apiKey)).not.toContain("delete-me.example");
    const node = await gql(server, NODE, { id: entry.id }, { key: org.apiKey });
    expect(node.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
    const again = await gql(server, DELETE, { id: entry.id }, { key: org.apiKey });
    expect(again.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
    // A mistyped id is NOT_FOUND too.
    const mistyped = await gql(server, DELETE, { id: pods.A }, { key: org.apiKey });
    expect(mistyped.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
  });

  it("paginates newest first with first/after", async () => {
    const fresh = await createOrganization(database.db, "Paging");
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await create({ entry: `page-${i}.example` }, fresh.apiKey)).entry);
    const page1 = (await ok(server, LIST, { ...RECEIVE_BLOCK, first: 2 }, { key: fresh.apiKey })).listEntries;
    expect(page1.edges.map((e: any) => e.node.entry)).toEqual([made[4], made[3]]);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = (
      await ok(
        server,
        LIST,
        { ...RECEIVE_BLOCK, first: 2, after: page1.pageInfo.endCursor },
        { key: fresh.apiKey },
      )
    ).listEntries;
    expect(page2.edges.map((e: any) => e.node.entry)).toEqual([made[2], made[1]]);
    const page3 = (
      await ok(
        server,
        LIST,
        { ...RECEIVE_BLOCK, first: 2, after: page2.pageInfo.endCursor },
        { key: fresh.apiKey },
      )
    ).listEntries;
    expect(page3.edges.map((e: any) => e.node.entry)).toEqual([made[0]]);
    expect(page3.pageInfo.hasNextPage).toBe(false);
  });
});

describe("list entry scopes", () => {
  it("puts a pod key's entries on its pod (or one of its inboxes), never elsewhere", async () => {
    const own = await create({ entry: "pod-key.example" }, keys.podA);
    expect(own).toMatchObject({ pod: { id: pods.A }, inbox: null });
    const onInbox = await create({ entry: "pod-key-inbox.example", inboxId: inboxA2.id }, keys.podA);
    expect(onInbox).toMatchObject({ pod: { id: pods.A }, inbox: { id: inboxA2.id } });
    expect(await createError({ entry: "x.example", podId: pods.B }, keys.podA)).toEqual({
      code: "NOT_FOUND",
    });
    expect(await createError({ entry: "x.example", inboxId: inboxB.id }, keys.podA)).toEqual({
      code: "NOT_FOUND",
    });
  });

  it("shows a pod key only its pod's entries; others are NOT_FOUND and absent", async () => {
    const orgLevel = await create({ entry: "scope-org.example" });
    const ofB = await create({ entry: "scope-pod-b.example", podId: pods.B });
    const ofInboxB = await create({ entry: "scope-inbox-b.example", inboxId: inboxB.id });
    const ofA = await create({ entry: "scope-pod-a.example", podId: pods.A });
    const ofInboxA = await create({ entry: "scope-inbox-a.example", inboxId: inboxA.id });

    const seen = (await entries(keys.podA)).filter((e) => e.startsWith("scope-"));
    expect(seen.sort()).toEqual(["scope-inbox-a.example", "scope-pod-a.example"]);
    // A filter naming something outside the scope finds nothing.
    expect(await entries(keys.podA, { podId: pods.B })).toEqual([]);

    for (const entry of [orgLevel, ofB, ofInboxB]) {
      const node = await gql(server, NODE, { id: entry.id }, { key: keys.podA });
      expect(node.body.data).toEqual({ node: null });
      expect(node.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
      const remove = await gql(server, DELETE, { id: entry.id }, { key: keys.podA });
      expect(remove.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
    }
    expect(await entries(org.apiKey)).toEqual(
      expect.arrayContaining(["scope-org.example", "scope-pod-b.example"]),
    );
    await ok(server, DELETE, { id: ofInboxA.id }, { key: keys.podA });
    await ok(server, DELETE, { id: ofA.id }, { key: keys.podA });
  });

  it("keeps an inbox key to its inbox's entries", async () => {
    const own = await create(
      { entry: "inbox-key@example.com", direction: "SEND", type: "ALLOW" },
      keys.inboxA,
    );
    expect(own).toMatchObject({ pod: { id: pods.A }, inbox: { id: inboxA.id } });
    const explicit = await create({ entry: "explicit.example", inboxId: inboxA.id }, keys.inboxA);
    expect(explicit.inbox).toEqual({ id: inboxA.id });
    // Its pod's level is wider than its scope; another inbox is outside it.
    expect(await createError({ entry: "x.example", podId: pods.A }, keys.inboxA)).toEqual({
      code: "NOT_FOUND",
    });
    expect(await createError({ entry: "x.example", inboxId: inboxA2.id }, keys.inboxA)).toEqual({
      code: "NOT_FOUND",
    });

    const podLevel = await create({ entry: "inbox-scope-pod.example", podId: pods.A });
    const sibling = await create({ entry: "inbox-scope-sibling.example", inboxId: inboxA2.id });
    const mine = await create({ entry: "inbox-scope-mine.example", inboxId: inboxA.id });
    const seen = (await entries(keys.inboxA)).filter((e) => e.startsWith("inbox-scope-"));
    expect(seen).toEqual(["inbox-scope-mine.example"]);
    expect(await entries(keys.inboxA, { direction: "SEND", type: "ALLOW" })).toEqual([
      "inbox-key@example.com",
    ]);
    for (const entry of [podLevel, sibling]) {
      const remove = await gql(server, DELETE, { id: entry.id }, { key: keys.inboxA });
      expect(remove.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
    }
    await ok(server, DELETE, { id: mine.id }, { key: keys.inboxA });
  });

  it("keeps organizations apart", async () => {
    const other = await createOrganization(database.db, "Other");
    const theirs = await create({ entry: "other-org.example" }, other.apiKey);
    expect(await entries(org.apiKey)).not.toContain("other-org.example");
    const node = await gql(server, NODE, { id: theirs.id }, { key: org.apiKey });
    expect(node.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
    expect(await createError({ entry: "x.example", podId: pods.A }, other.apiKey)).toEqual({
      code: "NOT_FOUND",
    });
  });
});

describe("listEntriesFor (the mail pipeline's lookup)", () => {
  it("returns the organization's, the pod's and the inbox's entries of one direction, both types", async () => {
    const fresh = await createOrganization(database.db, "Pipeline");
    const pod1 = await createPodViaApi(server, fresh.apiKey, "P1");
    const pod2 = await createPodViaApi(server, fresh.apiKey, "P2");
    const inbox1 = await createInboxViaApi(server, fresh.apiKey, { podId: pod1, username: "pipe-1" });
    const inbox1b = await createInboxViaApi(server, fresh.apiKey, { podId: pod1, username: "pipe-1b" });
    await createInboxViaApi(server, fresh.apiKey, { podId: pod2, username: "pipe-2" });
    const add = (input: Record<string, unknown>) => create(input, fresh.apiKey);
    await add({ entry: "org.example" });
    await add({ entry: "org-allow.example", type: "ALLOW" });
    await add({ entry: "pod1.example", podId: pod1 });
    await add({ entry: "inbox1.example", inboxId: inbox1.id });
    await add({ entry: "inbox1b.example", inboxId: inbox1b.id });
    await add({ entry: "pod2.example", podId: pod2 });
    await add({ entry: "send.example", direction: "SEND" });
    await create({ entry: "other-org-pipeline.example" }); // another organization

    const found = await listEntriesFor(
      database.db,
      fresh.organizationId,
      rowId(pod1),
      rowId(inbox1.id),
      "RECEIVE",
    );
    expect(found.map((e) => [e.entry, e.type]).sort()).toEqual([
      ["inbox1.example", "BLOCK"],
      ["org-allow.example", "ALLOW"],
      ["org.example", "BLOCK"],
      ["pod1.example", "BLOCK"],
    ]);
    const send = await listEntriesFor(
      database.db,
      fresh.organizationId,
      rowId(pod1),
      rowId(inbox1.id),
      "SEND",
    );
    expect(send.map((e) => e.entry)).toEqual(["send.example"]);
  });
});
