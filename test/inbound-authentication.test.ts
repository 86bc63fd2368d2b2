// Who really sent it (issue 20): SPF, DKIM, DMARC and ARC of mail received over SMTP, checked
// against a DNS server this file starts (DNS_SERVERS), stored with the message, shown as
// Message.authentication, filtered by MessageFilter.authenticated, labelled `unauthenticated`,
// refused with 550 5.7.1 by inboxes that ask for it, and recorded in an Authentication-Results
// header of the stored raw message. Real SMTP (nodemailer signs and sends), real DNS over UDP.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createTransport } from "nodemailer";
import type Mail from "nodemailer/lib/mailer";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";
import { startDnsServer } from "./helpers/dns-server.ts";
import { createInboxViaApi } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { SmtpDialogue, sendRaw } from "./helpers/smtp.ts";
import { organizationFixture, runningFrom, serverOn, serverSuite } from "./helpers/suite.ts";
import { until } from "./helpers/wait.ts";

const MX_HOST = "mx.mailroom-auth.test";
/** Per lookup, and for all lookups of one message: small, so the dead-DNS test stays quick. */
const LOOKUP_TIMEOUT_MS = 1_000;
const MESSAGE_DNS_BUDGET_MS = 2_500;

const dns = runningFrom(startDnsServer);
const deadDns = runningFrom(() => startDnsServer({ silent: true }));
const { database, server } = serverSuite(
  () => ({
    mailAuth: true,
    dnsServers: [dns.address],
    mailAuthDnsTimeoutMs: LOOKUP_TIMEOUT_MS,
    mailAuthTimeoutMs: MESSAGE_DNS_BUDGET_MS,
    mxHost: MX_HOST,
  }),
  { smtpPort: 0 },
);
/** The same database behind a resolver that never answers. */
const deadDnsServer = serverOn(
  database,
  () => ({
    mailAuth: true,
    dnsServers: [deadDns.address],
    mailAuthDnsTimeoutMs: LOOKUP_TIMEOUT_MS,
    mailAuthTimeoutMs: MESSAGE_DNS_BUDGET_MS,
    mxHost: MX_HOST,
  }),
  { smtpPort: 0 },
);
const org = organizationFixture(database, "Receiver");

let counter = 0;
const unique = (label: string) => `${label}-${++counter}-${randomBytes(3).toString("hex")}`;

const AUTH_FIELDS = `messageId labels authentication {
  authenticated spf { result domain detail } dkim { result domain detail } dmarc { result domain detail }
  arc { result domain detail } }`;

/** A sender domain with a DKIM key; records published as the test asks. */
function senderDomain(label: string) {
  const domain = `${unique(label)}.test`;
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const selector = "s1";
  return {
    domain,
    selector,
    privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publishDkim() {
      const der = publicKey.export({ type: "spki", format: "der" }).toString("base64");
      dns.zone.set(`${selector}._domainkey.${domain}`, { TXT: [`v=DKIM1; k=rsa; p=${der}`] });
    },
    publishSpf(record: string) {
      dns.zone.set(domain, { TXT: [record] });
    },
    publishDmarc(policy: "reject" | "none" | "quarantine") {
      dns.zone.set(`_dmarc.${domain}`, { TXT: [`v=DMARC1; p=${policy}`] });
    },
  };
}

/** The RFC 5322 bytes nodemailer sends for these options, DKIM-signed when `dkim` is given. */
async function message(
  options: Mail.Options,
  dkim?: { domainName: string; keySelector: string; privateKey: string },
): Promise<Buffer> {
  const transport = createTransport({
    streamTransport: true,
    buffer: true,
    newline: "windows",
    ...(dkim ? { dkim } : {}),
  });
  const info = await transport.sendMail(options);
  return info.message as Buffer;
}

async function newInbox(input: Record<string, unknown> = {}) {
  return createInboxViaApi(server, org.apiKey, { username: unique("box"), ...input });
}

async function receivedIn(inboxId: string, messageId: string, filter?: Record<string, unknown>) {
  const data = await ok(
    server,
    `query($id: ID!, $filter: MessageFilter) { inbox(id: $id) { messages(filter: $filter) { edges { node { ${AUTH_FIELDS} } } } } }`,
    { id: inboxId, filter: filter ?? null },
    { key: org.apiKey },
  );
  return data.inbox.messages.edges.map((edge: any) => edge.node).find((m: any) => m.messageId === messageId);
}

async function storedRaw(messageId: string): Promise<string[]> {
  const rows = await database.db
    .selectFrom("messages")
    .select("raw_mime")
    .where("message_id_header", "=", messageId)
    .execute();
  return rows.map((row) => (row.raw_mime as Buffer).toString("utf8"));
}

describe("DKIM", () => {
  it("passes a message signed by nodemailer with the published key, and DMARC passes by alignment", async () => {
    const sender = senderDomain("signed");
    sender.publishDkim();
    // SPF fails (the envelope's domain does not list 127.0.0.1): DMARC passes on the aligned DKIM alone.
    sender.publishSpf("v=spf1 ip4:192.0.2.1 -all");
    sender.publishDmarc("reject");
    const inbox = await newInbox({ rejectUnauthenticated: true });
    const messageId = `<${unique("signed")}@${sender.domain}>`;
    const raw = await message(
      {
        from: `ceo@${sender.domain}`,
        to: inbox.email,
        subject: "Pay the invoice",
        text: "Please pay.",
        messageId,
      },
      { domainName: sender.domain, keySelector: sender.selector, privateKey: sender.privateKey },
    );
    const info = await sendRaw(
      server.smtpPort as number,
      { from: `bounce@${sender.domain}`, to: [inbox.email] },
      raw,
    );
    expect(info.response).toMatch(/^250 /);

    const stored = await receivedIn(inbox.id, messageId);
    expect(stored.labels).not.toContain("unauthenticated");
    expect(stored.authentication).toMatchObject({
      authenticated: true,
      dkim: [{ result: "PASS", domain: sender.domain }],
      spf: { result: "FAIL", domain: sender.domain },
      dmarc: { result: "PASS", domain: sender.domain },
      arc: null,
    });

    // The raw message as stored starts with the verdicts, naming this server.
    const [storedMime = ""] = await storedRaw(messageId);
    expect(storedMime).toMatch(
      new RegExp(
        `^(Received-SPF: [^\\r]*\\r\\n(\\s[^\\r]*\\r\\n)*)?Authentication-Results: ${MX_HOST.replaceAll(".", "\\.")};`,
      ),
    );
    expect(storedMime).toContain(`dkim=pass header.i=@${sender.domain}`);
    expect(storedMime).toContain("dmarc=pass");
    expect(storedMime.endsWith(raw.toString("utf8"))).toBe(true);
  });

  it("fails the same message with its body altered, and DMARC p=reject fails with it", async () => {
    const sender = senderDomain("altered");
    sender.publishDkim();
    sender.publishSpf("v=spf1 ip4:192.0.2.1 -all");
    sender.publishDmarc("reject");
    const inbox = await newInbox();
    const messageId = `<${unique("altered")}@${sender.domain}>`;
    const signed = await message(
      {
        from: `ceo@${sender.domain}`,
        to: inbox.email,
        subject: "Pay the invoice",
        text: "Pay 100 EUR.",
        messageId,
      },
      { domainName: sender.domain, keySelector: sender.selector, privateKey: sender.privateKey },
    );
    const altered = Buffer.from(signed.toString("utf8").replace("Pay 100 EUR.", "Pay 900 EUR."));
    expect(altered.equals(signed)).toBe(false);
    await sendRaw(server.smtpPort as number, { from: `bounce@${sender.domain}`, to: [inbox.email] }, altered);

    const stored = await receivedIn(inbox.id, messageId);
    expect(stored.authentication.dkim).toEqual([
      expect.objectContaining({ result: "FAIL", domain: sender.domain }),
    ]);
    expect(stored.authentication.dmarc).toMatchObject({ result: "FAIL", domain: sender.domain });
    expect(stored.authentication.authenticated).toBe(false);
    expect(stored.labels).toContain("unauthenticated");
  });
});

describe("DMARC", () => {
  it("refuses a spoofed From of a p=reject domain with 550 5.7.1 when the inbox asks, storing nothing", async () => {
    const sender = senderDomain("spoofed");
    sender.publishSpf("v=spf1 ip4:192.0.2.1 -all");
    sender.publishDmarc("reject");
    const refusing = await newInbox({ rejectUnauthenticated: true });
    const messageId = `<${unique("spoofed")}@${sender.domain}>`;
    const raw = await message({
      from: `ceo@${sender.domain}`,
      to: refusing.email,
      subject: "Wire it",
      text: "Now.",
      messageId,
    });

    const { session } = await SmtpDialogue.open(server.smtpPort as number);
    try {
      expect((await session.command("EHLO attacker.test")).code).toBe(250);
      expect((await session.command("MAIL FROM:<someone@attacker.test>")).code).toBe(250);
      expect((await session.command(`RCPT TO:<${refusing.email}>`)).code).toBe(250);
      const reply = await session.data(raw);
      expect(reply.code).toBe(550);
      expect(reply.text).toMatch(/^550 5\.7\.1 .*DMARC/);
    } finally {
      session.close();
    }
    const rows = await database.db
      .selectFrom("messages")
      .select("id")
      .where("message_id_header", "=", messageId)
      .execute();
    expect(rows).toEqual([]);
  });

  it("stores it, labelled unauthenticated, in an inbox that does not ask; the filter tells the two apart", async () => {
    const sender = senderDomain("spoofed");
    sender.publishSpf("v=spf1 ip4:192.0.2.1 -all");
    sender.publishDmarc("reject");
    const inbox = await newInbox();
    const messageId = `<${unique("spoofed")}@${sender.domain}>`;
    const raw = await message({
      from: `ceo@${sender.domain}`,
      to: inbox.email,
      subject: "Wire it",
      text: "Now.",
      messageId,
    });
    await sendRaw(server.smtpPort as number, { from: "someone@attacker.test", to: [inbox.email] }, raw);

    const stored = await receivedIn(inbox.id, messageId);
    expect(stored.labels).toEqual(expect.arrayContaining(["received", "unread", "unauthenticated"]));
    expect(stored.authentication).toMatchObject({
      authenticated: false,
      dkim: [],
      dmarc: { result: "FAIL", domain: sender.domain },
    });
    expect(stored.authentication.dmarc.detail).toMatch(/reject/i);
    expect(await receivedIn(inbox.id, messageId, { authenticated: false })).toBeDefined();
    expect(await receivedIn(inbox.id, messageId, { authenticated: true })).toBeUndefined();
    expect(await receivedIn(inbox.id, messageId, { labels: ["unauthenticated"] })).toBeDefined();

    // A system label: nobody takes it off (or puts it on) by hand.
    const { body } = await gql(
      server,
      `mutation($id: ID!) { updateMessage(input: { id: $id, removeLabels: ["unauthenticated"] }) { message { id } } }`,
      { id: (await messageNodeId(inbox.id, messageId)) as string },
      { key: org.apiKey },
    );
    expect(body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });
});

async function messageNodeId(inboxId: string, messageId: string): Promise<string | undefined> {
  const data = await ok(
    server,
    `query($id: ID!) { inbox(id: $id) { messages { edges { node { id messageId } } } } }`,
    { id: inboxId },
    { key: org.apiKey },
  );
  return data.inbox.messages.edges.map((edge: any) => edge.node).find((m: any) => m.messageId === messageId)
    ?.id;
}

describe("SPF", () => {
  it("passes a client the envelope domain lists, which authenticates a domain without DMARC", async () => {
    const sender = senderDomain("spf-pass");
    sender.publishSpf("v=spf1 ip4:127.0.0.1 -all");
    const inbox = await newInbox();
    const messageId = `<${unique("spf")}@${sender.domain}>`;
    const raw = await message({
      from: `news@${sender.domain}`,
      to: inbox.email,
      subject: "Hi",
      text: "Hi.",
      messageId,
    });
    await sendRaw(server.smtpPort as number, { from: `bounce@${sender.domain}`, to: [inbox.email] }, raw);

    const stored = await receivedIn(inbox.id, messageId);
    expect(stored.authentication).toMatchObject({
      spf: { result: "PASS", domain: sender.domain },
      dmarc: { result: "NONE" },
      authenticated: true,
    });
    expect(stored.labels).not.toContain("unauthenticated");
    expect(await receivedIn(inbox.id, messageId, { authenticated: true })).toBeDefined();

    // A second message from the domain is checked on the answers already had: DNS is asked once.
    const again = `<${unique("spf")}@${sender.domain}>`;
    const second = await message({
      from: `news@${sender.domain}`,
      to: inbox.email,
      subject: "Hi",
      text: "Again.",
      messageId: again,
    });
    await sendRaw(server.smtpPort as number, { from: `bounce@${sender.domain}`, to: [inbox.email] }, second);
    expect((await receivedIn(inbox.id, again)).authentication.spf.result).toBe("PASS");
    const TXT = 16;
    expect(dns.queries.filter((q) => q.name === sender.domain && q.type === TXT)).toHaveLength(1);
  });

  it("fails a client the envelope domain does not list", async () => {
    const sender = senderDomain("spf-fail");
    sender.publishSpf("v=spf1 ip4:192.0.2.1 -all");
    const inbox = await newInbox();
    const messageId = `<${unique("spf")}@${sender.domain}>`;
    const raw = await message({
      from: `news@${sender.domain}`,
      to: inbox.email,
      subject: "Hi",
      text: "Hi.",
      messageId,
    });
    await sendRaw(server.smtpPort as number, { from: `bounce@${sender.domain}`, to: [inbox.email] }, raw);

    const stored = await receivedIn(inbox.id, messageId);
    expect(stored.authentication).toMatchObject({
      spf: { result: "FAIL", domain: sender.domain },
      authenticated: false,
    });
    expect(stored.labels).toContain("unauthenticated");
  });
});

describe("Authentication-Results that came with the message", () => {
  it("are dropped when they claim this server's name, and kept when another server wrote them", async () => {
    const sender = senderDomain("forged");
    sender.publishSpf("v=spf1 ip4:192.0.2.1 -all");
    sender.publishDmarc("reject");
    const inbox = await newInbox();
    const messageId = `<${unique("forged")}@${sender.domain}>`;
    const raw = await message({
      from: `ceo@${sender.domain}`,
      to: inbox.email,
      subject: "Trust me",
      text: "The headers say so.",
      messageId,
      headers: [
        { key: "Authentication-Results", value: `${MX_HOST}; dmarc=pass header.from=${sender.domain}` },
        { key: "Authentication-Results", value: "relay.example; spf=pass smtp.mailfrom=relay.example" },
      ],
    });
    await sendRaw(server.smtpPort as number, { from: "someone@attacker.test", to: [inbox.email] }, raw);

    const [storedMime = ""] = await storedRaw(messageId);
    const results = storedMime
      .slice(0, storedMime.indexOf("\r\n\r\n"))
      .replace(/\r\n[ \t]+/g, " ")
      .split("\r\n")
      .filter((line) => /^Authentication-Results:/i.test(line));
    expect(results).toHaveLength(2);
    expect(results[0]).toMatch(
      new RegExp(`^Authentication-Results: ${MX_HOST.replaceAll(".", "\\.")};.*dmarc=fail`),
    );
    expect(results[1]).toBe("Authentication-Results: relay.example; spf=pass smtp.mailfrom=relay.example");
    expect((await receivedIn(inbox.id, messageId)).authentication.dmarc.result).toBe("FAIL");
  });
});

describe("a dead DNS server", () => {
  it("gives TEMPERROR within the timeout, and the message is still accepted", async () => {
    const sender = senderDomain("dead");
    const inbox = await newInbox({ rejectUnauthenticated: true });
    const messageId = `<${unique("dead")}@${sender.domain}>`;
    const raw = await message(
      { from: `ceo@${sender.domain}`, to: inbox.email, subject: "Hi", text: "Hi.", messageId },
      { domainName: sender.domain, keySelector: sender.selector, privateKey: sender.privateKey },
    );
    const asked = deadDns.queries.length;
    const started = Date.now();
    const info = await sendRaw(
      deadDnsServer.smtpPort as number,
      { from: `bounce@${sender.domain}`, to: [inbox.email] },
      raw,
    );
    const elapsed = Date.now() - started;
    expect(info.response).toMatch(/^250 /);
    expect(deadDns.queries.length).toBeGreaterThan(asked);
    // Bounded by the message's DNS budget (plus the rest of a delivery on a busy machine), never a stall.
    expect(elapsed).toBeLessThan(MESSAGE_DNS_BUDGET_MS + 5_000);

    const stored = await receivedIn(inbox.id, messageId);
    expect(stored.authentication.spf.result).toBe("TEMPERROR");
    expect(stored.authentication.dkim).toEqual([
      expect.objectContaining({ result: "TEMPERROR", domain: sender.domain }),
    ]);
    expect(stored.authentication.dmarc.result).toBe("TEMPERROR");
    expect(stored.authentication.authenticated).toBe(false);
    // Not a DMARC FAIL: the inbox that refuses unauthenticated mail takes it, labelled.
    expect(stored.labels).toContain("unauthenticated");
  });
});

describe("mail between hosted inboxes", () => {
  it("carries no verdict and never the unauthenticated label", async () => {
    const from = await newInbox();
    const to = await newInbox({ rejectUnauthenticated: true });
    const sent = await ok(
      server,
      `mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { messageId authentication { authenticated } } } }`,
      { input: { inboxId: from.id, to: [to.email], subject: "Internal", text: "Hello, colleague." } },
      { key: org.apiKey },
    );
    const messageId = sent.sendMessage.message.messageId;
    expect(sent.sendMessage.message.authentication).toBeNull();
    const delivered = await until(() => receivedIn(to.id, messageId));
    expect(delivered.authentication).toBeNull();
    expect(delivered.labels).not.toContain("unauthenticated");
    expect(await receivedIn(to.id, messageId, { authenticated: true })).toBeUndefined();
    expect(await receivedIn(to.id, messageId, { authenticated: false })).toBeUndefined();
    const [raw] = await storedRaw(messageId);
    expect(raw).not.toMatch(/^Authentication-Results:/im);
  });
});

describe("rejectUnauthenticated", () => {
  it("is set at creation, read, and changed by updateInbox (false by default)", async () => {
    const plain = await newInbox();
    const strict = await newInbox({ rejectUnauthenticated: true });
    const read = async (id: string) =>
      (
        await ok(
          server,
          `query($id: ID!) { inbox(id: $id) { rejectUnauthenticated displayName } }`,
          { id },
          { key: org.apiKey },
        )
      ).inbox;
    expect(await read(plain.id)).toMatchObject({ rejectUnauthenticated: false });
    expect(await read(strict.id)).toMatchObject({ rejectUnauthenticated: true });

    const update = `mutation($input: UpdateInboxInput!) { updateInbox(input: $input) { inbox { rejectUnauthenticated displayName } } }`;
    await ok(server, update, { input: { id: plain.id, displayName: "Plain" } }, { key: org.apiKey });
    const updated = await ok(
      server,
      update,
      { input: { id: plain.id, rejectUnauthenticated: true } },
      { key: org.apiKey },
    );
    // Each field changes only when given.
    expect(updated.updateInbox.inbox).toEqual({ rejectUnauthenticated: true, displayName: "Plain" });
    expect(await read(plain.id)).toEqual({ rejectUnauthenticated: true, displayName: "Plain" });
  });

  it("keeps inboxes that refuse and inboxes that take unauthenticated mail in separate transactions (452)", async () => {
    const strict = await newInbox({ rejectUnauthenticated: true });
    const lax = await newInbox();
    const { session } = await SmtpDialogue.open(server.smtpPort as number);
    try {
      await session.command("EHLO client.test");
      await session.command("MAIL FROM:<a@client.test>");
      expect((await session.command(`RCPT TO:<${strict.email}>`)).code).toBe(250);
      const mixed = await session.command(`RCPT TO:<${lax.email}>`);
      expect(mixed.code).toBe(452);
      expect(mixed.text).toMatch(/^452 4\.5\.3 /);
      expect(mixed.text).toMatch(/separate transaction/);
    } finally {
      session.close();
    }
  });
});

describe("configuration", () => {
  it("checks by default, with bounded DNS, and refuses a timeout out of range naming the variable", () => {
    expect(loadConfig({})).toMatchObject({
      mailAuth: true,
      mailAuthDnsTimeoutMs: 2_000,
      mailAuthTimeoutMs: 6_000,
    });
    expect(loadConfig({ MAIL_AUTH: "false", MAIL_AUTH_DNS_TIMEOUT_MS: "500" })).toMatchObject({
      mailAuth: false,
      mailAuthDnsTimeoutMs: 500,
    });
    expect(() => loadConfig({ MAIL_AUTH_DNS_TIMEOUT_MS: "0" })).toThrow(ConfigError);
    expect(() => loadConfig({ MAIL_AUTH_DNS_TIMEOUT_MS: "0" })).toThrow(/MAIL_AUTH_DNS_TIMEOUT_MS/);
    expect(() => loadConfig({ MAIL_AUTH_TIMEOUT_MS: "forever" })).toThrow(/MAIL_AUTH_TIMEOUT_MS/);
  });
});
