// Sending mail: check the input and the sender's rules, compose the MIME (compose.ts), and store
// the sent copy, its `message.sent` event and its delivery job in one transaction. Delivery itself
// is the job's (delivery.ts): a send that returns has committed exactly one job for its message.
import { randomUUID } from "node:crypto";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { GraphQLError } from "graphql";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { DraftSendStatus } from "../db/types.ts";
import {
  type Draft,
  deleteDraft,
  draftAttachmentContents,
  draftsByIds,
  insertDraft,
  replaceDraftAttachments,
  updateDraft as updateDraftRow,
} from "../drafts/repository.ts";
import { unscheduleDraftJob } from "../drafts/schedule.ts";
import { OPEN_DRAFT_STATUSES, validateRecipients, validateSubject } from "../drafts/service.ts";
import { badUserInput, conflict, notFound } from "../errors.ts";
import { recordEvent } from "../events/outbox.ts";
import { type Inbox, inboxesByIds } from "../inboxes/repository.ts";
import { queueJob } from "../jobs/outbox.ts";
import { listRefusal } from "../list-entries/matching.ts";
import { listEntriesFor } from "../list-entries/repository.ts";
import { domainOf } from "../mail/addresses.ts";
import { type AttachmentInput, decodeAttachments } from "../mail/attachment-input.ts";
import { headerFields } from "../mail/headers.ts";
import { hostedInboxesByAddress } from "../mail/recipient-repository.ts";
import { type Message, messagesByIds } from "../mail/repository.ts";
import { normaliseLabels, SYSTEM_LABELS } from "../mail/service.ts";
import { storeMessage } from "../mail/store.ts";
import type { Services } from "../services.ts";
import { approvalRequired } from "./approval.ts";
import { outboundRoute } from "./capture.ts";
import {
  compose,
  fileSafe,
  type Mailbox,
  type Outgoing,
  prefixedSubject,
  type RecipientField,
  recomposed,
  referencesOf,
  replyRecipients,
} from "./compose.ts";
import { DELIVER_MESSAGE, type DeliverMessagePayload } from "./delivery.ts";
import {
  IDEMPOTENCY_TTL_SECONDS,
  type Idempotency,
  IdempotencyKeyTaken,
  idempotencyOf,
  idempotently,
} from "./idempotency.ts";
import { claimIdempotencyKey, recordHeldSendSent } from "./idempotency-repository.ts";
import { sendingPolicy } from "./repository.ts";

type Addresses = readonly string[] | null | undefined;

export interface SendMessageInput {
  /** Sends at most once per organization and key within 24 hours (idempotency.ts). */
  idempotencyKey?: string | null | undefined;
  inboxId: string;
  to: Addresses;
  cc?: Addresses;
  bcc?: Addresses;
  replyTo?: Addresses;
  subject?: string | null | undefined;
  text?: string | null | undefined;
  html?: string | null | undefined;
  labels?: readonly string[] | null | undefined;
  attachments?: readonly AttachmentInput[] | null | undefined;
}

export interface ReplyInput {
  /** Sends at most once per organization and key within 24 hours (idempotency.ts). */
  idempotencyKey?: string | null | undefined;
  messageId: string;
  replyAll?: boolean | null | undefined;
  text?: string | null | undefined;
  html?: string | null | undefined;
  labels?: readonly string[] | null | undefined;
  attachments?: readonly AttachmentInput[] | null | undefined;
}

export interface ForwardInput {
  /** Sends at most once per organization and key within 24 hours (idempotency.ts). */
  idempotencyKey?: string | null | undefined;
  messageId: string;
  to: Addresses;
  cc?: Addresses;
  bcc?: Addresses;
  text?: string | null | undefined;
  html?: string | null | undefined;
}

/** Labels only the system sets on mail (besides `sent`, which every sent message gets). */
const RESERVED_LABELS: ReadonlySet<string> = new Set([...SYSTEM_LABELS, "spam", "blocked", "trash"]);

/**
 * Every send takes `requiresApproval`: whether the caller is approval-bound. Such a caller's mail
 * never leaves: send() stores it as a PENDING_APPROVAL draft and fails APPROVAL_REQUIRED
 * (docs/sending.md, "Approval before sending").
 */
export async function sendMessage(
  services: Services,
  scope: TenantScope,
  input: SendMessageInput,
  requiresApproval: boolean,
): Promise<Message> {
  const idempotency = idempotencyOf("sendMessage", input.idempotencyKey, input);
  return idempotently(services, scope, idempotency, () =>
    sendNewMessage(services, scope, input, idempotency, requiresApproval),
  );
}

async function sendNewMessage(
  services: Services,
  scope: TenantScope,
  input: SendMessageInput,
  idempotency: Idempotency | undefined,
  requiresApproval: boolean,
): Promise<Message> {
  const outgoing: Outgoing = {
    ...recipients(input),
    replyTo: mailboxes("replyTo", input.replyTo),
    subject: validateSubject(input.subject),
    text: input.text ?? null,
    html: input.html ?? null,
    attachments: decodeAttachments(input.attachments, services.config.maxOutboundBytes),
    inReplyTo: null,
    references: [],
    labels: userLabels(input.labels),
  };
  return send(services, scope, input.inboxId, outgoing, {
    idempotency,
    approval: { required: requiresApproval, heldAs: { new: {} } },
  });
}

/**
 * Replies from the inbox that holds `messageId`: to its Reply-To (else its sender); with `replyAll`
 * also to its other To and Cc recipients, the inbox itself left out. Replying to a sent message
 * writes to that message's recipients again. Threads with the original through In-Reply-To/References.
 */
export async function replyToMessage(
  services: Services,
  scope: TenantScope,
  input: ReplyInput,
  requiresApproval: boolean,
): Promise<Message> {
  const idempotency = idempotencyOf("replyToMessage", input.idempotencyKey, input);
  return idempotently(services, scope, idempotency, () =>
    sendReply(services, scope, input, idempotency, requiresApproval),
  );
}

async function sendReply(
  services: Services,
  scope: TenantScope,
  input: ReplyInput,
  idempotency: Idempotency | undefined,
  requiresApproval: boolean,
): Promise<Message> {
  const attachments = decodeAttachments(input.attachments, services.config.maxOutboundBytes);
  const labels = userLabels(input.labels);
  const original = await visibleMessage(services.db, scope, input.messageId);
  const own = await sendingInbox(services.db, scope, original.inbox_id);
  const { to, cc } = replyRecipients(original, own.email, input.replyAll ?? false);
  if (to.length + cc.length === 0) throw badUserInput("The message has no one to reply to.", "messageId");
  const outgoing: Outgoing = {
    to: mailboxes("to", to),
    cc: mailboxes("cc", cc),
    bcc: [],
    replyTo: [],
    subject: prefixedSubject("Re", original.subject),
    text: input.text ?? null,
    html: input.html ?? null,
    attachments,
    inReplyTo: original.message_id_header,
    references: referencesOf(original),
    labels,
  };
  return send(services, scope, own, outgoing, {
    idempotency,
    approval: { required: requiresApproval, heldAs: { new: { inReplyTo: original.id } } },
  });
}

/**
 * Forwards `messageId` from the inbox that holds it: the caller's text/html, and the original
 * attached whole, byte for byte, as a message/rfc822 part. References name the original so the
 * forward joins its thread in the sending inbox; there is no In-Reply-To (it is not a reply).
 */
export async function forwardMessage(
  services: Services,
  scope: TenantScope,
  input: ForwardInput,
  requiresApproval: boolean,
): Promise<Message> {
  const idempotency = idempotencyOf("forwardMessage", input.idempotencyKey, input);
  return idempotently(services, scope, idempotency, () =>
    sendForward(services, scope, input, idempotency, requiresApproval),
  );
}

async function sendForward(
  services: Services,
  scope: TenantScope,
  input: ForwardInput,
  idempotency: Idempotency | undefined,
  requiresApproval: boolean,
): Promise<Message> {
  const addressed = recipients(input);
  const original = await visibleMessage(services.db, scope, input.messageId);
  const own = await sendingInbox(services.db, scope, original.inbox_id);
  const raw = original.raw_mime ?? (await recomposed(services.db, scope, original));
  const outgoing: Outgoing = {
    ...addressed,
    replyTo: [],
    subject: prefixedSubject("Fwd", original.subject),
    text: input.text ?? null,
    html: input.html ?? null,
    attachments: [
      {
        filename: `${fileSafe(original.subject) || "forwarded message"}.eml`,
        contentType: "message/rfc822",
        content: raw,
        disposition: "attachment",
      },
    ],
    inReplyTo: null,
    references: referencesOf(original),
    labels: [],
  };
  return send(services, scope, own, outgoing, {
    idempotency,
    approval: { required: requiresApproval, heldAs: { new: { forwardOf: original.id } } },
  });
}

/** Sends a draft as it stands, and deletes it in the same transaction: it is sent at most once. */
export async function sendDraft(
  services: Services,
  scope: TenantScope,
  draftId: string,
  requiresApproval: boolean,
  idempotencyKey?: string | null,
): Promise<Message> {
  const idempotency = idempotencyOf("sendDraft", idempotencyKey, { id: draftId });
  return idempotently(services, scope, idempotency, () =>
    sendDraftOnce(services, scope, draftId, idempotency, requiresApproval, OPEN_DRAFT_STATUSES),
  );
}

/**
 * Sends a PENDING_APPROVAL draft as it stands, and deletes it (like sendDraft). Only a caller that is
 * not approval-bound may: an approval-bound one is FORBIDDEN (it cannot approve its own mail, nor
 * another bound key's). A draft not waiting for approval is CONFLICT.
 */
export async function approveDraft(
  services: Services,
  scope: TenantScope,
  draftId: string,
  requiresApproval: boolean,
  idempotencyKey?: string | null,
): Promise<Message> {
  if (requiresApproval) {
    throw new GraphQLError("An approval-bound key cannot approve mail.", {
      extensions: {
        code: "FORBIDDEN",
        fix: "Approve it as a person (a session) or with an API key created without sendRequiresApproval.",
      },
    });
  }
  const idempotency = idempotencyOf("approveDraft", idempotencyKey, { id: draftId });
  return idempotently(services, scope, idempotency, () =>
    sendDraftOnce(services, scope, draftId, idempotency, false, ["PENDING_APPROVAL"]),
  );
}

async function sendDraftOnce(
  services: Services,
  scope: TenantScope,
  draftId: string,
  idempotency: Idempotency | undefined,
  requiresApproval: boolean,
  statuses: readonly DraftSendStatus[],
): Promise<Message> {
  const [draft] = await draftsByIds(services.db, scope, [draftId]);
  if (!draft) throw notFound("Draft");
  if (!statuses.includes(draft.send_status)) {
    throw conflict(
      draft.send_status === "SENT"
        ? "This draft has been sent."
        : draft.send_status === "SENDING"
          ? "This draft is being sent."
          : "This draft is not waiting for approval.",
      "id",
    );
  }
  const { inbox, outgoing } = await draftOutgoing(services, scope, draft);
  return send(services, scope, inbox, outgoing, {
    idempotency,
    approval: { required: requiresApproval, heldAs: { draftId } },
    beforeStore: async (trx) => {
      // Row-locked until commit: a concurrent sendDraft, or its scheduled send, finds it gone.
      if (!(await deleteDraft(trx, scope, draftId, statuses))) throw notFound("Draft");
      await unscheduleDraftJob(trx, draft.org_id, draft.id);
    },
  });
}

/** The draft moved on (deleted, unscheduled, sent) while its scheduled send was composing it. */
export class DraftNoLongerSending extends Error {
  constructor() {
    super("the draft is no longer being sent");
  }
}

/**
 * The scheduled send of a draft the job has marked SENDING (src/outbound/scheduled.ts): sent as it
 * stands, and marked SENT with its message in the same transaction, only if it is still SENDING then
 * (row-locked): two runs can never both send it. `scope` is the draft's organization.
 */
export async function sendScheduledDraft(
  services: Services,
  scope: TenantScope,
  draftId: string,
): Promise<Message> {
  const [draft] = await draftsByIds(services.db, scope, [draftId]);
  if (!draft) throw new DraftNoLongerSending();
  if (draft.send_status !== "SENDING") throw new DraftNoLongerSending();
  const { inbox, outgoing } = await draftOutgoing(services, scope, draft);
  return send(services, scope, inbox, outgoing, {
    // Written (or last changed) by an approval-bound key: it waits for approval instead of leaving.
    approval: { required: draft.requires_approval, heldAs: { draftId } },
    afterStore: async (trx, message) => {
      const sent = await updateDraftRow(
        trx,
        scope,
        draftId,
        { send_status: "SENT", sent_message_id: message.id, failure_reason: null },
        ["SENDING"],
      );
      if (!sent) throw new DraftNoLongerSending();
    },
  });
}

/**
 * What a draft sends: its recipients (for a reply with none, the replied-to message's sender; with
 * replyAll, also everyone else that message was addressed to), its subject (for a reply or forward
 * without one, the original's with Re:/Fwd:), its bodies, its attachments in order, and for a forward
 * the original attached whole after them. A replied-to or forwarded message that is gone or hidden from the caller is left out.
 */
async function draftOutgoing(
  services: Services,
  scope: TenantScope,
  draft: Draft,
): Promise<{ inbox: Inbox; outgoing: Outgoing }> {
  const inbox = await sendingInbox(services.db, scope, draft.inbox_id);
  const [original] = draft.in_reply_to_visible_id
    ? await messagesByIds(services.db, scope, [draft.in_reply_to_visible_id])
    : [];
  const [forwarded] = draft.forward_of_visible_id
    ? await messagesByIds(services.db, scope, [draft.forward_of_visible_id])
    : [];
  let to = draft.to_addresses;
  let cc = draft.cc_addresses;
  if (original && (draft.reply_all || to.length + cc.length + draft.bcc_addresses.length === 0)) {
    const implied = replyRecipients(original, inbox.email, draft.reply_all);
    const named = new Set([...to, ...cc].map((address) => bareAddress(address).toLowerCase()));
    const fresh = (list: readonly string[]) =>
      list.filter((address) => {
        const key = bareAddress(address).toLowerCase();
        if (named.has(key)) return false;
        named.add(key);
        return true;
      });
    const unaddressed = to.length === 0;
    to = [...to, ...fresh(unaddressed ? implied.to : [])];
    cc = [...cc, ...fresh(unaddressed ? [] : implied.to), ...fresh(implied.cc)];
  }
  const addressed = recipients({ to, cc, bcc: draft.bcc_addresses });
  const attachments: Outgoing["attachments"] = (
    await draftAttachmentContents(services.db, scope, draft.id)
  ).map((attachment) => ({
    filename: attachment.filename,
    contentType: attachment.content_type,
    content: attachment.content,
    disposition: "attachment",
  }));
  if (forwarded) {
    attachments.push({
      filename: `${fileSafe(forwarded.subject) || "forwarded message"}.eml`,
      contentType: "message/rfc822",
      content: forwarded.raw_mime ?? (await recomposed(services.db, scope, forwarded)),
      disposition: "attachment",
    });
  }
  const subject =
    draft.subject ??
    (original
      ? prefixedSubject("Re", original.subject)
      : forwarded
        ? prefixedSubject("Fwd", forwarded.subject)
        : null);
  return {
    inbox,
    outgoing: {
      ...addressed,
      replyTo: [],
      subject: validateSubject(subject),
      text: draft.text_body,
      html: draft.html_body,
      attachments,
      inReplyTo: original?.message_id_header ?? null,
      references: original ? referencesOf(original) : forwarded ? referencesOf(forwarded) : [],
      labels: [],
    },
  };
}

function bareAddress(value: string): string {
  const open = value.lastIndexOf("<");
  return value.endsWith(">") && open !== -1 ? value.slice(open + 1, -1).trim() : value.trim();
}

async function send(
  services: Services,
  scope: TenantScope,
  from: string | Inbox,
  outgoing: Outgoing,
  options: {
    /** Required: no path may send without saying whether its caller is approval-bound. */
    approval: Approval;
    idempotency?: Idempotency | undefined;
    beforeStore?: (trx: Db) => Promise<void>;
    afterStore?: (trx: Db, message: Message) => Promise<void>;
  },
): Promise<Message> {
  const { idempotency, beforeStore, afterStore, approval } = options;
  const { db, config } = services;
  const inbox = typeof from === "string" ? await sendingInbox(db, scope, from) : from;
  await checkRecipients(services, scope, inbox, outgoing);
  if (approval.required) {
    const draftId = await holdForApproval(services, scope, inbox, outgoing, approval.heldAs, idempotency);
    throw approvalRequired(draftId);
  }

  const messageIdHeader = `<${randomUUID()}@${inbox.domain}>`;
  const date = new Date();
  const raw = await compose(inbox, outgoing, messageIdHeader, date);
  if (raw.length > config.maxOutboundBytes) {
    throw badUserInput(
      `The message is ${raw.length} bytes once composed; at most ${config.maxOutboundBytes} may be sent.`,
      outgoing.attachments.length > 0 ? "attachments" : outgoing.html ? "html" : "text",
    );
  }
  const bare = (list: Mailbox[]) => list.map((mailbox) => mailbox.address);
  const names = (list: Mailbox[]) => list.map((mailbox) => mailbox.name || null);
  return db.transaction().execute(async (trx) => {
    await beforeStore?.(trx);
    const { message } = await storeMessage(
      trx,
      { orgId: inbox.org_id, podId: inbox.pod_id, inboxId: inbox.id },
      {
        messageIdHeader,
        from: inbox.email,
        fromName: inbox.display_name,
        to: bare(outgoing.to),
        toNames: names(outgoing.to),
        cc: bare(outgoing.cc),
        ccNames: names(outgoing.cc),
        bcc: bare(outgoing.bcc),
        replyTo: bare(outgoing.replyTo),
        subject: outgoing.subject,
        text: outgoing.text,
        html: outgoing.html,
        inReplyTo: outgoing.inReplyTo,
        references: outgoing.references,
        labels: ["sent", ...outgoing.labels],
        direction: "OUTBOUND",
        deliveryStatus: "QUEUED",
        rawMime: raw,
        headers: headerFields(raw),
        sizeBytes: raw.length,
        attachments: outgoing.attachments,
        createdAt: date,
      },
      "MESSAGE_SENT",
    );
    await afterStore?.(trx, message);
    // A draft held for approval and sent now: a repeat of the held call answers with this message.
    if ("draftId" in approval.heldAs)
      await recordHeldSendSent(trx, scope, approval.heldAs.draftId, message.id);
    // Last, so that the row lock on the key is held for the shortest time: a concurrent call with the
    // same key waits here for this commit, then rolls back everything it stored.
    await claimKey(trx, scope, idempotency, { messageId: message.id });
    const payload: DeliverMessagePayload = { orgId: message.org_id, messageId: message.id };
    await queueJob(trx, DELIVER_MESSAGE, { ...payload }, { maxAttempts: config.outboundMaxAttempts });
    return message;
  });
}

/**
 * Claims the send's idempotency key (if it has one) for what `trx` stored: the sent message, or the
 * draft a held send became. Another call holding the key throws IdempotencyKeyTaken: `trx` must roll
 * back, and idempotently() answers with the holder's payload.
 */
async function claimKey(
  trx: Db,
  scope: TenantScope,
  idempotency: Idempotency | undefined,
  payload: { messageId: string | null; draftId?: string },
): Promise<void> {
  if (!idempotency) return;
  const claimed = await claimIdempotencyKey(trx, scope, {
    key: idempotency.key,
    operation: idempotency.operation,
    requestHash: idempotency.hash,
    ...payload,
    ttlSeconds: IDEMPOTENCY_TTL_SECONDS,
  });
  if (!claimed) throw new IdempotencyKeyTaken();
}

/**
 * Whether the caller is approval-bound, and what its mail becomes when it is: a new draft (of a new
 * message, a reply to `inReplyTo`, a forward of `forwardOf`) or the draft being sent.
 */
interface Approval {
  required: boolean;
  heldAs: { draftId: string } | { new: { inReplyTo?: string; forwardOf?: string } };
}

/** `Name <address>`, the name quoted: the form drafts keep recipients in. */
function formatted(mailbox: Mailbox): string {
  if (!mailbox.name) return mailbox.address;
  return `"${mailbox.name.replace(/(["\\])/g, "\\$1")}" <${mailbox.address}>`;
}

/**
 * Stores an approval-bound caller's mail as a PENDING_APPROVAL draft, attachments included (or moves
 * the draft being sent there, its schedule dropped) and records DRAFT_PENDING_APPROVAL, in one
 * transaction; the draft's id. What a draft cannot hold (Reply-To, labels) is refused rather than
 * dropped. With an idempotency key, the transaction ends by claiming it for the draft: of several calls
 * with one key, one holds a draft and the others roll back and answer with that draft (idempotently).
 */
async function holdForApproval(
  services: Services,
  scope: TenantScope,
  inbox: Inbox,
  outgoing: Outgoing,
  heldAs: Approval["heldAs"],
  idempotency: Idempotency | undefined,
): Promise<string> {
  if ("new" in heldAs) {
    if (outgoing.replyTo.length > 0)
      throw badUserInput("Mail waiting for approval cannot set replyTo.", "replyTo");
    if (outgoing.labels.length > 0)
      throw badUserInput("Mail waiting for approval cannot carry labels.", "labels");
  }
  return services.db.transaction().execute(async (trx) => {
    let draftId: string;
    let changed = true;
    if ("draftId" in heldAs) {
      const [current] = await draftsByIds(trx, scope, [heldAs.draftId]);
      changed = current?.send_status !== "PENDING_APPROVAL";
      const held = await updateDraftRow(
        trx,
        scope,
        heldAs.draftId,
        { send_status: "PENDING_APPROVAL", send_at: null, failure_reason: null, requires_approval: true },
        [...OPEN_DRAFT_STATUSES, "SENDING"],
      );
      if (!held) throw notFound("Draft");
      await unscheduleDraftJob(trx, held.org_id, held.id);
      draftId = held.id;
    } else {
      const held = await insertDraft(trx, scope, inbox.id, {
        to_addresses: outgoing.to.map(formatted),
        cc_addresses: outgoing.cc.map(formatted),
        bcc_addresses: outgoing.bcc.map(formatted),
        subject: outgoing.subject,
        text_body: outgoing.text,
        html_body: outgoing.html,
        in_reply_to_message_id: heldAs.new.inReplyTo ?? null,
        forward_of_message_id: heldAs.new.forwardOf ?? null,
        reply_all: false,
        send_at: null,
        send_status: "PENDING_APPROVAL",
        failure_reason: null,
        requires_approval: true,
      });
      if (!held) throw notFound("Inbox");
      draftId = held.id;
      // A forward's only attachment is the forwarded message, which the draft names (forwardOf).
      if (heldAs.new.forwardOf === undefined && outgoing.attachments.length > 0) {
        await replaceDraftAttachments(
          trx,
          scope,
          draftId,
          outgoing.attachments.map((attachment) => ({
            filename: attachment.filename ?? "attachment",
            contentType: attachment.contentType,
            content: attachment.content,
          })),
        );
      }
    }
    if (changed) {
      await recordEvent(trx, {
        orgId: inbox.org_id,
        type: "DRAFT_PENDING_APPROVAL",
        podId: inbox.pod_id,
        inboxId: inbox.id,
        payload: { draftId: encodeGlobalID("Draft", draftId) },
      });
    }
    await claimKey(trx, scope, idempotency, { messageId: null, draftId });
    return draftId;
  });
}

async function sendingInbox(db: Db, scope: TenantScope, inboxId: string): Promise<Inbox> {
  const [inbox] = await inboxesByIds(db, scope, [inboxId]);
  if (!inbox) throw notFound("Inbox");
  return inbox;
}

async function visibleMessage(db: Db, scope: TenantScope, id: string): Promise<Message> {
  const [message] = await messagesByIds(db, scope, [id]);
  if (!message) throw notFound("Message");
  return message;
}

/**
 * The sender's rules, recipient by recipient (the field of the first offender is named): an
 * unverified agent organization writes only to its human; SEND list entries of the organization,
 * the inbox's pod and the inbox (a BLOCK entry refuses an address or domain; ALLOW entries, when
 * there are any, refuse everyone they do not name); and without a relay, only hosted inboxes.
 */
async function checkRecipients(services: Services, scope: TenantScope, inbox: Inbox, outgoing: Outgoing) {
  const { db, config } = services;
  const all = (["to", "cc", "bcc"] as const).flatMap((field) =>
    outgoing[field].map((mailbox) => ({
      field,
      address: mailbox.address,
      key: mailbox.address.toLowerCase(),
    })),
  );
  const policy = await sendingPolicy(db, scope);
  if (policy?.status === "AGENT_UNVERIFIED") {
    const outsider = all.find((recipient) => recipient.key !== policy.humanEmail);
    if (outsider) {
      throw badUserInput(
        `${outsider.field}: until the organization is verified it may send only to the address that signed it up.`,
        outsider.field,
      );
    }
  }
  const entries = await listEntriesFor(db, inbox.org_id, inbox.pod_id, inbox.id, "SEND");
  const blocked = all.filter((recipient) => listRefusal(entries, [recipient.key]) === "BLOCK");
  if (blocked.length > 0) {
    throw recipientBlocked([...new Set(blocked.map((recipient) => recipient.key))], blocked[0]?.field);
  }
  for (const recipient of all) {
    const refusal = listRefusal(entries, [recipient.key]);
    if (refusal === "NOT_ALLOWED") {
      throw badUserInput(
        `${recipient.field}: ${recipient.address} is not on the send allow-list.`,
        recipient.field,
      );
    }
  }
  const hosted = await hostedInboxesByAddress(
    db,
    config.mailDomain,
    all.map((recipient) => recipient.key),
  );
  const emails = new Set(hosted.map((hostedInbox) => hostedInbox.email));
  for (const recipient of all) {
    if (emails.has(recipient.key)) continue;
    // Our own domain: no relay would deliver it anywhere but back here, where it does not exist.
    if (domainOf(recipient.key) === config.mailDomain) {
      throw badUserInput(`${recipient.field}: there is no inbox ${recipient.address}.`, recipient.field);
    }
    if (outboundRoute(config) === "refuse") {
      throw badUserInput(
        `${recipient.field}: ${recipient.address} is not hosted here, and mail to other addresses is refused on this server (no SMTP relay is configured).`,
        recipient.field,
      );
    }
  }
}

/** A send to addresses on a SEND BLOCK list: every such recipient named, nothing stored. */
function recipientBlocked(addresses: string[], field: string | undefined): GraphQLError {
  return new GraphQLError(
    `${addresses.join(", ")} ${addresses.length === 1 ? "is" : "are"} blocked for sending (a SEND BLOCK list entry; a suppression after a permanent failure is one too).`,
    { extensions: { code: "RECIPIENT_BLOCKED", recipients: addresses, field } },
  );
}

function recipients(input: { to: Addresses; cc?: Addresses; bcc?: Addresses }) {
  const addressed = {
    to: mailboxes("to", input.to),
    cc: mailboxes("cc", input.cc),
    bcc: mailboxes("bcc", input.bcc),
  };
  if (addressed.to.length + addressed.cc.length + addressed.bcc.length === 0) {
    throw badUserInput("At least one recipient is required.", "to");
  }
  return addressed;
}

/** Checked addresses of one field (BAD_USER_INPUT naming it), split into display name and address. */
function mailboxes(field: RecipientField | "replyTo", list: Addresses): Mailbox[] {
  return validateRecipients(field, list).map((value) => {
    const open = value.lastIndexOf("<");
    if (!value.endsWith(">") || open === -1) return { name: "", address: value };
    let name = value.slice(0, open).trim();
    if (name.length >= 2 && name.startsWith('"') && name.endsWith('"')) {
      name = name.slice(1, -1).replace(/\\(.)/g, "$1");
    }
    return { name, address: value.slice(open + 1, -1).trim() };
  });
}

function userLabels(labels: readonly string[] | null | undefined): string[] {
  const list = normaliseLabels(labels, "labels");
  const reserved = list.find((label) => RESERVED_LABELS.has(label));
  if (reserved)
    throw badUserInput(`"${reserved}" is a system label: it cannot be set on a message sent.`, "labels");
  return list;
}
