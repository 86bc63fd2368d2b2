// What one response may carry of attachment content and message bodies (MAX_INLINE_ATTACHMENT_BYTES,
// MAX_INLINE_BODY_BYTES): fields served in response order while they fit, each refused field null
// with its own BAD_USER_INPUT error, the rest of the response intact, on every path a message is
// reached by. That refused content is never read is measured in test/memory.test.ts.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createInboxViaApi, deliver } from "./helpers/factories.ts";
import { type GraphQLResponse, gql } from "./helpers/server.ts";
import { wsSubscribe } from "./helpers/subscriptions.ts";
import { organizationFixture, serverSuite } from "./helpers/suite.ts";

const ATTACHMENT_LIMIT = 10_000;
const BODY_LIMIT = 4096;

const { database, server } = serverSuite({
  maxInlineAttachmentBytes: ATTACHMENT_LIMIT,
  maxInlineBodyBytes: BODY_LIMIT,
});
const org = organizationFixture(database);

const query = (text: string, variables: Record<string, unknown>) =>
  gql<any>(server, text, variables, { key: org.apiKey });

/** Each error as `code field @ path`, in response order. */
function refusals(response: GraphQLResponse<any>): string[] {
  return (response.body.errors ?? []).map(
    (error) => `${error.extensions?.code} ${error.extensions?.field} @ ${(error.path ?? []).join(".")}`,
  );
}

async function inboxWith(
  username: string,
  messages: { text?: string | null; html?: string | null; attachment?: Buffer }[],
): Promise<{ inbox: string; ids: string[] }> {
  const inbox = await createInboxViaApi(server, org.apiKey, { username });
  const ids: string[] = [];
  for (const [i, message] of messages.entries()) {
    const stored = await deliver(database.db, inbox.id, {
      subject: `${username} ${i}`,
      text: message.text ?? null,
      html: message.html ?? null,
      attachments: message.attachment
        ? [{ filename: `${i}.bin`, contentType: "application/octet-stream", content: message.attachment }]
        : [],
    });
    ids.push(stored.id);
  }
  // Lists are newest first: the response's order.
  return { inbox: inbox.id, ids: ids.reverse() };
}

describe("attachment content per response (MAX_INLINE_ATTACHMENT_BYTES)", () => {
  const PAGE = `query($inbox: ID!) { messages(inboxId: $inbox) { edges { node { subject
    attachments { size contentBase64 } } } } }`;

  it("serves attachments in response order while they fit, refuses the rest one by one, keeps the rest of the response", async () => {
    const contents = Array.from({ length: 5 }, () => randomBytes(3000));
    const { inbox } = await inboxWith(
      "attach-page",
      contents.map((attachment) => ({ attachment })),
    );
    const newestFirst = [...contents].reverse();
    const runs = [];
    for (let run = 0; run < 3; run++) runs.push(await query(PAGE, { inbox }));
    const [response] = runs as [GraphQLResponse<any>];
    expect(response.status).toBe(200);
    const nodes = response.body.data.messages.edges.map((edge: any) => edge.node);
    expect(nodes.map((node: any) => node.subject)).toHaveLength(5);
    // 3 × 3000 fit in 10,000; a fourth would not.
    expect(nodes.map((node: any) => node.attachments[0].contentBase64)).toEqual([
      ...newestFirst.slice(0, 3).map((content) => content.toString("base64")),
      null,
      null,
    ]);
    expect(nodes.map((node: any) => node.attachments[0].size)).toEqual([3000, 3000, 3000, 3000, 3000]);
    expect(refusals(response)).toEqual([
      "BAD_USER_INPUT contentBase64 @ messages.edges.3.node.attachments.0.contentBase64",
      "BAD_USER_INPUT contentBase64 @ messages.edges.4.node.attachments.0.contentBase64",
    ]);
    for (const error of response.body.errors ?? []) {
      expect(error.message).toMatch(
        /^contentBase64: .*attachment content.*fetch fewer attachments per request\.$/,
      );
    }
    // The same page gives the same answer each time.
    for (const other of runs) expect(other.body).toEqual(response.body);
  });

  it("counts every occurrence: one attachment asked for twice counts twice", async () => {
    const content = randomBytes(6000);
    const { ids } = await inboxWith("attach-alias", [{ attachment: content }]);
    const response = await query(
      "query($id: ID!) { message(id: $id) { attachments { a: contentBase64 b: contentBase64 } } }",
      { id: ids[0] },
    );
    expect(response.body.data.message.attachments).toEqual([{ a: content.toString("base64"), b: null }]);
    expect(refusals(response)).toEqual(["BAD_USER_INPUT contentBase64 @ message.attachments.0.b"]);
  });

  it("refuses an attachment larger than the limit even alone, and still answers its size", async () => {
    const { ids } = await inboxWith("attach-large", [{ attachment: randomBytes(ATTACHMENT_LIMIT + 1) }]);
    const response = await query(
      "query($id: ID!) { message(id: $id) { subject attachments { size contentBase64 } } }",
      { id: ids[0] },
    );
    expect(response.body.data.message).toEqual({
      subject: "attach-large 0",
      attachments: [{ size: ATTACHMENT_LIMIT + 1, contentBase64: null }],
    });
    expect(refusals(response)).toEqual([
      "BAD_USER_INPUT contentBase64 @ message.attachments.0.contentBase64",
    ]);
  });
});

describe("message bodies per response (MAX_INLINE_BODY_BYTES)", () => {
  it("serves bodies in response order while they fit, refuses the rest one by one, keeps the rest of the response", async () => {
    const { inbox } = await inboxWith(
      "bodies-page",
      Array.from({ length: 5 }, (_, i) => ({ text: `${i}`.repeat(1000), html: `<p>${"h".repeat(993)}</p>` })),
    );
    const response = await query(
      "query($inbox: ID!) { messages(inboxId: $inbox) { edges { node { subject text html } } } }",
      { inbox },
    );
    const nodes = response.body.data.messages.edges.map((edge: any) => edge.node);
    expect(nodes.map((node: any) => node.subject)).toEqual([4, 3, 2, 1, 0].map((i) => `bodies-page ${i}`));
    // Text then html of each message, 1000 bytes each: four fit in 4096.
    expect(nodes.map((node: any) => [node.text?.length ?? null, node.html?.length ?? null])).toEqual([
      [1000, 1000],
      [1000, 1000],
      [null, null],
      [null, null],
      [null, null],
    ]);
    expect(refusals(response)).toEqual(
      [2, 3, 4].flatMap((i) => [
        `BAD_USER_INPUT text @ messages.edges.${i}.node.text`,
        `BAD_USER_INPUT html @ messages.edges.${i}.node.html`,
      ]),
    );
    for (const error of response.body.errors ?? []) {
      expect(error.message).toMatch(/^(text|html): .*fetch fewer bodies per request\.$/);
    }
  });

  it("counts bytes, not characters", async () => {
    // 1500 characters each: 3000 + 1500 bytes do not fit in 4096, 1500 + 1500 characters would.
    const { ids } = await inboxWith("bodies-bytes", [{ text: "é".repeat(1500) }, { text: "a".repeat(1500) }]);
    const response = await query(
      "query($a: ID!, $b: ID!) { a: message(id: $a) { text } b: message(id: $b) { text } }",
      { a: ids[1], b: ids[0] },
    );
    expect(response.body.data).toEqual({ a: { text: "é".repeat(1500) }, b: { text: null } });
    expect(refusals(response)).toEqual(["BAD_USER_INPUT text @ b.text"]);
  });

  it("serves the first body of a response however long, so every message can be read", async () => {
    const long = "l".repeat(BODY_LIMIT * 3);
    const { ids } = await inboxWith("bodies-long", [{ text: "short", html: long }]);
    const alone = await query("query($id: ID!) { message(id: $id) { html } }", { id: ids[0] });
    expect(alone.body).toEqual({ data: { message: { html: long } } });
    const after = await query("query($id: ID!) { message(id: $id) { text html } }", { id: ids[0] });
    expect(after.body.data).toEqual({ message: { text: "short", html: null } });
    expect(refusals(after)).toEqual(["BAD_USER_INPUT html @ message.html"]);
  });

  it("holds on every path to a message: lists, a thread, node and message by id", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "bodies-paths" });
    const head = await deliver(database.db, inbox.id, { subject: "paths", text: "1".repeat(3000) });
    const reply = await deliver(database.db, inbox.id, {
      subject: "Re: paths",
      text: "2".repeat(3000),
      inReplyTo: head.messageIdHeader,
    });
    const paths: [string, string, (data: any) => unknown[]][] = [
      [
        "messages",
        "query($inbox: ID!) { messages(inboxId: $inbox) { edges { node { text } } } }",
        (data) => data.messages.edges.map((edge: any) => edge.node.text),
      ],
      [
        "inbox.messages",
        "query($inbox: ID!) { inbox(id: $inbox) { messages { edges { node { text } } } } }",
        (data) => data.inbox.messages.edges.map((edge: any) => edge.node.text),
      ],
      [
        "thread.messages",
        "query($thread: ID!) { thread(id: $thread) { messages { edges { node { text } } } } }",
        (data) => data.thread.messages.edges.map((edge: any) => edge.node.text),
      ],
      [
        "threads.messages",
        "query($inbox: ID!) { threads(inboxId: $inbox) { edges { node { messages { edges { node { text } } } } } } }",
        (data) => data.threads.edges[0].node.messages.edges.map((edge: any) => edge.node.text),
      ],
      [
        "node",
        "query($a: ID!, $b: ID!) { a: node(id: $a) { ... on Message { text } } b: node(id: $b) { ... on Message { text } } }",
        (data) => [data.a.text, data.b.text],
      ],
      [
        "message",
        "query($a: ID!, $b: ID!) { a: message(id: $a) { text } b: message(id: $b) { text } }",
        (data) => [data.a.text, data.b.text],
      ],
    ];
    for (const [name, text, texts] of paths) {
      const response = await query(text, {
        inbox: inbox.id,
        thread: head.threadId,
        a: head.id,
        b: reply.id,
      });
      const served = texts(response.body.data);
      expect({ name, served: served.filter((value) => value !== null).length, of: served.length }).toEqual({
        name,
        served: 1,
        of: 2,
      });
      expect({ name, errors: refusals(response).length }).toEqual({ name, errors: 1 });
    }
  });

  it("holds for drafts, whose bodies each may be as large as a request", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "bodies-drafts" });
    const created = [];
    for (const c of ["a", "b", "c"]) {
      const response = await query(
        "mutation($input: CreateDraftInput!) { createDraft(input: $input) { draft { id text } } }",
        { input: { inboxId: inbox.id, text: c.repeat(3000) } },
      );
      // The payload is a response too: the body just written comes back within the limit.
      expect(response.body.data.createDraft.draft.text).toBe(c.repeat(3000));
      created.push(response.body.data.createDraft.draft.id);
    }
    const page = await query(
      "query($inbox: ID!) { drafts(inboxId: $inbox) { edges { node { id text html } } } }",
      { inbox: inbox.id },
    );
    expect(page.body.data.drafts.edges.map((edge: any) => edge.node)).toEqual([
      { id: created[2], text: "c".repeat(3000), html: null },
      { id: created[1], text: null, html: null },
      { id: created[0], text: null, html: null },
    ]);
    expect(refusals(page)).toEqual([
      "BAD_USER_INPUT text @ drafts.edges.1.node.text",
      "BAD_USER_INPUT text @ drafts.edges.2.node.text",
    ]);
    const byId = await query("query($id: ID!) { draft(id: $id) { text } }", { id: created[0] });
    expect(byId.body).toEqual({ data: { draft: { text: "a".repeat(3000) } } });
  });

  it("gives each subscription event a response of its own", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "bodies-live" });
    const subscriber = await wsSubscribe(
      server.wsUrl,
      org.apiKey,
      "subscription($inbox: ID) { messageReceived(inboxId: $inbox) { text } }",
      { inbox: inbox.id },
    );
    try {
      const texts = ["x", "y", "z"].map((c) => c.repeat(3000));
      for (const text of texts) await deliver(database.db, inbox.id, { text });
      const received = await subscriber.waitForResults(3);
      expect(received).toEqual(texts.map((text) => ({ data: { messageReceived: { text } } })));
    } finally {
      await subscriber.dispose();
    }
  });
});
