// Group commit of inbound mail: messages arriving over many SMTP sessions at once share one
// transaction, and each sender still gets 250 only for what committed. A batch is made to form on
// purpose by holding an organization's event-ordering lock from a second connection (as another
// writer of that organization would): the first message's transaction waits for it, and the
// messages arriving meanwhile queue up for the next transaction. The database refuses one message
// (a trigger), fails a COMMIT (a deferred trigger) or loses the batch's connection
// (pg_terminate_backend), as a real one can.
import { randomBytes } from "node:crypto";
import { decodeGlobalID } from "@pothos/plugin-relay";
import { sql } from "kysely";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { type EventPosition, positionOf, START } from "../src/events/cursor.ts";
import { settledEventsAfter } from "../src/events/repository.ts";
import { holdOrganization } from "./helpers/database.ts";
import { createInboxViaApi, createOrganization } from "./helpers/factories.ts";
import { storedCount } from "./helpers/reads.ts";
import { ok, startTestServer, type TestServer } from "./helpers/server.ts";
import { compose, SmtpDialogue, sendRaw } from "./helpers/smtp.ts";
import { organizationFixture, serverSuite } from "./helpers/suite.ts";

const { database, server } = serverSuite({}, { smtpPort: 0 });
const org = organizationFixture(database, "Group commit");
let port: number;
let counter = 0;

const unique = (label: string) => `${label}-${++counter}-${randomBytes(3).toString("hex")}`;

beforeAll(() => {
  port = server.smtpPort as number;
});

async function newInbox(key = org.apiKey) {
  const inbox = await createInboxViaApi(server, key, { username: unique("box") });
  return { ...inbox, rowId: decodeGlobalID(inbox.id).id };
}

interface Sent {
  messageId: string;
  /** The SMTP reply code the sender got: 250, or the failure's (451, …). */
  code: number;
  copies?: number;
}

/** Every message's Date: a retry is the same message, and this helper composes it anew each time. */
const SENT_AT = new Date("2026-12-01T09:00:00Z");

/** One message over its own SMTP session (to `to`, or to several inboxes at once). */
async function send(
  to: string | string[],
  options: Record<string, unknown> = {},
  smtpPort = port,
): Promise<Sent> {
  const messageId = (options.messageId as string | undefined) ?? `<${unique("gc")}@sender.test>`;
  const raw = await compose({
    from: "alice@sender.test",
    to,
    subject: "Hello",
    text: "Hi",
    date: SENT_AT,
    ...options,
    messageId,
  });
  try {
    const info = await sendRaw(smtpPort, { from: "alice@sender.test", to: [to].flat() }, raw);
    return { messageId, code: Number(info.response.slice(0, 3)) };
  } catch (error) {
    return { messageId, code: (error as { responseCode?: number }).responseCode ?? 0 };
  }
}

async function until(condition: () => Promise<boolean> | boolean, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Backends waiting for a row lock or for another transaction (behind holdOrganization). */
async function waitingForLock(): Promise<number[]> {
  const { rows } = await sql<{ pid: number }>`
    SELECT DISTINCT pid FROM pg_locks
    WHERE locktype IN ('transactionid', 'tuple') AND NOT granted`.execute(database.db);
  return rows.map((row) => row.pid);
}

/**
 * Holds the organization's row, as a writer that stopped answering would, until `release()`:
 * Mailroom's next transaction for it waits, and the mail arriving meanwhile forms one batch behind it.
 */
async function holdEventLock(orgId: string) {
  const trx = await database.db.startTransaction().execute();
  await holdOrganization(trx, orgId);
  return { release: () => trx.rollback().execute() };
}

/**
 * Sends `plug` first and waits until its transaction is blocked on the held lock, then sends
 * `batch` (each over its own session) and waits until all of them are queued for one transaction.
 */
async function sendBehindPlug(plug: () => Promise<Sent>, batch: (() => Promise<Sent>)[]) {
  const queue = server.app.services.ingestQueue;
  const pluggedBefore = (await waitingForLock()).length;
  const plugged = plug();
  await until(async () => (await waitingForLock()).length > pluggedBefore, "the first transaction to block");
  const sent = batch.map((one) => one());
  await until(() => queue.waiting() === batch.length, `${batch.length} messages to queue up`);
  return { plugged, sent };
}

describe("many sessions at once", () => {
  it("stores each message once, with one event each, and a replay from the last event seen misses none", async () => {
    // Two nodes on one database, as behind a load balancer: their transactions run at the same time.
    const other = await startTestServer(database.url, {}, { smtpPort: 0 });
    onTestFinished(() => other.stop());
    const nodes = [server, other];
    const orgs = [
      org,
      await createOrganization(database.db, "Second"),
      await createOrganization(database.db, "Third"),
    ];
    const inboxes = [await newInbox(), await newInbox()];
    for (const another of orgs.slice(1)) inboxes.push(await newInbox(another.apiKey));
    const orgIds = orgs.map((one) => one.organizationId);

    // A reader replaying each organization's events after the last one it saw, while mail arrives, as
    // every channel reads them (docs/events.md, "Order without a lock"): it must skip none.
    const seen = new Map<string, string[]>(orgIds.map((id) => [id, []]));
    const positions = new Map<string, EventPosition>(orgIds.map((id) => [id, START]));
    let sending = true;
    const readOnce = () =>
      Promise.all(
        orgIds.map(async (orgId) => {
          const ids = seen.get(orgId) as string[];
          const rows = await settledEventsAfter(database.db, orgId, positions.get(orgId) ?? START, 10_000);
          ids.push(...rows.map((row) => row.id));
          const last = rows.at(-1);
          if (last) positions.set(orgId, positionOf(last));
        }),
      );
    const reader = (async () => {
      while (sending) await readOnce();
    })();

    const totals = () =>
      nodes
        .map((node) => node.app.services.ingestQueue.stats())
        .reduce((sum, one) => ({
          commits: sum.commits + one.commits,
          messages: sum.messages + one.messages,
        }));
    const before = totals();
    const SESSIONS = 20;
    const PER_SESSION = 9;
    const sent = (
      await Promise.all(
        Array.from({ length: SESSIONS }, async (_, session) => {
          const node = nodes[session % nodes.length] as TestServer;
          const results: Sent[] = [];
          for (let i = 0; i < PER_SESSION; i++) {
            // Every third message goes to an inbox of each organization at once.
            const to =
              i % 3 === 2
                ? [inboxes[3], inboxes[2], inboxes[0]].map((inbox) => inbox?.email as string)
                : (inboxes[(session + i) % inboxes.length]?.email as string);
            results.push({ ...(await send(to, {}, node.smtpPort as number)), copies: [to].flat().length });
          }
          return results;
        }),
      )
    ).flat();
    sending = false;
    await reader;
    // Until every event has settled (another transaction of the server may hold them back briefly).
    for (let attempt = 0; attempt < 200; attempt++) {
      await readOnce();
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM events WHERE org_id IN (${sql.join(orgIds)})`.execute(database.db);
      if ([...seen.values()].reduce((sum, ids) => sum + ids.length, 0) >= (rows[0]?.n ?? 0)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    expect(sent.every((one) => one.code === 250)).toBe(true);
    const after = totals();
    // Group commit did happen: fewer transactions than messages.
    expect(after.messages - before.messages).toBe(sent.length);
    expect(after.commits - before.commits).toBeLessThan(sent.length);
    const copies = sent.reduce((sum, one) => sum + (one.copies ?? 1), 0);

    const messages = await database.db
      .selectFrom("messages")
      .select(["id", "org_id", "inbox_id", "message_id_header"])
      .where(
        "message_id_header",
        "in",
        sent.map((one) => one.messageId),
      )
      .execute();
    // One row per copy: each message once in each inbox it was sent to.
    expect(messages).toHaveLength(copies);
    const perInbox = new Set(messages.map((message) => `${message.inbox_id} ${message.message_id_header}`));
    expect(perInbox.size).toBe(copies);

    const events = await database.db
      .selectFrom("events")
      .select(["id", "org_id", "message_id", "type"])
      .where("org_id", "in", orgIds)
      .where(
        "message_id",
        "in",
        messages.map((message) => message.id),
      )
      .execute();
    expect(events).toHaveLength(copies);
    expect(events.every((event) => event.type === "MESSAGE_RECEIVED")).toBe(true);
    expect(new Set(events.map((event) => event.message_id)).size).toBe(copies);
    for (const orgId of orgIds) {
      const all = await database.db
        .selectFrom("events")
        .select("id")
        .where("org_id", "=", orgId)
        .orderBy("xid")
        .orderBy("id")
        .execute();
      expect(seen.get(orgId), `events of organization ${orgId} as replayed`).toEqual(
        all.map((row) => row.id),
      );
    }
  });
});

describe("recipients", () => {
  it("answers each RCPT TO of many sessions for its own address when their lookups are made together", async () => {
    const inboxes = [await newInbox(), await newInbox(), await newInbox()];
    const SESSIONS = 12;
    const sessions = await Promise.all(
      Array.from({ length: SESSIONS }, async () => {
        const { session } = await SmtpDialogue.open(port);
        await session.command("EHLO client.test");
        await session.command("MAIL FROM:<alice@sender.test>");
        return session;
      }),
    );
    // The lookups wait for the table while every session asks: then one statement answers them.
    const block = await database.db.startTransaction().execute();
    await sql`LOCK TABLE inbox_addresses IN ACCESS EXCLUSIVE MODE`.execute(block);
    const asked = sessions.map(async (session, i) => {
      const known = inboxes[i % inboxes.length]?.email as string;
      const address = i % 2 === 0 ? known : known.toUpperCase();
      return [
        await session.command(`RCPT TO:<${address}>`),
        await session.command(`RCPT TO:<nobody-${i}@mailroom.localhost>`),
      ] as const;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await block.rollback().execute();
    const replies = await Promise.all(asked);
    for (const [accepted, refused] of replies) {
      expect(accepted.code).toBe(250);
      expect(refused.text).toMatch(/^550 5\.1\.1 /);
    }
    // And each message goes to its own session's inbox.
    const sent = await Promise.all(
      sessions.map((session, i) =>
        session.data(`Subject: rcpt ${i}\r\nMessage-ID: <${unique("rcpt")}@sender.test>\r\n\r\nhi\r\n`),
      ),
    );
    expect(sent.map((reply) => reply.code)).toEqual(sessions.map(() => 250));
    for (const session of sessions) session.close();
    for (const [i, inbox] of inboxes.entries()) {
      const subjects = await database.db
        .selectFrom("messages")
        .select("subject")
        .where("inbox_id", "=", inbox.rowId)
        .orderBy("subject")
        .execute();
      const expected = sessions.map((_, j) => j).filter((j) => j % inboxes.length === i);
      expect(subjects.map((row) => row.subject).sort()).toEqual(expected.map((j) => `rcpt ${j}`).sort());
    }
  });
});

describe("large messages", () => {
  it("stores a message too large to write to all its inboxes in one statement, each copy whole", async () => {
    const inboxes = await Promise.all(Array.from({ length: 8 }, () => newInbox()));
    // About 4.7 MB a copy (raw and decoded): over 32 MB for the eight, so it is written in two parts.
    const attachment = randomBytes(2 * 1024 * 1024);
    const sent = await send(
      inboxes.map((inbox) => inbox.email),
      { subject: "Large", attachments: [{ filename: "large.bin", content: attachment }] },
    );
    expect(sent.code).toBe(250);
    const rows = await database.db
      .selectFrom("attachments")
      .innerJoin("messages", (join) =>
        join
          .onRef("messages.org_id", "=", "attachments.org_id")
          .onRef("messages.id", "=", "attachments.message_id"),
      )
      .select(["messages.inbox_id", "messages.id", "attachments.content"])
      .where("messages.message_id_header", "=", sent.messageId)
      .execute();
    expect(new Set(rows.map((row) => row.inbox_id))).toEqual(new Set(inboxes.map((inbox) => inbox.rowId)));
    for (const row of rows) expect(row.content.equals(attachment)).toBe(true);
    const events = await database.db
      .selectFrom("events")
      .select("id")
      .where(
        "message_id",
        "in",
        rows.map((row) => row.id),
      )
      .execute();
    expect(events).toHaveLength(inboxes.length);
  });
});

describe("one batch", () => {
  it("stores and acknowledges the others when the database refuses one message, and refuses that one", async () => {
    const plugInbox = await newInbox();
    const inbox = await newInbox();
    await sql`
      CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused: %', NEW.subject; END $$`.execute(database.db);
    await sql`
      CREATE TRIGGER refuse_poison BEFORE INSERT ON messages
      FOR EACH ROW WHEN (NEW.subject = 'poison') EXECUTE FUNCTION refuse_poison()`.execute(database.db);
    try {
      const stats = server.app.services.ingestQueue.stats();
      const lock = await holdEventLock(org.organizationId);
      const { plugged, sent } = await sendBehindPlug(
        () => send(plugInbox.email),
        [
          () => send(inbox.email, { subject: "good 1" }),
          () => send(inbox.email, { subject: "poison" }),
          () => send(inbox.email, { subject: "good 2" }),
          () => send(inbox.email, { subject: "good 3" }),
        ],
      );
      await lock.release();
      expect((await plugged).code).toBe(250);
      const [good1, poison, good2, good3] = (await Promise.all(sent)) as [Sent, Sent, Sent, Sent];

      expect(poison.code).toBe(451);
      expect(await storedCount(database, poison.messageId)).toBe(0);
      for (const good of [good1, good2, good3]) {
        expect(good.code).toBe(250);
        expect(await storedCount(database, good.messageId)).toBe(1);
      }
      // The plug's transaction, then one for the four (the poison left out of it).
      expect(server.app.services.ingestQueue.stats().commits - stats.commits).toBe(2);
      const events = await database.db
        .selectFrom("events")
        .select("id")
        .where("org_id", "=", org.organizationId)
        .where("inbox_id", "=", inbox.rowId)
        .execute();
      expect(events).toHaveLength(3);
    } finally {
      await sql`DROP TRIGGER refuse_poison ON messages`.execute(database.db);
      await sql`DROP FUNCTION refuse_poison()`.execute(database.db);
    }
  });

  it("refuses only the message whose inbox was deleted while the batch waited", async () => {
    const plugInbox = await newInbox();
    const kept = await newInbox();
    const deleted = await newInbox();
    const lock = await holdEventLock(org.organizationId);
    const { plugged, sent } = await sendBehindPlug(
      () => send(plugInbox.email),
      [() => send(kept.email), () => send(deleted.email), () => send(kept.email)],
    );
    // Its inbox goes after the recipient was accepted: storing the copy breaks a foreign key.
    await ok(
      server,
      "mutation($id: ID!) { deleteInbox(input: { id: $id }) { deletedId } }",
      { id: deleted.id },
      {
        key: org.apiKey,
      },
    );
    await lock.release();
    expect((await plugged).code).toBe(250);
    const [first, orphan, second] = (await Promise.all(sent)) as [Sent, Sent, Sent];
    expect(orphan.code).toBe(451);
    expect(await storedCount(database, orphan.messageId)).toBe(0);
    for (const good of [first, second]) {
      expect(good.code).toBe(250);
      expect(await storedCount(database, good.messageId)).toBe(1);
    }
  });

  it("threads a reply with a message of the same batch, and stores a duplicate of it once", async () => {
    const plugInbox = await newInbox();
    const inbox = await newInbox();
    const original = `<${unique("original")}@sender.test>`;
    const lock = await holdEventLock(org.organizationId);
    const { plugged, sent } = await sendBehindPlug(
      () => send(plugInbox.email),
      [
        () => send(inbox.email, { messageId: original, subject: "Question" }),
        () => send(inbox.email, { subject: "Re: Question", inReplyTo: original, references: [original] }),
        // The same message again over another session, as a sender that timed out would.
        () => send(inbox.email, { messageId: original, subject: "Question" }),
        () => send(inbox.email, { subject: "Unrelated" }),
      ],
    );
    await lock.release();
    await plugged;
    const results = await Promise.all(sent);
    expect(results.map((one) => one.code)).toEqual([250, 250, 250, 250]);

    const rows = await database.db
      .selectFrom("messages")
      .select(["message_id_header", "thread_id"])
      .where("inbox_id", "=", inbox.rowId)
      .execute();
    expect(rows).toHaveLength(3);
    const threadOf = (messageId: string) =>
      rows.find((row) => row.message_id_header === messageId)?.thread_id;
    const [question, reply, , unrelated] = results as [Sent, Sent, Sent, Sent];
    expect(threadOf(reply.messageId)).toBe(threadOf(question.messageId));
    expect(threadOf(unrelated.messageId)).not.toBe(threadOf(question.messageId));
    const events = await database.db
      .selectFrom("events")
      .select("id")
      .where("org_id", "=", org.organizationId)
      .where("inbox_id", "=", inbox.rowId)
      .execute();
    expect(events).toHaveLength(3);
  });

  it("stores two different messages sharing a Message-ID in one batch, and a retry of one of them once", async () => {
    const plugInbox = await newInbox();
    const inbox = await newInbox();
    const shared = `<${unique("shared")}@sender.test>`;
    const lock = await holdEventLock(org.organizationId);
    const { plugged, sent } = await sendBehindPlug(
      () => send(plugInbox.email),
      [
        () => send(inbox.email, { messageId: shared, text: "the first message" }),
        () => send(inbox.email, { messageId: shared, text: "another message" }),
        () => send(inbox.email, { messageId: shared, text: "the first message" }),
      ],
    );
    await lock.release();
    await plugged;
    expect((await Promise.all(sent)).map((one) => one.code)).toEqual([250, 250, 250]);
    const rows = await database.db
      .selectFrom("messages")
      .select("text_body")
      .where("inbox_id", "=", inbox.rowId)
      .execute();
    expect(rows.map((row) => row.text_body?.trim()).sort()).toEqual(["another message", "the first message"]);
    // The retry, in a transaction of its own, finds the first in the database.
    expect((await send(inbox.email, { messageId: shared, text: "another message" })).code).toBe(250);
    expect(await storedCount(database, shared)).toBe(2);
  });

  it("answers 451 to every message of a batch whose COMMIT fails, and stores none of them", async () => {
    const plugInbox = await newInbox();
    const inbox = await newInbox();
    // Checked at COMMIT, after every statement of the batch succeeded.
    await sql`
      CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused at commit: %', NEW.subject; END $$`.execute(database.db);
    await sql`
      CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON messages DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW WHEN (NEW.subject = 'fails at commit') EXECUTE FUNCTION refuse_at_commit()`.execute(
      database.db,
    );
    let batch: Sent[];
    try {
      const lock = await holdEventLock(org.organizationId);
      const { plugged, sent } = await sendBehindPlug(
        () => send(plugInbox.email),
        [
          () => send(inbox.email, { subject: "innocent 1" }),
          () => send(inbox.email, { subject: "fails at commit" }),
          () => send(inbox.email, { subject: "innocent 2" }),
        ],
      );
      await lock.release();
      expect((await plugged).code).toBe(250);
      batch = await Promise.all(sent);
      expect(batch.map((one) => one.code)).toEqual([451, 451, 451]);
      for (const one of batch) expect(await storedCount(database, one.messageId)).toBe(0);
      const events = await database.db
        .selectFrom("events")
        .select("id")
        .where("org_id", "=", org.organizationId)
        .where("inbox_id", "=", inbox.rowId)
        .execute();
      expect(events).toHaveLength(0);
    } finally {
      await sql`DROP TRIGGER refuse_at_commit ON messages`.execute(database.db);
      await sql`DROP FUNCTION refuse_at_commit()`.execute(database.db);
    }
    // The senders try again later, and then each is stored once.
    const retried = await Promise.all(
      batch.map((one, i) => send(inbox.email, { messageId: one.messageId, subject: `again ${i}` })),
    );
    expect(retried.map((one) => one.code)).toEqual([250, 250, 250]);
    for (const one of batch) expect(await storedCount(database, one.messageId)).toBe(1);
  });

  it("answers 451 to every message of a batch whose connection dies, and stores none of them", async () => {
    const plugInbox = await newInbox();
    const inbox = await newInbox();
    const lock = await holdEventLock(org.organizationId);
    const { plugged, sent } = await sendBehindPlug(
      () => send(plugInbox.email),
      Array.from({ length: 5 }, () => () => send(inbox.email)),
    );
    // The first transaction's backend goes: its one message is refused, and the next transaction
    // (the five) starts and waits for the lock in turn; then its backend goes too.
    const [first] = await waitingForLock();
    await sql`SELECT pg_terminate_backend(${first}::int)`.execute(database.db);
    expect((await plugged).code).toBe(451);
    let second: number | undefined;
    await until(async () => {
      second = (await waitingForLock()).find((pid) => pid !== first);
      return second !== undefined;
    }, "the batch to block");
    await sql`SELECT pg_terminate_backend(${second}::int)`.execute(database.db);
    const batch = await Promise.all(sent);
    await lock.release();

    expect(batch.map((one) => one.code)).toEqual([451, 451, 451, 451, 451]);
    for (const one of batch) expect(await storedCount(database, one.messageId)).toBe(0);
    // The senders try again, and each is stored once.
    const retried = await Promise.all(batch.map((one) => send(inbox.email, { messageId: one.messageId })));
    expect(retried.map((one) => one.code)).toEqual([250, 250, 250, 250, 250]);
    for (const one of batch) expect(await storedCount(database, one.messageId)).toBe(1);
  });
});

describe("INGEST_GROUP_COMMIT=false", () => {
  it("stores each message in a transaction of its own, all at once: none waits for another's", async () => {
    const single = await startTestServer(database.url, { ingestGroupCommit: false }, { smtpPort: 0 });
    onTestFinished(() => single.stop());
    const inbox = await newInbox();
    const queue = single.app.services.ingestQueue;
    const held = await holdEventLock(org.organizationId);
    const blockedBefore = (await waitingForLock()).length;
    const sent = Array.from({ length: 4 }, () => send(inbox.email, {}, single.smtpPort as number));
    // All four wait on the lock at once, each in its own transaction; none is queued behind another.
    await until(
      async () => (await waitingForLock()).length >= blockedBefore + 4,
      "four blocked transactions",
    );
    expect(queue.waiting()).toBe(0);
    await held.release();
    expect((await Promise.all(sent)).map((one) => one.code)).toEqual([250, 250, 250, 250]);
    expect(queue.stats()).toEqual({ commits: 4, messages: 4 });
  });
});
