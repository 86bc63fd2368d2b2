// A thread matches a MessageFilter when one of its visible messages meets every condition. The list
// finds them one of two ways (mail/thread-repository.ts): the matching messages first when they are
// few, or a walk of the threads when they are many. Both must give the same answer, in the same
// order, page after page, for any caller: each filter here is checked against the threads computed
// from the data itself, for a key that sees everything and one that hides spam, in pages of 7. The
// same filters on the message list, whose order is by time, not by id.
import { beforeAll, describe, expect, it } from "vitest";
import type { TenantScope } from "../src/auth/principal.ts";
import { loadConfig } from "../src/config.ts";
import type { KeysetPage } from "../src/db/keyset.ts";
import { createInbox } from "../src/inboxes/service.ts";
import type { MessageData, NewMessage } from "../src/mail/message.ts";
import type { MessageFilter } from "../src/mail/message-filter.ts";
import { listMessages, type MessageKey, messageKey } from "../src/mail/repository.ts";
import { storeMessages } from "../src/mail/store.ts";
import { listThreads, type ThreadKey, threadKey } from "../src/mail/thread-repository.ts";
import { databaseSuite, organizationFixture } from "./helpers/suite.ts";

const THREADS = 300;
/**
 * How many matching messages the list reads first, here (the server's is larger): a filter matching
 * most of the messages walks the threads, a rare one reads its matches first.
 */
const MATCHES_FIRST_LIMIT = 2000;
const MESSAGES = MATCHES_FIRST_LIMIT + 600;
const START = Date.UTC(2026, 0, 1);
const PEOPLE = ["Ann Lee", "Bob Stone", "Carol Diaz", "Dan Rare"];

interface Written {
  header: string;
  thread: number;
  inbox: 0 | 1;
  fromName: string;
  subject: string;
  labels: string[];
  createdAt: Date;
  hasAttachments: boolean;
}

const database = databaseSuite();
const org = organizationFixture(database, "Filters");
let full: TenantScope;
let hiding: TenantScope;
let inboxIds: [string, string];
const written: Written[] = [];
/** Row id of each thread, by its number here. */
const threadIds = new Map<number, string>();

/** Deterministic: message i of thread i % THREADS, its sender, labels and time follow from i. */
function plan(i: number): Written {
  const thread = i % THREADS;
  const labels = ["received"];
  if (i % 17 === 5) labels.push("spam");
  if (i % 5 === 0) labels.push("unread");
  // Dan writes rarely, and some of what he writes is spam.
  const fromName = i % 97 === 3 ? "Dan Rare" : (PEOPLE[i % 3] as string);
  return {
    header: `<m${i}@filter.example>`,
    thread,
    inbox: (thread % 2) as 0 | 1,
    fromName,
    subject: i < THREADS ? `Order ${thread}` : `Re: Order ${thread}`,
    labels: labels.sort(),
    // Times do not follow ids: a thread's later messages come at scattered moments.
    createdAt: new Date(START + ((i * 7919) % MESSAGES) * 60_000 + i),
    hasAttachments: i % 23 === 0,
  };
}

function dataOf(message: Written): MessageData {
  return {
    messageIdHeader: message.header,
    from: `${message.fromName.split(" ")[0]?.toLowerCase()}@people.example`,
    fromName: message.fromName,
    to: ["desk@filter.example"],
    subject: message.subject,
    text: "Hello",
    html: null,
    inReplyTo:
      message.header === `<m${message.thread}@filter.example>` ? null : `<m${message.thread}@filter.example>`,
    references: [],
    labels: message.labels,
    direction: "INBOUND",
    sizeBytes: 100,
    createdAt: message.createdAt,
    attachments: message.hasAttachments
      ? [{ filename: "a.txt", contentType: "text/plain", content: Buffer.from("a") }]
      : [],
  };
}

beforeAll(async () => {
  const config = loadConfig({});
  full = { orgId: org.organizationId, podId: null, inboxId: null, hiddenLabels: [] };
  hiding = { ...full, hiddenLabels: ["spam"] };
  const boxes = await Promise.all(
    ["one", "two"].map((username) => createInbox({ db: database.db, config }, full, { username })),
  );
  inboxIds = [boxes[0]?.id as string, boxes[1]?.id as string];
  const refs = boxes.map((box) => ({ orgId: full.orgId, podId: box.pod_id, inboxId: box.id }));
  for (let i = 0; i < MESSAGES; i++) written.push(plan(i));
  const store = (messages: Written[]) =>
    database.db.transaction().execute(async (trx) => {
      await storeMessages(
        trx,
        messages.map((m): NewMessage => ({ inbox: refs[m.inbox] as NewMessage["inbox"], data: dataOf(m) })),
        "MESSAGE_RECEIVED",
      );
    });
  // Each thread's first message, then the replies that cite it.
  await store(written.slice(0, THREADS));
  await store(written.slice(THREADS));
  const rows = await database.db
    .selectFrom("messages")
    .select(["message_id_header", "thread_id"])
    .where("org_id", "=", full.orgId)
    .execute();
  const threadOf = new Map(rows.map((row) => [row.message_id_header, String(row.thread_id)]));
  for (const message of written) {
    const id = threadOf.get(message.header);
    if (!id) throw new Error(`not stored: ${message.header}`);
    threadIds.set(message.thread, id);
  }
  expect(new Set(threadIds.values()).size).toBe(THREADS);
}, 120_000);

function meets(message: Written, filter: MessageFilter): boolean {
  const has = (text: string, part: string | undefined) =>
    part === undefined || text.toLowerCase().includes(part.toLowerCase());
  const from = `${message.fromName.split(" ")[0]?.toLowerCase()}@people.example ${message.fromName}`;
  return (
    has(from, filter.from) &&
    has(message.subject, filter.subject) &&
    (filter.since === undefined || message.createdAt >= filter.since) &&
    (filter.until === undefined || message.createdAt < filter.until) &&
    (filter.hasAttachments === undefined || message.hasAttachments === filter.hasAttachments) &&
    (filter.labels ?? []).every((label) => message.labels.includes(label))
  );
}

/** The threads a caller should get, newest visible activity first. */
function expected(scope: TenantScope, filter: MessageFilter, inbox: 0 | 1 | undefined): string[] {
  const visible = written.filter(
    (m) =>
      !m.labels.some((label) => scope.hiddenLabels.includes(label)) &&
      (inbox === undefined || m.inbox === inbox),
  );
  const last = new Map<number, number>();
  for (const m of visible) last.set(m.thread, Math.max(last.get(m.thread) ?? 0, m.createdAt.getTime()));
  const matching = new Set(visible.filter((m) => meets(m, filter)).map((m) => m.thread));
  const id = (thread: number) => BigInt(threadIds.get(thread) as string);
  return [...matching]
    .sort((a, b) => (last.get(b) as number) - (last.get(a) as number) || (id(b) > id(a) ? 1 : -1))
    .map((thread) => threadIds.get(thread) as string);
}

/** Every page of 7 in turn, following the cursor. */
async function paged(scope: TenantScope, filter: MessageFilter, inbox: 0 | 1 | undefined): Promise<string[]> {
  const ids: string[] = [];
  let after: ThreadKey | undefined;
  for (;;) {
    const page: KeysetPage<ThreadKey> = { after, before: undefined, limit: 7, inverted: false };
    const threads = await listThreads(
      database.db,
      scope,
      { message: filter, ...(inbox === undefined ? {} : { inboxId: inboxIds[inbox] }) },
      page,
      undefined,
      { matchesFirstLimit: MATCHES_FIRST_LIMIT },
    );
    ids.push(...threads.map((thread) => thread.id));
    const lastThread = threads.at(-1);
    if (threads.length < 7 || !lastThread) return ids;
    after = threadKey(lastThread);
  }
}

const middle = new Date(START + (MESSAGES / 2) * 60_000);
const FILTERS: [string, MessageFilter][] = [
  ["a rare sender (the matches first)", { from: "dan rare" }],
  ["a subject every message has (the walk)", { subject: "order" }],
  ["a sender a third of the mail is from", { from: "ann" }],
  ["since", { since: middle }],
  ["until", { until: middle }],
  ["attachments", { hasAttachments: true }],
  ["a label", { labels: ["unread"] }],
  ["a rare sender, since", { from: "rare", since: middle }],
  ["a sender nobody is", { from: "nobody" }],
];

describe("threads by MessageFilter", () => {
  for (const [name, filter] of FILTERS) {
    it(`match ${name} the same way for every caller, page after page`, async () => {
      for (const scope of [full, hiding]) {
        for (const inbox of [undefined, 0, 1] as const) {
          expect(await paged(scope, filter, inbox)).toEqual(expected(scope, filter, inbox));
        }
      }
    });
  }

  it("has filters on both sides of the matches-first limit", () => {
    const count = (filter: MessageFilter) => written.filter((m) => meets(m, filter)).length;
    expect(count({ from: "dan rare" })).toBeLessThan(MATCHES_FIRST_LIMIT);
    expect(count({ subject: "order" })).toBeGreaterThan(MATCHES_FIRST_LIMIT);
  });
});

describe("messages by MessageFilter", () => {
  /** Row id of each message, by its Message-ID. */
  let messageIds: Map<string, string>;
  beforeAll(async () => {
    const rows = await database.db
      .selectFrom("messages")
      .select(["message_id_header", "id"])
      .where("org_id", "=", full.orgId)
      .execute();
    messageIds = new Map(rows.map((row) => [row.message_id_header, String(row.id)]));
  });

  /** Newest first by time (ids break ties), whatever order the ids were given in. */
  function expectedMessages(scope: TenantScope, filter: MessageFilter, ascending: boolean): string[] {
    const id = (m: Written) => BigInt(messageIds.get(m.header) as string);
    const sorted = written
      .filter((m) => !m.labels.some((label) => scope.hiddenLabels.includes(label)) && meets(m, filter))
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (id(a) > id(b) ? 1 : -1))
      .map((m) => messageIds.get(m.header) as string);
    return ascending ? sorted : sorted.reverse();
  }

  async function pagedMessages(scope: TenantScope, filter: MessageFilter, ascending: boolean) {
    const ids: string[] = [];
    let after: MessageKey | undefined;
    for (;;) {
      const page: KeysetPage<MessageKey> = {
        after,
        before: undefined,
        limit: 50,
        inverted: false,
        ascending,
      };
      const messages = await listMessages(database.db, scope, { message: filter }, page, ["created_at"]);
      ids.push(...messages.map((message) => message.id));
      const last = messages.at(-1);
      if (messages.length < 50 || !last) return ids;
      after = messageKey(last);
    }
  }

  for (const [name, filter] of FILTERS) {
    it(`list ${name} in time order, both ways, page after page`, async () => {
      for (const scope of [full, hiding]) {
        for (const ascending of [false, true]) {
          expect(await pagedMessages(scope, filter, ascending)).toEqual(
            expectedMessages(scope, filter, ascending),
          );
        }
      }
    });
  }
});
