// Drafts: SQL only, always inside the caller's TenantScope.
import { type Selectable, sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { KeysetPage } from "../db/keyset.ts";
import { pageById } from "../db/keyset.ts";
import type { DraftAttachmentTable, DraftSendStatus, DraftTable } from "../db/types.ts";

export type Draft = Selectable<DraftTable> & {
  /** `in_reply_to_message_id` when that message is visible to the caller (no hidden label), else null. */
  in_reply_to_visible_id: string | null;
  /** `forward_of_message_id` when that message is visible to the caller, else null. */
  forward_of_visible_id: string | null;
};

/**
 * A draft as GraphQL reads it: the sizes of its bodies instead of the bodies, which a response reads
 * only when they fit its allowance (draftBodies); each body may be as large as a request.
 */
export type DraftSummary = Omit<Draft, "text_body" | "html_body"> & {
  text_body_bytes: number | null;
  html_body_bytes: number | null;
};

/**
 * The replied-to message's id, or null when a label the caller may not see hides that message: a
 * hidden message must not surface through a draft either. Computed in the same statement, for a
 * whole page at once.
 */
function visibleReplyTo(scope: TenantScope) {
  return visibleReference(scope, "in_reply_to_message_id", "in_reply_to_visible_id");
}

/** The same for the forwarded message. */
function visibleForwardOf(scope: TenantScope) {
  return visibleReference(scope, "forward_of_message_id", "forward_of_visible_id");
}

function visibleReference<A extends string>(
  scope: TenantScope,
  column: "in_reply_to_message_id" | "forward_of_message_id",
  alias: A,
) {
  const reference = sql.ref(`drafts.${column}`);
  if (scope.hiddenLabels.length === 0) return sql<string | null>`${reference}`.as(alias);
  return sql<string | null>`CASE WHEN NOT EXISTS (
      SELECT 1 FROM messages m
      WHERE m.org_id = drafts.org_id AND m.inbox_id = drafts.inbox_id AND m.id = ${reference}
        AND m.labels && ${[...scope.hiddenLabels]}::text[]
    ) THEN ${reference} END`.as(alias);
}

function scoped(db: Db, scope: TenantScope) {
  let query = db
    .selectFrom("drafts")
    .selectAll("drafts")
    .select([visibleReplyTo(scope), visibleForwardOf(scope)])
    .where("drafts.org_id", "=", scope.orgId);
  if (scope.podId !== null) query = query.where("drafts.pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("drafts.inbox_id", "=", scope.inboxId);
  return query;
}

/** The columns of a summary; octet_length reads a body's size from its header, not the body. */
function summary(scope: TenantScope) {
  return [
    "drafts.org_id",
    "drafts.id",
    "drafts.pod_id",
    "drafts.inbox_id",
    "drafts.to_addresses",
    "drafts.cc_addresses",
    "drafts.bcc_addresses",
    "drafts.subject",
    "drafts.in_reply_to_message_id",
    "drafts.created_at",
    "drafts.updated_at",
    "drafts.send_at",
    "drafts.send_status",
    "drafts.failure_reason",
    "drafts.reply_all",
    "drafts.forward_of_message_id",
    "drafts.sent_message_id",
    "drafts.requires_approval",
    sql<number | null>`octet_length(drafts.text_body)`.as("text_body_bytes"),
    sql<number | null>`octet_length(drafts.html_body)`.as("html_body_bytes"),
    visibleReplyTo(scope),
    visibleForwardOf(scope),
  ] as const;
}

function scopedSummaries(db: Db, scope: TenantScope) {
  let query = db.selectFrom("drafts").select(summary(scope)).where("drafts.org_id", "=", scope.orgId);
  if (scope.podId !== null) query = query.where("drafts.pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("drafts.inbox_id", "=", scope.inboxId);
  return query;
}

/** Whole drafts, bodies included: for sending one. */
export async function draftsByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<Draft[]> {
  if (ids.length === 0) return [];
  return scoped(db, scope).where("drafts.id", "in", ids).execute();
}

export async function draftSummariesByIds(
  db: Db,
  scope: TenantScope,
  ids: readonly string[],
): Promise<DraftSummary[]> {
  if (ids.length === 0) return [];
  return scopedSummaries(db, scope).where("drafts.id", "in", ids).execute();
}

/**
 * Bodies of drafts the scope contains, each only if asked for, keyed `${body}:${id}` (a CASE that
 * yields NULL never reads the stored value).
 */
export async function draftBodies(
  db: Db,
  scope: TenantScope,
  wanted: readonly { id: string; body: "text_body" | "html_body" }[],
): Promise<Map<string, string | null>> {
  if (wanted.length === 0) return new Map();
  const read = (body: "text_body" | "html_body") => {
    const ids = wanted.flatMap((want) => (want.body === body ? [want.id] : []));
    return sql<
      string | null
    >`CASE WHEN drafts.id = ANY(${ids}::bigint[]) THEN ${sql.ref(`drafts.${body}`)} END`.as(body);
  };
  let query = db
    .selectFrom("drafts")
    .select(["drafts.id", read("text_body"), read("html_body")])
    .where("drafts.org_id", "=", scope.orgId)
    .where(
      "drafts.id",
      "in",
      wanted.map((want) => want.id),
    );
  if (scope.podId !== null) query = query.where("drafts.pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("drafts.inbox_id", "=", scope.inboxId);
  const bodies = new Map<string, string | null>();
  for (const row of await query.execute()) {
    for (const body of ["text_body", "html_body"] as const) bodies.set(`${body}:${row.id}`, row[body]);
  }
  return bodies;
}

export interface DraftFilter {
  inboxId?: string | undefined;
  sendStatus?: DraftSendStatus | undefined;
}

/** Newest first (ids increase), keyset on id. */
export async function listDrafts(
  db: Db,
  scope: TenantScope,
  filter: DraftFilter,
  page: KeysetPage<string>,
): Promise<DraftSummary[]> {
  let query = scopedSummaries(db, scope);
  if (filter.inboxId !== undefined) query = query.where("drafts.inbox_id", "=", filter.inboxId);
  if (filter.sendStatus !== undefined) query = query.where("drafts.send_status", "=", filter.sendStatus);
  return pageById(query, "drafts.id", page).execute();
}

/**
 * Whether `messageId` is a message of `inboxId` that the caller can see: inside its scope and
 * carrying none of its hidden labels.
 */
export async function visibleMessageOfInbox(
  db: Db,
  scope: TenantScope,
  inboxId: string,
  messageId: string,
): Promise<boolean> {
  let query = db
    .selectFrom("messages")
    .select("id")
    .where("org_id", "=", scope.orgId)
    .where("inbox_id", "=", inboxId)
    .where("id", "=", messageId);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  if (scope.hiddenLabels.length > 0)
    query = query.where(sql<boolean>`NOT (labels && ${[...scope.hiddenLabels]}::text[])`);
  return (await query.executeTakeFirst()) !== undefined;
}

export interface DraftContent {
  to_addresses: string[];
  cc_addresses: string[];
  bcc_addresses: string[];
  subject: string | null;
  text_body: string | null;
  html_body: string | null;
}

/** Where a draft stands in its sending. */
export interface DraftSchedule {
  send_at: Date | null;
  send_status: DraftSendStatus;
  failure_reason: string | null;
}

/**
 * Creates a draft in `inboxId` when the scope contains that inbox (one INSERT … SELECT from the
 * scoped inbox, which also supplies the pod); undefined when it does not.
 */
export async function insertDraft(
  db: Db,
  scope: TenantScope,
  inboxId: string,
  content: DraftContent &
    DraftSchedule & {
      in_reply_to_message_id: string | null;
      forward_of_message_id: string | null;
      reply_all: boolean;
      requires_approval: boolean;
    },
): Promise<DraftSummary | undefined> {
  let inbox = db
    .selectFrom("inboxes")
    .where("org_id", "=", scope.orgId)
    .where("id", "=", inboxId)
    .select([
      "org_id",
      "pod_id",
      "id",
      sql<string[]>`${content.to_addresses}::text[]`.as("to_addresses"),
      sql<string[]>`${content.cc_addresses}::text[]`.as("cc_addresses"),
      sql<string[]>`${content.bcc_addresses}::text[]`.as("bcc_addresses"),
      sql<string | null>`${content.subject}::text`.as("subject"),
      sql<string | null>`${content.text_body}::text`.as("text_body"),
      sql<string | null>`${content.html_body}::text`.as("html_body"),
      sql<string | null>`${content.in_reply_to_message_id}::bigint`.as("in_reply_to_message_id"),
      sql<string | null>`${content.forward_of_message_id}::bigint`.as("forward_of_message_id"),
      sql<boolean>`${content.reply_all}::boolean`.as("reply_all"),
      sql<Date | null>`${content.send_at}::timestamptz`.as("send_at"),
      sql<string>`${content.send_status}::text`.as("send_status"),
      sql<string | null>`${content.failure_reason}::text`.as("failure_reason"),
      sql<boolean>`${content.requires_approval}::boolean`.as("requires_approval"),
    ]);
  if (scope.podId !== null) inbox = inbox.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) inbox = inbox.where("id", "=", scope.inboxId);
  return db
    .insertInto("drafts")
    .columns([
      "org_id",
      "pod_id",
      "inbox_id",
      "to_addresses",
      "cc_addresses",
      "bcc_addresses",
      "subject",
      "text_body",
      "html_body",
      "in_reply_to_message_id",
      "forward_of_message_id",
      "reply_all",
      "send_at",
      "send_status",
      "failure_reason",
      "requires_approval",
    ])
    .expression(inbox)
    .returning(summary(scope))
    .executeTakeFirst();
}

/**
 * Changes the given columns of a draft the scope contains and bumps updated_at; undefined when there
 * is none, or when it is not in one of `statuses` (when given).
 */
export async function updateDraft(
  db: Db,
  scope: TenantScope,
  id: string,
  changes: Partial<DraftContent & DraftSchedule & { sent_message_id: string; requires_approval: boolean }>,
  statuses?: readonly DraftSendStatus[],
): Promise<DraftSummary | undefined> {
  let query = db
    .updateTable("drafts")
    // clock_timestamp(), not now(): two updates in one transaction still move updated_at forward.
    .set({ ...changes, updated_at: sql<Date>`clock_timestamp()` })
    .where("org_id", "=", scope.orgId)
    .where("id", "=", id);
  if (statuses !== undefined) query = query.where("send_status", "in", statuses);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  // A summary: changing the subject of a draft must not read its bodies back.
  return query.returning(summary(scope)).executeTakeFirst();
}

/** A draft's sending state, its row locked until the transaction ends (FOR UPDATE). */
export async function lockDraft(
  trx: Db,
  scope: TenantScope,
  id: string,
): Promise<{ send_status: DraftSendStatus; send_at: Date | null; requires_approval: boolean } | undefined> {
  let query = trx
    .selectFrom("drafts")
    .select(["send_status", "send_at", "requires_approval"])
    .where("org_id", "=", scope.orgId)
    .where("id", "=", id);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  return query.forUpdate().executeTakeFirst();
}

/** Deletes a draft the scope contains (in one of `statuses`, when given); undefined when there is none. */
export async function deleteDraft(
  db: Db,
  scope: TenantScope,
  id: string,
  statuses?: readonly DraftSendStatus[],
): Promise<{ id: string } | undefined> {
  let query = db.deleteFrom("drafts").where("org_id", "=", scope.orgId).where("id", "=", id);
  if (statuses !== undefined) query = query.where("send_status", "in", statuses);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  return query.returning("id").executeTakeFirst();
}

/** A draft's attachment without its content (docs/sending.md, "Draft attachments"). */
export type DraftAttachment = Omit<Selectable<DraftAttachmentTable>, "content">;

/** The attachment rows of drafts the scope contains, joined to their draft so that all of it applies. */
function scopedAttachments(db: Db, scope: TenantScope) {
  let query = db
    .selectFrom("draft_attachments as a")
    .innerJoin("drafts as d", (join) =>
      join.onRef("d.org_id", "=", "a.org_id").onRef("d.id", "=", "a.draft_id"),
    )
    .where("a.org_id", "=", scope.orgId);
  if (scope.podId !== null) query = query.where("d.pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("d.inbox_id", "=", scope.inboxId);
  return query;
}

const ATTACHMENT_COLUMNS = [
  "a.org_id",
  "a.id",
  "a.draft_id",
  "a.filename",
  "a.content_type",
  "a.size_bytes",
  "a.created_at",
] as const;

/** The attachments of each draft, in the order given, for a whole page of drafts in one statement. */
export async function attachmentsOfDrafts(
  db: Db,
  scope: TenantScope,
  draftIds: readonly string[],
): Promise<Map<string, DraftAttachment[]>> {
  const byDraft = new Map<string, DraftAttachment[]>(draftIds.map((id) => [id, []]));
  if (draftIds.length === 0) return byDraft;
  const rows = await scopedAttachments(db, scope)
    .select(ATTACHMENT_COLUMNS)
    .where("a.draft_id", "in", draftIds)
    .orderBy("a.id")
    .execute();
  for (const row of rows) byDraft.get(String(row.draft_id))?.push(row);
  return byDraft;
}

/** A draft's attachments with their contents, in order: what its send attaches. */
export async function draftAttachmentContents(
  db: Db,
  scope: TenantScope,
  draftId: string,
): Promise<(DraftAttachment & { content: Buffer })[]> {
  return scopedAttachments(db, scope)
    .select([...ATTACHMENT_COLUMNS, "a.content"])
    .where("a.draft_id", "=", draftId)
    .orderBy("a.id")
    .execute();
}

/** Contents base64-encoded by PostgreSQL, as a response writes them (see attachmentContentsBase64). */
export async function draftAttachmentContentsBase64(
  db: Db,
  scope: TenantScope,
  attachmentIds: readonly string[],
): Promise<Map<string, string>> {
  if (attachmentIds.length === 0) return new Map();
  const rows = await scopedAttachments(db, scope)
    .select(["a.id", sql<string>`translate(encode(a.content, 'base64'), E'\n', '')`.as("base64")])
    .where("a.id", "in", attachmentIds)
    .execute();
  return new Map(rows.map((row) => [String(row.id), row.base64]));
}

export interface NewDraftAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
}

/**
 * Replaces a draft's attachments with `attachments` (none: clears them), when the scope contains the
 * draft: one DELETE, then one INSERT … SELECT from the scoped draft, in the order given.
 */
export async function replaceDraftAttachments(
  trx: Db,
  scope: TenantScope,
  draftId: string,
  attachments: readonly NewDraftAttachment[],
): Promise<void> {
  const own = () => {
    let query = trx
      .selectFrom("drafts")
      .where("drafts.org_id", "=", scope.orgId)
      .where("drafts.id", "=", draftId);
    if (scope.podId !== null) query = query.where("drafts.pod_id", "=", scope.podId);
    if (scope.inboxId !== null) query = query.where("drafts.inbox_id", "=", scope.inboxId);
    return query;
  };
  await trx
    .deleteFrom("draft_attachments")
    .where("org_id", "=", scope.orgId)
    .where("draft_id", "in", own().select("drafts.id"))
    .execute();
  if (attachments.length === 0) return;
  await sql`
    INSERT INTO draft_attachments (org_id, draft_id, filename, content_type, size_bytes, content)
    SELECT d.org_id, d.id, f.filename, f.content_type, octet_length(f.content), f.content
    FROM (${own().select(["drafts.org_id", "drafts.id"])}) AS d,
      unnest(${attachments.map((a) => a.filename)}::text[], ${attachments.map((a) => a.contentType)}::text[],
             ${attachments.map((a) => a.content)}::bytea[]) WITH ORDINALITY AS f(filename, content_type, content, n)
    ORDER BY f.n
  `.execute(trx);
}
