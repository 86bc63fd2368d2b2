// Drafts carry attachments (docs/sending.md, "Draft attachments"), in a table of their own beside the
// drafts, like a message's: a draft's list is read for a whole page in one statement, and a draft's
// content is copied into the message's attachments when it is sent. Stored uncompressed (STORAGE
// EXTERNAL) like message attachments, so a download link streams one in slices
// (db/migrations/2026_12_01_000010_file_storage.ts says why).
//
// An approval-bound key's send is held as a draft, not sent: its idempotency key then records that
// draft (draft_id) instead of a message, so a repeat with the same key gets the same held draft
// rather than a second one (docs/sending.md, "Approval before sending"). Once the draft is approved
// and sent, message_id is set too.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE draft_attachments (
      org_id bigint NOT NULL,
      id bigint GENERATED ALWAYS AS IDENTITY,
      draft_id bigint NOT NULL,
      filename text NOT NULL,
      content_type text NOT NULL,
      size_bytes integer NOT NULL CONSTRAINT draft_attachments_size_bytes_check CHECK (size_bytes >= 0),
      content bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      FOREIGN KEY (org_id, draft_id) REFERENCES drafts (org_id, id) ON DELETE CASCADE
    )
  `.execute(db);
  await sql`
    CREATE INDEX draft_attachments_org_id_draft_id_id_idx ON draft_attachments (org_id, draft_id, id)
  `.execute(db);
  await sql`ALTER TABLE draft_attachments ALTER COLUMN content SET STORAGE EXTERNAL`.execute(db);
  await sql`
    ALTER TABLE idempotency_keys
      ALTER COLUMN message_id DROP NOT NULL,
      ADD COLUMN draft_id bigint,
      ADD CONSTRAINT idempotency_keys_payload_check CHECK (message_id IS NOT NULL OR draft_id IS NOT NULL)
  `.execute(db);
  // Sending a draft looks up the key that held it, to record the message it became.
  await sql`
    CREATE INDEX idempotency_keys_org_id_draft_id_idx ON idempotency_keys (org_id, draft_id)
      WHERE draft_id IS NOT NULL
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM idempotency_keys WHERE message_id IS NULL`.execute(db);
  await sql`
    ALTER TABLE idempotency_keys
      DROP CONSTRAINT idempotency_keys_payload_check,
      DROP COLUMN draft_id,
      ALTER COLUMN message_id SET NOT NULL
  `.execute(db);
  await sql`DROP TABLE draft_attachments`.execute(db);
}
