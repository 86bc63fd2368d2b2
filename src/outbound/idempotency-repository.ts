// Idempotency keys of send mutations: SQL only. The primary key (org_id, key) is what decides between
// racing callers (docs/sending.md, "Idempotent sends").
import { sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";

export interface IdempotencyRecord {
  operation: string;
  request_hash: Buffer;
  /** The sent message; null while the send waits for approval as `draft_id`. */
  message_id: string | null;
  draft_id: string | null;
}

/** The organization's unexpired record of `key`, if any. */
export async function findIdempotencyKey(
  db: Db,
  scope: TenantScope,
  key: string,
): Promise<IdempotencyRecord | undefined> {
  return db
    .selectFrom("idempotency_keys")
    .select(["operation", "request_hash", "message_id", "draft_id"])
    .where("org_id", "=", scope.orgId)
    .where("key", "=", key)
    .where("expires_at", ">", sql<Date>`now()`)
    .executeTakeFirst();
}

/**
 * Records `key` for the message just stored in `trx` (or, for a send held for approval, the draft it
 * was held as); false when an unexpired record exists (then the
 * caller must roll back). A concurrent transaction holding the same key makes this statement wait
 * for its outcome: committed, this one records nothing; rolled back, this one records the key. An
 * expired record that the purge has not reached yet is replaced.
 */
export async function claimIdempotencyKey(
  trx: Db,
  scope: TenantScope,
  record: {
    key: string;
    operation: string;
    requestHash: Buffer;
    messageId: string | null;
    draftId?: string | null | undefined;
    ttlSeconds: number;
  },
): Promise<boolean> {
  const claimed = await trx
    .insertInto("idempotency_keys")
    .values({
      org_id: scope.orgId,
      key: record.key,
      operation: record.operation,
      request_hash: record.requestHash,
      message_id: record.messageId,
      draft_id: record.draftId ?? null,
      expires_at: sql<Date>`now() + make_interval(secs => ${record.ttlSeconds})`,
    })
    .onConflict((conflict) =>
      conflict
        .columns(["org_id", "key"])
        .doUpdateSet((excluded) => ({
          operation: excluded.ref("excluded.operation"),
          request_hash: excluded.ref("excluded.request_hash"),
          message_id: excluded.ref("excluded.message_id"),
          draft_id: excluded.ref("excluded.draft_id"),
          created_at: sql<Date>`now()`,
          expires_at: excluded.ref("excluded.expires_at"),
        }))
        .where("idempotency_keys.expires_at", "<=", sql<Date>`now()`),
    )
    .returning("key")
    .executeTakeFirst();
  return claimed !== undefined;
}

/**
 * Records the message a held send became once its draft is sent (approved), so that a repeat of the
 * held call answers with the message from then on.
 */
export async function recordHeldSendSent(
  trx: Db,
  scope: TenantScope,
  draftId: string,
  messageId: string,
): Promise<void> {
  await trx
    .updateTable("idempotency_keys")
    .set({ message_id: messageId })
    .where("org_id", "=", scope.orgId)
    .where("draft_id", "=", draftId)
    .where("message_id", "is", null)
    .execute();
}

/**
 * Deletes expired records of every organization, at most `batch` per statement so that no statement
 * holds many row locks for long; the number deleted. The one statement here outside a tenant's
 * scope: it runs for the purge job, never for a caller.
 */
export async function purgeExpiredIdempotencyKeys(db: Db, batch = 5000): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await sql`
      DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT ${batch}
      ))`.execute(db);
    const deleted = Number(result.numAffectedRows ?? 0);
    total += deleted;
    if (deleted < batch) return total;
  }
}
