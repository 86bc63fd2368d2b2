// Duplicate detection by Message-ID alone lost mail: a second, different message that reused a
// Message-ID (a buggy or hostile sender) was acknowledged with 250 and dropped as a retry of the
// first. A message is now a retry only when its content digest matches too (src/mail/digest.ts:
// what the message says and to whom, not the trace headers or encodings a relay changes).
//
// The empty digest (the default) means "none": mail composed here, whose Message-ID is minted per
// message, and every row stored before this migration. A retry of mail stored before it therefore
// finds no match and is stored a second time: a visible duplicate in that short window, never a
// lost message.
//
// The unique key keeps the Message-ID right after org_id (see 2026_11_30_000004_message_id_lookup.ts)
// and gains the digest last: lookups state (org_id, message_id_header, direction) as before.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  // A constant default: no table rewrite, existing rows read it without being touched.
  await sql`
    ALTER TABLE messages
      ADD COLUMN content_digest bytea NOT NULL DEFAULT ''::bytea
        CONSTRAINT messages_content_digest_length_check CHECK (octet_length(content_digest) IN (0, 32))
  `.execute(db);
  await sql`
    ALTER TABLE messages
      DROP CONSTRAINT messages_org_id_message_id_header_direction_inbox_id_key,
      ADD CONSTRAINT messages_org_id_message_id_header_direction_inbox_id_digest_key
        UNIQUE (org_id, message_id_header, direction, inbox_id, content_digest)
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // Fails (a unique violation) while an inbox holds two messages sharing a Message-ID: going back
  // would mean deleting acknowledged mail, which is for a person to decide, not a migration.
  await sql`
    ALTER TABLE messages
      DROP CONSTRAINT messages_org_id_message_id_header_direction_inbox_id_digest_key,
      ADD CONSTRAINT messages_org_id_message_id_header_direction_inbox_id_key
        UNIQUE (org_id, message_id_header, direction, inbox_id),
      DROP COLUMN content_digest
  `.execute(db);
}
