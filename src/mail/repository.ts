// Messages and attachments: SQL only. Every read applies the caller's TenantScope in SQL, including
// its hidden labels (visibility.ts): a message carrying one is invisible. Bodies, raw MIME and
// attachment content are read only when asked for.
import { type Selectable, type SqlBool, sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import { CUSTOM_PLAN, type Db } from "../db/database.ts";
import { type KeysetPage, pageByTime, type TimeKey, timeKey } from "../db/keyset.ts";
import { type Placeholders, shapedStatement } from "../db/shaped.ts";
import type { AttachmentTable, MessageAuthenticationData, MessageTable } from "../db/types.ts";
import { type HeaderField, headerFields } from "./headers.ts";
import { messageConditions } from "./message-filter.ts";
import {
  filterAsksForHiddenLabel,
  type ListFilter,
  type ScopeShape,
  scopeShape,
  scopeValues,
  shapedScope,
  textArray,
  visible,
} from "./visibility.ts";

export type Message = Selectable<MessageTable>;

/**
 * A message as lists and GraphQL read it: every column but the bodies and the raw MIME, which can be
 * large and are loaded only when a field asks for them (messageBodies), and instead the bodies' sizes,
 * so a response can refuse a body it has no room for before reading it; nor the content digest,
 * which only duplicate detection reads, the header fields (read when asked for) or the recipients'
 * filter text. Rows read whole carry the bodies themselves; a row that read neither has neither.
 */
export type MessageSummary = Omit<
  Message,
  | "text_body"
  | "html_body"
  | "raw_mime"
  | "content_digest"
  | "headers"
  | "recipient_text"
  | "authentication"
  | "authenticated"
> &
  Partial<Pick<Message, "text_body" | "html_body">> &
  Partial<Record<BodySizeColumn, number | null>>;

export type MessageBody = "text_body" | "html_body";

/** Bytes (UTF-8) of a body, null when there is none. */
export type BodySizeColumn = "text_body_bytes" | "html_body_bytes";

export type Attachment = Omit<Selectable<AttachmentTable>, "content"> & { content?: Buffer };

/** Messages are listed in time order, (created_at, id): a thread's oldest first, other lists newest first. */
export type MessageKey = TimeKey;

export const messageKey = (message: Pick<Message, "created_at" | "id">): MessageKey =>
  timeKey(message.created_at, message.id);

/**
 * Computed columns: a body's size. octet_length reads it from the stored value's header (TOAST keeps
 * the raw size in its pointer), so knowing a 25 MB body's size costs nothing like reading it.
 */
const BODY_SIZES: Record<BodySizeColumn, MessageBody> = {
  text_body_bytes: "text_body",
  html_body_bytes: "html_body",
};

export const SUMMARY_COLUMNS = [
  "org_id",
  "id",
  "pod_id",
  "inbox_id",
  "thread_id",
  "message_id_header",
  "from_address",
  "from_name",
  "to_addresses",
  "to_names",
  "cc_addresses",
  "cc_names",
  "bcc_addresses",
  "reply_to_addresses",
  "subject",
  "preview",
  "labels",
  "in_reply_to",
  "reference_ids",
  "direction",
  "delivery_status",
  "delivery_error",
  "delivered_at",
  "size_bytes",
  "has_attachments",
  "created_at",
  "updated_at",
  "text_body_bytes",
  "html_body_bytes",
] as const satisfies readonly (keyof MessageSummary)[];

export type MessageColumn = (typeof SUMMARY_COLUMNS)[number];

/** A column as the select list of message alias `m` reads it. */
function columnSql(column: MessageColumn) {
  const body = BODY_SIZES[column as BodySizeColumn];
  return body === undefined
    ? sql.ref(`m.${column}`).as(column)
    : sql<number | null>`octet_length(${sql.ref(`m.${body}`)})`.as(column);
}

/** The select list of a summary of message alias `m` (or of `columns` of it). */
export function summarySelection(columns: readonly MessageColumn[] = SUMMARY_COLUMNS) {
  return columns.map(columnSql);
}

/** Read by every list whatever its selection: keys, cursors and the parents of nested fields. */
const KEY_COLUMNS: readonly MessageColumn[] = [
  "org_id",
  "id",
  "pod_id",
  "inbox_id",
  "thread_id",
  "created_at",
];

/**
 * A list's columns: the key columns and `wanted`. A row read this way carries only those columns,
 * so it must only reach the fields its selection asked for (src/schema/message.ts).
 */
function listColumns(wanted: readonly MessageColumn[]): MessageColumn[] {
  return [...new Set([...KEY_COLUMNS, ...wanted])];
}

function scopedMessages(db: Db, scope: TenantScope) {
  return db.selectFrom("messages as m").where(() => visible(scope));
}

/**
 * Every column of a message row that db/types.ts declares (the compiler checks the list is whole).
 * Whole rows are read by name, not as `m.*`, which would also read `search_vector`: as large as the
 * text it indexes, and of use only to searchMessages, inside the database (docs/search.md).
 */
const MESSAGE_ROW: Record<keyof MessageTable, true> = {
  org_id: true,
  id: true,
  pod_id: true,
  inbox_id: true,
  thread_id: true,
  message_id_header: true,
  content_digest: true,
  from_address: true,
  from_name: true,
  to_addresses: true,
  to_names: true,
  cc_names: true,
  cc_addresses: true,
  bcc_addresses: true,
  reply_to_addresses: true,
  subject: true,
  text_body: true,
  html_body: true,
  preview: true,
  labels: true,
  in_reply_to: true,
  reference_ids: true,
  direction: true,
  delivery_status: true,
  delivery_error: true,
  delivered_at: true,
  size_bytes: true,
  raw_mime: true,
  headers: true,
  has_attachments: true,
  recipient_text: true,
  authentication: true,
  authenticated: true,
  created_at: true,
  updated_at: true,
};
export const MESSAGE_ROW_COLUMNS = Object.keys(MESSAGE_ROW) as (keyof MessageTable)[];

/** Whole rows, bodies and raw MIME included: for services that compose or forward mail. */
export async function messagesByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<Message[]> {
  if (ids.length === 0) return [];
  return scopedMessages(db, scope)
    .select(MESSAGE_ROW_COLUMNS.map((column) => `m.${column}` as const))
    .where("m.id", "in", ids)
    .execute();
}

export async function messageSummariesByIds(
  db: Db,
  scope: TenantScope,
  ids: readonly string[],
): Promise<MessageSummary[]> {
  if (ids.length === 0) return [];
  return (await scopedMessages(db, scope)
    .select(summarySelection())
    .where("m.id", "in", ids)
    .execute()) as unknown as MessageSummary[];
}

/**
 * Bodies of visible messages, each only if asked for: `wanted` pairs a message id with the body to
 * read. Keyed `${body}:${id}`. A body not asked for stays where it is (a CASE that yields NULL never
 * reads the stored value).
 */
export async function messageBodies(
  db: Db,
  scope: TenantScope,
  wanted: readonly { id: string; body: MessageBody }[],
): Promise<Map<string, string | null>> {
  if (wanted.length === 0) return new Map();
  const ids = (body: MessageBody) => wanted.flatMap((want) => (want.body === body ? [want.id] : []));
  const read = (body: MessageBody) =>
    sql<string | null>`CASE WHEN m.id = ANY(${ids(body)}::bigint[]) THEN ${sql.ref(`m.${body}`)} END`.as(
      body,
    );
  const rows = await scopedMessages(db, scope)
    .select(["m.id", read("text_body"), read("html_body")])
    .where(
      "m.id",
      "in",
      wanted.map((want) => want.id),
    )
    .execute();
  const bodies = new Map<string, string | null>();
  for (const row of rows) {
    for (const body of ["text_body", "html_body"] as const) bodies.set(`${body}:${row.id}`, row[body]);
  }
  return bodies;
}

/** At most this much of a raw message is read for the header block of one stored without its fields. */
const HEADER_BLOCK_BYTES = 256 * 1024;

/**
 * Every header field of visible messages, in order, keyed by id: as stored, or for a message stored
 * before its fields were kept, read from the start of its raw bytes (only that much is read).
 */
export async function messageHeaders(
  db: Db,
  scope: TenantScope,
  ids: readonly string[],
): Promise<Map<string, HeaderField[]>> {
  if (ids.length === 0) return new Map();
  const rows = await scopedMessages(db, scope)
    .select([
      "m.id",
      "m.headers",
      sql<Buffer | null>`CASE WHEN m.headers IS NULL THEN substring(m.raw_mime FROM 1 FOR ${HEADER_BLOCK_BYTES}) END`.as(
        "head",
      ),
    ])
    .where("m.id", "in", ids)
    .execute();
  return new Map(
    rows.map(
      (row) => [row.id, row.headers ?? (row.head ? headerFields(row.head) : [])] as [string, HeaderField[]],
    ),
  );
}

/**
 * The SPF, DKIM, DMARC and ARC verdicts of visible messages, keyed by id (docs/authentication.md):
 * null for mail sent here or delivered between hosted inboxes. Read only when a caller asks.
 */
export async function messageAuthentications(
  db: Db,
  scope: TenantScope,
  ids: readonly string[],
): Promise<Map<string, MessageAuthenticationData | null>> {
  if (ids.length === 0) return new Map();
  const rows = await scopedMessages(db, scope)
    .select(["m.id", "m.authentication"])
    .where("m.id", "in", ids)
    .execute();
  return new Map(rows.map((row) => [row.id, row.authentication]));
}

/** In time order, (created_at, id), newest first unless the page says otherwise. */
export async function listMessages(
  db: Db,
  scope: TenantScope,
  filter: ListFilter,
  page: KeysetPage<MessageKey>,
  columns: readonly MessageColumn[] = SUMMARY_COLUMNS,
): Promise<MessageSummary[]> {
  if (filterAsksForHiddenLabel(scope, filter)) return [];
  let query = scopedMessages(db, scope);
  if (filter.inboxId !== undefined) query = query.where("m.inbox_id", "=", filter.inboxId);
  if (filter.podId !== undefined) query = query.where("m.pod_id", "=", filter.podId);
  if (filter.labels?.length) query = query.where(sql<SqlBool>`m.labels @> ${textArray(filter.labels)}`);
  const conditions = messageConditions(filter.message);
  for (const condition of conditions) query = query.where(sql<SqlBool>`${condition}`);
  const selected = pageByTime(
    query.select(summarySelection(listColumns(columns))),
    "m.created_at",
    "m.id",
    page,
  );
  const planned = conditions.length > 0 ? selected.modifyEnd(CUSTOM_PLAN) : selected;
  return (await planned.execute()) as unknown as MessageSummary[];
}

export interface ThreadPageRequest {
  threadId: string;
  limit: number;
  after?: MessageKey | undefined;
  before?: MessageKey | undefined;
  inverted: boolean;
}

/**
 * The first messages (oldest first) of many threads in one statement: the same page size for a
 * whole page of threads costs one query, not one per thread, and each thread's page is a walk of
 * the (org_id, thread_id, created_at, id) index that stops at the limit.
 */
export async function messagesOfThreads(
  db: Db,
  scope: TenantScope,
  threadIds: readonly string[],
  page: Omit<ThreadPageRequest, "threadId">,
  columns: readonly MessageColumn[] = SUMMARY_COLUMNS,
): Promise<Map<string, MessageSummary[]>> {
  const byThread = new Map<string, MessageSummary[]>(threadIds.map((id) => [id, []]));
  if (threadIds.length === 0) return byThread;
  const result = await messagesOfThreadsStatement(
    db,
    {
      ...scopeShape(scope),
      after: page.after !== undefined,
      before: page.before !== undefined,
      inverted: page.inverted,
      columns: listColumns(columns),
    },
    {
      ...scopeValues(scope),
      threadIds: [...threadIds],
      afterTime: page.after?.[0],
      afterId: page.after?.[1],
      beforeTime: page.before?.[0],
      beforeId: page.before?.[1],
      limit: page.limit,
    },
  );
  for (const row of result.rows) byThread.get(String(row.thread_id))?.push(row);
  return byThread;
}

interface ThreadsPageShape extends ScopeShape {
  after: boolean;
  before: boolean;
  inverted: boolean;
  columns: readonly MessageColumn[];
}

interface ThreadsPageValues extends Record<string, unknown> {
  orgId: string;
  podId: string | null;
  inboxId: string | null;
  threadIds: string[];
  afterTime: string | undefined;
  afterId: string | undefined;
  beforeTime: string | undefined;
  beforeId: string | undefined;
  limit: number;
}

/** messagesOfThreads' statement, from its shape alone (src/db/shaped.ts). */
function buildMessagesOfThreads(shape: ThreadsPageShape, v: Placeholders<ThreadsPageValues>) {
  const where = [visible(shapedScope(shape, v)), sql`m.thread_id = ids.thread_id`];
  if (shape.after)
    where.push(sql`(m.created_at, m.id) > (${v.afterTime}::timestamptz, ${v.afterId}::bigint)`);
  if (shape.before)
    where.push(sql`(m.created_at, m.id) < (${v.beforeTime}::timestamptz, ${v.beforeId}::bigint)`);
  const order = shape.inverted ? sql`DESC` : sql`ASC`;
  return sql<MessageSummary>`
    SELECT m.* FROM unnest(${v.threadIds}::bigint[]) AS ids(thread_id)
    CROSS JOIN LATERAL (
      SELECT ${sql.join(summarySelection(shape.columns))} FROM messages m WHERE ${sql.join(where, sql` AND `)}
      ORDER BY m.created_at ${order}, m.id ${order}
      LIMIT ${v.limit}
    ) m
    ORDER BY m.thread_id, m.created_at ${order}, m.id ${order}`;
}

const messagesOfThreadsStatement = shapedStatement(buildMessagesOfThreads, [
  "orgId",
  "podId",
  "inboxId",
  "threadIds",
  "afterTime",
  "afterId",
  "beforeTime",
  "beforeId",
  "limit",
]);

/** An attachment's columns but its content (fetched only when asked for). */
const ATTACHMENT_COLUMNS = [
  "a.org_id",
  "a.id",
  "a.message_id",
  "a.filename",
  "a.content_type",
  "a.size_bytes",
  "a.content_id",
  "a.disposition",
  "a.created_at",
] as const;

/** Attachments of visible messages, without their content (fetched only when asked for). */
export async function attachmentsOfMessages(
  db: Db,
  scope: TenantScope,
  messageIds: readonly string[],
): Promise<Map<string, Attachment[]>> {
  const byMessage = new Map<string, Attachment[]>(messageIds.map((id) => [id, []]));
  if (messageIds.length === 0) return byMessage;
  const rows = await db
    .selectFrom("attachments as a")
    .innerJoin("messages as m", (join) =>
      join.onRef("m.org_id", "=", "a.org_id").onRef("m.id", "=", "a.message_id"),
    )
    .select(ATTACHMENT_COLUMNS)
    .where("a.org_id", "=", scope.orgId)
    .where("a.message_id", "in", messageIds)
    .where(() => visible(scope))
    .orderBy("a.id")
    .execute();
  for (const row of rows) byMessage.get(String(row.message_id))?.push(row);
  return byMessage;
}

/** Attachments of visible messages, by id. */
function visibleAttachments(db: Db, scope: TenantScope, attachmentIds: readonly string[]) {
  return db
    .selectFrom("attachments as a")
    .innerJoin("messages as m", (join) =>
      join.onRef("m.org_id", "=", "a.org_id").onRef("m.id", "=", "a.message_id"),
    )
    .where("a.org_id", "=", scope.orgId)
    .where("a.id", "in", attachmentIds)
    .where(() => visible(scope));
}

/** Attachments of visible messages by id, without their content, in no order. */
export async function attachmentsByIds(
  db: Db,
  scope: TenantScope,
  attachmentIds: readonly string[],
): Promise<Attachment[]> {
  if (attachmentIds.length === 0) return [];
  return visibleAttachments(db, scope, attachmentIds).select(ATTACHMENT_COLUMNS).execute();
}

export async function attachmentContents(
  db: Db,
  scope: TenantScope,
  attachmentIds: readonly string[],
): Promise<Map<string, Buffer>> {
  if (attachmentIds.length === 0) return new Map();
  const rows = await visibleAttachments(db, scope, attachmentIds).select(["a.id", "a.content"]).execute();
  return new Map(rows.map((row) => [String(row.id), row.content]));
}

/**
 * The contents base64-encoded by PostgreSQL, as a response writes them: bytea arrives as hex text
 * (twice its size) and would then be a Buffer and a base64 string; this arrives at 4/3 of its size,
 * already the string. encode() breaks lines every 76 characters; translate() joins them.
 */
export async function attachmentContentsBase64(
  db: Db,
  scope: TenantScope,
  attachmentIds: readonly string[],
): Promise<Map<string, string>> {
  if (attachmentIds.length === 0) return new Map();
  const rows = await visibleAttachments(db, scope, attachmentIds)
    .select(["a.id", sql<string>`translate(encode(a.content, 'base64'), E'\n', '')`.as("base64")])
    .execute();
  return new Map(rows.map((row) => [String(row.id), row.base64]));
}

/**
 * Adds and removes labels on one visible message; undefined when the caller cannot see it. Returns its
 * summary: a label change must not read a large message's bodies and raw MIME back.
 */
export async function updateMessageLabels(
  db: Db,
  scope: TenantScope,
  id: string,
  add: readonly string[],
  remove: readonly string[],
): Promise<MessageSummary | undefined> {
  const [summary] = await updateLabelsOfMessages(db, scope, { ids: [id] }, add, remove);
  return summary;
}

/**
 * Adds and removes labels on the visible messages among `ids` (updateMessages) or of one thread
 * (updateThread), in one statement; their summaries. Messages the caller cannot see are untouched.
 */
export async function updateLabelsOfMessages(
  db: Db,
  scope: TenantScope,
  target: { ids: readonly string[] } | { threadId: string },
  add: readonly string[],
  remove: readonly string[],
): Promise<MessageSummary[]> {
  const which =
    "ids" in target ? sql`m.id = ANY(${[...target.ids]}::bigint[])` : sql`m.thread_id = ${target.threadId}`;
  const result = await sql<MessageSummary>`
    UPDATE messages m SET
      labels = ARRAY(
        SELECT DISTINCT l FROM unnest(m.labels || ${textArray(add)}) AS l
        WHERE l <> ALL(${textArray(remove)}) ORDER BY l),
      updated_at = now()
    WHERE ${which} AND ${visible(scope)}
    RETURNING ${sql.join(summarySelection())}`.execute(db);
  return result.rows;
}

/**
 * The messages events refer to, as they are now, across the organization (for the event stream: one
 * read serves every subscriber of the node): each subscriber then
 * applies its own visibility to them in memory (eventReadableBy in src/events/visibility.ts).
 * Summaries: a replay page of large messages must not hold their bodies and raw MIME; a subscriber
 * that selects a body reads it within its response's limit.
 */
export async function eventMessages(
  db: Db,
  orgId: string,
  messageIds: readonly string[],
): Promise<Map<string, MessageSummary>> {
  if (messageIds.length === 0) return new Map();
  const rows = (await db
    .selectFrom("messages as m")
    .select(summarySelection())
    .where("m.org_id", "=", orgId)
    .where("m.id", "in", messageIds)
    .execute()) as unknown as MessageSummary[];
  return new Map(rows.map((row) => [String(row.id), row]));
}
