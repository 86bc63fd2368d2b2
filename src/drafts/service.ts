// Draft rules: recipient addresses, limits, and the message a draft may reply to.
import type { TenantScope } from "../auth/principal.ts";
import type { DraftSendStatus } from "../db/types.ts";
import { badUserInput, conflict, notFound } from "../errors.ts";
import { type AttachmentInput, decodeAttachments } from "../mail/attachment-input.ts";
import type { Services } from "../services.ts";
import {
  type DraftContent,
  type DraftSchedule,
  type DraftSummary,
  deleteDraft,
  insertDraft,
  lockDraft,
  type NewDraftAttachment,
  replaceDraftAttachments,
  updateDraft as updateDraftRow,
  visibleMessageOfInbox,
} from "./repository.ts";
import { checkedSendAt, scheduleDraftJob, unscheduleDraftJob } from "./schedule.ts";

/** A draft in these states may still be changed, scheduled or sent; SENDING and SENT may not. */
export const OPEN_DRAFT_STATUSES: readonly DraftSendStatus[] = [
  "DRAFT",
  "SCHEDULED",
  "FAILED",
  "PENDING_APPROVAL",
];

export const MAX_RECIPIENTS_PER_FIELD = 100;
/** RFC 5322's line limit; a subject is one header line. */
export const MAX_SUBJECT_LENGTH = 998;

// A pragmatic RFC 5322 addr-spec: dot-atom or quoted-string local part, a host name or address
// literal as the domain; non-ASCII allowed (RFC 6531); no control characters anywhere, so nothing
// typed here can break out of a header line.
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~\\-\\u0080-\\uFFFF]";
const DOT_ATOM = `${ATEXT}+(?:\\.${ATEXT}+)*`;
const QUOTED = '"(?:[\\x20\\x21\\x23-\\x5B\\x5D-\\x7E\\u0080-\\uFFFF]|\\\\[\\x20-\\x7E])*"';
const LABEL = "[A-Za-z0-9\\u0080-\\uFFFF](?:[A-Za-z0-9\\-\\u0080-\\uFFFF]{0,61}[A-Za-z0-9\\u0080-\\uFFFF])?";
const HOST = `${LABEL}(?:\\.${LABEL})+`;
const LITERAL = "\\[(?:\\d{1,3}(?:\\.\\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]{2,45})\\]";
const ADDR_SPEC = new RegExp(`^(${DOT_ATOM}|${QUOTED})@(${HOST}|${LITERAL})$`);
// `Name <addr>`: the name a phrase of words (dots allowed, as in "John Q. Public") or one quoted string.
const PHRASE = `(?:${ATEXT}|\\.)+(?:[ \\t]+(?:${ATEXT}|\\.)+)*`;
const NAME_ADDR = new RegExp(`^(?:(?:${PHRASE}|${QUOTED})[ \\t]*)?<([^<>]*)>$`);

/** Whether `value` is an addr-spec (`a@example.com`) or a name-addr (`Ann <a@example.com>`). */
export function isValidAddress(value: string): boolean {
  const addr = NAME_ADDR.exec(value)?.[1] ?? value;
  const match = ADDR_SPEC.exec(addr);
  if (!match) return false;
  const local = match[1] as string;
  return local.length <= 64 && addr.length <= 254 && value.length <= 998;
}

/** Trimmed addresses of one recipient field; BAD_USER_INPUT naming the field on the first bad one. */
export function validateRecipients(field: string, addresses: readonly string[] | null | undefined): string[] {
  const list = (addresses ?? []).map((address) => address.trim());
  if (list.length > MAX_RECIPIENTS_PER_FIELD)
    throw badUserInput(`${field} may list at most ${MAX_RECIPIENTS_PER_FIELD} addresses.`, field);
  list.forEach((address, index) => {
    if (!isValidAddress(address))
      throw badUserInput(`${field}[${index}] is not a valid email address.`, field);
  });
  return list;
}

export function validateSubject(subject: string | null | undefined): string | null {
  if (subject == null) return null;
  if (subject.length > MAX_SUBJECT_LENGTH)
    throw badUserInput(`subject must be at most ${MAX_SUBJECT_LENGTH} characters.`, "subject");
  if (/[\r\n]/.test(subject)) throw badUserInput("subject must be a single line.", "subject");
  return subject;
}

export interface DraftFieldsInput {
  /** Absent: unchanged; null or empty: none; a list: these, replacing any before. */
  attachments?: readonly AttachmentInput[] | null | undefined;
  to?: readonly string[] | null | undefined;
  cc?: readonly string[] | null | undefined;
  bcc?: readonly string[] | null | undefined;
  subject?: string | null | undefined;
  text?: string | null | undefined;
  html?: string | null | undefined;
}

/** The columns to write for the fields given; an absent field is left out, an explicit null clears it. */
function contentChanges(input: DraftFieldsInput): Partial<DraftContent> {
  const changes: Partial<DraftContent> = {};
  if (input.to !== undefined) changes.to_addresses = validateRecipients("to", input.to);
  if (input.cc !== undefined) changes.cc_addresses = validateRecipients("cc", input.cc);
  if (input.bcc !== undefined) changes.bcc_addresses = validateRecipients("bcc", input.bcc);
  if (input.subject !== undefined) changes.subject = validateSubject(input.subject);
  if (input.text !== undefined) changes.text_body = input.text;
  if (input.html !== undefined) changes.html_body = input.html;
  return changes;
}

/**
 * The attachments given, checked and decoded under the limits of a send's (MAX_OUTBOUND_BYTES in all,
 * at most 100; BAD_USER_INPUT naming `attachments`); undefined when the field is absent.
 */
function attachmentChanges(input: DraftFieldsInput, maxBytes: number): NewDraftAttachment[] | undefined {
  if (input.attachments === undefined) return undefined;
  return decodeAttachments(input.attachments, maxBytes).map((attachment) => ({
    filename: attachment.filename ?? "attachment",
    contentType: attachment.contentType,
    content: attachment.content,
  }));
}

/** A SCHEDULED draft must have someone to send to: its recipients, or the message it replies to. */
function checkSchedulable(draft: DraftSummary): void {
  if (draft.send_status !== "SCHEDULED") return;
  const addressed = draft.to_addresses.length + draft.cc_addresses.length + draft.bcc_addresses.length;
  if (addressed === 0 && draft.in_reply_to_message_id === null) {
    throw badUserInput("A scheduled draft needs at least one recipient.", "to");
  }
}

/**
 * Creates a draft. `requiresApproval`: the caller is approval-bound (docs/sending.md, "Approval
 * before sending"); the draft remembers it, and its scheduled send stops at PENDING_APPROVAL.
 */
export async function createDraft(
  services: Pick<Services, "db" | "clock" | "config">,
  scope: TenantScope,
  input: DraftFieldsInput & {
    inboxId: string;
    inReplyToMessageId?: string | undefined;
    forwardOfMessageId?: string | undefined;
    replyAll?: boolean | null | undefined;
    sendAt?: Date | null | undefined;
  },
  requiresApproval: boolean,
): Promise<DraftSummary> {
  const { db } = services;
  const changes = contentChanges(input);
  const attachments = attachmentChanges(input, services.config.maxOutboundBytes);
  const sendAt = input.sendAt == null ? null : checkedSendAt(input.sendAt, services.clock.now());
  if (input.inReplyToMessageId !== undefined && input.forwardOfMessageId !== undefined) {
    throw badUserInput(
      "A draft either replies to a message or forwards one, not both.",
      "forwardOfMessageId",
    );
  }
  // Only a message of the draft's own inbox that the caller can see; anything else looks missing.
  for (const messageId of [input.inReplyToMessageId, input.forwardOfMessageId]) {
    if (messageId !== undefined && !(await visibleMessageOfInbox(db, scope, input.inboxId, messageId))) {
      throw notFound("Message");
    }
  }
  const schedule: DraftSchedule = {
    send_at: sendAt,
    send_status: sendAt === null ? "DRAFT" : "SCHEDULED",
    failure_reason: null,
  };
  try {
    return await db.transaction().execute(async (trx) => {
      const draft = await insertDraft(trx, scope, input.inboxId, {
        to_addresses: changes.to_addresses ?? [],
        cc_addresses: changes.cc_addresses ?? [],
        bcc_addresses: changes.bcc_addresses ?? [],
        subject: changes.subject ?? null,
        text_body: changes.text_body ?? null,
        html_body: changes.html_body ?? null,
        in_reply_to_message_id: input.inReplyToMessageId ?? null,
        forward_of_message_id: input.forwardOfMessageId ?? null,
        reply_all: input.replyAll ?? false,
        requires_approval: requiresApproval,
        ...schedule,
      });
      if (!draft) throw notFound("Inbox");
      checkSchedulable(draft);
      if (attachments?.length) await replaceDraftAttachments(trx, scope, draft.id, attachments);
      if (sendAt !== null) await scheduleDraftJob(trx, draft.org_id, draft.id, sendAt);
      return draft;
    });
  } catch (error) {
    // The replied-to or forwarded message was deleted between the check and the insert.
    if ((error as { code?: string })?.code === "23503") throw notFound("Message");
    throw error;
  }
}

/**
 * Changes only the fields given; updatedAt moves forward even when none is. `attachments` replaces the
 * list (an explicit null clears it). `sendAt` schedules (or
 * moves) the send; an explicit null unschedules. A draft being sent or sent is CONFLICT.
 * An approval-bound caller (`requiresApproval`) marks the draft as needing approval, whoever wrote it
 * first, and may not change a draft waiting for approval (CONFLICT: the approver must approve what
 * it saw); it may still delete it (docs/sending.md, "Approval before sending").
 */
export async function updateDraft(
  services: Pick<Services, "db" | "clock" | "config">,
  scope: TenantScope,
  input: DraftFieldsInput & { id: string; sendAt?: Date | null | undefined },
  requiresApproval: boolean,
): Promise<DraftSummary> {
  const { db } = services;
  const changes: Partial<DraftContent & DraftSchedule & { requires_approval: boolean }> =
    contentChanges(input);
  const attachments = attachmentChanges(input, services.config.maxOutboundBytes);
  if (requiresApproval) changes.requires_approval = true;
  if (input.sendAt === null)
    Object.assign(changes, { send_at: null, send_status: "DRAFT", failure_reason: null });
  else if (input.sendAt !== undefined) {
    const sendAt = checkedSendAt(input.sendAt, services.clock.now());
    Object.assign(changes, { send_at: sendAt, send_status: "SCHEDULED", failure_reason: null });
  }
  return db.transaction().execute(async (trx) => {
    // Locked: a scheduled send starting now waits for this change, or this waits for it.
    const current = await lockDraft(trx, scope, input.id);
    if (!current) throw notFound("Draft");
    if (!OPEN_DRAFT_STATUSES.includes(current.send_status)) {
      throw conflict(
        current.send_status === "SENT" ? "This draft has been sent." : "This draft is being sent.",
        "id",
      );
    }
    if (requiresApproval && current.send_status === "PENDING_APPROVAL") {
      throw conflict(
        "This draft is waiting for approval: an approval-bound key cannot change it (delete it and write a new one).",
        "id",
      );
    }
    const draft = await updateDraftRow(trx, scope, input.id, changes);
    if (!draft) throw notFound("Draft");
    checkSchedulable(draft);
    if (attachments !== undefined) await replaceDraftAttachments(trx, scope, draft.id, attachments);
    if (input.sendAt === null) await unscheduleDraftJob(trx, draft.org_id, draft.id);
    else if (input.sendAt !== undefined && draft.send_at)
      await scheduleDraftJob(trx, draft.org_id, draft.id, draft.send_at);
    return draft;
  });
}

export async function removeDraft(
  services: Pick<Services, "db">,
  scope: TenantScope,
  id: string,
): Promise<void> {
  const { db } = services;
  await db.transaction().execute(async (trx) => {
    const deleted = await deleteDraft(trx, scope, id);
    if (!deleted) throw notFound("Draft");
    await unscheduleDraftJob(trx, scope.orgId, id);
  });
}
