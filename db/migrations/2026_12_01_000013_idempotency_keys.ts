// Idempotency keys of send mutations (docs/sending.md, "Idempotent sends"): one row per organization
// and key, written in the transaction that stores the sent message. The primary key decides between
// racing callers: the second INSERT waits for the first transaction and then finds the row, so one
// key sends once on every node. `request_hash` is SHA-256 of the normalised input; `expires_at`
// (24 hours on) is when the key may be used again and when the purge job deletes it.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE idempotency_keys (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      key text NOT NULL,
      operation text NOT NULL,
      request_hash bytea NOT NULL,
      message_id bigint NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (org_id, key)
    )
  `.execute(db);
  // The purge deletes by expiry across organizations (a job, not a tenant's request).
  await sql`CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE idempotency_keys`.execute(db);
}
