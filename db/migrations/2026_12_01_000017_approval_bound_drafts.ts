// Approval before sending (docs/sending.md, "Approval before sending"): a draft written by an
// approval-bound key remembers it (its scheduled send stops at PENDING_APPROVAL instead of leaving);
// a new event type, DRAFT_PENDING_APPROVAL, which webhooks may subscribe to; and whether a webhook's
// creator could read drafts, which that event needs (docs/webhooks.md, "What a webhook sees").
import { type Kysely, sql } from "kysely";

const OLD_TYPES = `'MESSAGE_RECEIVED', 'MESSAGE_SENT', 'MESSAGE_DELIVERED', 'MESSAGE_BOUNCED', 'MESSAGE_REJECTED', 'DOMAIN_VERIFIED'`;
const NEW_TYPES = `${OLD_TYPES}, 'DRAFT_PENDING_APPROVAL'`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE drafts ADD COLUMN requires_approval boolean NOT NULL DEFAULT false`.execute(db);
  await sql`
    ALTER TABLE events DROP CONSTRAINT events_type_check,
      ADD CONSTRAINT events_type_check CHECK (type IN (${sql.raw(NEW_TYPES)}))
  `.execute(db);
  await sql`
    ALTER TABLE webhooks DROP CONSTRAINT webhooks_event_types_check,
      ADD CONSTRAINT webhooks_event_types_check
        CHECK (cardinality(event_types) > 0 AND event_types <@ ARRAY[${sql.raw(NEW_TYPES)}]::text[]),
      -- The narrowest visibility unless told otherwise, as for the other read flags.
      ADD COLUMN draft_read boolean NOT NULL DEFAULT false
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM events WHERE type = 'DRAFT_PENDING_APPROVAL'`.execute(db);
  await sql`
    UPDATE webhooks SET event_types = array_remove(event_types, 'DRAFT_PENDING_APPROVAL')
    WHERE 'DRAFT_PENDING_APPROVAL' = ANY(event_types)
  `.execute(db);
  await sql`DELETE FROM webhooks WHERE cardinality(event_types) = 0`.execute(db);
  await sql`
    ALTER TABLE webhooks DROP COLUMN draft_read, DROP CONSTRAINT webhooks_event_types_check,
      ADD CONSTRAINT webhooks_event_types_check
        CHECK (cardinality(event_types) > 0 AND event_types <@ ARRAY[${sql.raw(OLD_TYPES)}]::text[])
  `.execute(db);
  await sql`
    ALTER TABLE events DROP CONSTRAINT events_type_check,
      ADD CONSTRAINT events_type_check CHECK (type IN (${sql.raw(OLD_TYPES)}))
  `.execute(db);
  await sql`ALTER TABLE drafts DROP COLUMN requires_approval`.execute(db);
}
