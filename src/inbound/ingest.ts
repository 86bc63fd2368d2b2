// Inbound mail: a raw RFC 5322 message is parsed once and stored in every hosted inbox it is
// addressed to, in one transaction (shared with other messages stored at the same time: see
// group-commit.ts). The SMTP listener calls this for mail from outside; outbound delivery calls it
// for mail between hosted inboxes, so both get the same labels and threading.
import { createHash } from "node:crypto";
import { type AddressObject, type ParsedMail, simpleParser } from "mailparser";
import { compareIds } from "../db/ids.ts";
import type { MessageAuthenticationData } from "../db/types.ts";
import { contentDigest } from "../mail/digest.ts";
import { headerFields, headerValues } from "../mail/headers.ts";
import type { AttachmentData, MessageData } from "../mail/message.ts";
import { type HostedInbox, hostedInboxesByAddress } from "../mail/recipient-repository.ts";
import type { Services } from "../services.ts";
import { withoutForgedResults } from "./authentication.ts";
import { withDeadline } from "./deadline.ts";
import type { IngestQueue } from "./group-commit.ts";

export type { HostedInbox } from "../mail/recipient-repository.ts";

/** What storing inbound mail needs: the services, and the queue that commits arriving mail together. */
export interface InboundServices extends Services {
  ingestQueue: IngestQueue;
}

export interface IngestEnvelope {
  /** SMTP `MAIL FROM` (the return path); null for the null sender `<>` (bounces). */
  mailFrom: string | null;
  /** SMTP `RCPT TO` addresses. Those that are no hosted inbox are skipped and reported. */
  recipients: readonly string[];
}

export interface IngestedCopy {
  inbox: HostedInbox;
  /** Row ids of the stored message and its thread in this inbox. */
  messageId: string;
  threadId: string;
  labels: string[];
  /** False when the inbox already held this message (a retried delivery): nothing was written. */
  created: boolean;
}

export interface IngestResult {
  /** The message's Message-ID, or the one generated for it (stable for the same content). */
  messageIdHeader: string;
  /** One entry per distinct recipient inbox, all committed together. */
  delivered: IngestedCopy[];
  /** Recipients that are no hosted inbox (unknown, or on a domain that is not verified). */
  rejected: string[];
}

/** RFC 5322 caps a header line at 998 octets; so does the column. */
const MAX_HEADER_OCTETS = 998;
const MAX_REFERENCES = 100;

/** `<Name@Example.COM>` → `name@example.com`; inboxes are stored lower-case. */
export function normalizeAddress(address: string): string {
  return address
    .trim()
    .replace(/^<(.*)>$/, "$1")
    .trim()
    .toLowerCase();
}

/** The inbox that accepts mail for `address` here, or undefined (for a `550 5.1.1` at RCPT time). */
export async function resolveRecipient(
  services: Pick<Services, "db" | "config">,
  address: string,
): Promise<HostedInbox | undefined> {
  const email = normalizeAddress(address);
  if (!email.includes("@")) return undefined;
  const [inbox] = await hostedInboxesByAddress(services.db, services.config.mailDomain, [email]);
  return inbox;
}

/**
 * resolveRecipient for many SMTP sessions at once: the addresses asked for while a lookup is under
 * way are looked up together in the next one, one statement for all of them. When nothing is under
 * way, a lookup starts at once. A lookup that has not answered within `timeoutMs` fails its callers
 * (the database is away: they answer 451, never 550) and no longer holds up the next one.
 */
export function recipientResolver(
  services: Pick<Services, "db" | "config">,
  timeoutMs = services.config.mailStoreTimeoutMs,
): (address: string) => Promise<HostedInbox | undefined> {
  type Waiting = { resolve(inbox: HostedInbox | undefined): void; reject(error: unknown): void };
  let waiting = new Map<string, Waiting[]>();
  /** The lookup under way, if any: a stalled one is given up on, and the next may start. */
  let current: symbol | undefined;
  const next = () => {
    if (current || waiting.size === 0) return;
    const lookup = Symbol("lookup");
    current = lookup;
    const batch = waiting;
    waiting = new Map();
    const done = () => {
      if (current !== lookup) return;
      current = undefined;
      next();
    };
    withDeadline(
      hostedInboxesByAddress(services.db, services.config.mailDomain, [...batch.keys()]),
      timeoutMs,
      "looking up recipients",
    )
      .then(
        (inboxes) => {
          const byEmail = new Map(inboxes.map((inbox) => [inbox.email, inbox]));
          for (const [email, callers] of batch)
            for (const caller of callers) caller.resolve(byEmail.get(email));
        },
        (error: unknown) => {
          for (const callers of batch.values()) for (const caller of callers) caller.reject(error);
        },
      )
      .finally(done);
  };
  return (address) => {
    const email = normalizeAddress(address);
    if (!email.includes("@")) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const callers = waiting.get(email) ?? [];
      callers.push({ resolve, reject });
      waiting.set(email, callers);
      next();
    });
  };
}

/**
 * Stores `raw` in each hosted recipient inbox, labelled `received` and `unread`, plus `spam` for an
 * upstream spam verdict and `blocked` by the inbox's RECEIVE lists, each with its thread and a
 * `message.received` event. Everything commits in one transaction (which other messages stored at
 * the same time share: see group-commit.ts): when this resolves, every copy is durable; when it
 * rejects (the database failed, or did not answer within MAIL_STORE_TIMEOUT_MS), the caller must
 * not count on anything being stored and should retry later: a copy that committed late after all
 * is found then, and not stored twice. It never
 * rejects for the message's content: malformed MIME is stored as best it can be read, with the raw
 * bytes kept. Delivering the same message to an inbox again (the same Message-ID and content
 * digest: see digest.ts) stores nothing (`created: false`), so a retried delivery is safe; a
 * different message that reuses a Message-ID is stored beside the first.
 *
 * Used by outbound delivery to hosted inboxes (and, through ingestForInboxes, by the SMTP
 * listener); keep this signature stable.
 */
export async function ingestMessage(
  services: InboundServices,
  envelope: IngestEnvelope,
  raw: Buffer,
): Promise<IngestResult> {
  const wanted = [...new Set(envelope.recipients.map(normalizeAddress))].filter((a) => a.includes("@"));
  const inboxes = await withDeadline(
    hostedInboxesByAddress(services.db, services.config.mailDomain, wanted),
    services.config.mailStoreTimeoutMs,
    "looking up recipients",
  );
  return ingestForInboxes(services, envelope, raw, inboxes);
}

/** The verdicts of mail received from outside, and the header lines that record them in its raw form. */
export interface InboundAuthentication {
  verdict: MessageAuthenticationData;
  /** `Authentication-Results: …` lines (CRLF-terminated), prepended to the stored raw message. */
  header: Buffer;
  /** This server's name in them: results under that name that came with the message are dropped. */
  authservId: string;
}

/**
 * ingestMessage for recipients already looked up: `inboxes` are the hosted inboxes among
 * `envelope.recipients`. The SMTP listener looked each one up when it accepted it at RCPT time,
 * so a message costs no second lookup. (An inbox deleted since then fails its copy's foreign keys:
 * the message is refused with 451, and the sender's retry gets 550 at RCPT.)
 *
 * `authentication`, for mail from outside (docs/authentication.md): the verdicts are stored with
 * each copy, the header is prepended to the stored raw message, and mail that is not
 * authenticated is labelled `unauthenticated`. The message is read, and its duplicates found, as
 * it arrived: a retry whose verdict changed (a DNS failure then an answer) is still the same mail.
 */
export async function ingestForInboxes(
  services: InboundServices,
  envelope: IngestEnvelope,
  raw: Buffer,
  recipientInboxes: readonly HostedInbox[],
  authentication?: InboundAuthentication,
): Promise<IngestResult> {
  const { config, logger } = services;
  const wanted = [...new Set(envelope.recipients.map(normalizeAddress))].filter((a) => a.includes("@"));
  const inboxes = [...new Map(recipientInboxes.map((inbox) => [inbox.inboxId, inbox])).values()];
  const hosted = new Set(inboxes.map((inbox) => inbox.email));
  const rejected = envelope.recipients.filter((address) => !hosted.has(normalizeAddress(address)));

  const content = await readMessage(raw, envelope, (error) =>
    logger.warn({ err: error, bytes: raw.length }, "unparseable message: stored with its raw text"),
  );
  const digest = contentDigest(raw, content.unparsed ? null : content);
  const messageIdHeader = content.messageIdHeader ?? generatedMessageId(digest, config.mailDomain);
  if (inboxes.length === 0) return { messageIdHeader, delivered: [], rejected };

  // One order for the copies of a message, whatever the order of its recipients.
  const targets = [...inboxes].sort(
    (a, b) => compareIds(a.orgId, b.orgId) || compareIds(a.inboxId, b.inboxId),
  );
  const senders = senderAddresses(content.from, envelope.mailFrom);
  const labels = hasSpamVerdict(raw) ? ["received", "unread", "spam"] : ["received", "unread"];
  if (authentication && !authentication.verdict.authenticated) labels.push("unauthenticated");
  const stored = await services.ingestQueue.store(
    targets.map((inbox) => ({
      inbox,
      data: messageData(content, messageIdHeader, digest, inbox, labels, raw, authentication),
      senders,
    })),
  );
  const byEmail = new Map<string, IngestedCopy>();
  stored.forEach((copy, i) => {
    const inbox = targets[i] as HostedInbox;
    byEmail.set(inbox.email, {
      inbox,
      messageId: copy.messageId,
      threadId: copy.threadId,
      labels: copy.labels,
      created: copy.created,
    });
  });
  // In the order the recipients were given, as callers report them.
  const delivered = wanted.flatMap((email) => byEmail.get(email) ?? []);
  return { messageIdHeader, delivered, rejected };
}

/** What is kept of a message, whatever state its MIME is in. */
interface MessageContent {
  messageIdHeader: string | null;
  from: string | null;
  fromName: string | null;
  to: string[];
  toNames: (string | null)[];
  cc: string[];
  ccNames: (string | null)[];
  replyTo: string[];
  subject: string | null;
  text: string | null;
  html: string | null;
  inReplyTo: string | null;
  references: string[];
  attachments: AttachmentData[];
  /** The MIME parser could not read it: the text is the raw message, and the digest reads it raw. */
  unparsed: boolean;
}

async function readMessage(
  raw: Buffer,
  envelope: IngestEnvelope,
  onUnparseable: (error: unknown) => void,
): Promise<MessageContent> {
  let parsed: ParsedMail;
  try {
    // Bodies are kept as sent: no cid: links rewritten into data: URLs, no text generated from the
    // HTML (nor HTML from the text), no links added.
    parsed = await simpleParser(raw, {
      skipImageLinks: true,
      skipHtmlToText: true,
      skipTextToHtml: true,
      skipTextLinks: true,
    });
  } catch (error) {
    onUnparseable(error);
    const messageId = headerValues(raw, "message-id")[0];
    return {
      messageIdHeader: messageId ? normalizeMessageId(messageId) : null,
      from: envelope.mailFrom ? clean(envelope.mailFrom) : null,
      fromName: null,
      to: envelope.recipients.map(clean),
      toNames: envelope.recipients.map(() => null),
      cc: [],
      ccNames: [],
      replyTo: [],
      subject: null,
      text: clean(raw.toString("utf8")),
      html: null,
      inReplyTo: null,
      references: [],
      attachments: [],
      unparsed: true,
    };
  }
  const inReplyTo = messageIds(parsed.inReplyTo)[0] ?? null;
  const html = typeof parsed.html === "string" ? clean(parsed.html) : null;
  // Without a text part the parser still reports an empty text next to the HTML: there is none.
  const text =
    typeof parsed.text === "string" && (html === null || parsed.text.trim() !== "")
      ? clean(parsed.text)
      : null;
  const [sender] = mailboxes(parsed.from);
  const to = mailboxes(parsed.to);
  const cc = mailboxes(parsed.cc);
  return {
    messageIdHeader: parsed.messageId ? normalizeMessageId(parsed.messageId) : null,
    from: sender?.address ?? null,
    fromName: sender?.name ?? null,
    to: to.map((mailbox) => mailbox.address),
    toNames: to.map((mailbox) => mailbox.name),
    cc: cc.map((mailbox) => mailbox.address),
    ccNames: cc.map((mailbox) => mailbox.name),
    replyTo: mailboxes(parsed.replyTo).map((mailbox) => mailbox.address),
    subject: parsed.subject === undefined ? null : clean(parsed.subject),
    text,
    html,
    inReplyTo,
    references: messageIds(parsed.references).slice(-MAX_REFERENCES),
    attachments: parsed.attachments.map((attachment) => ({
      filename: attachment.filename === undefined ? null : clean(attachment.filename),
      contentType: clean(attachment.contentType || "application/octet-stream"),
      content: attachment.content,
      contentId: attachment.cid ? clean(attachment.cid) : null,
      disposition: attachment.contentDisposition ? clean(attachment.contentDisposition) : null,
    })),
    unparsed: false,
  };
}

function messageData(
  content: MessageContent,
  messageIdHeader: string,
  digest: Buffer,
  inbox: HostedInbox,
  labels: string[],
  received: Buffer,
  authentication: InboundAuthentication | undefined,
): MessageData {
  const raw = authentication
    ? Buffer.concat([
        authentication.header,
        authentication.authservId ? withoutForgedResults(received, authentication.authservId) : received,
      ])
    : received;
  // A copy that reached the inbox without naming it in To or Cc was Bcc'd to it: say so.
  const named = [...content.to, ...content.cc].some((address) => address.toLowerCase() === inbox.email);
  return {
    messageIdHeader,
    contentDigest: digest,
    from: content.from ?? "",
    fromName: content.fromName,
    to: content.to,
    toNames: content.toNames,
    cc: content.cc,
    ccNames: content.ccNames,
    bcc: named ? [] : [inbox.email],
    replyTo: content.replyTo,
    subject: content.subject,
    text: content.text,
    html: content.html,
    inReplyTo: content.inReplyTo,
    references: content.references,
    labels,
    direction: "INBOUND",
    rawMime: raw,
    headers: headerFields(raw),
    sizeBytes: raw.length,
    attachments: content.attachments,
    authentication: authentication?.verdict ?? null,
  };
}

/** The sender as the From header and as the envelope give it; either can be checked against lists. */
function senderAddresses(from: string | null, mailFrom: string | null): string[] {
  return [...new Set([from, mailFrom].map((a) => normalizeAddress(a ?? "")).filter((a) => a.includes("@")))];
}

/** An upstream filter's verdict: `X-Spam-Flag: YES` or `X-Spam-Status: Yes, score=…`. */
function hasSpamVerdict(raw: Buffer): boolean {
  return [...headerValues(raw, "x-spam-flag"), ...headerValues(raw, "x-spam-status")].some((value) =>
    /^yes\b/i.test(value),
  );
}

/** The mailboxes of an address header as mailparser read it, groups flattened; names decoded. */
function mailboxes(
  field: AddressObject | AddressObject[] | undefined,
): { address: string; name: string | null }[] {
  const objects = field === undefined ? [] : Array.isArray(field) ? field : [field];
  const out: { address: string; name: string | null }[] = [];
  const visit = (values: AddressObject["value"]) => {
    for (const value of values) {
      if (value.address)
        out.push({ address: clean(value.address), name: value.name ? clean(value.name) : null });
      if (value.group) visit(value.group);
    }
  };
  for (const object of objects) visit(object.value);
  return out;
}

/** `<id>` tokens of In-Reply-To or References; a bare value is bracketed. */
function messageIds(value: string | string[] | undefined): string[] {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  const ids: string[] = [];
  for (const item of values) {
    const tokens = clean(item).match(/<[^<>\s]+>/g);
    if (tokens) ids.push(...tokens);
    else if (item.trim() !== "" && !/\s/.test(item.trim())) ids.push(normalizeMessageId(item));
  }
  return ids.filter((id) => Buffer.byteLength(id) <= MAX_HEADER_OCTETS);
}

function normalizeMessageId(value: string): string {
  const trimmed = clean(value).trim();
  const bracketed = trimmed.startsWith("<") ? trimmed : `<${trimmed}>`;
  return Buffer.byteLength(bracketed) <= MAX_HEADER_OCTETS && bracketed !== "<>"
    ? bracketed
    : `<${createHash("sha256").update(bracketed).digest("hex")}@message-id.invalid>`;
}

/** For a message without a Message-ID: a retry of it gets the same id, so it deduplicates. */
function generatedMessageId(digest: Buffer, mailDomain: string): string {
  return `<${digest.toString("hex")}@${mailDomain}>`;
}

/** PostgreSQL text cannot hold NUL; a malformed message must still be stored. */
function clean(value: string): string {
  return value.includes("\u0000") ? value.replaceAll("\u0000", "") : value;
}
