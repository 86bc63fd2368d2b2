// Storing a message: threading, the message, its attachments, the thread's activity and the
// event, in the caller's transaction. Mail arrives for an inbox (found by its address), so this acts
// for the system and takes the inbox's own ids rather than a caller's TenantScope.
import { sql } from "kysely";
import type { Db } from "../db/database.ts";
import type { EventType } from "../db/types.ts";
import { recordEvent } from "../events/outbox.ts";
import { hasHidingLabel, type Message, refreshThreadVisibility } from "./repository.ts";

export interface InboxRef {
  orgId: string;
  podId: string;
  inboxId: string;
}

export interface AttachmentData {
  filename: string | null;
  contentType: string;
  content: Buffer;
  contentId?: string | null | undefined;
  disposition?: string | null | undefined;
}

export interface MessageData {
  messageIdHeader: string;
  from: string;
  to: readonly string[];
  cc?: readonly string[] | undefined;
  bcc?: readonly string[] | undefined;
  replyTo?: readonly string[] | undefined;
  subject: string | null;
  text: string | null;
  html: string | null;
  inReplyTo: string | null;
  references: readonly string[];
  labels: readonly string[];
  direction: "INBOUND" | "OUTBOUND";
  deliveryStatus?: "QUEUED" | "DELIVERED" | "BOUNCED" | null | undefined;
  rawMime?: Buffer | null | undefined;
  sizeBytes: number;
  attachments?: readonly AttachmentData[] | undefined;
  createdAt?: Date | undefined;
}

const PREVIEW_LENGTH = 200;

export function previewOf(text: string | null, html: string | null): string | null {
  const source =
    text ??
    html
      ?.replace(/<(style|script)[^>]*>[\s\S]*?<\/\1>/gi, " ")
      .replace(/<[^>]+>/g, " ")
      .replace(/&nbsp;/g, " ") ??
    null;
  if (source === null) return null;
  const collapsed = source.replace(/\s+/g, " ").trim();
  return collapsed.length > PREVIEW_LENGTH ? `${collapsed.slice(0, PREVIEW_LENGTH - 1)}…` : collapsed;
}

/** The thread a message belongs to: the one holding a message it replies to or references, in this inbox. */
async function findThread(trx: Db, inbox: InboxRef, data: MessageData): Promise<string | undefined> {
  const candidates = [
    ...new Set([data.inReplyTo, ...[...data.references].reverse()].filter((id): id is string => !!id)),
  ];
  if (candidates.length === 0) return undefined;
  const row = await trx
    .selectFrom("messages")
    .select("thread_id")
    .where("org_id", "=", inbox.orgId)
    .where("inbox_id", "=", inbox.inboxId)
    .where("message_id_header", "in", candidates.slice(0, 100))
    .orderBy("created_at", "desc")
    .limit(1)
    .executeTakeFirst();
  return row?.thread_id;
}

export interface StoredMessage {
  message: Message;
  /** False when this exact message was already stored (a retried delivery): nothing was written. */
  created: boolean;
}

/**
 * Stores a message in an inbox. A retry of a message already stored (same Message-ID and direction
 * in this inbox) stores nothing and returns the original, so an SMTP sender that missed our 250
 * and sends again does not create a duplicate.
 */
export async function storeMessage(
  trx: Db,
  inbox: InboxRef,
  data: MessageData,
  event: EventType,
): Promise<StoredMessage> {
  const existing = await trx
    .selectFrom("messages")
    .selectAll()
    .where("org_id", "=", inbox.orgId)
    .where("inbox_id", "=", inbox.inboxId)
    .where("message_id_header", "=", data.messageIdHeader)
    .where("direction", "=", data.direction)
    .executeTakeFirst();
  if (existing) return { message: existing, created: false };

  const createdAt = data.createdAt ?? new Date();
  let marked = false;
  let threadId = await findThread(trx, inbox, data);
  if (threadId === undefined) {
    const thread = await trx
      .insertInto("threads")
      .values({
        org_id: inbox.orgId,
        pod_id: inbox.podId,
        inbox_id: inbox.inboxId,
        subject: data.subject,
        created_at: createdAt,
        last_message_at: createdAt,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    threadId = thread.id;
  } else {
    // Also tells whether the thread holds spam, blocked or trash mail (a thread_visibility mark).
    const updated = await trx
      .updateTable("threads")
      .set({ last_message_at: sql`greatest(last_message_at, ${createdAt})` })
      .where("org_id", "=", inbox.orgId)
      .where("id", "=", threadId)
      .returning(
        sql<boolean>`EXISTS (SELECT 1 FROM thread_visibility v
          WHERE v.org_id = threads.org_id AND v.thread_id = threads.id AND v.hidden_mask = 0)`.as("marked"),
      )
      .executeTakeFirst();
    marked = updated?.marked === true;
  }

  const message = await trx
    .insertInto("messages")
    .values({
      org_id: inbox.orgId,
      pod_id: inbox.podId,
      inbox_id: inbox.inboxId,
      thread_id: threadId,
      message_id_header: data.messageIdHeader,
      from_address: data.from,
      to_addresses: [...data.to],
      cc_addresses: [...(data.cc ?? [])],
      bcc_addresses: [...(data.bcc ?? [])],
      reply_to_addresses: [...(data.replyTo ?? [])],
      subject: data.subject,
      text_body: data.text,
      html_body: data.html,
      preview: previewOf(data.text, data.html),
      labels: [...new Set(data.labels)].sort(),
      in_reply_to: data.inReplyTo,
      reference_ids: [...data.references],
      direction: data.direction,
      delivery_status: data.deliveryStatus ?? null,
      size_bytes: data.sizeBytes,
      raw_mime: data.rawMime ?? null,
      created_at: createdAt,
      updated_at: createdAt,
    })
    .returningAll()
    .executeTakeFirstOrThrow();

  if (data.attachments?.length) {
    await trx
      .insertInto("attachments")
      .values(
        data.attachments.map((attachment) => ({
          org_id: inbox.orgId,
          message_id: message.id,
          filename: attachment.filename,
          content_type: attachment.contentType,
          size_bytes: attachment.content.length,
          content_id: attachment.contentId ?? null,
          disposition: attachment.disposition ?? null,
          content: attachment.content,
        })),
      )
      .execute();
  }

  if (marked || hasHidingLabel(data.labels)) await refreshThreadVisibility(trx, inbox.orgId, [threadId]);

  // Last, so the per-organization ordering lock it takes is held as briefly as possible.
  await recordEvent(trx, {
    orgId: inbox.orgId,
    type: event,
    podId: inbox.podId,
    inboxId: inbox.inboxId,
    threadId,
    messageId: message.id,
  });
  return { message, created: true };
}
