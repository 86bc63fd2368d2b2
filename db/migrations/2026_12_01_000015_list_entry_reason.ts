// List entries gain why they exist, and whether the system put them there (docs/sending.md,
// "Suppressions"): a permanent relay failure adds a read-only SEND BLOCK entry for the address with
// the relay's answer as its reason. People may delete such an entry, never create one.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE list_entries
      ADD COLUMN reason text CONSTRAINT list_entries_reason_length_check CHECK (char_length(reason) <= 1000),
      ADD COLUMN read_only boolean NOT NULL DEFAULT false
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE list_entries DROP COLUMN reason, DROP COLUMN read_only`.execute(db);
}
