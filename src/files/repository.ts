// The bytes behind download links, SQL only: what a file is (type, name, size) and its content one
// slice at a time, never whole. Every statement applies the whole scope it is given — the scope the
// link's minting caller had (src/files/token.ts), organization, pod, inbox and hidden labels — in SQL,
// with the message's labels as they are now: a message deleted or moved under a hidden label since the
// link was minted is not found, and neither is a slice of it.
import { sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import { visible } from "../mail/visibility.ts";

export interface AttachmentFile {
  contentType: string;
  filename: string | null;
  /** Bytes of the content, as stored (octet_length: read from the value's header, not its bytes). */
  size: number;
}

/** The attachment `attachmentId` of message `messageId`, if that message is visible. */
export async function attachmentFile(
  db: Db,
  scope: TenantScope,
  messageId: string,
  attachmentId: string,
): Promise<AttachmentFile | undefined> {
  return visibleAttachment(db, scope, messageId, attachmentId)
    .select([
      "a.content_type as contentType",
      "a.filename",
      sql<number>`octet_length(a.content)::int`.as("size"),
    ])
    .executeTakeFirst();
}

/** `length` bytes of an attachment's content from `offset` (0-based); undefined once it is out of reach. */
export async function attachmentSlice(
  db: Db,
  scope: TenantScope,
  messageId: string,
  attachmentId: string,
  offset: number,
  length: number,
): Promise<Buffer | undefined> {
  const row = await visibleAttachment(db, scope, messageId, attachmentId)
    .select(sql<Buffer>`substring(a.content from ${offset + 1}::int for ${length}::int)`.as("slice"))
    .executeTakeFirst();
  return row?.slice;
}

/** A visible message's raw form: its size, or null when it has none (stored without one). */
export async function rawMessageFile(
  db: Db,
  scope: TenantScope,
  messageId: string,
): Promise<{ size: number | null } | undefined> {
  return db
    .selectFrom("messages as m")
    .select(sql<number | null>`octet_length(m.raw_mime)::int`.as("size"))
    .where("m.id", "=", messageId)
    .where(() => visible(scope))
    .executeTakeFirst();
}

/** `length` bytes of a visible message's raw form from `offset` (0-based). */
export async function rawMessageSlice(
  db: Db,
  scope: TenantScope,
  messageId: string,
  offset: number,
  length: number,
): Promise<Buffer | undefined> {
  const row = await db
    .selectFrom("messages as m")
    .select(sql<Buffer | null>`substring(m.raw_mime from ${offset + 1}::int for ${length}::int)`.as("slice"))
    .where("m.id", "=", messageId)
    .where(() => visible(scope))
    .executeTakeFirst();
  return row?.slice ?? undefined;
}

/**
 * The attachment `attachmentId` of draft `draftId`, if the scope contains that draft (drafts carry no
 * labels: organization, pod and inbox are all of a draft's visibility).
 */
export async function draftAttachmentFile(
  db: Db,
  scope: TenantScope,
  draftId: string,
  attachmentId: string,
): Promise<AttachmentFile | undefined> {
  return scopedDraftAttachment(db, scope, draftId, attachmentId)
    .select([
      "a.content_type as contentType",
      "a.filename",
      sql<number>`octet_length(a.content)::int`.as("size"),
    ])
    .executeTakeFirst();
}

/** `length` bytes of a draft attachment's content from `offset` (0-based); undefined once it is gone. */
export async function draftAttachmentSlice(
  db: Db,
  scope: TenantScope,
  draftId: string,
  attachmentId: string,
  offset: number,
  length: number,
): Promise<Buffer | undefined> {
  const row = await scopedDraftAttachment(db, scope, draftId, attachmentId)
    .select(sql<Buffer>`substring(a.content from ${offset + 1}::int for ${length}::int)`.as("slice"))
    .executeTakeFirst();
  return row?.slice;
}

function scopedDraftAttachment(db: Db, scope: TenantScope, draftId: string, attachmentId: string) {
  let query = db
    .selectFrom("draft_attachments as a")
    .innerJoin("drafts as d", (join) =>
      join.onRef("d.org_id", "=", "a.org_id").onRef("d.id", "=", "a.draft_id"),
    )
    .where("a.org_id", "=", scope.orgId)
    .where("a.id", "=", attachmentId)
    .where("a.draft_id", "=", draftId);
  if (scope.podId !== null) query = query.where("d.pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("d.inbox_id", "=", scope.inboxId);
  return query;
}

function visibleAttachment(db: Db, scope: TenantScope, messageId: string, attachmentId: string) {
  return db
    .selectFrom("attachments as a")
    .innerJoin("messages as m", (join) =>
      join.onRef("m.org_id", "=", "a.org_id").onRef("m.id", "=", "a.message_id"),
    )
    .where("a.org_id", "=", scope.orgId)
    .where("a.id", "=", attachmentId)
    .where("a.message_id", "=", messageId)
    .where(() => visible(scope));
}
