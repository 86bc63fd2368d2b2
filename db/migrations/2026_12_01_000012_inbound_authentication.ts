// Who really sent a message (docs/authentication.md): the SPF, DKIM, DMARC and ARC verdicts of mail
// received over SMTP from outside, and an inbox's choice to refuse mail that fails DMARC.
// - messages.authentication: the verdicts as one JSON document, read only when a caller asks for
//   `Message.authentication` (never by lists or the common read path). NULL for mail sent from
//   here or delivered between hosted inboxes, and for mail stored before this migration.
// - messages.authenticated: the one bit MessageFilter.authenticated tests, NULL where the verdict
//   is. Most inbound mail authenticates, so `authenticated: true` is a walk of the time-ordered
//   index that stops at the page's limit; `false` is the rare case and gets a partial index in
//   time order, like has_attachments, so a page of it is a walk of the few matches.
// - inboxes.reject_unauthenticated: refuse (`550 5.7.1` at the end of DATA) mail whose DMARC
//   verdict is FAIL.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE messages ADD COLUMN authentication jsonb, ADD COLUMN authenticated boolean`.execute(
    db,
  );
  await sql`
    CREATE INDEX messages_org_id_created_at_id_unauthenticated_idx ON messages (org_id, created_at, id)
      WHERE authenticated = false
  `.execute(db);
  await sql`ALTER TABLE inboxes ADD COLUMN reject_unauthenticated boolean NOT NULL DEFAULT false`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE inboxes DROP COLUMN IF EXISTS reject_unauthenticated`.execute(db);
  await sql`DROP INDEX IF EXISTS messages_org_id_created_at_id_unauthenticated_idx`.execute(db);
  await sql`ALTER TABLE messages DROP COLUMN IF EXISTS authenticated, DROP COLUMN IF EXISTS authentication`.execute(
    db,
  );
}
