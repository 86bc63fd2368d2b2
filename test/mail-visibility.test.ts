import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
// docs/permissions.md "Label visibility": spam, blocked and trash are hidden without LABEL_*_READ, from
// lists, counts, direct access, label filters and every thread aggregate. Plus threading, labels,
// deleting threads, pagination and the SQL statement count of a deep page.
import { describe, expect, it } from "vitest";
import { createInboxViaApi, createKey, deliver } from "./helpers/factories.ts";
import { gql, ok, okCounted } from "./helpers/server.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";

const { database, server } = serverSuite();
const {
  org,
  inboxes: { visibility: inbox },
} = tenantFixture({ database, server }, { inboxes: { visibility: { username: "visibility" } } });

const HIDDEN = [
  { label: "spam", flag: "labelSpamRead", permission: "LABEL_SPAM_READ" },
  { label: "blocked", flag: "labelBlockedRead", permission: "LABEL_BLOCKED_READ" },
  { label: "trash", flag: "labelTrashRead", permission: "LABEL_TRASH_READ" },
] as const;

const READ_ALL = {
  inboxRead: true,
  threadRead: true,
  messageRead: true,
  messageUpdate: true,
  threadDelete: true,
};

const THREAD_FIELDS = "id subject preview labels senders recipients messageCount lastMessageAt";

describe.each(HIDDEN)("the $label label", ({ label, flag, permission }) => {
  it(`hides ${label} messages everywhere from a caller without ${permission}`, async () => {
    const box = await createInboxViaApi(server, org.apiKey, { username: `box-${label}` });
    // A thread: a visible first message, then a hidden reply from someone else, with its own subject.
    const first = await deliver(database.db, box.id, {
      from: "alice@a.test",
      subject: "Visible subject",
      text: "visible body",
      to: ["x@y.test"],
    });
    const hiddenReply = await deliver(database.db, box.id, {
      from: "mallory@m.test",
      subject: "Hidden subject",
      text: "hidden body",
      to: ["secret@m.test"],
      inReplyTo: first.messageIdHeader,
      labels: ["received", label],
    });
    // A thread holding only a hidden message.
    const onlyHidden = await deliver(database.db, box.id, {
      subject: "Only hidden",
      labels: ["received", label],
    });
    expect(hiddenReply.threadId).toBe(first.threadId);

    const blind = await createKey(server, org.apiKey, { permissions: READ_ALL });
    const seeing = await createKey(server, org.apiKey, { permissions: { ...READ_ALL, [flag]: true } });
    const query = `query($inbox: ID!) {
      inbox(id: $inbox) {
        threads { edges { node { ${THREAD_FIELDS} messages { edges { node { id subject } } } } } }
        messages { edges { node { id labels } } }
      }
      messages(inboxId: $inbox) { edges { node { id } } }
      threads(inboxId: $inbox) { edges { node { id } } }
      filtered: messages(inboxId: $inbox, labels: ["${label}"]) { edges { node { id } } }
      filteredThreads: threads(inboxId: $inbox, labels: ["${label}"]) { edges { node { id } } }
    }`;

    const blindView = await ok(server, query, { inbox: box.id }, { key: blind.secret });
    const threads = blindView.inbox.threads.edges.map((e: any) => e.node);
    expect(threads).toHaveLength(1);
    expect(threads[0]).toMatchObject({
      id: first.threadId,
      subject: "Visible subject",
      preview: "visible body",
      labels: ["received", "unread"],
      senders: ["alice@a.test"],
      recipients: ["x@y.test"],
      messageCount: 1,
    });
    expect(threads[0].messages.edges.map((e: any) => e.node.id)).toEqual([first.id]);
    expect(blindView.inbox.messages.edges.map((e: any) => e.node.id)).toEqual([first.id]);
    expect(blindView.messages.edges.map((e: any) => e.node.id)).toEqual([first.id]);
    expect(blindView.threads.edges.map((e: any) => e.node.id)).toEqual([first.threadId]);
    expect(blindView.filtered.edges).toEqual([]);
    expect(blindView.filteredThreads.edges).toEqual([]);
    const storedLast = threads[0].lastMessageAt;

    // Direct access: exactly like a missing id.
    for (const [field, id] of [
      ["message", hiddenReply.id],
      ["thread", onlyHidden.threadId],
      ["node", hiddenReply.id],
      ["node", onlyHidden.threadId],
    ] as const) {
      const direct = await gql(
        server,
        `query($id: ID!) { ${field}(id: $id) { __typename } }`,
        { id },
        { key: blind.secret },
      );
      const missing = await gql(
        server,
        `query($id: ID!) { ${field}(id: $id) { __typename } }`,
        { id: encodeGlobalID(decodeGlobalID(id).typename, "999999999") },
        { key: blind.secret },
      );
      expect(direct.body.data).toEqual({ [field]: null });
      expect(direct.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
      expect(direct.body.errors?.[0]?.extensions).toEqual(missing.body.errors?.[0]?.extensions);
    }

    // Labels on a hidden message cannot be changed either.
    const update = await gql(
      server,
      'mutation($id: ID!) { updateMessage(input: { id: $id, removeLabels: ["unread"] }) { message { id } } }',
      { id: hiddenReply.id },
      { key: blind.secret },
    );
    expect(update.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });

    // With the permission everything is there.
    const seen = await ok(server, query, { inbox: box.id }, { key: seeing.secret });
    const seenThreads = seen.inbox.threads.edges.map((e: any) => e.node);
    expect(seenThreads.map((t: any) => t.id).sort()).toEqual([first.threadId, onlyHidden.threadId].sort());
    const full = seenThreads.find((t: any) => t.id === first.threadId);
    expect(full).toMatchObject({
      subject: "Visible subject",
      preview: "hidden body",
      labels: ["received", label, "unread"].sort(),
      senders: ["alice@a.test", "mallory@m.test"],
      recipients: ["secret@m.test", "x@y.test"],
      messageCount: 2,
    });
    expect(new Date(full.lastMessageAt).getTime()).toBeGreaterThan(new Date(storedLast).getTime());
    expect(seen.filtered.edges.map((e: any) => e.node.id).sort()).toEqual(
      [hiddenReply.id, onlyHidden.id].sort(),
    );
    expect(seen.filteredThreads.edges).toHaveLength(2);
  });
});

describe("threads and messages", () => {
  it("threads replies by In-Reply-To and References, and keeps unrelated mail apart", async () => {
    const box = await createInboxViaApi(server, org.apiKey, { username: "threading" });
    const a = await deliver(database.db, box.id, { subject: "Plans" });
    const b = await deliver(database.db, box.id, { subject: "Re: Plans", inReplyTo: a.messageIdHeader });
    const c = await deliver(database.db, box.id, {
      subject: "Re: Plans",
      references: ["<unknown@x>", a.messageIdHeader],
    });
    const d = await deliver(database.db, box.id, { subject: "Plans" });
    expect(new Set([a.threadId, b.threadId, c.threadId]).size).toBe(1);
    expect(d.threadId).not.toBe(a.threadId);
    const thread = await ok(
      server,
      "query($id: ID!) { thread(id: $id) { messageCount subject messages { edges { node { id } } } } }",
      { id: a.threadId },
      { key: org.apiKey },
    );
    expect(thread.thread).toMatchObject({ messageCount: 3, subject: "Plans" });
    expect(thread.thread.messages.edges.map((e: any) => e.node.id)).toEqual([a.id, b.id, c.id]);
  });

  it("adds and removes labels, but never the system labels", async () => {
    const message = await deliver(database.db, inbox.id);
    const updated = await ok(
      server,
      'mutation($id: ID!) { updateMessage(input: { id: $id, addLabels: ["Important", "todo"], removeLabels: ["unread"] }) { message { labels } } }',
      { id: message.id },
      { key: org.apiKey },
    );
    expect(updated.updateMessage.message.labels).toEqual(["important", "received", "todo"]);
    for (const [field, change] of [
      ["removeLabels", 'removeLabels: ["received"]'],
      ["addLabels", 'addLabels: ["sent"]'],
      ["addLabels", 'addLabels: ["no spaces allowed"]'],
    ] as const) {
      const response = await gql(
        server,
        `mutation($id: ID!) { updateMessage(input: { id: $id, ${change} }) { message { id } } }`,
        { id: message.id },
        { key: org.apiKey },
      );
      expect(response.body.errors?.[0]?.extensions).toEqual({ code: "BAD_USER_INPUT", field });
    }
  });

  it("moves a thread to trash first, then deletes it for good", async () => {
    const box = await createInboxViaApi(server, org.apiKey, { username: "deleting" });
    const message = await deliver(database.db, box.id);
    const blind = await createKey(server, org.apiKey, { permissions: READ_ALL });
    const DELETE =
      "mutation($id: ID!, $permanent: Boolean) { deleteThread(input: { id: $id, permanent: $permanent }) { deletedId } }";
    expect(
      (await ok(server, DELETE, { id: message.threadId }, { key: org.apiKey })).deleteThread.deletedId,
    ).toBe(message.threadId);
    const trashed = await ok(
      server,
      "query($id: ID!) { message(id: $id) { labels } }",
      { id: message.id },
      { key: org.apiKey },
    );
    expect(trashed.message.labels).toContain("trash");
    // Hidden from a caller without LABEL_TRASH_READ now.
    expect(
      (
        await gql(
          server,
          "query($id: ID!) { thread(id: $id) { id } }",
          { id: message.threadId },
          { key: blind.secret },
        )
      ).body.errors?.[0]?.extensions,
    ).toEqual({ code: "NOT_FOUND" });
    await ok(server, DELETE, { id: message.threadId }, { key: org.apiKey });
    expect(
      (
        await gql(
          server,
          "query($id: ID!) { message(id: $id) { id } }",
          { id: message.id },
          { key: org.apiKey },
        )
      ).body.errors?.[0]?.extensions,
    ).toEqual({ code: "NOT_FOUND" });

    const direct = await deliver(database.db, box.id);
    await ok(server, DELETE, { id: direct.threadId, permanent: true }, { key: org.apiKey });
    expect(
      (
        await gql(
          server,
          "query($id: ID!) { thread(id: $id) { id } }",
          { id: direct.threadId },
          { key: org.apiKey },
        )
      ).body.errors?.[0]?.extensions,
    ).toEqual({ code: "NOT_FOUND" });
  });

  it("pages through threads and messages with keyset cursors, and refuses a page over 200", async () => {
    const box = await createInboxViaApi(server, org.apiKey, { username: "paging" });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await deliver(database.db, box.id)).id);
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = await ok(
        server,
        "query($inbox: ID!, $after: String) { messages(inboxId: $inbox, first: 3, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }",
        { inbox: box.id, after },
        { key: org.apiKey },
      );
      seen.push(...page.messages.edges.map((e: any) => e.node.id));
      if (!page.messages.pageInfo.hasNextPage) break;
      after = page.messages.pageInfo.endCursor;
    }
    expect(seen).toEqual([...ids].reverse());
    const threadPages: string[] = [];
    after = null;
    for (;;) {
      const page: any = await ok(
        server,
        "query($inbox: ID!, $after: String) { threads(inboxId: $inbox, first: 2, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }",
        { inbox: box.id, after },
        { key: org.apiKey },
      );
      threadPages.push(...page.threads.edges.map((e: any) => e.node.id));
      if (!page.threads.pageInfo.hasNextPage) break;
      after = page.threads.pageInfo.endCursor;
    }
    expect(threadPages).toHaveLength(7);
    expect(new Set(threadPages).size).toBe(7);
    const tooBig = await gql(
      server,
      "{ messages(first: 201) { edges { cursor } } }",
      {},
      { key: org.apiKey },
    );
    expect(tooBig.body.errors?.[0]?.extensions).toEqual({ code: "BAD_USER_INPUT", field: "first" });
    const badCursor = await gql(
      server,
      '{ messages(after: "nonsense") { edges { cursor } } }',
      {},
      { key: org.apiKey },
    );
    expect(badCursor.body.errors?.[0]?.extensions).toEqual({ code: "BAD_USER_INPUT", field: "after" });
  });
});

describe("SQL statements per request", () => {
  it("does not grow with the page size for inbox { threads { messages { attachments } } }", async () => {
    const box = await createInboxViaApi(server, org.apiKey, { username: "statements" });
    for (let t = 0; t < 50; t++) {
      const first = await deliver(database.db, box.id, {
        attachments: [
          { filename: `a${t}.txt`, contentType: "text/plain", content: Buffer.from(`attachment ${t}`) },
        ],
      });
      await deliver(database.db, box.id, { inReplyTo: first.messageIdHeader });
    }
    const query = `query($id: ID!, $n: Int) { inbox(id: $id) { threads(first: $n) { edges { node { subject messageCount
      messages(first: 3) { edges { node { from attachments { filename } } } } } } } } }`;
    await ok(server, query, { id: box.id, n: 1 }, { key: org.apiKey }); // warm the key cache
    await new Promise((r) => setTimeout(r, 100));
    const counts: Record<number, number> = {};
    for (const n of [1, 10, 50]) {
      const { data, statements } = await okCounted(server, query, { id: box.id, n }, { key: org.apiKey });
      counts[n] = statements;
      expect(data.inbox.threads.edges).toHaveLength(n);
      expect(data.inbox.threads.edges[0].node.messages.edges).toHaveLength(2);
    }
    console.info(`SQL statements per request by page size: ${JSON.stringify(counts)}`);
    expect(counts[50]).toBe(counts[1]);
    expect(counts[50]).toBeLessThanOrEqual(5);
  });
});
