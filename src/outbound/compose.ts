import MailComposer from "nodemailer/lib/mail-composer";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import { MAX_SUBJECT_LENGTH } from "../drafts/service.ts";
import type { Inbox } from "../inboxes/repository.ts";
import { hasControlCharacter } from "../mail/attachment-input.ts";
import type { AttachmentData } from "../mail/message.ts";
import { attachmentContents, attachmentsOfMessages, type Message } from "../mail/repository.ts";

export type RecipientField = "to" | "cc" | "bcc";

export interface Mailbox {
  name: string;
  address: string;
}

/** A message about to be composed, its input already checked. */
export interface Outgoing {
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  replyTo: Mailbox[];
  subject: string | null;
  text: string | null;
  html: string | null;
  attachments: AttachmentData[];
  inReplyTo: string | null;
  references: string[];
  labels: string[];
}

/** Like inbound mail: the newest References are the ones threading needs. */
export const MAX_REFERENCES = 100;

export function replyRecipients(original: Message, ownAddress: string, replyAll: boolean) {
  const seen = new Set([ownAddress.toLowerCase()]);
  const fresh = (list: readonly string[]) =>
    list.filter((address) => {
      const key = address.toLowerCase();
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  const inbound = original.direction === "INBOUND";
  const to = fresh(
    inbound
      ? original.reply_to_addresses.length > 0
        ? original.reply_to_addresses
        : [original.from_address]
      : original.to_addresses,
  );
  const others = inbound ? [...original.to_addresses, ...original.cc_addresses] : original.cc_addresses;
  return { to, cc: replyAll ? fresh(others) : [] };
}

/** RFC 5322 §3.6.4: the parent's References (or its In-Reply-To), then the parent's Message-ID. */
export function referencesOf(original: Message): string[] {
  const chain =
    original.reference_ids.length > 0
      ? original.reference_ids
      : original.in_reply_to
        ? [original.in_reply_to]
        : [];
  return [...new Set([...chain, original.message_id_header])].slice(-MAX_REFERENCES);
}

export function prefixedSubject(prefix: "Re" | "Fwd", subject: string | null): string {
  const line = (subject ?? "").replace(/[\r\n]+/g, " ").trim();
  const already = prefix === "Re" ? /^re:/i : /^(fwd?|fw):/i;
  return (already.test(line) ? line : `${prefix}: ${line}`.trim()).slice(0, MAX_SUBJECT_LENGTH);
}

export function fileSafe(subject: string | null): string {
  const printable = [...(subject ?? "")].map((c) => (hasControlCharacter(c) ? " " : c)).join("");
  return printable
    .replace(/[\\/:*?"<>|]+/g, " ")
    .trim()
    .slice(0, 100);
}

export async function compose(
  inbox: Inbox,
  outgoing: Outgoing,
  messageId: string,
  date: Date,
): Promise<Buffer> {
  const address = (mailbox: Mailbox) => (mailbox.name ? mailbox : mailbox.address);
  const list = (mailboxes: Mailbox[]) => (mailboxes.length > 0 ? mailboxes.map(address) : undefined);
  const composer = new MailComposer({
    from: inbox.display_name ? { name: inbox.display_name, address: inbox.email } : inbox.email,
    to: list(outgoing.to),
    cc: list(outgoing.cc),
    // No Bcc header: blind recipients are only in the envelope (and on the sender's copy).
    replyTo: list(outgoing.replyTo),
    subject: outgoing.subject ?? undefined,
    text: outgoing.text ?? undefined,
    html: outgoing.html ?? undefined,
    messageId,
    date,
    inReplyTo: outgoing.inReplyTo ?? undefined,
    references: outgoing.references.length > 0 ? outgoing.references : undefined,
    attachments: outgoing.attachments.map((attachment) => ({
      filename: attachment.filename ?? undefined,
      contentType: attachment.contentType,
      content: attachment.content,
      contentDisposition: attachment.disposition ?? "attachment",
    })),
    // Content is always given inline; nothing a caller sends may make us read a file or a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
    // CRLF throughout, as SMTP carries it: the stored bytes are the bytes the recipients get.
    newline: "windows",
  });
  return composer.compile().build();
}

/** The MIME of a stored message that has no raw copy (one not received over SMTP), for forwarding. */
export async function recomposed(db: Db, scope: TenantScope, message: Message): Promise<Buffer> {
  const attachments = (await attachmentsOfMessages(db, scope, [message.id])).get(message.id) ?? [];
  const contents = await attachmentContents(
    db,
    scope,
    attachments.map((attachment) => attachment.id),
  );
  return new MailComposer({
    from: message.from_address,
    to: message.to_addresses,
    cc: message.cc_addresses.length > 0 ? message.cc_addresses : undefined,
    replyTo: message.reply_to_addresses.length > 0 ? message.reply_to_addresses : undefined,
    subject: message.subject ?? undefined,
    text: message.text_body ?? undefined,
    html: message.html_body ?? undefined,
    messageId: message.message_id_header,
    date: message.created_at,
    inReplyTo: message.in_reply_to ?? undefined,
    references: message.reference_ids.length > 0 ? message.reference_ids : undefined,
    attachments: attachments.map((attachment) => ({
      filename: attachment.filename ?? undefined,
      contentType: attachment.content_type,
      content: contents.get(attachment.id) ?? Buffer.alloc(0),
      cid: attachment.content_id ?? undefined,
    })),
    disableFileAccess: true,
    disableUrlAccess: true,
    newline: "windows",
  })
    .compile()
    .build();
}
