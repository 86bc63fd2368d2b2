// Storing messages: the message, its attachments, its thread (as threading.ts plans it), the thread's
// activity and the event, in the caller's transaction. Mail arrives for an inbox (found by its address), so this acts
// for the system and takes the inbox's own ids rather than a caller's TenantScope.
import { sql } from "kysely";
import { CUSTOM_PLAN, type Db, QUEUES_JOBS } from "../db/database.ts";
import type { EventType } from "../db/types.ts";
import { eventWrites } from "../events/outbox.ts";
import type { InboxRef, MessageData, NewMessage, StoredCopy } from "./message.ts";
import { MESSAGE_ROW_COLUMNS, type Message } from "./repository.ts";
import { refreshThreadVisibility } from "./thread-repository.ts";
import {
  digestOf,
  type Known,
  type Plan,
  planCopies,
  type ThreadSlot,
  threadCandidates,
} from "./threading.ts";
import { hasHidingLabel } from "./visibility.ts";

const PREVIEW_LENGTH = 200;

/** The To and Cc recipients, addresses and names, as one lower-case text for MessageFilter's `to`. */
export function recipientText(data: MessageData): string {
  return [...data.to, ...(data.cc ?? []), ...(data.toNames ?? []), ...(data.ccNames ?? [])]
    .filter((part): part is string => !!part)
    .join(" ")
    .toLowerCase();
}

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

export interface StoredMessage {
  message: Message;
  /** False when this exact message was already stored (a retried delivery): nothing was written. */
  created: boolean;
}

/**
 * Stores a message in an inbox, with its event. A retry of a message already stored (same
 * Message-ID, content digest and direction in this inbox) stores nothing and returns the original,
 * so an SMTP sender that missed our 250 and sends again does not create a duplicate.
 *
 * Writers of one organization are not serialized (docs/events.md, "Order without a lock"): two
 * transactions storing the same message at once both miss the other's copy, and the later to insert
 * fails on the messages' unique key (its caller retries, and then finds the first copy).
 */
export async function storeMessage(
  trx: Db,
  inbox: InboxRef,
  data: MessageData,
  event: EventType,
): Promise<StoredMessage> {
  const [copy] = (await storeMessages(trx, [{ inbox, data }], event)) as [StoredCopy];
  const message = await trx
    .selectFrom("messages")
    .select(MESSAGE_ROW_COLUMNS)
    .where("org_id", "=", inbox.orgId)
    .where("id", "=", copy.messageId)
    .executeTakeFirstOrThrow();
  return { message, created: copy.created };
}

/**
 * Stores messages, each with an `event` (message.received, message.sent), in order, with two
 * statements however many there are (a batch of inbound mail shares one transaction; only one over
 * STATEMENT_BYTES or STATEMENT_MESSAGES takes two more per part). Each is stored as if alone, one
 * after the other:
 * - a message whose Message-ID, content digest and direction its inbox already holds, in the
 *   database or earlier in `messages`, is not stored again (`created: false`, with the first
 *   copy's ids); another message with that Message-ID is stored beside it;
 * - a message joins the thread of the most recent message of its inbox that it replies to or
 *   references (an earlier one in `messages` is the most recent), else starts a thread.
 * Concurrent writers: see storeMessage.
 */
export async function storeMessages(
  trx: Db,
  messages: readonly NewMessage[],
  event: EventType,
): Promise<StoredCopy[]> {
  const copies: StoredCopy[] = [];
  // Each part sees what the parts before it wrote, so the rules hold across parts too.
  for (const part of partsOf(messages)) copies.push(...(await storeInOneGo(trx, part, event)));
  return copies;
}

/**
 * Bytes one statement carries at most (PostgreSQL refuses a message over 1 GB): a message to 100
 * inboxes is 100 copies of its bytes. A larger single message goes alone.
 */
const STATEMENT_BYTES = 32 * 1024 * 1024;
/**
 * Messages one statement carries at most: each takes 25 bind parameters (its attachments go in
 * arrays of their own), and a statement takes at most 65,535.
 */
const STATEMENT_MESSAGES = 1_000;

function partsOf(messages: readonly NewMessage[]): NewMessage[][] {
  const parts: NewMessage[][] = [];
  let part: NewMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const { data } = message;
    const size =
      (data.rawMime?.length ?? 0) +
      (data.attachments ?? []).reduce((sum, attachment) => sum + attachment.content.length, 0) +
      (data.text?.length ?? 0) +
      (data.html?.length ?? 0);
    if (part.length > 0 && (bytes + size > STATEMENT_BYTES || part.length === STATEMENT_MESSAGES)) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(message);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

async function storeInOneGo(
  trx: Db,
  messages: readonly NewMessage[],
  event: EventType,
): Promise<StoredCopy[]> {
  const known = await knownMessages(trx, messages);
  const { plans, newThreads, existingThreads } = planCopies(messages, known, new Date());
  const written = await writeMessages(trx, messages, plans, newThreads, existingThreads, event);
  await refreshVisibility(trx, messages, plans, written);
  const copies: StoredCopy[] = [];
  plans.forEach((plan, index) => {
    if (plan.kind === "stored") copies.push(plan.copy);
    else if (plan.kind === "same-as") copies.push({ ...(copies[plan.index] as StoredCopy), created: false });
    else {
      const { messageId, threadId } = written.get(index) as Written;
      copies.push({ messageId, threadId, labels: plan.labels, created: true });
    }
  });
  return copies;
}

/** For every message at once: whether its inbox holds it already, and which thread it would join. */
async function knownMessages(trx: Db, messages: readonly NewMessage[]): Promise<Known> {
  const { rows } = await messageLookups(messages).execute(trx);
  const known: Known = { duplicates: new Map(), threads: new Map() };
  for (const row of rows) {
    if (row.kind === "duplicate") {
      known.duplicates.set(row.index, {
        messageId: row.id,
        threadId: row.threadId,
        labels: row.labels ?? [],
      });
    } else {
      known.threads.set(row.index, row.threadId);
    }
  }
  return known;
}

/**
 * The statement knownMessages runs: for each message (by its index), the copy its inbox already
 * holds (`duplicate`) and the thread of the latest message it cites there (`thread`). Planned for
 * its values each time (CUSTOM_PLAN): a plan kept from while the inbox was empty cannot tell the
 * Message-ID key from the indexes the organization's lists are read by (test/message-lookup-plan).
 */
export function messageLookups(messages: readonly NewMessage[]) {
  const own = { index: [] as number[], org: [] as string[], inbox: [] as string[], header: [] as string[] };
  const direction: string[] = [];
  const digest: Buffer[] = [];
  const cited = { index: [] as number[], org: [] as string[], inbox: [] as string[], header: [] as string[] };
  messages.forEach(({ inbox, data }, index) => {
    own.index.push(index);
    own.org.push(inbox.orgId);
    own.inbox.push(inbox.inboxId);
    own.header.push(data.messageIdHeader);
    direction.push(data.direction);
    digest.push(digestOf(data));
    for (const candidate of threadCandidates(data)) {
      cited.index.push(index);
      cited.org.push(inbox.orgId);
      cited.inbox.push(inbox.inboxId);
      cited.header.push(candidate);
    }
  });
  return sql<{
    kind: "duplicate" | "thread";
    index: number;
    id: string;
    threadId: string;
    labels: string[] | null;
  }>`
    SELECT 'duplicate' AS kind, i.index, m.id, m.thread_id AS "threadId", m.labels
    FROM unnest(${own.index}::int[], ${own.org}::bigint[], ${own.inbox}::bigint[], ${own.header}::text[],
      ${direction}::text[], ${digest}::bytea[]) AS i(index, org_id, inbox_id, message_id_header, direction, digest)
    CROSS JOIN LATERAL (
      -- By the Message-ID, in the key that leads with it (db/migrations/…_message_id_lookup.ts); the
      -- inbox is compared as an expression so that no (org_id, inbox_id) index looks usable: with a
      -- low estimate of an inbox's size the planner would take one and filter the whole inbox. (LIMIT
      -- keeps each lookup a lookup: without it a join may be planned, and a young table scanned.)
      SELECT id, thread_id, labels FROM messages
      WHERE org_id = i.org_id AND message_id_header = i.message_id_header AND direction = i.direction
        AND inbox_id + 0 = i.inbox_id AND content_digest = i.digest
      LIMIT 1
    ) AS m
    UNION ALL (
      SELECT DISTINCT ON (c.index) 'thread', c.index, m.id, m.thread_id, NULL
      FROM unnest(${cited.index}::int[], ${cited.org}::bigint[], ${cited.inbox}::bigint[], ${cited.header}::text[])
        AS c(index, org_id, inbox_id, message_id_header)
      CROSS JOIN LATERAL (
        SELECT id, thread_id, created_at FROM messages
        WHERE org_id = c.org_id AND message_id_header = c.message_id_header AND inbox_id + 0 = c.inbox_id
        ORDER BY created_at DESC, id DESC
        LIMIT 1
      ) AS m
      ORDER BY c.index, m.created_at DESC, m.id DESC
    ) ${CUSTOM_PLAN}`;
}

type Written = Pick<StoredCopy, "messageId" | "threadId"> & {
  /** The thread already held spam, blocked or trash mail (it has thread_visibility rows). */
  marked: boolean;
};

/**
 * Rebuilds thread_visibility for the threads whose place a hidden-label caller sees can move: those
 * getting a spam, blocked or trash message, and those that held such mail already. Clean mail in
 * clean threads, nearly all of it, costs nothing more.
 */
async function refreshVisibility(
  trx: Db,
  messages: readonly NewMessage[],
  plans: readonly Plan[],
  written: ReadonlyMap<number, Written>,
): Promise<void> {
  const byOrg = new Map<string, string[]>();
  plans.forEach((plan, index) => {
    const copy = written.get(index);
    if (plan.kind !== "create" || !copy || !(copy.marked || hasHidingLabel(plan.labels))) return;
    const orgId = (messages[index] as NewMessage).inbox.orgId;
    const threadIds = byOrg.get(orgId);
    if (threadIds) threadIds.push(copy.threadId);
    else byOrg.set(orgId, [copy.threadId]);
  });
  for (const [orgId, threadIds] of byOrg) await refreshThreadVisibility(trx, orgId, threadIds);
}

/**
 * One statement writes every planned row: the new threads, the activity of existing ones, the
 * messages, their attachments and their events. Ids are drawn (nextval) in materialized CTEs before the rows are
 * inserted, so each message knows its new thread's id, each attachment its message's id, and the
 * caller each message's ids, without relying on the order in which an INSERT returns rows.
 * Foreign keys between rows of one statement are checked at its end, when all of them exist.
 */
async function writeMessages(
  trx: Db,
  messages: readonly NewMessage[],
  plans: readonly Plan[],
  newThreads: readonly ThreadSlot[],
  existingThreads: readonly ThreadSlot[],
  event: EventType,
): Promise<Map<number, Written>> {
  const written = new Map<number, Written>();
  const created = plans.flatMap((plan, index) => (plan.kind === "create" ? [{ plan, index }] : []));
  if (created.length === 0) return written;
  const slots = new Map(newThreads.map((thread, slot) => [thread, slot + 1]));
  const messageRows = created.map(({ plan, index }) => {
    const { inbox, data } = messages[index] as NewMessage;
    const slot = slots.get(plan.thread) ?? null;
    return sql`(${index}::int, ${slot}::int, ${slot === null ? (plan.thread.id as string) : null}::bigint,
      ${inbox.orgId}::bigint, ${inbox.podId}::bigint, ${inbox.inboxId}::bigint, ${data.messageIdHeader}::text,
      ${digestOf(data)}::bytea,
      ${data.from}::text, ${[...data.to]}::text[], ${[...(data.cc ?? [])]}::text[], ${[...(data.bcc ?? [])]}::text[],
      ${[...(data.replyTo ?? [])]}::text[], ${data.subject}::text, ${data.text}::text, ${data.html}::text,
      ${previewOf(data.text, data.html)}::text, ${plan.labels}::text[], ${data.inReplyTo}::text,
      ${[...data.references]}::text[], ${data.direction}::text, ${data.deliveryStatus ?? null}::text,
      ${data.sizeBytes}::int, ${data.rawMime ?? null}::bytea, ${plan.createdAt}::timestamptz,
      ${data.fromName ?? null}::text, ${data.toNames ? [...data.toNames] : null}::text[],
      ${data.ccNames ? [...data.ccNames] : null}::text[],
      ${data.headers ? JSON.stringify(data.headers) : null}::jsonb,
      ${(data.attachments?.length ?? 0) > 0}::boolean, ${recipientText(data)}::text,
      ${(data.attachments ?? []).map((attachment) => attachment.filename)}::text[],
      ${data.authentication ? JSON.stringify(data.authentication) : null}::jsonb,
      ${data.authentication ? data.authentication.authenticated : null}::boolean)`;
  });
  // In arrays, not rows of VALUES: a message may carry thousands of attachments, each copy of it
  // all of them, and a statement only 65,535 parameters.
  const attachments = created.flatMap(({ index }) =>
    ((messages[index] as NewMessage).data.attachments ?? []).map((attachment) => ({ index, attachment })),
  );
  const attachmentWrites =
    attachments.length === 0
      ? sql``
      : sql`, inserted_attachments AS (
          INSERT INTO attachments (org_id, message_id, filename, content_type, size_bytes, content_id, disposition, content)
          SELECT m.org_id, m.id, a.filename, a.content_type, length(a.content), a.content_id, a.disposition, a.content
          FROM unnest(${attachments.map((a) => a.index)}::int[], ${attachments.map((a) => a.attachment.filename)}::text[],
            ${attachments.map((a) => a.attachment.contentType)}::text[],
            ${attachments.map((a) => a.attachment.contentId ?? null)}::text[],
            ${attachments.map((a) => a.attachment.disposition ?? null)}::text[],
            ${attachments.map((a) => a.attachment.content)}::bytea[])
            WITH ORDINALITY AS a(index, filename, content_type, content_id, disposition, content, ord)
          JOIN new_messages m ON m.index = a.index
          ORDER BY a.ord
        )`;
  const { rows } = await sql<{ index: number; id: string; threadId: string; marked: boolean }>`${QUEUES_JOBS}
    WITH new_threads AS MATERIALIZED (
      SELECT nextval(pg_get_serial_sequence('threads', 'id')) AS id, t.*
      FROM (
        SELECT * FROM unnest(
          ${newThreads.map((t) => t.inbox.orgId)}::bigint[], ${newThreads.map((t) => t.inbox.podId)}::bigint[],
          ${newThreads.map((t) => t.inbox.inboxId)}::bigint[], ${newThreads.map((t) => t.subject)}::text[],
          ${newThreads.map((t) => t.createdAt)}::timestamptz[],
          ${newThreads.map((t) => t.lastMessageAt)}::timestamptz[]
        ) WITH ORDINALITY AS t(org_id, pod_id, inbox_id, subject, created_at, last_message_at, slot)
        ORDER BY slot
      ) AS t
    ), inserted_threads AS (
      INSERT INTO threads (org_id, id, pod_id, inbox_id, subject, created_at, last_message_at)
      OVERRIDING SYSTEM VALUE
      SELECT org_id, id, pod_id, inbox_id, subject, created_at, last_message_at FROM new_threads
    ), touched_threads AS (
      -- New activity in existing threads: last_message_at moves forward, never back.
      UPDATE threads t SET last_message_at = greatest(t.last_message_at, v.at)
      FROM unnest(${existingThreads.map((t) => t.inbox.orgId)}::bigint[],
        ${existingThreads.map((t) => t.id)}::bigint[], ${existingThreads.map((t) => t.lastMessageAt)}::timestamptz[])
        AS v(org_id, id, at)
      WHERE t.org_id = v.org_id AND t.id = v.id
    ), new_messages AS MATERIALIZED (
      SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS id, m.*
      FROM (
        SELECT v.*, coalesce(v.known_thread_id, t.id) AS thread_id
        FROM (VALUES ${sql.join(messageRows)}) AS v(index, slot, known_thread_id, org_id, pod_id, inbox_id,
          message_id_header, content_digest, from_address, to_addresses, cc_addresses, bcc_addresses, reply_to_addresses, subject,
          text_body, html_body, preview, labels, in_reply_to, reference_ids, direction, delivery_status, size_bytes,
          raw_mime, created_at, from_name, to_names, cc_names, headers, has_attachments, recipient_text, filenames,
          authentication, authenticated)
        LEFT JOIN new_threads t ON t.slot = v.slot
        ORDER BY v.index
      ) AS m
    ), inserted_messages AS (
      INSERT INTO messages (org_id, id, pod_id, inbox_id, thread_id, message_id_header, content_digest, from_address,
        to_addresses, cc_addresses, bcc_addresses, reply_to_addresses, subject, text_body, html_body, preview, labels,
        in_reply_to, reference_ids, direction, delivery_status, size_bytes, raw_mime, created_at, updated_at,
        from_name, to_names, cc_names, headers, has_attachments, recipient_text, search_vector, authentication,
        authenticated)
      OVERRIDING SYSTEM VALUE
      SELECT org_id, id, pod_id, inbox_id, thread_id, message_id_header, content_digest, from_address, to_addresses,
        cc_addresses, bcc_addresses, reply_to_addresses, subject, text_body, html_body, preview, labels, in_reply_to,
        reference_ids, direction, delivery_status, size_bytes, raw_mime, created_at, created_at,
        from_name, to_names, cc_names, headers, has_attachments, recipient_text,
        -- What searchMessages finds the message by (docs/search.md): defined once, in the database.
        mail_search_vector(subject, from_address, from_name, to_addresses, to_names, cc_addresses, cc_names,
          filenames, text_body, html_body),
        authentication, authenticated
      FROM new_messages
    )${attachmentWrites}, ${eventWrites(sql`
      SELECT org_id, ${event}::text AS type, pod_id, inbox_id, thread_id, id AS message_id, NULL::bigint AS domain_id,
        '{}'::jsonb AS payload, NULL::timestamptz AS created_at, labels AS message_labels, index AS ord
      FROM new_messages`)}
    SELECT index, id, thread_id AS "threadId", (SELECT jobs FROM queued_webhook_jobs) AS jobs_queued,
      EXISTS (SELECT 1 FROM thread_visibility v
        WHERE v.org_id = new_messages.org_id AND v.thread_id = new_messages.thread_id AND v.hidden_mask = 0) AS marked
    FROM new_messages`.execute(trx);
  for (const row of rows) {
    written.set(row.index, { messageId: row.id, threadId: row.threadId, marked: row.marked });
  }
  return written;
}
