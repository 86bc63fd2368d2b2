// Events are ordered by the transaction that wrote them, not by a per-organization lock held until
// commit (docs/events.md, "Order without a lock"): each event records its transaction's id, and
// readers deliver, in (xid, id) order, only events of transactions older than every transaction
// still running. Events written before this migration keep xid 0: they committed in id order under
// the lock, so (0, id) orders them as before, ahead of every later event.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  // A constant default first (no table rewrite), then the transaction id for every new row.
  await sql`ALTER TABLE events ADD COLUMN xid xid8 NOT NULL DEFAULT '0'`.execute(db);
  await sql`ALTER TABLE events ALTER COLUMN xid SET DEFAULT pg_current_xact_id()`.execute(db);
  await sql`CREATE INDEX events_org_id_xid_id_idx ON events (org_id, xid, id)`.execute(db);
  // A webhook's deliveries never attempted yet: sent before a later event's (src/webhooks/delivery.ts).
  await sql`
    CREATE INDEX webhook_deliveries_first_attempts_idx ON webhook_deliveries (org_id, webhook_id)
    WHERE status = 'PENDING' AND attempts = 0`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX webhook_deliveries_first_attempts_idx`.execute(db);
  await sql`DROP INDEX events_org_id_xid_id_idx`.execute(db);
  await sql`ALTER TABLE events DROP COLUMN xid`.execute(db);
}
