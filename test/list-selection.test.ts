// Lists read only what their selection asks for: message columns, message bodies and the costly
// thread aggregates. These tests pin down that what a list returns never depends on that: every
// field reads the same through each list as by id, however it is selected (alone, through a fragment
// or an inline fragment), and the statement count stays flat with the page size.
import { type GraphQLObjectType, type GraphQLOutputType, getNamedType, isLeafType } from "graphql";
import { beforeAll, describe, expect, it } from "vitest";
import { linkSigningKey } from "../src/files/service.ts";
import { verifyToken } from "../src/files/token.ts";
import { schema } from "../src/schema/index.ts";
import { createInboxViaApi, deliver } from "./helpers/factories.ts";
import { ok, okCounted } from "./helpers/server.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";

const { database, server } = serverSuite();
const {
  org,
  inboxes: { selection: inbox },
} = tenantFixture({ database, server }, { inboxes: { selection: { username: "selection" } } });
let first: Awaited<ReturnType<typeof deliver>>;
let reply: Awaited<ReturnType<typeof deliver>>;

beforeAll(async () => {
  first = await deliver(database.db, inbox.id, {
    from: "alice@a.test",
    to: ["selection@mailroom.localhost", "bob@b.test"],
    cc: ["carol@c.test"],
    replyTo: ["alice+reply@a.test"],
    subject: "Quarterly plan",
    text: "The plan, in text.",
    html: "<p>The plan, in HTML.</p>",
    attachments: [{ filename: "plan.pdf", contentType: "application/pdf", content: Buffer.from("%PDF-1.7") }],
  });
  reply = await deliver(database.db, inbox.id, {
    from: "dave@d.test",
    to: ["selection@mailroom.localhost"],
    bcc: ["erin@e.test"],
    subject: "Re: Quarterly plan",
    text: "Agreed.",
    inReplyTo: first.messageIdHeader,
    references: ["<older@x.test>", first.messageIdHeader],
    labels: ["received", "important"],
  });
});

/** A selection for one field of a type: leaves as they are, objects by their first leaf or id. */
function selectionOf(type: GraphQLObjectType, name: string): string {
  const field = type.getFields()[name];
  if (!field) throw new Error(`no field ${name}`);
  const named = getNamedType(field.type as GraphQLOutputType);
  if (isLeafType(named)) return name;
  const fields = (named as GraphQLObjectType).getFields();
  const leaf =
    "id" in fields ? "id" : Object.keys(fields).find((f) => isLeafType(getNamedType(fields[f]?.type)));
  return `${name} { ${leaf} }`;
}

/** Message fields without arguments, from the schema, so a new field is covered as it lands. */
function messageFields(): string[] {
  const type = schema.getType("Message") as GraphQLObjectType;
  return Object.values(type.getFields())
    .filter((field) => field.args.length === 0)
    .map((field) => selectionOf(type, field.name));
}

/**
 * A field's value as compared here. A download link (a credential-bound field) is minted per request
 * and its expiry moves with the clock: two reads of it compare by what they grant, less the expiry.
 */
function comparable(name: string, value: unknown): unknown {
  const field = (schema.getType("Message") as GraphQLObjectType).getFields()[name];
  if (!field?.extensions?.credentialBound || typeof value !== "string") return value;
  const grant = verifyToken(
    linkSigningKey(server.app.services.config),
    value.slice(value.lastIndexOf("/") + 1),
  );
  if (!grant) throw new Error(`${name} is not a link this server minted: ${value}`);
  return { origin: new URL(value).origin, grant: { ...grant, expiresAt: undefined } };
}

describe("message lists read the columns their selection needs", () => {
  const lists = [
    [
      "inbox.messages",
      "query($inbox: ID!) { inbox(id: $inbox) { messages { edges { node { SELECTION } } } } }",
    ],
    ["messages", "query($inbox: ID!) { messages(inboxId: $inbox) { edges { node { SELECTION } } } }"],
    [
      "thread.messages",
      "query($thread: ID!) { thread(id: $thread) { messages { edges { node { SELECTION } } } } }",
    ],
  ] as const;

  it.each(lists)("every Message field reads the same through %s as by id", async (_name, template) => {
    const fields = messageFields();
    expect(fields).toContain("text");
    const byId = await ok(
      server,
      `query($a: ID!, $b: ID!) { a: message(id: $a) { ${fields.join(" ")} } b: message(id: $b) { ${fields.join(" ")} } }`,
      { a: first.id, b: reply.id },
      { key: org.apiKey },
    );
    const expected = new Map([
      [first.id, byId.a],
      [reply.id, byId.b],
    ]);
    const variables = { inbox: inbox.id, thread: first.threadId };
    for (const field of fields) {
      const name = field.split(" ")[0] as string;
      const shapes = [field, "...F", `... on Message { ${field} }`, `alias: ${field}`];
      for (const shape of shapes) {
        const fragment = shape === "...F" ? ` fragment F on Message { ${field} }` : "";
        const query = template.replace("SELECTION", `id ${shape}`) + fragment;
        const data = await ok(server, query, variables, { key: org.apiKey });
        const list = (data.inbox ?? data.thread ?? data).messages.edges.map((edge: any) => edge.node);
        expect(list.length).toBe(2);
        for (const node of list) {
          const value = shape.startsWith("alias") ? node.alias : node[name];
          expect({ field: name, shape, value: comparable(name, value) }).toEqual({
            field: name,
            shape,
            value: comparable(name, expected.get(node.id)?.[name]),
          });
        }
      }
    }
  });

  it("reads the bodies in one more statement whatever the page size", async () => {
    const box = await createInboxViaApi(server, org.apiKey, { username: "bodies" });
    for (let i = 0; i < 30; i++)
      await deliver(database.db, box.id, { text: `text ${i}`, html: `<b>${i}</b>` });
    const count = async (selection: string, first: number) => {
      const { data, statements } = await okCounted(
        server,
        `query($id: ID!, $n: Int) { inbox(id: $id) { messages(first: $n) { edges { node { ${selection} } } } } }`,
        { id: box.id, n: first },
        { key: org.apiKey },
      );
      expect(data.inbox.messages.edges).toHaveLength(first);
      return { statements, data };
    };
    await count("id", 1); // warms the key cache
    const plain = await count("id subject", 30);
    const bodies = await count("id subject text html", 30);
    const small = await count("id subject text html", 1);
    expect(bodies.statements).toBe(plain.statements + 1);
    expect(small.statements).toBe(bodies.statements);
    const texts = bodies.data.inbox.messages.edges.map((e: any) => e.node.text);
    expect(new Set(texts).size).toBe(30);
    expect(bodies.data.inbox.messages.edges[0].node.html).toMatch(/^<b>\d+<\/b>$/);
  });
});

describe("thread lists compute the aggregates their selection reads", () => {
  const AGGREGATES = "labels senders recipients";

  it("labels, senders and recipients read the same through a list, alone, via fragments, as by id", async () => {
    const byId = await ok(
      server,
      `query($id: ID!) { thread(id: $id) { id subject preview messageCount lastMessageAt ${AGGREGATES} } }`,
      { id: first.threadId },
      { key: org.apiKey },
    );
    expect(byId.thread.labels).toEqual(["important", "received", "unread"]);
    expect(byId.thread.senders).toEqual(["alice@a.test", "dave@d.test"]);
    expect(byId.thread.recipients).toEqual(["bob@b.test", "carol@c.test", "selection@mailroom.localhost"]);
    for (const selection of [
      AGGREGATES,
      "labels",
      "senders",
      "recipients",
      "... on Thread { labels senders } recipients",
      "...T",
    ]) {
      for (const list of [
        `inbox(id: $inbox) { threads { edges { node { id ${selection} } } } }`,
        `threads(inboxId: $inbox) { edges { node { id ${selection} } } }`,
      ]) {
        const fragment = selection === "...T" ? " fragment T on Thread { labels senders recipients }" : "";
        const data = await ok(
          server,
          `query($inbox: ID!) { ${list} }${fragment}`,
          { inbox: inbox.id },
          { key: org.apiKey },
        );
        const node = (data.inbox ?? data).threads.edges
          .map((e: any) => e.node)
          .find((n: any) => n.id === first.threadId);
        for (const name of ["labels", "senders", "recipients"]) {
          if (selection.includes(name) || selection === "...T") expect(node[name]).toEqual(byId.thread[name]);
        }
      }
    }
  });

  it("reads what a field asks for when a fragment it shares is merged with more elsewhere", async () => {
    // One fragment field node, alone under `alone` and merged with a sibling under `merged`: what
    // `alone` reads must not be taken for what `merged` reads, whichever runs first.
    const query = `query($inbox: ID!) {
      alone: inbox(id: $inbox) { ...T }
      merged: inbox(id: $inbox) { ...T threads { edges { node { labels messages { edges { node { subject } } } } } } }
    }
    fragment T on Inbox { threads { edges { node { id messages { edges { node { id } } } } } } }`;
    for (let run = 0; run < 2; run++) {
      const data = await ok(server, query, { inbox: inbox.id }, { key: org.apiKey });
      const node = data.merged.threads.edges
        .map((e: any) => e.node)
        .find((n: any) => n.id === first.threadId);
      expect(node.labels).toEqual(["important", "received", "unread"]);
      expect(node.messages.edges.map((e: any) => e.node.subject)).toEqual([
        "Quarterly plan",
        "Re: Quarterly plan",
      ]);
    }
  });

  it("filters by labels whether or not the selection reads them", async () => {
    const data = await ok(
      server,
      `query($inbox: ID!) {
        important: threads(inboxId: $inbox, labels: ["important"]) { edges { node { id } } }
        none: threads(inboxId: $inbox, labels: ["no-such-label"]) { edges { node { id } } }
      }`,
      { inbox: inbox.id },
      { key: org.apiKey },
    );
    expect(data.important.edges.map((e: any) => e.node.id)).toEqual([first.threadId]);
    expect(data.none.edges).toEqual([]);
  });

  it("a page of threads with their first messages costs the same statements for 1, 10 and 50", async () => {
    const box = await createInboxViaApi(server, org.apiKey, { username: "pages" });
    for (let t = 0; t < 50; t++) {
      const head = await deliver(database.db, box.id, { subject: `Thread ${t}` });
      await deliver(database.db, box.id, { inReplyTo: head.messageIdHeader });
    }
    const query = `query($id: ID!, $n: Int) { inbox(id: $id) { threads(first: $n) { edges { node { subject messageCount
      messages(first: 3) { edges { node { from subject } } } } } } } }`;
    await ok(server, query, { id: box.id, n: 1 }, { key: org.apiKey });
    const counts: number[] = [];
    for (const n of [1, 10, 50]) {
      const { data, statements } = await okCounted(server, query, { id: box.id, n }, { key: org.apiKey });
      counts.push(statements);
      expect(data.inbox.threads.edges).toHaveLength(n);
      expect(data.inbox.threads.edges[n - 1].node.messages.edges).toHaveLength(2);
      expect(data.inbox.threads.edges[n - 1].node.messageCount).toBe(2);
    }
    // The inbox, the threads with their aggregates, the messages of every thread.
    expect(counts).toEqual([3, 3, 3]);
  });
});
