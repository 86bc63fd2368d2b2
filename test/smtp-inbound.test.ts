// Inbound SMTP (issue 5, part 1): real SMTP clients (nodemailer, and a raw dialogue where the
// exact reply matters) against the listener of a real server; what arrives is read back through
// GraphQL, and through SQL only for what the API does not show (the raw MIME, row counts).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { decodeGlobalID } from "@pothos/plugin-relay";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";
import { startDnsServer, type ZoneEntry } from "./helpers/dns-server.ts";
import { createInboxViaApi, createKey, createOrganization, createPodViaApi } from "./helpers/factories.ts";
import { inboxMessages } from "./helpers/reads.ts";
import { gql, ok, startTestServer, type TestServer } from "./helpers/server.ts";
import { compose, SmtpDialogue, sendRaw, smtpTransport } from "./helpers/smtp.ts";
import { organizationFixture, runningFrom, serverSuite } from "./helpers/suite.ts";

/** This server's SMTP_MAX_MESSAGE_BYTES: small, so "near the limit" stays quick. */
const LIMIT = 3 * 1024 * 1024;
const MX_HOST = "mx.mailroom-test.net";

const MESSAGE_FIELDS = `id messageId from to cc bcc replyTo subject text html preview labels inReplyTo
  references size createdAt inbox { id } thread { id subject messageCount }
  attachments { id filename contentType size contentId disposition contentBase64 }`;

const dns = runningFrom(startDnsServer);
const { database, server } = serverSuite(
  () => ({ smtpMaxMessageBytes: LIMIT, dnsServers: [dns.address], mxHost: MX_HOST }),
  { smtpPort: 0 },
);
const org = organizationFixture(database, "Receiver");
const otherOrg = organizationFixture(database, "Other receiver");
let port: number;
let counter = 0;

const unique = (label: string) => `${label}-${++counter}-${randomBytes(3).toString("hex")}`;

beforeAll(() => {
  port = server.smtpPort as number;
});

async function newInbox(key = org.apiKey, input: Record<string, unknown> = {}) {
  return createInboxViaApi(server, key, { username: unique("box"), ...input });
}

/** The inbox's messages, newest first, as a client sees them. */
const messagesOf = (inboxId: string, key = org.apiKey) => inboxMessages(server, key, inboxId, MESSAGE_FIELDS);

async function messageIn(inboxId: string, messageId: string, key = org.apiKey) {
  return (await messagesOf(inboxId, key)).find((message) => message.messageId === messageId);
}

async function rowsWithMessageId(messageId: string) {
  return database.db
    .selectFrom("messages")
    .select(["id", "org_id", "inbox_id", "raw_mime", "size_bytes", "labels"])
    .where("message_id_header", "=", messageId)
    .execute();
}

async function send(to: string[], options: Record<string, unknown>, from = "alice@sender.test") {
  const raw = await compose({ from, to, ...options });
  return { raw, info: await sendRaw(port, { from, to }, raw) };
}

/** nodemailer's failure, for its SMTP reply code. */
async function failure(promise: Promise<unknown>): Promise<{ responseCode?: number; response?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { responseCode?: number; response?: string };
  }
  throw new Error("expected the SMTP transaction to fail");
}

describe("delivery", () => {
  it("stores the message, its thread and a message.received event before answering 250", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("first")}@sender.test>`;
    const raw = await compose({
      from: '"Alice Example" <alice@sender.test>',
      to: [inbox.email, "Bob <bob@elsewhere.test>"],
      cc: "carol@sender.test",
      replyTo: "replies@sender.test",
      subject: "Quarterly numbers",
      // CRLF: SMTP clients turn a bare LF into CRLF on the wire, and the stored raw MIME is the wire's.
      text: "Hello there.\r\nThe numbers are in.",
      html: "<p>Hello <b>there</b>.</p>",
      messageId,
    });
    const info = await sendRaw(port, { from: "bounces@sender.test", to: [inbox.email] }, raw);
    expect(info.response).toMatch(/^250 2\.6\.0 /);
    expect(info.accepted).toEqual([inbox.email]);

    // Answered only after the commit: the message is there the moment the client has its 250.
    const message = await messageIn(inbox.id, messageId);
    expect(message).toMatchObject({
      messageId,
      from: "alice@sender.test",
      to: [inbox.email, "bob@elsewhere.test"],
      cc: ["carol@sender.test"],
      bcc: [],
      replyTo: ["replies@sender.test"],
      subject: "Quarterly numbers",
      html: "<p>Hello <b>there</b>.</p>",
      labels: ["received", "unread"],
      inReplyTo: null,
      references: [],
      size: raw.length,
      inbox: { id: inbox.id },
      thread: { subject: "Quarterly numbers", messageCount: 1 },
      attachments: [],
    });
    expect(message.text.trim()).toBe("Hello there.\nThe numbers are in.");
    expect(message.preview).toBe("Hello there. The numbers are in.");

    const threads = await ok(
      server,
      `query($id: ID!) { threads(inboxId: $id) { edges { node { id subject senders recipients messageCount } } } }`,
      { id: inbox.id },
      { key: org.apiKey },
    );
    expect(threads.threads.edges.map((edge: any) => edge.node)).toEqual([
      {
        id: message.thread.id,
        subject: "Quarterly numbers",
        senders: ["alice@sender.test"],
        recipients: ["bob@elsewhere.test", "carol@sender.test", inbox.email].sort(),
        messageCount: 1,
      },
    ]);

    // The raw MIME is kept byte for byte, and the event was written with the message.
    const [row] = await rowsWithMessageId(messageId);
    expect(row?.raw_mime?.equals(raw)).toBe(true);
    const events = await database.db
      .selectFrom("events")
      .select(["type", "inbox_id", "thread_id"])
      .where("message_id", "=", row?.id as string)
      .execute();
    expect(events).toEqual([
      {
        type: "MESSAGE_RECEIVED",
        inbox_id: decodeGlobalID(inbox.id).id,
        thread_id: decodeGlobalID(message.thread.id).id,
      },
    ]);
  });

  it("records a recipient reached by Bcc (named in neither To nor Cc) in bcc", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("bcc")}@sender.test>`;
    const raw = await compose({
      from: "alice@sender.test",
      to: "list@sender.test",
      subject: "Bcc",
      text: "x",
      messageId,
    });
    await sendRaw(port, { from: "alice@sender.test", to: [inbox.email] }, raw);
    expect(await messageIn(inbox.id, messageId)).toMatchObject({
      to: ["list@sender.test"],
      bcc: [inbox.email],
    });
  });

  it("threads a reply by In-Reply-To and References, and starts a new thread for unrelated mail", async () => {
    const inbox = await newInbox();
    const first = `<${unique("thread-a")}@sender.test>`;
    const reply = `<${unique("thread-b")}@sender.test>`;
    const replyByReferences = `<${unique("thread-c")}@sender.test>`;
    const unrelated = `<${unique("thread-d")}@sender.test>`;
    await send([inbox.email], { subject: "Plans", text: "Shall we?", messageId: first });
    await send(
      [inbox.email],
      { subject: "Re: Plans", text: "Yes.", messageId: reply, inReplyTo: first, references: [first] },
      "bob@other.test",
    );
    // Only References (some clients omit In-Reply-To), naming an id we do not hold first.
    await send([inbox.email], {
      subject: "Different subject entirely",
      text: "And also…",
      messageId: replyByReferences,
      references: [`<unknown-${unique("x")}@nowhere.test>`, reply],
    });
    // Same subject, no reference: a thread of its own.
    await send([inbox.email], { subject: "Plans", text: "Other plans", messageId: unrelated });

    const messages = await messagesOf(inbox.id);
    const byId = new Map(messages.map((message) => [message.messageId, message]));
    const threadOf = (id: string) => byId.get(id)?.thread.id;
    expect(threadOf(reply)).toBe(threadOf(first));
    expect(threadOf(replyByReferences)).toBe(threadOf(first));
    expect(threadOf(unrelated)).not.toBe(threadOf(first));
    expect(byId.get(reply)).toMatchObject({ inReplyTo: first, references: [first] });
    expect(byId.get(first)?.thread.messageCount).toBe(3);
    expect(byId.get(unrelated)?.thread.messageCount).toBe(1);
  });

  it("does not thread with a message of another inbox", async () => {
    const [a, b] = [await newInbox(), await newInbox()];
    const original = `<${unique("other-inbox")}@sender.test>`;
    const reply = `<${unique("other-inbox-reply")}@sender.test>`;
    await send([a.email], { subject: "Only in A", text: "a", messageId: original });
    await send([a.email, b.email], {
      subject: "Re: Only in A",
      text: "b",
      messageId: reply,
      inReplyTo: original,
    });
    const inA = await messageIn(a.id, reply);
    const inB = await messageIn(b.id, reply);
    expect(inA.thread.messageCount).toBe(2);
    expect(inB.thread.messageCount).toBe(1);
  });
});

describe("content", () => {
  it("keeps attachments byte for byte: random binary, text and an inline image", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("attachments")}@sender.test>`;
    const binary = randomBytes(300_000);
    const image = randomBytes(2_000);
    await send([inbox.email], {
      subject: "Files",
      text: "See attached.",
      html: '<p>Logo: <img src="cid:logo@sender.test"></p>',
      messageId,
      attachments: [
        { filename: "data.bin", content: binary, contentType: "application/octet-stream" },
        {
          filename: "notes – ü.txt",
          content: "line 1\r\nline 2\r\n",
          contentType: "text/plain; charset=utf-8",
        },
        { filename: "logo.png", content: image, contentType: "image/png", cid: "logo@sender.test" },
      ],
    });
    const message = await messageIn(inbox.id, messageId);
    expect(message.html).toBe('<p>Logo: <img src="cid:logo@sender.test"></p>');
    const byName = new Map<string, any>(message.attachments.map((a: any) => [a.filename, a]));
    expect([...byName.keys()].sort()).toEqual(["data.bin", "logo.png", "notes – ü.txt"]);
    expect(byName.get("data.bin")).toMatchObject({
      contentType: "application/octet-stream",
      size: binary.length,
      disposition: "attachment",
    });
    expect(Buffer.from(byName.get("data.bin").contentBase64, "base64").equals(binary)).toBe(true);
    expect(Buffer.from(byName.get("notes – ü.txt").contentBase64, "base64").toString()).toBe(
      "line 1\r\nline 2\r\n",
    );
    expect(byName.get("logo.png")).toMatchObject({
      contentType: "image/png",
      contentId: "logo@sender.test",
      disposition: "inline",
    });
    expect(Buffer.from(byName.get("logo.png").contentBase64, "base64").equals(image)).toBe(true);
  });

  it("accepts a message just under the size limit with its large attachment intact", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("large")}@sender.test>`;
    // base64 with line breaks grows 4/3 × 78/76; a little room is left for the headers.
    const binary = randomBytes(Math.floor((LIMIT * 0.98 * 3 * 76) / (4 * 78)) - 2_000);
    const raw = await compose({
      from: "alice@sender.test",
      to: inbox.email,
      subject: "Large",
      text: "big",
      messageId,
      attachments: [{ filename: "big.bin", content: binary }],
    });
    expect(raw.length).toBeLessThanOrEqual(LIMIT);
    expect(raw.length).toBeGreaterThan(LIMIT * 0.95);
    const info = await sendRaw(port, { from: "alice@sender.test", to: [inbox.email] }, raw);
    expect(info.response).toMatch(/^250 /);
    const message = await messageIn(inbox.id, messageId);
    expect(message.attachments).toHaveLength(1);
    expect(Buffer.from(message.attachments[0].contentBase64, "base64").equals(binary)).toBe(true);
  });

  it("keeps unicode subjects, senders and bodies", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("unicode")}@sender.test>`;
    const subject = "Grüße aus Köln — 東京 🌍 résumé";
    const text = "Ünïcödé body: Ελληνικά, русский, العربية, 日本語, emoji 👩‍💻🎉";
    await send(
      [inbox.email],
      { subject, text, html: `<p>${text}</p>`, messageId },
      '"Zoë Çelik" <zoe@sender.test>',
    );
    const message = await messageIn(inbox.id, messageId);
    expect(message.subject).toBe(subject);
    expect(message.text.trim()).toBe(text);
    expect(message.html).toBe(`<p>${text}</p>`);
    expect(message.from).toBe("zoe@sender.test");
    expect(message.thread.subject).toBe(subject);
  });

  it("stores HTML-only mail with the HTML as sent and a preview from its text", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("html")}@sender.test>`;
    const html =
      "<html><head><style>p{color:red}</style></head><body><p>Only <i>HTML</i> here</p></body></html>";
    await send([inbox.email], { subject: "HTML", html, messageId });
    const message = await messageIn(inbox.id, messageId);
    // A single-part body ends with the line break that ends its last line.
    expect(message.html).toBe(`${html}\n`);
    // text is the message's own plain-text part: there is none here.
    expect(message.text).toBeNull();
    expect(message.preview).toBe("Only HTML here");
  });

  it("stores both parts of multipart/alternative", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("alternative")}@sender.test>`;
    const { raw } = await send([inbox.email], {
      subject: "Both",
      text: "Plain version",
      html: "<p>Rich version</p>",
      messageId,
    });
    expect(raw.toString()).toMatch(/Content-Type: multipart\/alternative/);
    const message = await messageIn(inbox.id, messageId);
    expect(message.text.trim()).toBe("Plain version");
    expect(message.html).toBe("<p>Rich version</p>");
  });

  it.each([
    [
      "a multipart whose closing boundary never comes, with invalid base64 and an unknown charset",
      "From: broken@sender.test\r\nSubject: Broken\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n" +
        'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n--zz\r\nContent-Type: text/plain; charset=x-unknown-42\r\n' +
        "Content-Transfer-Encoding: base64\r\n\r\n!!!not base64 at all###\r\n--zz\r\nContent-Type: application/octet-stream\r\n" +
        "Content-Transfer-Encoding: base64\r\n\r\nAAEC====\r\n",
    ],
    ["no header block at all", "just some words\r\nwith <{id}> inside\r\n"],
    [
      "NUL bytes, 8-bit garbage and a header without a colon",
      "Subject: Nul\u0000 inside\r\nThis is not a header\r\nMessage-ID: <{id}>\r\n\r\nbody\u0000with nul \u00ff\u00fe bytes\r\n",
    ],
  ])("stores malformed MIME rather than failing: %s", async (_name, template) => {
    const inbox = await newInbox();
    const id = `${unique("malformed")}@sender.test`;
    const raw = Buffer.from(template.replaceAll("{id}", id), "latin1");
    const info = await sendRaw(port, { from: "broken@sender.test", to: [inbox.email] }, raw);
    expect(info.response).toMatch(/^250 /);
    const messages = await messagesOf(inbox.id);
    expect(messages).toHaveLength(1);
    expect(messages[0].labels).toEqual(["received", "unread"]);
    const [row] = await database.db
      .selectFrom("messages")
      .select(["raw_mime"])
      .where("id", "=", decodeGlobalID(messages[0].id).id)
      .execute();
    expect(row?.raw_mime?.equals(raw)).toBe(true);
  });

  it("gives a message without Message-ID one derived from its bytes, so a retry is stored once", async () => {
    const inbox = await newInbox();
    const raw = Buffer.from(
      `From: plain@sender.test\r\nTo: ${inbox.email}\r\nSubject: No id ${unique("x")}\r\n\r\nbody\r\n`,
    );
    await sendRaw(port, { from: "plain@sender.test", to: [inbox.email] }, raw);
    await sendRaw(port, { from: "plain@sender.test", to: [inbox.email] }, raw);
    const messages = await messagesOf(inbox.id);
    expect(messages).toHaveLength(1);
    expect(messages[0].messageId).toMatch(/^<[0-9a-f]{64}@mailroom\.localhost>$/);
  });
});

describe("recipients and limits", () => {
  it("advertises SIZE and no AUTH or STARTTLS without a certificate", async () => {
    const { session, greeting } = await SmtpDialogue.open(port);
    expect(greeting.code).toBe(220);
    const ehlo = await session.command("EHLO client.test");
    expect(ehlo.code).toBe(250);
    expect(ehlo.lines).toContain(`SIZE ${LIMIT}`);
    expect(ehlo.lines.some((line) => /^(AUTH|STARTTLS)/.test(line))).toBe(false);
    session.close();
  });

  it("refuses an unknown recipient with 550 5.1.1 at RCPT time", async () => {
    const inbox = await newInbox();
    const { session } = await SmtpDialogue.open(port);
    await session.command("EHLO client.test");
    expect((await session.command("MAIL FROM:<alice@sender.test>")).code).toBe(250);
    const unknown = await session.command("RCPT TO:<nobody-here@mailroom.localhost>");
    expect(unknown.text).toMatch(/^550 5\.1\.1 /);
    const elsewhere = await session.command("RCPT TO:<someone@not-hosted.test>");
    expect(elsewhere.text).toMatch(/^550 5\.1\.1 /);
    // Case does not matter; the known recipient is accepted in the same transaction.
    expect((await session.command(`RCPT TO:<${inbox.email.toUpperCase()}>`)).code).toBe(250);
    expect(
      (await session.data(`Subject: mixed\r\nMessage-ID: <${unique("mixed")}@s.test>\r\n\r\nhi\r\n`)).code,
    ).toBe(250);
    session.close();
    expect(await messagesOf(inbox.id)).toHaveLength(1);

    // nodemailer sees the same: all recipients refused is an error carrying 550.
    const refused = await failure(send(["nobody-here@mailroom.localhost"], { subject: "x", text: "x" }));
    expect(refused.responseCode).toBe(550);
    // Some refused: delivered to the others, and the refused ones reported.
    const partial = await send([inbox.email, "ghost@mailroom.localhost"], { subject: "partial", text: "x" });
    expect(partial.info.accepted).toEqual([inbox.email]);
    expect(partial.info.rejected).toEqual(["ghost@mailroom.localhost"]);
  });

  it("refuses a message over the limit with 552, whether declared with SIZE or not", async () => {
    const inbox = await newInbox();
    const { session } = await SmtpDialogue.open(port);
    await session.command("EHLO client.test");
    // Declared too large: refused at MAIL FROM, before a byte is sent.
    expect((await session.command(`MAIL FROM:<alice@sender.test> SIZE=${LIMIT + 1}`)).text).toMatch(/^552 /);
    // Declared small, sent large: refused after the data.
    expect((await session.command("MAIL FROM:<alice@sender.test> SIZE=1000")).code).toBe(250);
    expect((await session.command(`RCPT TO:<${inbox.email}>`)).code).toBe(250);
    const line = `${"x".repeat(998)}\r\n`;
    const body = `Subject: too big\r\nMessage-ID: <${unique("big")}@s.test>\r\n\r\n${line.repeat(Math.ceil(LIMIT / line.length) + 10)}`;
    expect((await session.data(body)).text).toMatch(/^552 5\.3\.4 /);
    // The session goes on: the next message is accepted.
    expect((await session.command("MAIL FROM:<alice@sender.test>")).code).toBe(250);
    expect((await session.command(`RCPT TO:<${inbox.email}>`)).code).toBe(250);
    expect(
      (await session.data(`Subject: small\r\nMessage-ID: <${unique("small")}@s.test>\r\n\r\nok\r\n`)).code,
    ).toBe(250);
    session.close();
    const messages = await messagesOf(inbox.id);
    expect(messages.map((message) => message.subject)).toEqual(["small"]);

    // nodemailer, with its own idea of SIZE: still 552.
    const tooBig = await failure(
      send([inbox.email], {
        subject: "too big",
        text: "x",
        attachments: [{ filename: "b", content: randomBytes(LIMIT) }],
      }),
    );
    expect(tooBig.responseCode).toBe(552);
    expect(await messagesOf(inbox.id)).toHaveLength(1);
  });

  it("accepts mail for an inbox on a verified domain, and refuses it with 550 once verification fails", async () => {
    const domainName = `${unique("verified")}.example-mail.com`;
    const created = await ok(
      server,
      `mutation($domain: String!) { createDomain(input: { domain: $domain }) { domain { id records { purpose type name value priority } } } }`,
      { domain: domainName },
      { key: org.apiKey },
    );
    const domain = created.createDomain.domain;
    for (const record of domain.records) {
      const entry: ZoneEntry = dns.zone.get(record.name) ?? {};
      if (record.type === "MX") entry.MX = [{ priority: record.priority ?? 10, exchange: record.value }];
      else entry.TXT = [...(entry.TXT ?? []), record.value];
      dns.zone.set(record.name, entry);
    }
    const verify = `mutation($id: ID!) { verifyDomain(input: { id: $id }) { domain { status } } }`;
    expect(
      (await ok(server, verify, { id: domain.id }, { key: org.apiKey })).verifyDomain.domain.status,
    ).toBe("VERIFIED");
    const inbox = await newInbox(org.apiKey, { domain: domainName });
    expect(inbox.email).toBe(`${inbox.email.split("@")[0]}@${domainName}`);

    const accepted = await send([inbox.email], { subject: "to a custom domain", text: "x" });
    expect(accepted.info.accepted).toEqual([inbox.email]);
    expect(await messagesOf(inbox.id)).toHaveLength(1);

    // The MX record moves away: verification fails, and the inbox no longer receives.
    dns.zone.set(domainName, {
      ...dns.zone.get(domainName),
      MX: [{ priority: 10, exchange: "mx.elsewhere.test" }],
    });
    expect(
      (await ok(server, verify, { id: domain.id }, { key: org.apiKey })).verifyDomain.domain.status,
    ).toBe("FAILED");
    const { session } = await SmtpDialogue.open(port);
    await session.command("EHLO client.test");
    await session.command("MAIL FROM:<alice@sender.test>");
    expect((await session.command(`RCPT TO:<${inbox.email}>`)).text).toMatch(/^550 5\.1\.1 /);
    session.close();
    expect(await messagesOf(inbox.id)).toHaveLength(1);
  });
});

describe("labels", () => {
  it.each([
    ["X-Spam-Flag: YES", { "X-Spam-Flag": "YES" }, true],
    ["X-Spam-Status: Yes, score=…", { "X-Spam-Status": "Yes, score=9.1 required=5.0 tests=BAYES_99" }, true],
    ["X-Spam-Status: No", { "X-Spam-Status": "No, score=0.1 required=5.0" }, false],
  ])(
    "labels an upstream spam verdict (%s) spam, hidden from a key without LABEL_SPAM_READ",
    async (_name, headers, spam) => {
      const inbox = await newInbox();
      const messageId = `<${unique("spam")}@sender.test>`;
      await send([inbox.email], { subject: "Cheap pills", text: "buy", headers, messageId });
      const seen = await messageIn(inbox.id, messageId);
      expect(seen.labels).toEqual(spam ? ["received", "spam", "unread"] : ["received", "unread"]);

      const blind = await createKey(server, org.apiKey, {
        inboxId: inbox.id,
        permissions: { inboxRead: true, threadRead: true, messageRead: true },
      });
      const visible = await messagesOf(inbox.id, blind.secret);
      expect(visible.map((message) => message.messageId)).toEqual(spam ? [] : [messageId]);
    },
  );

  async function listEntry(
    type: "ALLOW" | "BLOCK",
    entry: string,
    where: Record<string, string> = {},
    key = org.apiKey,
  ) {
    await ok(
      server,
      `mutation($input: CreateListEntryInput!) { createListEntry(input: $input) { listEntry { id } } }`,
      { input: { direction: "RECEIVE", type, entry, ...where } },
      { key },
    );
  }

  async function labelsOfMailFrom(
    inbox: { id: string; email: string },
    from: string,
    envelopeFrom = from,
    key = org.apiKey,
  ) {
    const messageId = `<${unique("listed")}@sender.test>`;
    const raw = await compose({ from, to: inbox.email, subject: "Hello", text: "x", messageId });
    const info = await sendRaw(port, { from: envelopeFrom, to: [inbox.email] }, raw);
    expect(info.response).toMatch(/^250 /); // labelled, never refused or dropped
    return (await messageIn(inbox.id, messageId, key)).labels;
  }

  it("labels mail blocked by a RECEIVE block entry on the sender's address or domain, at inbox, pod or organization level", async () => {
    const listOrg = await createOrganization(database.db, "Lists");
    const pod = await createPodViaApi(server, listOrg.apiKey, "Listed pod");
    const inbox = await newInbox(listOrg.apiKey, { podId: pod });
    const otherPod = await createPodViaApi(server, listOrg.apiKey, "Other pod");
    const neighbour = await newInbox(listOrg.apiKey, { podId: otherPod });
    await listEntry("BLOCK", "spammer.test", { inboxId: inbox.id }, listOrg.apiKey);
    await listEntry("BLOCK", "pest@pod-level.test", { podId: pod }, listOrg.apiKey);
    await listEntry("BLOCK", "org-level.test", {}, listOrg.apiKey);

    const blocked = ["blocked", "received", "unread"];
    const fine = ["received", "unread"];
    const labelsOf = (box: { id: string; email: string }, from: string, envelopeFrom = from) =>
      labelsOfMailFrom(box, from, envelopeFrom, listOrg.apiKey);
    expect(await labelsOf(inbox, "anyone@spammer.test")).toEqual(blocked);
    expect(await labelsOf(inbox, "Anyone@SPAMMER.test")).toEqual(blocked);
    expect(await labelsOf(inbox, "anyone@sub.spammer.test")).toEqual(fine);
    expect(await labelsOf(inbox, "pest@pod-level.test")).toEqual(blocked);
    expect(await labelsOf(inbox, "other@pod-level.test")).toEqual(fine);
    expect(await labelsOf(inbox, "x@org-level.test")).toEqual(blocked);
    // The envelope sender counts too.
    expect(await labelsOf(inbox, "nice@fine.test", "bounce@spammer.test")).toEqual(blocked);
    // Entries of one inbox or pod do not reach another; the organization's do.
    expect(await labelsOf(neighbour, "anyone@spammer.test")).toEqual(fine);
    expect(await labelsOf(neighbour, "pest@pod-level.test")).toEqual(fine);
    expect(await labelsOf(neighbour, "x@org-level.test")).toEqual(blocked);
  });

  it("labels mail blocked when the inbox has an allow list that does not name the sender", async () => {
    const inbox = await newInbox();
    await listEntry("ALLOW", "friend.test", { inboxId: inbox.id });
    await listEntry("ALLOW", "boss@corp.test", { inboxId: inbox.id });
    await listEntry("BLOCK", "enemy@friend.test", { inboxId: inbox.id });
    expect(await labelsOfMailFrom(inbox, "pal@friend.test")).toEqual(["received", "unread"]);
    expect(await labelsOfMailFrom(inbox, "boss@corp.test")).toEqual(["received", "unread"]);
    expect(await labelsOfMailFrom(inbox, "intern@corp.test")).toEqual(["blocked", "received", "unread"]);
    expect(await labelsOfMailFrom(inbox, "stranger@else.test")).toEqual(["blocked", "received", "unread"]);
    // Block wins over allow.
    expect(await labelsOfMailFrom(inbox, "enemy@friend.test")).toEqual(["blocked", "received", "unread"]);
    // Without an allow list of its own (or above it), another inbox takes mail from anyone.
    const open = await newInbox();
    expect(await labelsOfMailFrom(open, "stranger@else.test")).toEqual(["received", "unread"]);
  });
});

describe("retries and several recipients", () => {
  it("stores a retried message (same Message-ID) once", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("retry")}@sender.test>`;
    const raw = await compose({
      from: "alice@sender.test",
      to: inbox.email,
      subject: "Once",
      text: "x",
      messageId,
    });
    const envelope = { from: "alice@sender.test", to: [inbox.email] };
    const replies = await Promise.all([
      sendRaw(port, envelope, raw),
      sendRaw(port, envelope, raw),
      sendRaw(port, envelope, raw),
    ]);
    for (const info of replies) expect(info.response).toMatch(/^250 /);
    await sendRaw(port, envelope, raw);
    expect(await rowsWithMessageId(messageId)).toHaveLength(1);
    expect(await messagesOf(inbox.id)).toHaveLength(1);
  });

  it("stores a message with 500 attachments for 20 inboxes: more values than one statement binds", async () => {
    const inboxes = await Promise.all(Array.from({ length: 20 }, () => newInbox()));
    const messageId = `<${unique("many-parts")}@sender.test>`;
    // (mailparser takes at most about a thousand MIME parts.)
    const attachments = Array.from({ length: 500 }, (_, i) => ({
      filename: `part-${i}.txt`,
      content: `part ${i}\n`,
      contentType: "text/plain",
    }));
    const { info } = await send(
      inboxes.map((inbox) => inbox.email),
      { subject: "Parts", text: "Many parts", messageId, attachments },
    );
    expect(info.accepted).toHaveLength(20);

    const copies = await rowsWithMessageId(messageId);
    expect(copies).toHaveLength(20);
    const counts = await database.db
      .selectFrom("attachments")
      .select(["message_id", (eb) => eb.fn.countAll<string>().as("n")])
      .where(
        "message_id",
        "in",
        copies.map((copy) => copy.id),
      )
      .groupBy("message_id")
      .execute();
    expect(counts.map((row) => row.n)).toEqual(Array(20).fill("500"));
    // In the order they were sent, with their content.
    const message = await messageIn(inboxes[3]?.id as string, messageId);
    expect(message.attachments.map((a: any) => a.filename)).toEqual(attachments.map((a) => a.filename));
    expect(Buffer.from(message.attachments[499].contentBase64, "base64").toString()).toBe("part 499\n");
  });

  it("delivers one message to inboxes of two organizations, each seeing only its own copy", async () => {
    const mine = await newInbox();
    const theirs = await newInbox(otherOrg.apiKey);
    const messageId = `<${unique("two-orgs")}@sender.test>`;
    const { info } = await send([mine.email, theirs.email], {
      subject: "To both",
      text: "hello both",
      messageId,
    });
    expect(info.accepted.sort()).toEqual([mine.email, theirs.email].sort());

    const rows = await rowsWithMessageId(messageId);
    expect(rows.map((row) => row.org_id).sort()).toEqual(
      [org.organizationId, otherOrg.organizationId].sort(),
    );
    const own = await messageIn(mine.id, messageId);
    const other = await messageIn(theirs.id, messageId, otherOrg.apiKey);
    expect(own).toMatchObject({ subject: "To both", to: [mine.email, theirs.email] });
    expect(other).toMatchObject({ subject: "To both", to: [mine.email, theirs.email] });
    expect(own.id).not.toBe(other.id);
    // Neither organization can reach the other's copy.
    const probe = await gql(
      server,
      `query($id: ID!) { message(id: $id) { id } }`,
      { id: other.id },
      { key: org.apiKey },
    );
    expect(probe.body.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
  });

  it("answers 451 when the database cannot store the message, and 250 to the retry once it can", async () => {
    const inbox = await newInbox();
    const messageId = `<${unique("db-down")}@sender.test>`;
    const raw = await compose({
      from: "alice@sender.test",
      to: inbox.email,
      subject: "Later",
      text: "x",
      messageId,
    });
    const envelope = { from: "alice@sender.test", to: [inbox.email] };
    // A real failure of the real database: the table the message goes to is gone for a moment.
    await database.db.schema.alterTable("messages").renameTo("messages_away").execute();
    try {
      const failed = await failure(sendRaw(port, envelope, raw));
      expect(failed.responseCode).toBe(451);
      expect(failed.response).toMatch(/^451 4\.3\.0 /);
    } finally {
      await database.db.schema.alterTable("messages_away").renameTo("messages").execute();
    }
    expect(await rowsWithMessageId(messageId)).toHaveLength(0);
    const info = await sendRaw(port, envelope, raw);
    expect(info.response).toMatch(/^250 /);
    expect(await rowsWithMessageId(messageId)).toHaveLength(1);
  });
});

describe("STARTTLS", () => {
  let tlsServer: TestServer;
  let certDir: string;
  let fingerprint: string;

  beforeAll(async () => {
    // selfsigned (a devDependency) makes the certificate: node:crypto cannot.
    const pems = await generate([{ name: "commonName", value: MX_HOST }], {
      keyType: "ec",
      algorithm: "sha256",
    });
    fingerprint = pems.fingerprint;
    certDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-smtp-tls-"));
    const keyFile = path.join(certDir, "key.pem");
    const certFile = path.join(certDir, "cert.pem");
    await writeFile(keyFile, pems.private);
    await writeFile(certFile, pems.cert);
    tlsServer = await startTestServer(
      database.url,
      { smtpTlsKeyFile: keyFile, smtpTlsCertFile: certFile },
      { smtpPort: 0 },
    );
  });

  afterAll(async () => {
    await tlsServer?.stop();
    if (certDir) await rm(certDir, { recursive: true, force: true });
  });

  it("offers STARTTLS with the configured certificate and takes mail over it", async () => {
    const tlsPort = tlsServer.smtpPort as number;
    const { session } = await SmtpDialogue.open(tlsPort);
    const ehlo = await session.command("EHLO client.test");
    expect(ehlo.lines).toContain("STARTTLS");
    const certificate = await session.startTls();
    expect(certificate.fingerprint.toUpperCase()).toBe(fingerprint.toUpperCase());
    const secured = await session.command("EHLO client.test");
    expect(secured.lines).not.toContain("STARTTLS");
    session.close();

    const inbox = await newInbox();
    const messageId = `<${unique("tls")}@sender.test>`;
    const transport = smtpTransport(tlsPort, { requireTLS: true });
    const info = await transport.sendMail({
      from: "alice@sender.test",
      to: inbox.email,
      subject: "Secret",
      text: "s",
      messageId,
    });
    transport.close();
    expect(info.response).toMatch(/^250 /);
    expect((await messageIn(inbox.id, messageId)).subject).toBe("Secret");

    // The listener without a certificate cannot satisfy a client that requires TLS.
    const plain = smtpTransport(port, { requireTLS: true });
    await expect(plain.sendMail({ from: "a@sender.test", to: inbox.email, text: "x" })).rejects.toThrow();
    plain.close();
  });
});

describe("stopping", () => {
  it("lets a message in DATA finish with its 250, refusing new connections meanwhile", async () => {
    const node = await startTestServer(database.url, {}, { smtpPort: 0 });
    const nodePort = node.smtpPort as number;
    const inbox = await newInbox();
    const messageId = `<${unique("in-flight")}@sender.test>`;
    const { session } = await SmtpDialogue.open(nodePort);
    await session.command("EHLO client.test");
    await session.command("MAIL FROM:<alice@sender.test>");
    await session.command(`RCPT TO:<${inbox.email}>`);
    expect((await session.command("DATA")).code).toBe(354);
    session.write(`Subject: In flight\r\nMessage-ID: ${messageId}\r\n\r\nfirst half\r\n`);

    const stopped = node.stop();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await expect(SmtpDialogue.open(nodePort)).rejects.toThrow();
    session.write("second half\r\n.\r\n");
    expect((await session.reply()).code).toBe(250);
    await stopped;
    expect(await rowsWithMessageId(messageId)).toHaveLength(1);
  });
});

describe("configuration", () => {
  it("reads SMTP_HOST, SMTP_MAX_MESSAGE_BYTES and the STARTTLS key and certificate files", () => {
    expect(loadConfig({})).toMatchObject({
      smtpHost: "127.0.0.1",
      smtpMaxMessageBytes: 25 * 1024 * 1024,
      smtpTlsKeyFile: undefined,
      smtpTlsCertFile: undefined,
    });
    expect(loadConfig({ HOST: "0.0.0.0" }).smtpHost).toBe("0.0.0.0");
    expect(
      loadConfig({
        SMTP_HOST: "::",
        SMTP_MAX_MESSAGE_BYTES: "1048576",
        SMTP_TLS_KEY_FILE: "key.pem",
        SMTP_TLS_CERT_FILE: "/etc/mailroom/cert.pem",
      }),
    ).toMatchObject({
      smtpHost: "::",
      smtpMaxMessageBytes: 1048576,
      smtpTlsKeyFile: path.resolve("key.pem"),
      smtpTlsCertFile: "/etc/mailroom/cert.pem",
    });
    expect(() => loadConfig({ SMTP_TLS_KEY_FILE: "key.pem" })).toThrow(
      /^Invalid configuration: SMTP_TLS_CERT_FILE expected a file path/,
    );
    expect(() => loadConfig({ SMTP_TLS_CERT_FILE: "cert.pem" })).toThrow(ConfigError);
    expect(() => loadConfig({ SMTP_MAX_MESSAGE_BYTES: "100" })).toThrow(
      /^Invalid configuration: SMTP_MAX_MESSAGE_BYTES expected a whole number/,
    );
  });
});
