// What agents read and filter mail by, beyond the bare addresses and bodies:
// - the display names of the sender and of the To and Cc recipients ("Ann Lee" <ann@example.com>),
//   kept beside the addresses (the arrays run in parallel; an element is NULL where a recipient had
//   no name). Messages stored before this migration have none: their raw header block is not parsed
//   again here, so their names stay unknown (NULL).
// - every header, in order, as received or sent (NULL for older messages: the application reads them
//   from the start of the raw message then).
// - whether a message has attachments, and its To and Cc recipients (addresses and names) as one
//   lower-case text, so MessageFilter's hasAttachments and `to` need no join and no array function
//   at query time.
// The filters of MessageFilter each get an index that keeps a filtered page an index walk or a
// bitmap of the few matches, never a scan of the organization: trigram GIN indexes (pg_trgm, a
// trusted extension like btree_gin) for the substring filters, led by org_id, with inbox_id beside it
// so an inbox's list combines both in one bitmap (GIN serves any subset of its columns).
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE EXTENSION IF NOT EXISTS pg_trgm`.execute(db);
  await sql`
    ALTER TABLE messages
      ADD COLUMN from_name text,
      ADD COLUMN to_names text[],
      ADD COLUMN cc_names text[],
      ADD COLUMN headers jsonb,
      ADD COLUMN has_attachments boolean NOT NULL DEFAULT false,
      ADD COLUMN recipient_text text NOT NULL DEFAULT ''
  `.execute(db);
  await sql`
    UPDATE messages m SET has_attachments = true
    WHERE EXISTS (SELECT 1 FROM attachments a WHERE a.org_id = m.org_id AND a.message_id = m.id)
  `.execute(db);
  await sql`
    UPDATE messages SET recipient_text = lower(array_to_string(to_addresses || cc_addresses, ' '))
    WHERE cardinality(to_addresses) + cardinality(cc_addresses) > 0
  `.execute(db);
  await sql`
    CREATE INDEX messages_org_id_sender_trgm_idx ON messages
      USING gin (org_id, inbox_id, (lower(from_address || ' ' || coalesce(from_name, ''))) gin_trgm_ops)
  `.execute(db);
  await sql`
    CREATE INDEX messages_org_id_recipient_trgm_idx ON messages
      USING gin (org_id, inbox_id, recipient_text gin_trgm_ops)
  `.execute(db);
  await sql`
    CREATE INDEX messages_org_id_subject_trgm_idx ON messages
      USING gin (org_id, inbox_id, (lower(subject)) gin_trgm_ops)
  `.execute(db);
  // Lists of messages run in time order, (created_at, id), newest first unless asked otherwise: the
  // organization's, a pod's and an inbox's each have a B-tree in that order, so a page is a walk that
  // stops at the limit, and since/until bound the walk instead of filtering it. (Listed by id, an
  // `until` a year back walked every newer message first.) The pod's replaces (org_id, pod_id, id).
  await sql`CREATE INDEX messages_org_id_created_at_id_idx ON messages (org_id, created_at, id)`.execute(db);
  await sql`
    CREATE INDEX messages_org_id_pod_id_created_at_id_idx ON messages (org_id, pod_id, created_at, id)
  `.execute(db);
  await sql`
    CREATE INDEX messages_org_id_inbox_id_created_at_id_idx ON messages (org_id, inbox_id, created_at, id)
  `.execute(db);
  await sql`DROP INDEX messages_org_id_pod_id_id_idx`.execute(db);
  await sql`
    CREATE INDEX messages_org_id_created_at_id_with_attachments_idx ON messages (org_id, created_at, id)
      WHERE has_attachments
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const index of [
    "messages_org_id_sender_trgm_idx",
    "messages_org_id_recipient_trgm_idx",
    "messages_org_id_subject_trgm_idx",
    "messages_org_id_created_at_id_idx",
    "messages_org_id_pod_id_created_at_id_idx",
    "messages_org_id_inbox_id_created_at_id_idx",
    "messages_org_id_created_at_id_with_attachments_idx",
  ]) {
    await sql`DROP INDEX IF EXISTS ${sql.id(index)}`.execute(db);
  }
  await sql`CREATE INDEX IF NOT EXISTS messages_org_id_pod_id_id_idx ON messages (org_id, pod_id, id)`.execute(
    db,
  );
  await sql`
    ALTER TABLE messages
      DROP COLUMN IF EXISTS recipient_text,
      DROP COLUMN IF EXISTS has_attachments,
      DROP COLUMN IF EXISTS headers,
      DROP COLUMN IF EXISTS cc_names,
      DROP COLUMN IF EXISTS to_names,
      DROP COLUMN IF EXISTS from_name
  `.execute(db);
}
