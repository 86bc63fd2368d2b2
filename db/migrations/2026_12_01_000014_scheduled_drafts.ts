// Scheduled drafts (docs/sending.md, "Scheduled drafts"): when a draft is to be sent, where it stands
// (DRAFT → SCHEDULED → SENDING → SENT, or FAILED with its reason), and how it is to be sent (to
// everyone the replied-to message reached, or as a forward of a message). The send itself is a
// graphile-worker job with run_at = send_at and a job key per draft.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE drafts
      ADD COLUMN send_at timestamptz,
      ADD COLUMN send_status text NOT NULL DEFAULT 'DRAFT'
        CONSTRAINT drafts_send_status_check
        CHECK (send_status IN ('DRAFT', 'SCHEDULED', 'SENDING', 'SENT', 'FAILED', 'PENDING_APPROVAL')),
      ADD COLUMN failure_reason text,
      ADD COLUMN reply_all boolean NOT NULL DEFAULT false,
      ADD COLUMN forward_of_message_id bigint,
      ADD COLUMN sent_message_id bigint,
      ADD CONSTRAINT drafts_scheduled_has_send_at CHECK (send_status <> 'SCHEDULED' OR send_at IS NOT NULL),
      -- Like in_reply_to_message_id: a message of the same inbox; deleting it clears only the reference.
      ADD CONSTRAINT drafts_forward_of_fkey FOREIGN KEY (org_id, inbox_id, forward_of_message_id)
        REFERENCES messages (org_id, inbox_id, id) ON DELETE SET NULL (forward_of_message_id)
  `.execute(db);
  // drafts(sendStatus:) lists one status newest first.
  await sql`CREATE INDEX drafts_org_id_send_status_id_idx ON drafts (org_id, send_status, id)`.execute(db);
  await sql`
    CREATE INDEX drafts_org_id_forward_of_message_id_idx ON drafts (org_id, forward_of_message_id)
      WHERE forward_of_message_id IS NOT NULL
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE drafts
      DROP COLUMN send_at, DROP COLUMN send_status, DROP COLUMN failure_reason, DROP COLUMN reply_all,
      DROP COLUMN forward_of_message_id, DROP COLUMN sent_message_id
  `.execute(db);
}
