// Per-record results of the last DNS verification of a domain (MX, SPF, DKIM, DMARC), so a client
// sees which record is missing or wrong, not only that verification failed.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  // NULL: never checked. Otherwise {"MX": {"status": "VERIFIED", "found": ["..."]}, ...}.
  await sql`ALTER TABLE domains ADD COLUMN dns_checks jsonb`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE domains DROP COLUMN IF EXISTS dns_checks`.execute(db);
}
