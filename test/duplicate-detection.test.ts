// Duplicate detection of inbound mail: a message is a retry of one its inbox holds only when both
// its Message-ID and its content digest match. Real SMTP sessions against a real server; what was
// stored is read back through GraphQL, and counted in SQL.
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { createInboxViaApi } from "./helpers/factories.ts";
import { inboxMessages } from "./helpers/reads.ts";
import { compose, SmtpDialogue, sendRaw } from "./helpers/smtp.ts";
import { organizationFixture, serverSuite } from "./helpers/suite.ts";

const { database, server } = serverSuite({}, { smtpPort: 0 });
const org = organizationFixture(database, "Duplicates");
let port: number;
let counter = 0;

const unique = (label: string) => `${label}-${++counter}-${randomBytes(3).toString("hex")}`;
const SENT_AT = new Date("2026-12-01T09:30:00Z");

beforeAll(() => {
  port = server.smtpPort as number;
});

async function newInbox() {
  return createInboxViaApi(server, org.apiKey, { username: unique("box") });
}

const messagesOf = (inboxId: string) =>
  inboxMessages(
    server,
    org.apiKey,
    inboxId,
    "id messageId subject text from to cc thread { id } attachments { filename }",
  );

/** Rows and message.received events stored for this Message-ID, whatever the API shows. */
async function stored(messageId: string) {
  const rows = await database.db
    .selectFrom("messages")
    .select(["org_id", "id"])
    .where("message_id_header", "=", messageId)
    .execute();
  const events = rows.length
    ? await database.db
        .selectFrom("events")
        .select("id")
        .where(
          "message_id",
          "in",
          rows.map((row) => row.id),
        )
        .where("type", "=", "MESSAGE_RECEIVED")
        .execute()
    : [];
  return { messages: rows.length, events: events.length };
}

/** One SMTP transaction over a raw socket: the reply to the final dot. */
async function deliverRaw(to: string, raw: Buffer, mailFrom = "alice@sender.test"): Promise<number> {
  const { session, greeting } = await SmtpDialogue.open(port);
  try {
    expect(greeting.code).toBe(220);
    expect((await session.command("EHLO client.test")).code).toBe(250);
    expect((await session.command(`MAIL FROM:<${mailFrom}>`)).code).toBe(250);
    expect((await session.command(`RCPT TO:<${to}>`)).code).toBe(250);
    return (await session.data(raw)).code;
  } finally {
    session.close();
  }
}

function base(to: string, messageId: string) {
  return {
    from: "Alice <alice@sender.test>",
    to,
    cc: "carol@sender.test",
    subject: "Invoice 42",
    text: "Amount due: 100 EUR.\nPay by Friday.",
    html: "<p>Amount due: <b>100 EUR</b>.</p>",
    attachments: [{ filename: "invoice.pdf", content: Buffer.from("%PDF-1.4 invoice 42") }],
    messageId,
    date: SENT_AT,
  };
}

/** Header lines prepended the way relays add trace fields on the way. */
function traced(raw: Buffer, lines: string[]): Buffer {
  return Buffer.concat([Buffer.from(lines.map((line) => `${line}\r\n`).join(""), "latin1"), raw]);
}

describe("a Message-ID shared by different messages", () => {
  it("stores two different messages with one Message-ID and a true retry of one: two messages, not one or three", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("shared")}@sender.test>`;
    const first = await compose(base(inbox.email, messageId));
    const second = await compose({ ...base(inbox.email, messageId), text: "Amount due: 999 EUR." });
    expect(await deliverRaw(inbox.email, first)).toBe(250);
    expect(await deliverRaw(inbox.email, second)).toBe(250);
    // The sender missed our 250 for the first, and sends the very same bytes again.
    expect(await deliverRaw(inbox.email, first)).toBe(250);

    expect(await stored(messageId)).toEqual({ messages: 2, events: 2 });
    const texts = (await messagesOf(inbox.id)).map((message) => message.text.trim()).sort();
    expect(texts).toEqual(["Amount due: 100 EUR.\nPay by Friday.", "Amount due: 999 EUR."]);
  });

  it.each([
    ["subject", { subject: "Invoice 43" }],
    ["sender", { from: "Mallory <mallory@sender.test>" }],
    ["sender's name", { from: "Not Alice <alice@sender.test>" }],
    ["recipients (To)", { to: ["someone-else@sender.test"] }],
    ["recipients (Cc)", { cc: "dave@sender.test" }],
    ["date", { date: new Date(SENT_AT.getTime() + 60_000) }],
    ["text", { text: "Amount due: 100 EUR.\nPay by Monday." }],
    ["HTML", { html: "<p>Amount due: <b>1000 EUR</b>.</p>" }],
    [
      "attachment content",
      { attachments: [{ filename: "invoice.pdf", content: Buffer.from("%PDF-1.4 forged") }] },
    ],
    [
      "attachment name",
      { attachments: [{ filename: "invoice.exe", content: Buffer.from("%PDF-1.4 invoice 42") }] },
    ],
    [
      "one more attachment",
      {
        attachments: [
          { filename: "invoice.pdf", content: Buffer.from("%PDF-1.4 invoice 42") },
          { filename: "terms.txt", content: "terms" },
        ],
      },
    ],
  ])("stores a message that differs by its %s beside the first", async (_what, change) => {
    const inbox = await newInbox();
    const messageId = `<${unique("differs")}@sender.test>`;
    const original = base(inbox.email, messageId);
    // Whom it is addressed to in its headers is part of it; the envelope delivers both here.
    const changed = { ...original, ...change };
    expect(await deliverRaw(inbox.email, await compose(original))).toBe(250);
    expect(await deliverRaw(inbox.email, await compose(changed))).toBe(250);
    expect(await stored(messageId)).toEqual({ messages: 2, events: 2 });
  });
});

describe("a retry that travelled differently", () => {
  it("is the same message after relays added trace headers, refolded headers and re-encoded the body", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("retry")}@sender.test>`;
    const options = base(inbox.email, messageId);
    const original = await compose(options);
    expect(await deliverRaw(inbox.email, original)).toBe(250);

    const retries: Buffer[] = [
      // The same bytes.
      original,
      // Another path: new trace fields in front, as each MTA on the way prepends its own.
      traced(original, [
        "Received: from backup-mx.sender.test (backup-mx.sender.test [192.0.2.7])",
        "\tby mx.mailroom.test with ESMTPS id 4Xyz; Tue, 1 Dec 2026 09:35:00 +0000",
        "Return-Path: <bounces+srs=alice@forwarder.test>",
        "Authentication-Results: mx.mailroom.test; spf=pass smtp.mailfrom=sender.test",
        "DKIM-Signature: v=1; a=rsa-sha256; d=forwarder.test; s=sel; bh=abc=; b=def=",
        "X-Forwarded-To: box@mailroom.test",
      ]),
      // Composed again (a new MIME boundary), its text re-encoded as base64 instead of
      // quoted-printable, and its subject folded where a relay re-wrapped it.
      Buffer.from(
        (await compose({ ...options, textEncoding: "base64" }))
          .toString("latin1")
          .replace(/^Subject: Invoice 42\r\n/m, "Subject: Invoice\r\n  42\r\n"),
        "latin1",
      ),
    ];
    expect(retries[2]?.toString("latin1")).toMatch(/Content-Transfer-Encoding: base64/);
    expect(original.toString("latin1")).not.toMatch(/Content-Transfer-Encoding: base64\r\n\r\nQW1v/);
    for (const retry of retries) expect(await deliverRaw(inbox.email, retry)).toBe(250);
    expect(await stored(messageId)).toEqual({ messages: 1, events: 1 });
    expect(await messagesOf(inbox.id)).toHaveLength(1);
  });

  it("gives a message without a Message-ID the same generated one when it comes again with a Received header", async () => {
    const inbox = await newInbox();
    const raw = Buffer.from(
      `From: plain@sender.test\r\nTo: ${inbox.email}\r\nSubject: No id ${unique("x")}\r\n` +
        "Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n\r\nbody\r\n",
    );
    expect(await deliverRaw(inbox.email, raw)).toBe(250);
    const again = traced(raw, ["Received: from relay.test by mx.test; Tue, 1 Dec 2026 09:01:00 +0000"]);
    expect(await deliverRaw(inbox.email, again)).toBe(250);
    const other = Buffer.from(raw.toString().replace("body", "another body"));
    expect(await deliverRaw(inbox.email, other)).toBe(250);
    const messages = await messagesOf(inbox.id);
    expect(messages).toHaveLength(2);
    for (const message of messages) expect(message.messageId).toMatch(/^<[0-9a-f]{64}@mailroom\.localhost>$/);
  });

  it("is recognised over nodemailer too, for every inbox of a message sent to several", async () => {
    const [a, b] = [await newInbox(), await newInbox()];
    const messageId = `<${unique("several")}@sender.test>`;
    const raw = await compose({ ...base(a.email, messageId), to: [a.email, b.email] });
    const envelope = { from: "alice@sender.test", to: [a.email, b.email] };
    await sendRaw(port, envelope, raw);
    await sendRaw(port, envelope, raw);
    const forged = await compose({ ...base(a.email, messageId), to: [a.email, b.email], subject: "Changed" });
    await sendRaw(port, envelope, forged);
    expect(await stored(messageId)).toEqual({ messages: 4, events: 4 });
  });
});

describe("threading", () => {
  it("threads a reply to a Message-ID two stored messages share with the most recent of them", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("twice")}@sender.test>`;
    await deliverRaw(inbox.email, await compose({ ...base(inbox.email, messageId), subject: "Earlier" }));
    await deliverRaw(inbox.email, await compose({ ...base(inbox.email, messageId), subject: "Later" }));
    await deliverRaw(
      inbox.email,
      await compose({
        from: "bob@sender.test",
        to: inbox.email,
        subject: "Re: Later",
        text: "Reply",
        messageId: `<${unique("reply")}@sender.test>`,
        inReplyTo: messageId,
        references: [messageId],
      }),
    );
    const messages = await messagesOf(inbox.id);
    const bySubject = new Map(messages.map((message) => [message.subject, message.thread.id]));
    expect(bySubject.get("Earlier")).not.toBe(bySubject.get("Later"));
    expect(bySubject.get("Re: Later")).toBe(bySubject.get("Later"));
  });
});
