// Threads, messages and attachments: SQL only. Every read applies the caller's TenantScope in SQL,
// including its hidden labels: a message carrying one is invisible, and a thread's aggregates
// (count, subject, preview, labels, senders, recipients, last message time) are computed over the
// caller's visible messages only, so a hidden message leaks through no field.
import { type Expression, type Selectable, type SqlBool, sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import { pageById } from "../db/keyset.ts";
import type { AttachmentTable, MessageTable } from "../db/types.ts";
import type { KeysetPage } from "../schema/connection.ts";

export type Message = Selectable<MessageTable>;
/**
 * A message as lists and GraphQL read it: every column but the bodies and the raw MIME, which can be
 * large and are loaded only when a field asks for them (messageBodies). Rows read whole carry them.
 */
export type MessageSummary = Omit<Message, "text_body" | "html_body" | "raw_mime"> &
  Partial<Pick<Message, "text_body" | "html_body">>;
export type MessageBodies = Pick<Message, "text_body" | "html_body">;
export type Attachment = Omit<Selectable<AttachmentTable>, "content"> & { content?: Buffer };

export interface Thread {
  org_id: string;
  id: string;
  pod_id: string;
  inbox_id: string;
  subject: string | null;
  preview: string | null;
  labels: string[];
  senders: string[];
  recipients: string[];
  message_count: number;
  last_message_at: Date;
}

/** Threads are listed newest activity first: (last visible message time, id). */
export type ThreadKey = [string, string];
export const isThreadKey = (value: unknown): value is ThreadKey =>
  Array.isArray(value) &&
  value.length === 2 &&
  typeof value[0] === "string" &&
  !Number.isNaN(Date.parse(value[0])) &&
  typeof value[1] === "string" &&
  /^\d{1,19}$/.test(value[1]);
export const threadKey = (thread: Thread): ThreadKey => [thread.last_message_at.toISOString(), thread.id];

/** Messages inside a thread are listed oldest first: (created_at, id). */
export type MessageKey = [string, string];
export const messageKey = (message: Pick<Message, "created_at" | "id">): MessageKey => [
  message.created_at.toISOString(),
  message.id,
];

export interface ListFilter {
  inboxId?: string | undefined;
  podId?: string | undefined;
  /** Every one of these labels must be present. */
  labels?: readonly string[] | undefined;
}

/** A filter asking for a label hidden from the caller matches nothing (an empty list, not an error). */
export function asksForHiddenLabel(scope: TenantScope, labels: readonly string[] | undefined): boolean {
  return (labels ?? []).some((label) => scope.hiddenLabels.includes(label));
}

const textArray = (values: readonly string[]) => sql<string[]>`${[...values]}::text[]`;

/** SQL condition: message alias `m` is inside the scope and carries no hidden label. */
function visible(scope: TenantScope, alias = "m"): Expression<SqlBool> {
  const m = sql.ref(alias);
  const parts = [sql`${m}.org_id = ${scope.orgId}`];
  if (scope.podId !== null) parts.push(sql`${m}.pod_id = ${scope.podId}`);
  if (scope.inboxId !== null) parts.push(sql`${m}.inbox_id = ${scope.inboxId}`);
  if (scope.hiddenLabels.length > 0) parts.push(sql`NOT (${m}.labels && ${textArray(scope.hiddenLabels)})`);
  return sql<SqlBool>`(${sql.join(parts, sql` AND `)})`;
}

/** Thread aggregates that cost a scan of their own; the rest come from one pass over the messages. */
export type CostlyThreadAggregate = "labels" | "senders" | "recipients";
export const COSTLY_THREAD_AGGREGATES: readonly CostlyThreadAggregate[] = ["labels", "senders", "recipients"];

/**
 * The per-thread aggregates over visible messages, as a LATERAL subquery on thread alias `t`. Count,
 * last time, subject and preview come from one pass; each costly aggregate not in `wanted` is left
 * empty (a list computes only what its selection reads).
 */
function threadAggregates(scope: TenantScope, wanted: ReadonlySet<CostlyThreadAggregate>) {
  const costly = (name: CostlyThreadAggregate, query: ReturnType<typeof sql>) =>
    wanted.has(name) ? sql`coalesce((${query}), '{}')` : sql`'{}'::text[]`;
  return sql`
    CROSS JOIN LATERAL (
      SELECT count(*)::int AS message_count,
             max(m.created_at) AS visible_last_message_at,
             (array_agg(m.subject ORDER BY m.created_at, m.id))[1] AS visible_subject,
             (array_agg(m.preview ORDER BY m.created_at DESC, m.id DESC))[1] AS preview,
             ${costly(
               "labels",
               sql`SELECT array_agg(DISTINCT l ORDER BY l) FROM messages m4, unnest(m4.labels) AS l
                WHERE m4.org_id = t.org_id AND m4.thread_id = t.id AND ${visible(scope, "m4")}`,
             )} AS labels,
             ${costly(
               "senders",
               sql`SELECT array_agg(f ORDER BY first_at) FROM (
                SELECT m2.from_address AS f, min(m2.created_at) AS first_at FROM messages m2
                WHERE m2.org_id = t.org_id AND m2.thread_id = t.id AND ${visible(scope, "m2")}
                GROUP BY m2.from_address) s`,
             )} AS senders,
             ${costly(
               "recipients",
               sql`SELECT array_agg(DISTINCT r ORDER BY r) FROM messages m3, unnest(m3.to_addresses || m3.cc_addresses) AS r
                WHERE m3.org_id = t.org_id AND m3.thread_id = t.id AND ${visible(scope, "m3")}`,
             )} AS recipients
      FROM messages m
      WHERE m.org_id = t.org_id AND m.thread_id = t.id AND ${visible(scope)}
    ) a`;
}

const ALL_AGGREGATES: ReadonlySet<CostlyThreadAggregate> = new Set(COSTLY_THREAD_AGGREGATES);

function threadScope(scope: TenantScope) {
  const parts = [sql`t.org_id = ${scope.orgId}`];
  if (scope.podId !== null) parts.push(sql`t.pod_id = ${scope.podId}`);
  if (scope.inboxId !== null) parts.push(sql`t.inbox_id = ${scope.inboxId}`);
  return sql.join(parts, sql` AND `);
}

const threadColumns = sql`t.org_id, t.id, t.pod_id, t.inbox_id, a.visible_subject AS subject, a.preview, a.labels,
  a.senders, a.recipients, a.message_count, a.visible_last_message_at AS last_message_at`;

export async function listThreads(
  db: Db,
  scope: TenantScope,
  filter: ListFilter,
  page: KeysetPage<ThreadKey>,
  wanted: ReadonlySet<CostlyThreadAggregate> = ALL_AGGREGATES,
): Promise<Thread[]> {
  if (asksForHiddenLabel(scope, filter.labels)) return [];
  // A label filter reads the labels aggregate whatever the selection.
  const aggregates = filter.labels?.length ? new Set([...wanted, "labels" as const]) : wanted;
  const where = [threadScope(scope), sql`a.message_count > 0`];
  if (filter.inboxId !== undefined) where.push(sql`t.inbox_id = ${filter.inboxId}`);
  if (filter.podId !== undefined) where.push(sql`t.pod_id = ${filter.podId}`);
  if (filter.labels?.length) where.push(sql`a.labels @> ${textArray(filter.labels)}`);
  const order = page.inverted ? sql`ASC` : sql`DESC`;

  if (scope.hiddenLabels.length === 0) {
    // Nothing hidden: the stored last_message_at is the visible one, so the keyset walks the
    // threads index and the aggregates are computed for the returned page only.
    if (page.after)
      where.push(sql`(t.last_message_at, t.id) < (${page.after[0]}::timestamptz, ${page.after[1]}::bigint)`);
    if (page.before)
      where.push(
        sql`(t.last_message_at, t.id) > (${page.before[0]}::timestamptz, ${page.before[1]}::bigint)`,
      );
    const result = await sql<Thread>`
      SELECT ${threadColumns} FROM threads t ${threadAggregates(scope, aggregates)}
      WHERE ${sql.join(where, sql` AND `)}
      ORDER BY t.last_message_at ${order}, t.id ${order}
      LIMIT ${page.limit}`.execute(db);
    return result.rows;
  }
  // Some labels hidden: order by the last *visible* message, which only the aggregate knows.
  const outer = [sql`true`];
  if (page.after)
    outer.push(sql`(x.last_message_at, x.id) < (${page.after[0]}::timestamptz, ${page.after[1]}::bigint)`);
  if (page.before)
    outer.push(sql`(x.last_message_at, x.id) > (${page.before[0]}::timestamptz, ${page.before[1]}::bigint)`);
  const result = await sql<Thread>`
    SELECT * FROM (
      SELECT ${threadColumns} FROM threads t ${threadAggregates(scope, aggregates)}
      WHERE ${sql.join(where, sql` AND `)}
    ) x
    WHERE ${sql.join(outer, sql` AND `)}
    ORDER BY x.last_message_at ${order}, x.id ${order}
    LIMIT ${page.limit}`.execute(db);
  return result.rows;
}

export async function threadsByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<Thread[]> {
  if (ids.length === 0) return [];
  const result = await sql<Thread>`
    SELECT ${threadColumns} FROM threads t ${threadAggregates(scope, ALL_AGGREGATES)}
    WHERE ${threadScope(scope)} AND t.id = ANY(${[...ids]}::bigint[]) AND a.message_count > 0`.execute(db);
  return result.rows;
}

export const SUMMARY_COLUMNS = [
  "org_id",
  "id",
  "pod_id",
  "inbox_id",
  "thread_id",
  "message_id_header",
  "from_address",
  "to_addresses",
  "cc_addresses",
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
  "created_at",
  "updated_at",
] as const satisfies readonly (keyof MessageSummary)[];
export type MessageColumn = (typeof SUMMARY_COLUMNS)[number];

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

/** Whole rows, bodies and raw MIME included: for services that compose or forward mail. */
export async function messagesByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<Message[]> {
  if (ids.length === 0) return [];
  return scopedMessages(db, scope).selectAll("m").where("m.id", "in", ids).execute();
}

export async function messageSummariesByIds(
  db: Db,
  scope: TenantScope,
  ids: readonly string[],
): Promise<MessageSummary[]> {
  if (ids.length === 0) return [];
  return scopedMessages(db, scope)
    .select(SUMMARY_COLUMNS.map((column) => `m.${column}` as const))
    .where("m.id", "in", ids)
    .execute();
}

/** The text and HTML bodies of visible messages, for the fields that show them. */
export async function messageBodies(
  db: Db,
  scope: TenantScope,
  ids: readonly string[],
): Promise<Map<string, MessageBodies>> {
  if (ids.length === 0) return new Map();
  const rows = await scopedMessages(db, scope)
    .select(["m.id", "m.text_body", "m.html_body"])
    .where("m.id", "in", ids)
    .execute();
  return new Map(rows.map(({ id, ...bodies }) => [String(id), bodies]));
}

/** Newest first, keyed by id. */
export async function listMessages(
  db: Db,
  scope: TenantScope,
  filter: ListFilter,
  page: KeysetPage<string>,
  columns: readonly MessageColumn[] = SUMMARY_COLUMNS,
): Promise<MessageSummary[]> {
  if (asksForHiddenLabel(scope, filter.labels)) return [];
  let query = scopedMessages(db, scope);
  if (filter.inboxId !== undefined) query = query.where("m.inbox_id", "=", filter.inboxId);
  if (filter.podId !== undefined) query = query.where("m.pod_id", "=", filter.podId);
  if (filter.labels?.length) query = query.where(sql<SqlBool>`m.labels @> ${textArray(filter.labels)}`);
  const selected = query.select(listColumns(columns).map((column) => `m.${column}` as const));
  return (await pageById(selected, "m.id", page).execute()) as MessageSummary[];
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
  const where = [visible(scope), sql`m.thread_id = ids.thread_id`];
  if (page.after)
    where.push(sql`(m.created_at, m.id) > (${page.after[0]}::timestamptz, ${page.after[1]}::bigint)`);
  if (page.before)
    where.push(sql`(m.created_at, m.id) < (${page.before[0]}::timestamptz, ${page.before[1]}::bigint)`);
  const order = page.inverted ? sql`DESC` : sql`ASC`;
  const result = await sql<MessageSummary>`
    SELECT m.* FROM unnest(${[...threadIds]}::bigint[]) AS ids(thread_id)
    CROSS JOIN LATERAL (
      SELECT ${sql.join(listColumns(columns).map((column) => sql.ref(`m.${column}`)))} FROM messages m WHERE ${sql.join(where, sql` AND `)}
      ORDER BY m.created_at ${order}, m.id ${order}
      LIMIT ${page.limit}
    ) m
    ORDER BY m.thread_id, m.created_at ${order}, m.id ${order}`.execute(db);
  for (const row of result.rows) byThread.get(String(row.thread_id))?.push(row);
  return byThread;
}

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
    .select([
      "a.org_id",
      "a.id",
      "a.message_id",
      "a.filename",
      "a.content_type",
      "a.size_bytes",
      "a.content_id",
      "a.disposition",
      "a.created_at",
    ])
    .where("a.org_id", "=", scope.orgId)
    .where("a.message_id", "in", messageIds)
    .where(() => visible(scope))
    .orderBy("a.id")
    .execute();
  for (const row of rows) byMessage.get(String(row.message_id))?.push(row);
  return byMessage;
}

export async function attachmentContents(
  db: Db,
  scope: TenantScope,
  attachmentIds: readonly string[],
): Promise<Map<string, Buffer>> {
  if (attachmentIds.length === 0) return new Map();
  const rows = await db
    .selectFrom("attachments as a")
    .innerJoin("messages as m", (join) =>
      join.onRef("m.org_id", "=", "a.org_id").onRef("m.id", "=", "a.message_id"),
    )
    .select(["a.id", "a.content"])
    .where("a.org_id", "=", scope.orgId)
    .where("a.id", "in", attachmentIds)
    .where(() => visible(scope))
    .execute();
  return new Map(rows.map((row) => [String(row.id), row.content]));
}

/** Adds and removes labels on one visible message; undefined when the caller cannot see it. */
export async function updateMessageLabels(
  db: Db,
  scope: TenantScope,
  id: string,
  add: readonly string[],
  remove: readonly string[],
): Promise<Message | undefined> {
  const result = await sql<Message>`
    UPDATE messages m SET
      labels = ARRAY(
        SELECT DISTINCT l FROM unnest(m.labels || ${textArray(add)}) AS l
        WHERE l <> ALL(${textArray(remove)}) ORDER BY l),
      updated_at = now()
    WHERE m.id = ${id} AND ${visible(scope)}
    RETURNING m.*`.execute(db);
  return result.rows[0];
}

/** Labels every visible message of a thread; returns how many it touched (0: no visible thread). */
export async function labelThread(
  db: Db,
  scope: TenantScope,
  threadId: string,
  label: string,
): Promise<number> {
  const result = await sql`
    UPDATE messages m SET labels = array_append(m.labels, ${label}), updated_at = now()
    WHERE m.thread_id = ${threadId} AND ${visible(scope)} AND NOT (${label} = ANY(m.labels))`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** Deletes the caller's visible messages of a thread, and the thread once it has none left. */
export async function deleteThreadMessages(db: Db, scope: TenantScope, threadId: string): Promise<number> {
  const result =
    await sql`DELETE FROM messages m WHERE m.thread_id = ${threadId} AND ${visible(scope)}`.execute(db);
  await sql`
    DELETE FROM threads t WHERE ${threadScope(scope)} AND t.id = ${threadId}
      AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.org_id = t.org_id AND m.thread_id = t.id)`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** Refreshes a thread's stored activity time after its messages changed. */
export async function refreshThread(db: Db, orgId: string, threadId: string): Promise<void> {
  await sql`
    UPDATE threads t SET last_message_at = coalesce(
      (SELECT max(m.created_at) FROM messages m WHERE m.org_id = t.org_id AND m.thread_id = t.id), t.last_message_at)
    WHERE t.org_id = ${orgId} AND t.id = ${threadId}`.execute(db);
}
