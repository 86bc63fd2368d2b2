// Drafts: create, read, list, update, delete; address and subject validation; the message a
// draft replies to; scope (pods and inboxes) and label visibility.
import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import { describe, expect, it } from "vitest";
import { permissionFix } from "../src/auth/permissions.ts";
import { isValidAddress } from "../src/drafts/service.ts";
import { createInboxViaApi, createKey } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";
import { podsAandB } from "./helpers/world.ts";

const { database, server } = serverSuite();
const {
  org,
  pods,
  inboxes: { a: inboxA, a2: inboxA2, b: inboxB },
  keys,
} = tenantFixture({ database, server }, podsAandB("draft"));

const rowId = (globalId: string) => decodeGlobalID(globalId).id;

let messageCounter = 0;
/** Test setup: a received message (and its thread) written straight into the tables. */
async function insertMessage(inboxGlobalId: string, labels: string[] = ["received"]): Promise<string> {
  const inbox = await database.db
    .selectFrom("inboxes")
    .select(["org_id", "pod_id", "id"])
    .where("id", "=", rowId(inboxGlobalId))
    .executeTakeFirstOrThrow();
  const thread = await database.db
    .insertInto("threads")
    .values({ org_id: inbox.org_id, pod_id: inbox.pod_id, inbox_id: inbox.id, subject: "Hello" })
    .returning("id")
    .executeTakeFirstOrThrow();
  messageCounter++;
  const message = await database.db
    .insertInto("messages")
    .values({
      org_id: inbox.org_id,
      pod_id: inbox.pod_id,
      inbox_id: inbox.id,
      thread_id: thread.id,
      message_id_header: `<draft-test-${messageCounter}@sender.test>`,
      from_address: "sender@sender.test",
      to_addresses: ["x@mailroom.localhost"],
      subject: "Hello",
      text_body: "Hi",
      labels,
      direction: "INBOUND",
    })
    .returning("id")
    .executeTakeFirstOrThrow();
  return encodeGlobalID("Message", message.id);
}

const DRAFT_FIELDS = "id to cc bcc subject text html createdAt updatedAt inbox { id } inReplyTo { id }";
const CREATE = `mutation($input: CreateDraftInput!) { createDraft(input: $input) { draft { ${DRAFT_FIELDS} } } }`;
const UPDATE = `mutation($input: UpdateDraftInput!) { updateDraft(input: $input) { draft { ${DRAFT_FIELDS} } } }`;
const DELETE = "mutation($id: ID!) { deleteDraft(input: { id: $id }) { deletedId } }";
const GET = `query($id: ID!) { draft(id: $id) { ${DRAFT_FIELDS} } }`;
const LIST = `query($inboxId: ID, $first: Int, $after: String) {
  drafts(inboxId: $inboxId, first: $first, after: $after) {
    edges { cursor node { id subject } } pageInfo { hasNextPage endCursor }
  }
}`;

async function createDraft(key: string, input: Record<string, unknown>) {
  return (await ok(server, CREATE, { input }, { key })).createDraft.draft;
}

async function errorOf(key: string, query: string, variables: Record<string, unknown>) {
  const response = await gql(server, query, variables, { key });
  expect(response.status).toBe(200);
  expect(response.body.errors).toHaveLength(1);
  return response.body.errors?.[0]?.extensions;
}

async function listIds(key: string, inboxId?: string): Promise<string[]> {
  const data = await ok(server, LIST, { inboxId, first: 200 }, { key });
  return data.drafts.edges.map((edge: any) => edge.node.id);
}

describe("creating and reading drafts", () => {
  it("creates a draft with every field and reads it back by id, node(id:) and in the list", async () => {
    const replyTo = await insertMessage(inboxA.id);
    const draft = await createDraft(org.apiKey, {
      inboxId: inboxA.id,
      to: ["ann@example.com", "  Bob Smith <bob@example.org>  "],
      cc: ['"Carol, Q." <carol@example.net>'],
      bcc: ["<dan@example.com>"],
      subject: "Re: Hello",
      text: "Plain body",
      html: "<p>HTML body</p>",
      inReplyToMessageId: replyTo,
    });
    expect(draft).toMatchObject({
      to: ["ann@example.com", "Bob Smith <bob@example.org>"],
      cc: ['"Carol, Q." <carol@example.net>'],
      bcc: ["<dan@example.com>"],
      subject: "Re: Hello",
      text: "Plain body",
      html: "<p>HTML body</p>",
      inbox: { id: inboxA.id },
      inReplyTo: { id: replyTo },
    });
    expect(decodeGlobalID(draft.id).typename).toBe("Draft");
    expect(new Date(draft.updatedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect((await ok(server, GET, { id: draft.id }, { key: org.apiKey })).draft).toEqual(draft);
    const node = await ok(
      server,
      "query($id: ID!) { node(id: $id) { ... on Draft { id subject } } }",
      { id: draft.id },
      { key: org.apiKey },
    );
    expect(node.node).toEqual({ id: draft.id, subject: "Re: Hello" });
    expect(await listIds(org.apiKey, inboxA.id)).toContain(draft.id);
  });

  it("creates an empty draft: every field but the inbox is optional", async () => {
    const draft = await createDraft(keys.inboxA, { inboxId: inboxA.id });
    expect(draft).toMatchObject({
      to: [],
      cc: [],
      bcc: [],
      subject: null,
      text: null,
      html: null,
      inReplyTo: null,
      inbox: { id: inboxA.id },
    });
  });

  it("needs DRAFT_READ and DRAFT_CREATE", async () => {
    const readOnly = (
      await createKey(server, org.apiKey, { podId: pods.A, permissions: { draftRead: true } })
    ).secret;
    expect(await errorOf(readOnly, CREATE, { input: { inboxId: inboxA.id } })).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "DRAFT_CREATE",
      fix: permissionFix("DRAFT_CREATE"),
    });
    const noRead = (
      await createKey(server, org.apiKey, { podId: pods.A, permissions: { draftCreate: true } })
    ).secret;
    // The mutation's own payload shows the draft it made.
    const made = await ok(
      server,
      'mutation($inboxId: ID!) { createDraft(input: { inboxId: $inboxId, subject: "blind" }) { draft { subject } } }',
      { inboxId: inboxA.id },
      { key: noRead },
    );
    expect(made.createDraft.draft.subject).toBe("blind");
    expect(await errorOf(noRead, LIST, {})).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "DRAFT_READ",
      fix: permissionFix("DRAFT_READ"),
    });
  });
});

describe("validation", () => {
  it("accepts addr-specs and name-addrs, and rejects what is not an address", () => {
    for (const good of [
      "a@example.com",
      "first.last+tag@sub.example.co.uk",
      "o'brien@example.ie",
      '"john doe"@example.com',
      "user@[192.0.2.1]",
      "Ann <ann@example.com>",
      '"Doe, John" <john@example.com>',
      "John Q. Public <jqp@example.com>",
      "<bare@example.com>",
      "jörg@bücher.example",
    ]) {
      expect(isValidAddress(good), good).toBe(true);
    }
    for (const bad of [
      "",
      "plain",
      "@example.com",
      "a@",
      "a@@example.com",
      "a b@example.com",
      ".a@example.com",
      "a.@example.com",
      "a..b@example.com",
      "a@example..com",
      "a@-example.com",
      "a@example",
      "Ann <ann@example.com",
      "Ann <not an address>",
      "a@example.com, b@example.com",
      "a@example.com\r\nBcc: victim@example.com",
      "Ann\r\n <a@example.com>",
      `${"x".repeat(65)}@example.com`,
      `a@${"b".repeat(250)}.com`,
    ]) {
      expect(isValidAddress(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it("names the field at fault and stores nothing", async () => {
    const before = await listIds(org.apiKey);
    const cases: [Record<string, unknown>, string][] = [
      [{ to: ["ok@example.com", "not-an-address"] }, "to"],
      [{ cc: ["Ann <ann@example>"] }, "cc"],
      [{ bcc: ["a@example.com\nBcc: x@example.com"] }, "bcc"],
      [{ to: Array.from({ length: 101 }, (_, i) => `r${i}@example.com`) }, "to"],
      [{ subject: "s".repeat(999) }, "subject"],
      [{ subject: "two\nlines" }, "subject"],
    ];
    for (const [input, field] of cases) {
      expect(await errorOf(org.apiKey, CREATE, { input: { inboxId: inboxA.id, ...input } })).toMatchObject({
        code: "BAD_USER_INPUT",
        field,
      });
    }
    expect(await listIds(org.apiKey)).toEqual(before);
  });

  it("accepts the limits themselves: 100 recipients per field and a 998-character subject", async () => {
    const hundred = Array.from({ length: 100 }, (_, i) => `r${i}@example.com`);
    const draft = await createDraft(org.apiKey, {
      inboxId: inboxA.id,
      to: hundred,
      cc: hundred,
      bcc: hundred,
      subject: "s".repeat(998),
    });
    expect(draft.to).toHaveLength(100);
    expect(draft.subject).toHaveLength(998);
  });

  it("treats a malformed, mistyped or unknown inbox id as NOT_FOUND", async () => {
    for (const inboxId of ["garbage", pods.A, encodeGlobalID("Inbox", "999999999")]) {
      expect(await errorOf(org.apiKey, CREATE, { input: { inboxId } })).toEqual({ code: "NOT_FOUND" });
    }
  });
});

describe("inReplyTo", () => {
  it("must be a message of the same inbox that the caller can see", async () => {
    const otherInbox = await insertMessage(inboxA2.id);
    const spam = await insertMessage(inboxA.id, ["received", "spam"]);
    const noSpam = (
      await createKey(server, org.apiKey, {
        inboxId: inboxA.id,
        permissions: { draftCreate: true, draftRead: true, messageRead: true },
      })
    ).secret;
    for (const [key, messageId] of [
      [org.apiKey, otherInbox],
      [org.apiKey, encodeGlobalID("Message", "999999999")],
      [org.apiKey, "garbage"],
      [org.apiKey, inboxA.id],
      [noSpam, spam],
    ] as const) {
      expect(
        await errorOf(key, CREATE, { input: { inboxId: inboxA.id, inReplyToMessageId: messageId } }),
      ).toEqual({ code: "NOT_FOUND" });
    }
    // With LABEL_SPAM_READ the same message may be replied to.
    const draft = await createDraft(org.apiKey, { inboxId: inboxA.id, inReplyToMessageId: spam });
    expect(draft.inReplyTo).toEqual({ id: spam });
    // ... and a caller that cannot see it gets null, not the message.
    const seen = await gql(server, GET, { id: draft.id }, { key: noSpam });
    expect(seen.body.errors).toBeUndefined();
    expect(seen.body.data?.draft).toMatchObject({ id: draft.id, inReplyTo: null });
  });

  it("becomes null when the message is labelled hidden later or deleted, and needs MESSAGE_READ", async () => {
    const message = await insertMessage(inboxA.id);
    const draft = await createDraft(org.apiKey, { inboxId: inboxA.id, inReplyToMessageId: message });
    const noTrash = (
      await createKey(server, org.apiKey, {
        podId: pods.A,
        permissions: { draftRead: true, messageRead: true },
      })
    ).secret;
    expect((await ok(server, GET, { id: draft.id }, { key: noTrash })).draft.inReplyTo).toEqual({
      id: message,
    });
    await database.db
      .updateTable("messages")
      .set({ labels: ["received", "trash"] })
      .where("id", "=", rowId(message))
      .execute();
    expect((await ok(server, GET, { id: draft.id }, { key: noTrash })).draft.inReplyTo).toBeNull();
    expect((await ok(server, GET, { id: draft.id }, { key: org.apiKey })).draft.inReplyTo).toEqual({
      id: message,
    });

    const noMessageRead = (
      await createKey(server, org.apiKey, { podId: pods.A, permissions: { draftRead: true } })
    ).secret;
    const denied = await gql(server, GET, { id: draft.id }, { key: noMessageRead });
    expect(denied.body.data?.draft).toMatchObject({ id: draft.id, inReplyTo: null });
    expect(denied.body.errors?.[0]).toMatchObject({
      path: ["draft", "inReplyTo"],
      extensions: {
        code: "FORBIDDEN",
        requiredPermission: "MESSAGE_READ",
        fix: permissionFix("MESSAGE_READ"),
      },
    });

    await database.db.deleteFrom("messages").where("id", "=", rowId(message)).execute();
    expect((await ok(server, GET, { id: draft.id }, { key: org.apiKey })).draft.inReplyTo).toBeNull();
  });
});

describe("updating and deleting drafts", () => {
  it("changes only the fields given, clears one given as null, and moves updatedAt forward", async () => {
    const replyTo = await insertMessage(inboxA.id);
    const draft = await createDraft(org.apiKey, {
      inboxId: inboxA.id,
      to: ["a@example.com"],
      cc: ["c@example.com"],
      subject: "First",
      text: "one",
      html: "<b>one</b>",
      inReplyToMessageId: replyTo,
    });
    await new Promise((r) => setTimeout(r, 5));
    const updated = (
      await ok(
        server,
        UPDATE,
        { input: { id: draft.id, to: ["b@example.com", "Bee <bee@example.com>"], subject: "Second" } },
        { key: org.apiKey },
      )
    ).updateDraft.draft;
    expect(updated).toEqual({
      ...draft,
      to: ["b@example.com", "Bee <bee@example.com>"],
      subject: "Second",
      updatedAt: updated.updatedAt,
    });
    expect(new Date(updated.updatedAt).getTime()).toBeGreaterThan(new Date(draft.updatedAt).getTime());

    const cleared = (
      await ok(server, UPDATE, { input: { id: draft.id, cc: null, html: null } }, { key: keys.inboxA })
    ).updateDraft.draft;
    expect(cleared).toMatchObject({ cc: [], html: null, text: "one", subject: "Second", to: updated.to });
    expect(cleared.inReplyTo).toEqual({ id: replyTo });
    expect((await ok(server, GET, { id: draft.id }, { key: org.apiKey })).draft).toEqual(cleared);
  });

  it("validates updates like creation and changes nothing on failure", async () => {
    const draft = await createDraft(org.apiKey, { inboxId: inboxA.id, to: ["a@example.com"] });
    expect(
      await errorOf(org.apiKey, UPDATE, { input: { id: draft.id, subject: "ok", bcc: ["nope"] } }),
    ).toMatchObject({ code: "BAD_USER_INPUT", field: "bcc" });
    expect((await ok(server, GET, { id: draft.id }, { key: org.apiKey })).draft).toEqual(draft);
  });

  it("deletes a draft; a second delete, a read or an update of it is NOT_FOUND", async () => {
    const draft = await createDraft(keys.podA, { inboxId: inboxA2.id });
    expect((await ok(server, DELETE, { id: draft.id }, { key: keys.podA })).deleteDraft).toEqual({
      deletedId: draft.id,
    });
    expect(await errorOf(keys.podA, DELETE, { id: draft.id })).toEqual({ code: "NOT_FOUND" });
    expect(await errorOf(keys.podA, GET, { id: draft.id })).toEqual({ code: "NOT_FOUND" });
    expect(await errorOf(keys.podA, UPDATE, { input: { id: draft.id, subject: "x" } })).toEqual({
      code: "NOT_FOUND",
    });
    expect(await listIds(org.apiKey)).not.toContain(draft.id);
  });

  it("needs DRAFT_UPDATE and DRAFT_DELETE", async () => {
    const draft = await createDraft(org.apiKey, { inboxId: inboxA.id });
    const readOnly = (await createKey(server, org.apiKey, { permissions: { draftRead: true } })).secret;
    expect(await errorOf(readOnly, UPDATE, { input: { id: draft.id, subject: "x" } })).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "DRAFT_UPDATE",
      fix: permissionFix("DRAFT_UPDATE"),
    });
    expect(await errorOf(readOnly, DELETE, { id: draft.id })).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "DRAFT_DELETE",
      fix: permissionFix("DRAFT_DELETE"),
    });
  });
});

describe("scope", () => {
  it("keeps a pod key inside its pod and an inbox key inside its inbox: NOT_FOUND outside, absent from lists", async () => {
    const inA = await createDraft(org.apiKey, { inboxId: inboxA.id, subject: "in A" });
    const inA2 = await createDraft(org.apiKey, { inboxId: inboxA2.id, subject: "in A2" });
    const inB = await createDraft(org.apiKey, { inboxId: inboxB.id, subject: "in B" });

    const podList = await listIds(keys.podA);
    expect(podList).toEqual(expect.arrayContaining([inA.id, inA2.id]));
    expect(podList).not.toContain(inB.id);
    const inboxList = await listIds(keys.inboxA);
    expect(inboxList).toContain(inA.id);
    expect(inboxList).not.toContain(inA2.id);
    expect(inboxList).not.toContain(inB.id);
    // A filter naming an inbox outside the scope matches nothing.
    expect(await listIds(keys.inboxA, inboxA2.id)).toEqual([]);
    expect(await listIds(keys.podA, inboxB.id)).toEqual([]);
    expect(await listIds(org.apiKey, inboxB.id)).toContain(inB.id);

    const outside: [string, { id: string }, string][] = [
      [keys.podA, inB, inboxB.id],
      [keys.inboxA, inB, inboxB.id],
      [keys.inboxA, inA2, inboxA2.id],
    ];
    for (const [key, draft, inboxId] of outside) {
      expect(await errorOf(key, GET, { id: draft.id })).toEqual({ code: "NOT_FOUND" });
      const node = await gql(server, "query($id: ID!) { node(id: $id) { id } }", { id: draft.id }, { key });
      expect(node.body.data).toEqual({ node: null });
      expect(await errorOf(key, UPDATE, { input: { id: draft.id, subject: "hijacked" } })).toEqual({
        code: "NOT_FOUND",
      });
      expect(await errorOf(key, DELETE, { id: draft.id })).toEqual({ code: "NOT_FOUND" });
      expect(await errorOf(key, CREATE, { input: { inboxId, subject: "planted" } })).toEqual({
        code: "NOT_FOUND",
      });
    }
    // Nothing outside was changed or planted.
    expect((await ok(server, GET, { id: inB.id }, { key: org.apiKey })).draft.subject).toBe("in B");
    expect((await ok(server, GET, { id: inA2.id }, { key: org.apiKey })).draft.subject).toBe("in A2");
    const planted = await database.db
      .selectFrom("drafts")
      .select("id")
      .where("subject", "=", "planted")
      .execute();
    expect(planted).toEqual([]);
    // Inside, the same operations work.
    expect(
      (await ok(server, UPDATE, { input: { id: inA2.id, subject: "pod edit" } }, { key: keys.podA }))
        .updateDraft.draft.subject,
    ).toBe("pod edit");
  });

  it("cannot reply, from an inbox it may use, to a message of another inbox", async () => {
    const inB = await insertMessage(inboxB.id);
    expect(
      await errorOf(keys.podA, CREATE, { input: { inboxId: inboxA.id, inReplyToMessageId: inB } }),
    ).toEqual({ code: "NOT_FOUND" });
  });
});

describe("pagination", () => {
  it("lists newest first, page by page with first and after", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { podId: pods.B, username: "draft-pages" });
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await createDraft(org.apiKey, { inboxId: inbox.id })).id);
    const newestFirst = [...created].reverse();
    const seen: string[] = [];
    let after: string | null = null;
    const pages: boolean[] = [];
    do {
      const data: any = await ok(server, LIST, { inboxId: inbox.id, first: 2, after }, { key: org.apiKey });
      expect(data.drafts.edges.length).toBeLessThanOrEqual(2);
      seen.push(...data.drafts.edges.map((edge: any) => edge.node.id));
      pages.push(data.drafts.pageInfo.hasNextPage);
      after = data.drafts.pageInfo.hasNextPage ? data.drafts.pageInfo.endCursor : null;
    } while (after);
    expect(seen).toEqual(newestFirst);
    expect(pages).toEqual([true, true, false]);
    expect(await errorOf(org.apiKey, LIST, { first: 2, after: "not-a-cursor" })).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "after",
    });
  });
});
