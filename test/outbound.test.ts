// Outbound mail (issue 5, part 2): sends through GraphQL on a real server whose graphile-worker
// delivers to hosted inboxes through the ingest path, and to everyone else through SMTP_RELAY_URL,
// here an smtp-server sink whose answers each test chooses by recipient domain. What arrives is read
// back through GraphQL, and through SQL only for what the API does not show (raw MIME, delivery
// status, events of another organization).
import { createHash, randomBytes, verify } from "node:crypto";
import { decodeGlobalID } from "@pothos/plugin-relay";
import { simpleParser } from "mailparser";
import { describe, expect, it } from "vitest";
import { createInboxViaApi, createOrganization, createPodViaApi, deliver } from "./helpers/factories.ts";
import { inboxMessages } from "./helpers/reads.ts";
import { RelaySink } from "./helpers/relay.ts";
import { gql, ok, startTestServer } from "./helpers/server.ts";
import { compose, sendRaw } from "./helpers/smtp.ts";
import { running, serverSuite, tenantFixture } from "./helpers/suite.ts";

const MAX_OUTBOUND_BYTES = 100_000;
const MAX_ATTEMPTS = 3;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- fixtures ----
const sink = running(new RelaySink());
const { database, server } = serverSuite(
  () => ({
    smtpRelayUrl: `smtp://127.0.0.1:${sink.port}`,
    maxOutboundBytes: MAX_OUTBOUND_BYTES,
    outboundMaxAttempts: MAX_ATTEMPTS,
    outboundRetryBaseMs: 50,
    workerPollIntervalMs: 100,
  }),
  { smtpPort: 0 },
);
let counter = 0;

const unique = (label: string) => `${label}-${++counter}-${randomBytes(3).toString("hex")}`;
/** Acme: pod A (sender, a2 beside it), pod B (b); Globex: g. */
const {
  org: acme,
  pods,
  inboxes: { sender, b },
} = tenantFixture(
  { database, server },
  {
    name: "Acme",
    pods: ["A", "B"],
    inboxes: { sender: { pod: "A", username: unique("sender") }, b: { pod: "B", username: unique("b") } },
  },
);
const {
  org: globex,
  inboxes: { g },
} = tenantFixture(
  { database, server },
  { name: "Globex", pods: ["G"], inboxes: { g: { pod: "G", username: unique("g") } } },
);
/** A global id's row id; organization ids are row ids already. */
const rowId = (globalId: string) => (/^\d+$/.test(globalId) ? globalId : decodeGlobalID(globalId).id);

const MESSAGE_FIELDS = `id messageId from to cc bcc replyTo subject text html labels inReplyTo references
  thread { id messageCount } attachments { filename contentType size contentBase64 }`;

// ---- helpers ----
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { ${MESSAGE_FIELDS} } } }`;
const REPLY = `mutation($input: ReplyToMessageInput!) { replyToMessage(input: $input) { message { ${MESSAGE_FIELDS} } } }`;
const FORWARD = `mutation($input: ForwardMessageInput!) { forwardMessage(input: $input) { message { ${MESSAGE_FIELDS} } } }`;
const SEND_DRAFT = `mutation($input: SendDraftInput!) { sendDraft(input: $input) { message { ${MESSAGE_FIELDS} } } }`;

async function send(input: Record<string, unknown>, key = acme.apiKey) {
  return (await ok(server, SEND, { input: { inboxId: sender.id, ...input } }, { key })).sendMessage.message;
}

/** The error a mutation answers with (it must fail). */
async function failure(query: string, input: Record<string, unknown>, key = acme.apiKey) {
  const response = await gql(server, query, { input }, { key });
  expect(response.body.errors, JSON.stringify(response.body)).toHaveLength(1);
  return response.body.errors?.[0] as { message: string; extensions?: Record<string, unknown> };
}

async function row(messageGlobalId: string) {
  return database.db
    .selectFrom("messages")
    .selectAll()
    .where("id", "=", rowId(messageGlobalId))
    .executeTakeFirstOrThrow();
}

/** Waits until the delivery job has settled the sent message. */
async function settled(messageGlobalId: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const message = await row(messageGlobalId);
    if (message.delivery_status !== "QUEUED") return message;
    if (Date.now() > deadline) throw new Error(`message ${messageGlobalId} is still QUEUED`);
    await sleep(50);
  }
}

async function eventsOf(messageGlobalId: string) {
  return database.db
    .selectFrom("events")
    .select(["type", "inbox_id", "thread_id", "payload"])
    .where("message_id", "=", rowId(messageGlobalId))
    .orderBy("id")
    .execute();
}

const messagesOf = (inboxId: string, key: string) => inboxMessages(server, key, inboxId, MESSAGE_FIELDS);

async function arrived(inboxId: string, messageIdHeader: string, key: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await messagesOf(inboxId, key)).find((m) => m.messageId === messageIdHeader);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`${messageIdHeader} did not arrive in ${inboxId}`);
    await sleep(50);
  }
}

/** Mail from outside, through the server's own SMTP listener. */
async function receiveFromOutside(options: Parameters<typeof compose>[0], to: string[]) {
  const raw = await compose(options);
  await sendRaw(server.smtpPort as number, { from: String(options.from), to }, raw);
  return raw;
}

function headerOf(raw: Buffer, name: string): string | undefined {
  const head = raw.toString("latin1").split("\r\n\r\n")[0] ?? "";
  const unfolded = head.replace(/\r\n[ \t]+/g, " ");
  return unfolded
    .split("\r\n")
    .find((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`))
    ?.slice(name.length + 1)
    .trim();
}

/** The message without its first header (the DKIM-Signature a signer prepends). */
function withoutFirstHeader(raw: Buffer): Buffer {
  const text = raw.toString("latin1");
  const end = text.search(/\r\n(?![ \t])/);
  return Buffer.from(text.slice(end + 2), "latin1");
}

/**
 * RFC 6376 verification of an rsa-sha256, relaxed/relaxed signature: the body hash, then the
 * signature over the signed headers, with the public key the domain publishes.
 */
function verifyDkim(raw: Buffer, publicKeyPem: string): Record<string, string> {
  const text = raw.toString("latin1");
  const split = text.indexOf("\r\n\r\n");
  const head = text.slice(0, split + 2);
  const body = text.slice(split + 4);
  const fields = head.split(/\r\n(?![ \t])/).filter((field) => field !== "");
  const signatureField = fields.find((field) => /^dkim-signature:/i.test(field)) as string;
  const tags = Object.fromEntries(
    signatureField
      .slice(signatureField.indexOf(":") + 1)
      .replace(/\s+/g, "")
      .split(";")
      .filter(Boolean)
      .map((tag) => [tag.slice(0, tag.indexOf("=")), tag.slice(tag.indexOf("=") + 1)]),
  ) as Record<string, string>;
  expect(tags).toMatchObject({ a: "rsa-sha256", c: "relaxed/relaxed" });
  const canonicalBody = body
    .split("\r\n")
    .map((line) => line.replace(/[ \t]+/g, " ").replace(/ $/, ""))
    .join("\r\n")
    .replace(/(\r\n)*$/, "\r\n");
  expect(createHash("sha256").update(canonicalBody, "latin1").digest("base64")).toBe(tags.bh);
  const relaxed = (field: string) => {
    const colon = field.indexOf(":");
    const value = field
      .slice(colon + 1)
      .replace(/\r\n/g, "")
      .replace(/[ \t]+/g, " ")
      .trim();
    return `${field.slice(0, colon).trim().toLowerCase()}:${value}`;
  };
  const used = new Set<string>();
  const signed = (tags.h ?? "").split(":").flatMap((name) => {
    // The last instance not yet used, bottom up; a missing header signs as nothing.
    const index = fields.findLastIndex(
      (field, i) => !used.has(String(i)) && field.toLowerCase().startsWith(`${name.toLowerCase()}:`),
    );
    if (index === -1) return [];
    used.add(String(index));
    return [`${relaxed(fields[index] as string)}\r\n`];
  });
  const unsignedSignature = relaxed(
    signatureField.replace(/\bb=[^;]*$/, "b=").replace(/(\bb=)[^;]*;/, "$1;"),
  );
  const data = Buffer.from(signed.join("") + unsignedSignature, "latin1");
  expect(verify("RSA-SHA256", data, publicKeyPem, Buffer.from(tags.b ?? "", "base64"))).toBe(true);
  return tags;
}

// ---- tests ----
describe("sending to hosted inboxes", () => {
  it("delivers across pods and organizations through the ingest path, then marks the sent copy DELIVERED", async () => {
    const sent = await send({
      to: [`Bee <${b.email}>`],
      cc: [g.email],
      subject: "Hello neighbours",
      text: "Plain words",
      html: "<p>Plain words</p>",
      labels: ["Outreach"],
    });
    expect(sent).toMatchObject({
      from: sender.email,
      to: [b.email],
      cc: [g.email],
      subject: "Hello neighbours",
      labels: ["outreach", "sent"],
      inReplyTo: null,
    });
    expect(sent.messageId).toMatch(/^<[0-9a-f-]{36}@mailroom\.localhost>$/);
    const queued = await row(sent.id);
    expect(queued).toMatchObject({ direction: "OUTBOUND", delivery_status: "QUEUED" });

    const delivered = await settled(sent.id);
    expect(delivered).toMatchObject({ delivery_status: "DELIVERED", delivery_error: null });
    expect(delivered.delivered_at).toBeInstanceOf(Date);
    expect((await eventsOf(sent.id)).map((event) => event.type)).toEqual([
      "MESSAGE_SENT",
      "MESSAGE_DELIVERED",
    ]);

    // Another pod of the same organization, and another organization: each a received copy.
    for (const [inbox, key, orgId] of [
      [b, acme.apiKey, acme.organizationId],
      [g, globex.apiKey, globex.organizationId],
    ] as const) {
      const copy = await arrived(inbox.id, sent.messageId, key);
      expect(copy).toMatchObject({
        from: sender.email,
        to: [b.email],
        cc: [g.email],
        subject: "Hello neighbours",
        html: "<p>Plain words</p>",
        labels: ["received", "unread"],
      });
      expect(copy.text.trim()).toBe("Plain words");
      const events = await eventsOf(copy.id);
      expect(events.map((event) => event.type)).toEqual(["MESSAGE_RECEIVED"]);
      const event = await database.db
        .selectFrom("events")
        .select("org_id")
        .where("message_id", "=", rowId(copy.id))
        .executeTakeFirstOrThrow();
      expect(event.org_id).toBe(rowId(orgId));
    }
    // Nothing went to the relay: every recipient is hosted here.
    expect(sink.received.filter((message) => message.raw.includes(sent.messageId))).toEqual([]);

    // Globex replies; the reply lands in the sender's inbox, in the thread of what it sent.
    const copy = await arrived(g.id, sent.messageId, globex.apiKey);
    const reply = (
      await ok(server, REPLY, { input: { messageId: copy.id, text: "Hi back" } }, { key: globex.apiKey })
    ).replyToMessage.message;
    expect(reply).toMatchObject({
      from: g.email,
      to: [sender.email],
      cc: [],
      subject: "Re: Hello neighbours",
      inReplyTo: sent.messageId,
      references: [sent.messageId],
    });
    expect(reply.thread.id).toBe(copy.thread.id);
    const back = await arrived(sender.id, reply.messageId, acme.apiKey);
    expect(back.thread.id).toBe(sent.thread.id);
    expect(back.thread.messageCount).toBe(2);
    expect(back.labels).toEqual(["received", "unread"]);
  });

  it("sends a draft, deletes it, and sends it only once", async () => {
    const draft = (
      await ok(
        server,
        `mutation($input: CreateDraftInput!) { createDraft(input: $input) { draft { id } } }`,
        { input: { inboxId: sender.id, to: [b.email], subject: "From a draft", text: "Drafted" } },
        { key: acme.apiKey },
      )
    ).createDraft.draft;
    const sent = (await ok(server, SEND_DRAFT, { input: { id: draft.id } }, { key: acme.apiKey })).sendDraft
      .message;
    expect(sent).toMatchObject({ to: [b.email], subject: "From a draft", text: "Drafted", labels: ["sent"] });
    const gone = await gql(
      server,
      `query($id: ID!) { draft(id: $id) { id } }`,
      { id: draft.id },
      { key: acme.apiKey },
    );
    expect(gone.body.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    expect((await failure(SEND_DRAFT, { id: draft.id })).extensions?.code).toBe("NOT_FOUND");
    expect(await settled(sent.id)).toMatchObject({ delivery_status: "DELIVERED" });
    expect((await arrived(b.id, sent.messageId, acme.apiKey)).text.trim()).toBe("Drafted");
  });

  it("sends a draft that replies to a message as a reply in its thread", async () => {
    const original = await send({ to: [b.email], subject: "Question" });
    const received = await arrived(b.id, original.messageId, acme.apiKey);
    const draft = (
      await ok(
        server,
        `mutation($input: CreateDraftInput!) { createDraft(input: $input) { draft { id } } }`,
        {
          input: {
            inboxId: b.id,
            to: [sender.email],
            subject: "Re: Question",
            inReplyToMessageId: received.id,
          },
        },
        { key: acme.apiKey },
      )
    ).createDraft.draft;
    const sent = (await ok(server, SEND_DRAFT, { input: { id: draft.id } }, { key: acme.apiKey })).sendDraft
      .message;
    expect(sent).toMatchObject({ inReplyTo: original.messageId, references: [original.messageId] });
    expect(sent.thread.id).toBe(received.thread.id);
  });
});

describe("sending through the relay", () => {
  it("hands the relay the stored MIME, DKIM-signed for a verified domain, Bcc in the envelope only", async () => {
    const domainName = `${unique("signed")}.example.test`;
    const domain = (
      await ok(
        server,
        `mutation($input: CreateDomainInput!) { createDomain(input: $input) { domain { id } } }`,
        { input: { domain: domainName } },
        { key: acme.apiKey },
      )
    ).createDomain.domain;
    // DNS is not what this test is about: the domain is marked verified directly.
    await database.db
      .updateTable("domains")
      .set({ status: "VERIFIED", verified_at: new Date() })
      .where("id", "=", rowId(domain.id))
      .execute();
    const signer = await createInboxViaApi(server, acme.apiKey, {
      podId: pods.A,
      username: "agent",
      domain: domainName,
      displayName: "Agent Smith",
    });
    const pdf = randomBytes(3000);
    const sent = (
      await ok(
        server,
        SEND,
        {
          input: {
            inboxId: signer.id,
            to: ["Ann Example <ann@external.test>"],
            bcc: ["hidden@external.test"],
            replyTo: ["replies@external.test"],
            subject: "Signed — ünïcode",
            text: "Body line\nsecond line",
            attachments: [{ filename: "report.pdf", contentBase64: pdf.toString("base64") }],
          },
        },
        { key: acme.apiKey },
      )
    ).sendMessage.message;
    expect(sent.messageId).toMatch(new RegExp(`@${domainName.replaceAll(".", "\\.")}>$`));
    expect(sent).toMatchObject({
      to: ["ann@external.test"],
      bcc: ["hidden@external.test"],
      replyTo: ["replies@external.test"],
      attachments: [{ filename: "report.pdf", contentType: "application/pdf", size: 3000 }],
    });

    const received = await sink.waitFor("ann@external.test");
    expect(received.mailFrom).toBe(signer.email);
    expect(received.rcptTo.sort()).toEqual(["ann@external.test", "hidden@external.test"]);
    expect(await settled(sent.id)).toMatchObject({ delivery_status: "DELIVERED" });
    expect((await eventsOf(sent.id)).map((event) => event.type)).toEqual([
      "MESSAGE_SENT",
      "MESSAGE_DELIVERED",
    ]);

    // Exactly the stored bytes, with one DKIM-Signature header in front.
    const stored = (await row(sent.id)).raw_mime as Buffer;
    expect(received.raw.toString("latin1")).toMatch(/^DKIM-Signature:/);
    expect(withoutFirstHeader(received.raw).equals(stored)).toBe(true);
    const keys = await database.db
      .selectFrom("domains")
      .select(["dkim_public_key", "dkim_selector"])
      .where("id", "=", rowId(domain.id))
      .executeTakeFirstOrThrow();
    const tags = verifyDkim(received.raw, keys.dkim_public_key);
    expect(tags).toMatchObject({ d: domainName, s: keys.dkim_selector });

    expect(headerOf(received.raw, "bcc")).toBeUndefined();
    expect(headerOf(received.raw, "message-id")).toBe(sent.messageId);
    expect(headerOf(received.raw, "date")).toBeDefined();
    const parsed = await simpleParser(received.raw);
    expect(parsed.from?.value).toEqual([{ name: "Agent Smith", address: signer.email }]);
    expect(parsed.to).toMatchObject({ value: [{ name: "Ann Example", address: "ann@external.test" }] });
    expect(parsed.subject).toBe("Signed — ünïcode");
    expect(parsed.text?.trim()).toBe("Body line\nsecond line");
    expect(parsed.attachments).toHaveLength(1);
    expect(parsed.attachments[0]?.content.equals(pdf)).toBe(true);
  });

  it("does not sign mail from the default domain", async () => {
    const sent = await send({ to: ["plain@external.test"], subject: "Unsigned" });
    const received = await sink.waitFor("plain@external.test");
    expect(headerOf(received.raw, "dkim-signature")).toBeUndefined();
    expect(received.raw.equals((await row(sent.id)).raw_mime as Buffer)).toBe(true);
  });

  it("replies in the thread with In-Reply-To and References; replyAll adds the other recipients", async () => {
    const root = `<${unique("root")}@external.test>`;
    const originalId = `<${unique("orig")}@external.test>`;
    await receiveFromOutside(
      {
        from: "Alice <alice@external.test>",
        to: [sender.email, "dave@external.test"],
        cc: ["carol@external.test", sender.email.toUpperCase()],
        subject: "Plans",
        text: "Shall we?",
        messageId: originalId,
        references: [root],
        inReplyTo: root,
      },
      [sender.email],
    );
    const original = await arrived(sender.id, originalId, acme.apiKey);

    const reply = (
      await ok(
        server,
        REPLY,
        { input: { messageId: original.id, text: "Only to Alice" } },
        { key: acme.apiKey },
      )
    ).replyToMessage.message;
    expect(reply).toMatchObject({
      to: ["alice@external.test"],
      cc: [],
      subject: "Re: Plans",
      inReplyTo: originalId,
      references: [root, originalId],
      labels: ["sent"],
    });
    expect(reply.thread.id).toBe(original.thread.id);
    const relayed = await sink.waitFor("alice@external.test");
    expect(headerOf(relayed.raw, "in-reply-to")).toBe(originalId);
    expect(headerOf(relayed.raw, "references")).toBe(`${root} ${originalId}`);
    expect(relayed.rcptTo).toEqual(["alice@external.test"]);

    const all = (
      await ok(
        server,
        REPLY,
        { input: { messageId: original.id, replyAll: true, text: "To everyone" } },
        { key: acme.apiKey },
      )
    ).replyToMessage.message;
    expect(all).toMatchObject({
      to: ["alice@external.test"],
      cc: ["dave@external.test", "carol@external.test"],
      inReplyTo: originalId,
    });
    expect(all.thread.id).toBe(original.thread.id);
    const everyone = sink.received.find((message) => message.raw.includes(all.messageId));
    const relayedAll = everyone ?? (await sink.waitFor("dave@external.test"));
    expect(relayedAll.rcptTo.sort()).toEqual([
      "alice@external.test",
      "carol@external.test",
      "dave@external.test",
    ]);
  });

  it("replies to the Reply-To address when the message names one", async () => {
    const messageId = `<${unique("rt")}@external.test>`;
    await receiveFromOutside(
      {
        from: "list@external.test",
        replyTo: "answers@external.test",
        to: sender.email,
        subject: "Re: already",
        text: "x",
        messageId,
      },
      [sender.email],
    );
    const original = await arrived(sender.id, messageId, acme.apiKey);
    const reply = (
      await ok(server, REPLY, { input: { messageId: original.id, text: "y" } }, { key: acme.apiKey })
    ).replyToMessage.message;
    expect(reply).toMatchObject({ to: ["answers@external.test"], subject: "Re: already" });
  });

  it("forwards a message with the original attached unchanged as message/rfc822", async () => {
    const messageId = `<${unique("fwd")}@external.test>`;
    const originalRaw = await receiveFromOutside(
      {
        from: "bob@external.test",
        to: sender.email,
        subject: "Invoice 42",
        text: "Attached.",
        messageId,
        attachments: [{ filename: "invoice.bin", content: randomBytes(500) }],
      },
      [sender.email],
    );
    const original = await arrived(sender.id, messageId, acme.apiKey);
    const forward = (
      await ok(
        server,
        FORWARD,
        { input: { messageId: original.id, to: ["accounts@external.test"], text: "FYI" } },
        { key: acme.apiKey },
      )
    ).forwardMessage.message;
    expect(forward).toMatchObject({
      to: ["accounts@external.test"],
      subject: "Fwd: Invoice 42",
      text: "FYI",
      inReplyTo: null,
      references: [messageId],
      attachments: [{ filename: "Invoice 42.eml", contentType: "message/rfc822" }],
    });
    expect(forward.thread.id).toBe(original.thread.id);
    const relayed = await sink.waitFor("accounts@external.test");
    const parsed = await simpleParser(relayed.raw);
    expect(parsed.text?.trim()).toBe("FYI");
    const attached = parsed.attachments.find((a) => a.contentType === "message/rfc822");
    const storedOriginal = (await row(original.id)).raw_mime as Buffer;
    expect(storedOriginal.equals(originalRaw)).toBe(true);
    expect(attached?.content.equals(storedOriginal)).toBe(true);
  });

  it("forwards a message stored without its raw MIME as one composed from what is stored", async () => {
    const stored = await deliver(database.db, sender.id, {
      from: "carl@external.test",
      to: [sender.email],
      subject: "Stored only",
      text: "Kept as fields",
    });
    const forward = (
      await ok(
        server,
        FORWARD,
        { input: { messageId: stored.id, to: ["archive@external.test"], html: "<p>see below</p>" } },
        { key: acme.apiKey },
      )
    ).forwardMessage.message;
    expect(forward).toMatchObject({ subject: "Fwd: Stored only", references: [stored.messageIdHeader] });
    const relayed = await sink.waitFor("archive@external.test");
    const attached = (await simpleParser(relayed.raw)).attachments.find(
      (a) => a.contentType === "message/rfc822",
    );
    const inner = await simpleParser(attached?.content as Buffer);
    expect(inner.messageId).toBe(stored.messageIdHeader);
    expect(inner.subject).toBe("Stored only");
    expect(inner.from?.value[0]?.address).toBe("carl@external.test");
    expect(inner.text?.trim()).toBe("Kept as fields");
  });

  it("bounces when the relay refuses permanently (550), with the reason and a MESSAGE_BOUNCED event", async () => {
    const sent = await send({ to: ["nobody@reject.test"], subject: "Into the void" });
    const bounced = await settled(sent.id);
    expect(bounced.delivery_status).toBe("BOUNCED");
    expect(bounced.delivery_error).toMatch(/550/);
    expect(bounced.delivered_at).toBeNull();
    const events = await eventsOf(sent.id);
    expect(events.map((event) => event.type)).toEqual(["MESSAGE_SENT", "MESSAGE_BOUNCED"]);
    expect(events[1]?.payload).toMatchObject({ error: expect.stringMatching(/550/) });
    // A permanent refusal is not retried.
    await sleep(400);
    expect(await eventsOf(sent.id)).toHaveLength(2);
  });

  it("retries a temporary failure (451) with backoff and delivers once the relay accepts", async () => {
    const address = `${unique("flaky")}@flaky.test`;
    sink.deferUntil.set(address, 2);
    const sent = await send({ to: [address], subject: "Persistence" });
    expect(await settled(sent.id)).toMatchObject({ delivery_status: "DELIVERED", delivery_error: null });
    expect(sink.deferrals.get(address)).toBe(2);
    expect(sink.received.filter((message) => message.rcptTo.includes(address))).toHaveLength(1);
    expect((await eventsOf(sent.id)).map((event) => event.type)).toEqual([
      "MESSAGE_SENT",
      "MESSAGE_DELIVERED",
    ]);
  });

  it("bounces once the attempts run out", async () => {
    const address = `${unique("down")}@down.test`;
    const sent = await send({ to: [address], subject: "Nobody home" });
    const bounced = await settled(sent.id);
    expect(bounced.delivery_status).toBe("BOUNCED");
    expect(bounced.delivery_error).toMatch(new RegExp(`gave up after ${MAX_ATTEMPTS} attempts.*451`));
    expect(sink.deferrals.get(address)).toBe(MAX_ATTEMPTS);
    expect((await eventsOf(sent.id)).map((event) => event.type)).toEqual(["MESSAGE_SENT", "MESSAGE_BOUNCED"]);
  });

  it("delivers to hosted and external recipients of one message", async () => {
    const sent = await send({ to: [b.email, "mixed@external.test"], subject: "Both ways" });
    expect(await settled(sent.id)).toMatchObject({ delivery_status: "DELIVERED" });
    expect((await sink.waitFor("mixed@external.test")).rcptTo).toEqual(["mixed@external.test"]);
    await arrived(b.id, sent.messageId, acme.apiKey);
  });
});

describe("what may be sent", () => {
  it.each([
    ["to", { to: ["not an address"] }],
    ["cc", { to: ["ok@external.test"], cc: ["a@b@c.test"] }],
    ["bcc", { to: ["ok@external.test"], bcc: ["<broken"] }],
    ["replyTo", { to: ["ok@external.test"], replyTo: ["line\nbreak@x.test"] }],
    ["to", { to: [] }],
    ["cc", { to: ["ok@external.test"], cc: ["no-such-inbox@mailroom.localhost"] }],
    ["to", { to: Array.from({ length: 101 }, (_, i) => `r${i}@external.test`) }],
    [
      "attachments",
      { to: ["ok@external.test"], attachments: [{ filename: "a.txt", contentBase64: "not base64!" }] },
    ],
    ["attachments", { to: ["ok@external.test"], attachments: [{ filename: "a.txt", contentBase64: "abc" }] }],
    ["attachments", { to: ["ok@external.test"], attachments: [{ filename: "", contentBase64: "" }] }],
    ["labels", { to: ["ok@external.test"], labels: ["received"] }],
    ["subject", { to: ["ok@external.test"], subject: "two\nlines" }],
  ])("refuses a bad %s with BAD_USER_INPUT naming the field, and stores nothing", async (field, input) => {
    const before = await countOutbound();
    const error = await failure(SEND, { inboxId: sender.id, ...input });
    expect(error.extensions).toMatchObject({ code: "BAD_USER_INPUT", field });
    expect(await countOutbound()).toBe(before);
  });

  it("refuses a message over MAX_OUTBOUND_BYTES once composed, and accepts one under it", async () => {
    const small = randomBytes(60_000).toString("base64");
    await send({ to: [b.email], attachments: [{ filename: "small.bin", contentBase64: small }] });
    const before = await countOutbound();
    // 90 kB of attachment is 120 kB once base64-encoded in the MIME: over the 100 kB limit.
    const large = randomBytes(90_000).toString("base64");
    const error = await failure(SEND, {
      inboxId: sender.id,
      to: [b.email],
      attachments: [{ filename: "large.bin", contentBase64: large }],
    });
    expect(error.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "attachments" });
    expect(await countOutbound()).toBe(before);
  });

  it("applies SEND block entries (address or domain) and allow-lists, naming the recipient's field", async () => {
    const pod = await createPodViaApi(server, acme.apiKey, "Listed");
    const listed = await createInboxViaApi(server, acme.apiKey, { podId: pod, username: unique("listed") });
    const entry = (input: Record<string, unknown>) =>
      ok(
        server,
        `mutation($input: CreateListEntryInput!) { createListEntry(input: $input) { listEntry { id } } }`,
        { input: { direction: "SEND", ...input } },
        { key: acme.apiKey },
      );
    await entry({ type: "BLOCK", entry: "blocked.test", podId: pod });
    await entry({ type: "BLOCK", entry: "boss@external.test", podId: pod, inboxId: listed.id });
    const input = (extra: Record<string, unknown>) => ({
      inboxId: listed.id,
      to: ["fine@external.test"],
      ...extra,
    });
    // Blocked recipients are RECIPIENT_BLOCKED, all of them named (docs/sending.md, "Suppressions").
    expect((await failure(SEND, input({ cc: ["x@blocked.test"] }))).extensions).toMatchObject({
      code: "RECIPIENT_BLOCKED",
      recipients: ["x@blocked.test"],
      field: "cc",
    });
    expect((await failure(SEND, input({ bcc: ["Boss <BOSS@external.test>"] }))).extensions).toMatchObject({
      code: "RECIPIENT_BLOCKED",
      recipients: ["boss@external.test"],
      field: "bcc",
    });
    // A sub-domain is another domain; other inboxes are not concerned by this pod's entries.
    await ok(server, SEND, { input: input({ cc: ["x@sub.blocked.test"] }) }, { key: acme.apiKey });
    await send({ to: ["x@blocked.test"] });

    // With an allow-list, only what it names.
    await entry({ type: "ALLOW", entry: "friend@allowed.test", podId: pod, inboxId: listed.id });
    await entry({ type: "ALLOW", entry: "partner.test", podId: pod });
    await ok(
      server,
      SEND,
      { input: { inboxId: listed.id, to: ["friend@allowed.test"], cc: ["any@partner.test"] } },
      { key: acme.apiKey },
    );
    expect(
      (await failure(SEND, { inboxId: listed.id, to: ["friend@allowed.test", "stranger@allowed.test"] }))
        .extensions,
    ).toMatchObject({ code: "BAD_USER_INPUT", field: "to" });
    // A reply is checked the same way.
    const messageId = `<${unique("listed")}@external.test>`;
    await receiveFromOutside({ from: "stranger@elsewhere.test", to: listed.email, text: "hi", messageId }, [
      listed.email,
    ]);
    const received = await arrived(listed.id, messageId, acme.apiKey);
    expect((await failure(REPLY, { messageId: received.id, text: "no" })).extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "to",
    });
  });

  it("with OUTBOUND_MODE=refuse (production without a relay), refuses external recipients and stores nothing, and still delivers hosted ones", async () => {
    const noRelay = await startTestServer(database.url, {
      workerPollIntervalMs: 100,
      outboundMode: "refuse",
    });
    try {
      const before = await countOutbound();
      const jobsBefore = await deliveryJobs();
      const response = await gql(
        noRelay,
        SEND,
        { input: { inboxId: sender.id, to: [b.email], cc: ["someone@external.test"], subject: "x" } },
        { key: acme.apiKey },
      );
      expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "cc" });
      expect(response.body.errors?.[0]?.message).toMatch(/someone@external\.test/);
      expect(await countOutbound()).toBe(before);
      expect(await deliveryJobs()).toBe(jobsBefore);

      const sent = (
        await ok(
          noRelay,
          SEND,
          { input: { inboxId: sender.id, to: [g.email], subject: "Hosted" } },
          { key: acme.apiKey },
        )
      ).sendMessage.message;
      expect(await settled(sent.id)).toMatchObject({ delivery_status: "DELIVERED" });
    } finally {
      await noRelay.stop();
    }
  });

  it("lets an AGENT_UNVERIFIED organization send only to its sign-up's human email", async () => {
    const agent = await createOrganization(database.db, "Agent");
    const pod = await createPodViaApi(server, agent.apiKey, "Agent pod");
    const inbox = await createInboxViaApi(server, agent.apiKey, { podId: pod, username: unique("agent") });
    await database.db
      .updateTable("organizations")
      .set({ status: "AGENT_UNVERIFIED" })
      .where("id", "=", rowId(agent.organizationId))
      .execute();
    await database.db
      .insertInto("agent_signups")
      .values({
        org_id: rowId(agent.organizationId),
        human_email: "human@people.test",
        username: "agent",
        inbox_id: rowId(inbox.id),
      })
      .execute();
    const input = (extra: Record<string, unknown>) => ({ inboxId: inbox.id, subject: "Hi", ...extra });
    expect((await failure(SEND, input({ to: [b.email] }), agent.apiKey)).extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "to",
    });
    expect(
      (await failure(SEND, input({ to: ["human@people.test"], cc: ["other@people.test"] }), agent.apiKey))
        .extensions,
    ).toMatchObject({ code: "BAD_USER_INPUT", field: "cc" });
    const sent = (
      await ok(server, SEND, { input: input({ to: ["Human <Human@People.test>"] }) }, { key: agent.apiKey })
    ).sendMessage.message;
    expect((await sink.waitFor("Human@People.test")).mailFrom).toBe(inbox.email);
    expect(await settled(sent.id)).toMatchObject({ delivery_status: "DELIVERED" });
  });

  it("answers NOT_FOUND for an inbox, message or draft outside the caller's scope", async () => {
    const theirs = await arrived(g.id, (await send({ to: [g.email] })).messageId, globex.apiKey);
    expect((await failure(SEND, { inboxId: g.id, to: [b.email] })).extensions?.code).toBe("NOT_FOUND");
    expect((await failure(REPLY, { messageId: theirs.id, text: "x" })).extensions?.code).toBe("NOT_FOUND");
    expect((await failure(FORWARD, { messageId: theirs.id, to: [b.email] })).extensions?.code).toBe(
      "NOT_FOUND",
    );
  });
});

async function countOutbound(): Promise<number> {
  const result = await database.db
    .selectFrom("messages")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("direction", "=", "OUTBOUND")
    .executeTakeFirstOrThrow();
  return Number(result.n);
}

/** Jobs ever enqueued, finished (deleted) ones included: the job id sequence's position. */
async function deliveryJobs(): Promise<number> {
  const result = await database.pool.query<{ n: string | null }>(
    "SELECT last_value::text AS n FROM pg_sequences WHERE schemaname = 'graphile_worker' AND sequencename LIKE '%jobs_id_seq'",
  );
  return Number(result.rows[0]?.n ?? 0);
}
