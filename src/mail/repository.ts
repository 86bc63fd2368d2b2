// Threads, messages and attachments: SQL only. Every read applies the caller's TenantScope in SQL,
// including its hidden labels: a message carrying one is invisible, and a thread's aggregates
// (count, subject, preview, labels, senders, recipients, last message time) are computed over the
// caller's visible messages only, so a hidden message leaks through no field.
import { type Expression, type Selectable, type SqlBool, sql } from "kysely";
import { HIDDEN_LABEL_PERMISSIONS, type TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import { compareIds, isRowId } from "../db/ids.ts";
import type { KeysetPage } from "../db/keyset.ts";
import { pageById } from "../db/keyset.ts";
import type { AttachmentTable, MessageTable } from "../db/types.ts";

export type Message = Selectable<MessageTable>;
/**
 * A message as lists and GraphQL read it: every column but the bodies and the raw MIME, which can be
 * large and are loaded only when a field asks for them (messageBodies), and instead the bodies' sizes,
 * so a response can refuse a body it has no room for before reading it; nor the content digest,
 * which only duplicate detection reads. Rows read whole carry the bodies themselves; a row that read
 * neither has neither.
 */
export type MessageSummary = Omit<Message, "text_body" | "html_body" | "raw_mime" | "content_digest"> &
  Partial<Pick<Message, "text_body" | "html_body">> &
  Partial<Record<BodySizeColumn, number | null>>;
export type MessageBody = "text_body" | "html_body";
/** Bytes (UTF-8) of a body, null when there is none. */
export type BodySizeColumn = "text_body_bytes" | "html_body_bytes";
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
  isInstantText(value[0]) &&
  typeof value[1] === "string" &&
  isRowId(value[1]);

/**
 * Exactly what toISOString() writes, and nothing else: Date.parse accepts "1" or "Tue 1 2" and
 * PostgreSQL reads such text differently or refuses it, so a forged cursor must stop here.
 */
function isInstantText(text: string): boolean {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(text) && new Date(text).toISOString() === text;
}
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

/** The per-thread aggregates a list computes when its selection reads them. */
export type ThreadAggregate = "subject" | "preview" | "messageCount" | "labels" | "senders" | "recipients";
export const THREAD_AGGREGATES: readonly ThreadAggregate[] = [
  "subject",
  "preview",
  "messageCount",
  "labels",
  "senders",
  "recipients",
];
const ALL_AGGREGATES: ReadonlySet<ThreadAggregate> = new Set(THREAD_AGGREGATES);

/** Visible messages of thread alias `t`, for the subqueries below (FROM messages m WHERE …). */
const ofThread = (scope: TenantScope, alias = "m") =>
  sql`${sql.ref(`${alias}.org_id`)} = t.org_id AND ${sql.ref(`${alias}.thread_id`)} = t.id AND ${visible(scope, alias)}`;

/**
 * Aggregates over the visible messages of thread alias `t`, one scalar subquery each, every one an
 * index walk over (org_id, thread_id, created_at, id); those not in `wanted` are constants.
 */
function threadAggregates(scope: TenantScope, wanted: ReadonlySet<ThreadAggregate>) {
  const pick = (name: ThreadAggregate, query: ReturnType<typeof sql>, otherwise: ReturnType<typeof sql>) =>
    wanted.has(name) ? query : otherwise;
  return sql.join(
    [
      pick(
        "subject",
        sql`(SELECT m.subject FROM messages m WHERE ${ofThread(scope)} ORDER BY m.created_at, m.id LIMIT 1)`,
        sql`NULL::text`,
      ),
      pick(
        "preview",
        sql`(SELECT m.preview FROM messages m WHERE ${ofThread(scope)} ORDER BY m.created_at DESC, m.id DESC LIMIT 1)`,
        sql`NULL::text`,
      ),
      pick("messageCount", sql`(SELECT count(*)::int FROM messages m WHERE ${ofThread(scope)})`, sql`0`),
      pick(
        "labels",
        sql`coalesce((SELECT array_agg(DISTINCT l ORDER BY l) FROM messages m, unnest(m.labels) AS l
          WHERE ${ofThread(scope)}), '{}')`,
        sql`'{}'::text[]`,
      ),
      pick(
        "senders",
        sql`coalesce((SELECT array_agg(f ORDER BY first_at) FROM (
          SELECT m.from_address AS f, min(m.created_at) AS first_at FROM messages m
          WHERE ${ofThread(scope)} GROUP BY m.from_address) s), '{}')`,
        sql`'{}'::text[]`,
      ),
      pick(
        "recipients",
        sql`coalesce((SELECT array_agg(DISTINCT r ORDER BY r) FROM messages m, unnest(m.to_addresses || m.cc_addresses) AS r
          WHERE ${ofThread(scope)}), '{}')`,
        sql`'{}'::text[]`,
      ),
    ],
    sql`, `,
  );
}

const AGGREGATE_NAMES = sql`subject, preview, message_count, labels, senders, recipients`;

/** Rows of `table` (alias) inside the scope: organization, and the caller's pod or inbox. */
function inScope(scope: TenantScope, alias: string) {
  const parts = [sql`${sql.ref(`${alias}.org_id`)} = ${scope.orgId}`];
  if (scope.podId !== null) parts.push(sql`${sql.ref(`${alias}.pod_id`)} = ${scope.podId}`);
  if (scope.inboxId !== null) parts.push(sql`${sql.ref(`${alias}.inbox_id`)} = ${scope.inboxId}`);
  return sql.join(parts, sql` AND `);
}

/** The list's inbox and pod filters, on alias's columns. */
function filtered(filter: ListFilter, alias: string) {
  const parts = [];
  if (filter.inboxId !== undefined) parts.push(sql`${sql.ref(`${alias}.inbox_id`)} = ${filter.inboxId}`);
  if (filter.podId !== undefined) parts.push(sql`${sql.ref(`${alias}.pod_id`)} = ${filter.podId}`);
  return parts;
}

/** The labels a thread_visibility.hidden_mask bit stands for: bit i is HIDING_LABELS[i]. */
const HIDING_LABELS = Object.keys(HIDDEN_LABEL_PERMISSIONS);

function hiddenMask(scope: TenantScope): number {
  return HIDING_LABELS.reduce(
    (mask, label, bit) => (scope.hiddenLabels.includes(label) ? mask | (1 << bit) : mask),
    0,
  );
}

/** (key, id) beyond the page's cursor, on columns `key` and `id` of alias `a`, in list order. */
function keysetCondition(page: KeysetPage<ThreadKey>, key: string, id: string) {
  const parts = [];
  if (page.after) {
    parts.push(
      sql`(${sql.ref(key)}, ${sql.ref(id)}) < (${page.after[0]}::timestamptz, ${page.after[1]}::bigint)`,
    );
  }
  if (page.before) {
    parts.push(
      sql`(${sql.ref(key)}, ${sql.ref(id)}) > (${page.before[0]}::timestamptz, ${page.before[1]}::bigint)`,
    );
  }
  return parts;
}

/**
 * One page of (thread id, visible last time) keys. Nothing hidden: a walk of the threads index.
 * Some labels hidden: threads holding no spam, blocked or trash message have the same visible time
 * for everyone, so the threads index serves them (skipping the others); the others come from
 * thread_visibility's index for this combination of hidden labels; the two sorted walks merge.
 * Either way the page costs reading about `limit` index entries, whatever the size of the scope.
 */
function pageKeys(scope: TenantScope, filter: ListFilter, page: KeysetPage<ThreadKey>) {
  const order = page.inverted ? sql`ASC` : sql`DESC`;
  const threadWhere = [
    inScope(scope, "t"),
    ...filtered(filter, "t"),
    ...keysetCondition(page, "t.last_message_at", "t.id"),
  ];
  const mask = hiddenMask(scope);
  if (mask === 0) {
    return sql`
      SELECT t.id, t.last_message_at AS key FROM threads t WHERE ${sql.join(threadWhere, sql` AND `)}
      ORDER BY t.last_message_at ${order}, t.id ${order} LIMIT ${page.limit}`;
  }
  const markedWhere = [
    inScope(scope, "v"),
    ...filtered(filter, "v"),
    sql`v.hidden_mask = ${mask}`,
    ...keysetCondition(page, "v.last_message_at", "v.thread_id"),
  ];
  return sql`
    SELECT id, key FROM (
      (SELECT t.id, t.last_message_at AS key FROM threads t
        WHERE ${sql.join(threadWhere, sql` AND `)} AND NOT EXISTS (
          SELECT 1 FROM thread_visibility x WHERE x.org_id = t.org_id AND x.thread_id = t.id AND x.hidden_mask = 0)
        ORDER BY t.last_message_at ${order}, t.id ${order} LIMIT ${page.limit})
      UNION ALL
      (SELECT v.thread_id, v.last_message_at FROM thread_visibility v WHERE ${sql.join(markedWhere, sql` AND `)}
        ORDER BY v.last_message_at ${order}, v.thread_id ${order} LIMIT ${page.limit})
    ) merged ORDER BY key ${order}, id ${order} LIMIT ${page.limit}`;
}

/**
 * Keys of threads whose visible labels include every filter label: each must be on some visible
 * message. No index orders these, so the scope's threads are all examined.
 */
function filteredPageKeys(scope: TenantScope, filter: ListFilter, page: KeysetPage<ThreadKey>) {
  const order = page.inverted ? sql`ASC` : sql`DESC`;
  const where = [inScope(scope, "t"), ...filtered(filter, "t")];
  for (const label of filter.labels ?? []) {
    where.push(
      sql`EXISTS (SELECT 1 FROM messages m WHERE ${ofThread(scope)} AND m.labels @> ARRAY[${label}]::text[])`,
    );
  }
  return sql`
    SELECT id, key FROM (
      SELECT t.id, (SELECT max(m.created_at) FROM messages m WHERE ${ofThread(scope)}) AS key
      FROM threads t WHERE ${sql.join(where, sql` AND `)}
    ) candidates
    WHERE ${sql.join([sql`key IS NOT NULL`, ...keysetCondition(page, "key", "id")], sql` AND `)}
    ORDER BY key ${order}, id ${order} LIMIT ${page.limit}`;
}

export async function listThreads(
  db: Db,
  scope: TenantScope,
  filter: ListFilter,
  page: KeysetPage<ThreadKey>,
  wanted: ReadonlySet<ThreadAggregate> = ALL_AGGREGATES,
): Promise<Thread[]> {
  if (asksForHiddenLabel(scope, filter.labels)) return [];
  const order = page.inverted ? sql`ASC` : sql`DESC`;
  const keys = filter.labels?.length ? filteredPageKeys(scope, filter, page) : pageKeys(scope, filter, page);
  const result = await sql<Thread>`
    SELECT t.org_id, t.id, t.pod_id, t.inbox_id, p.key AS last_message_at, a.*
    FROM (${keys}) p
    JOIN threads t ON t.org_id = ${scope.orgId} AND t.id = p.id
    CROSS JOIN LATERAL (SELECT ${threadAggregates(scope, wanted)}) AS a(${AGGREGATE_NAMES})
    ORDER BY p.key ${order}, p.id ${order}`.execute(db);
  return result.rows;
}

/** Threads by id, with every aggregate; a thread without a visible message is not found. */
export async function threadsByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<Thread[]> {
  if (ids.length === 0) return [];
  const result = await sql<Thread>`
    SELECT t.org_id, t.id, t.pod_id, t.inbox_id, last.at AS last_message_at, a.*
    FROM threads t
    CROSS JOIN LATERAL (SELECT max(m.created_at) AS at FROM messages m WHERE ${ofThread(scope)}) last
    CROSS JOIN LATERAL (SELECT ${threadAggregates(scope, ALL_AGGREGATES)}) AS a(${AGGREGATE_NAMES})
    WHERE ${inScope(scope, "t")} AND t.id = ANY(${[...ids]}::bigint[]) AND last.at IS NOT NULL`.execute(db);
  return result.rows;
}

/**
 * Rebuilds the thread_visibility rows of threads whose messages changed in a way that can move a
 * hidden-label caller's view of them: a message carrying spam, blocked or trash came, went, or
 * gained or lost one of those labels. Locks the threads first, so two transactions changing one
 * thread rebuild its rows one after the other, each from everything the other committed.
 */
export async function refreshThreadVisibility(
  db: Db,
  orgId: string,
  threadIds: readonly string[],
): Promise<void> {
  if (threadIds.length === 0) return;
  const ids = [...new Set(threadIds)].sort(compareIds);
  await sql`SELECT 1 FROM threads WHERE org_id = ${orgId} AND id = ANY(${ids}::bigint[]) ORDER BY id FOR NO KEY UPDATE`.execute(
    db,
  );
  await sql`DELETE FROM thread_visibility WHERE org_id = ${orgId} AND thread_id = ANY(${ids}::bigint[])`.execute(
    db,
  );
  // Per thread and mask, one walk of the thread's messages by index, however many threads.
  await sql`
    INSERT INTO thread_visibility (org_id, thread_id, pod_id, inbox_id, hidden_mask, last_message_at)
    SELECT t.org_id, t.id, t.pod_id, t.inbox_id, k.mask, last.at
    FROM threads t
    CROSS JOIN LATERAL (
      SELECT mask, ARRAY(SELECT (${textArray(HIDING_LABELS)})[i + 1] FROM generate_series(0, ${HIDING_LABELS.length - 1}) i
        WHERE mask & (1 << i) <> 0) AS hidden
      FROM generate_series(0, ${(1 << HIDING_LABELS.length) - 1}) mask
    ) k
    CROSS JOIN LATERAL (
      SELECT max(m.created_at) AS at FROM messages m
      WHERE m.org_id = t.org_id AND m.thread_id = t.id AND NOT (m.labels && k.hidden)
    ) last
    WHERE t.org_id = ${orgId} AND t.id = ANY(${ids}::bigint[]) AND last.at IS NOT NULL
      AND EXISTS (SELECT 1 FROM messages x WHERE x.org_id = t.org_id AND x.thread_id = t.id
        AND x.labels && ${textArray(HIDING_LABELS)})`.execute(db);
}

/** Whether labels include one that hides a message from some callers (spam, blocked, trash). */
export function hasHidingLabel(labels: readonly string[]): boolean {
  return labels.some((label) => HIDING_LABELS.includes(label));
}

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
  const selected = query.select(summarySelection(listColumns(columns)));
  return (await pageById(selected, "m.id", page).execute()) as unknown as MessageSummary[];
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
      SELECT ${sql.join(summarySelection(listColumns(columns)))} FROM messages m WHERE ${sql.join(where, sql` AND `)}
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
  const result = await sql<MessageSummary>`
    UPDATE messages m SET
      labels = ARRAY(
        SELECT DISTINCT l FROM unnest(m.labels || ${textArray(add)}) AS l
        WHERE l <> ALL(${textArray(remove)}) ORDER BY l),
      updated_at = now()
    WHERE m.id = ${id} AND ${visible(scope)}
    RETURNING ${sql.join(summarySelection())}`.execute(db);
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
    DELETE FROM threads t WHERE ${inScope(scope, "t")} AND t.id = ${threadId}
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
