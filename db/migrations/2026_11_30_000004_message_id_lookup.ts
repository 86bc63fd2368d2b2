// Inbound mail looks up every message's Message-ID (is it a retry?) and the Message-IDs it replies
// to (which thread?) in its inbox. The unique key that answers those lookups led with
// (org_id, inbox_id), the same prefix as messages_org_id_inbox_id_id_key, and the planner cannot
// tell the two apart when it believes an inbox holds about one message: on a young database (no
// statistics yet) or one with many inboxes (org_id and inbox_id estimated as independent), it took
// the (org_id, inbox_id, id) index and filtered the whole inbox, once per message. Ingest slowed as
// the inbox grew (an SMTP benchmark fell from 950 to 330 messages/s in half a minute).
//
// The same key with the Message-ID second: a lookup states (org_id, message_id_header), which only
// this index serves, and finds the few copies of that mail (one per inbox and direction).
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE messages
      DROP CONSTRAINT messages_org_id_inbox_id_message_id_header_direction_key,
      ADD CONSTRAINT messages_org_id_message_id_header_direction_inbox_id_key
        UNIQUE (org_id, message_id_header, direction, inbox_id)
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE messages
      DROP CONSTRAINT messages_org_id_message_id_header_direction_inbox_id_key,
      ADD CONSTRAINT messages_org_id_inbox_id_message_id_header_direction_key
        UNIQUE (org_id, inbox_id, message_id_header, direction)
  `.execute(db);
}
