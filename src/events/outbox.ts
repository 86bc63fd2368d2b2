// The events table is the outbox: an event row is written in the transaction that writes its data, so
// it exists iff the data committed. Nothing orders or announces it at write time: readers find settled
// events in (transaction id, id) order (docs/events.md, "Order without a lock").
import { type RawBuilder, sql } from "kysely";
import { type Db, QUEUES_JOBS } from "../db/database.ts";
import type { EventType, JsonObject } from "../db/types.ts";
import { webhookDeliveries } from "./webhook-fan-out.ts";

export interface NewEvent {
  orgId: string;
  type: EventType;
  podId?: string | null;
  inboxId?: string | null;
  threadId?: string | null;
  messageId?: string | null;
  domainId?: string | null;
  payload?: JsonObject;
  createdAt?: Date;
}

/**
 * Records an event. Ids come from one sequence, and a transaction that took a smaller id may commit
 * after one that took a larger id: the event's transaction id (recorded by the column's default)
 * orders it for readers, who wait until it has settled (src/events/repository.ts).
 */
export async function recordEvent(trx: Db, event: NewEvent): Promise<string> {
  const [id] = await appendEvents(trx, [event]);
  return id as string;
}

/**
 * Records events, in order, and queues their webhook deliveries, in one statement, and returns their
 * ids. An event about a message carries that message's labels as they are in this statement: the
 * message must already be written (and is, by every caller: settling a delivery updates it first).
 */
export async function appendEvents(trx: Db, events: readonly NewEvent[]): Promise<string[]> {
  if (events.length === 0) return [];
  const { rows } = await sql<{ id: string }>`${QUEUES_JOBS}
    WITH ${eventWrites(sql`
      SELECT e.*, (SELECT m.labels FROM messages m WHERE m.org_id = e.org_id AND m.id = e.message_id)
        AS message_labels
      FROM unnest(
        ${events.map((e) => e.orgId)}::bigint[], ${events.map((e) => e.type)}::text[],
        ${events.map((e) => e.podId ?? null)}::bigint[], ${events.map((e) => e.inboxId ?? null)}::bigint[],
        ${events.map((e) => e.threadId ?? null)}::bigint[], ${events.map((e) => e.messageId ?? null)}::bigint[],
        ${events.map((e) => e.domainId ?? null)}::bigint[],
        ${events.map((e) => JSON.stringify(e.payload ?? {}))}::jsonb[],
        ${events.map((e) => e.createdAt ?? null)}::timestamptz[]
      ) WITH ORDINALITY AS e(org_id, type, pod_id, inbox_id, thread_id, message_id, domain_id, payload, created_at, ord)`)}
    SELECT id, (SELECT jobs FROM queued_webhook_jobs) AS jobs_queued FROM event_rows ORDER BY ord`.execute(
    trx,
  );
  return rows.map((row) => row.id);
}

/**
 * appendEvents as CTEs of a larger statement (to add to its WITH list), so that a statement that
 * writes rows can record their events without another round trip. `rows` selects one row per event
 * with the columns org_id, type, pod_id, inbox_id, thread_id, message_id, domain_id, payload,
 * created_at (NULL for now()), message_labels (the message's labels now; NULL when not about a
 * message) and ord (their order); it may read the statement's earlier CTEs. The labels travel with
 * the rows because a message written by the same statement is not visible to it, and because who
 * may see an event is decided by the labels it had (src/events/visibility.ts).
 * The CTE `event_rows` gives each event its `id`. The statement starts with QUEUES_JOBS and returns
 * `(SELECT jobs FROM queued_webhook_jobs) AS jobs_queued`: how many webhook jobs it put in the job
 * outbox, so that this node moves them to graphile-worker once the transaction commits.
 *
 * Ids are drawn before the rows are inserted, so each is known to belong to its event without
 * relying on the order in which an INSERT returns rows.
 */
export function eventWrites(rows: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`event_rows AS MATERIALIZED (
      SELECT nextval(pg_get_serial_sequence('events', 'id')) AS id, e.*
      FROM (SELECT * FROM (${rows}) AS e ORDER BY ord) AS e
    ), inserted_events AS (
      INSERT INTO events (id, org_id, type, pod_id, inbox_id, thread_id, message_id, domain_id, payload, created_at,
        message_labels)
      OVERRIDING SYSTEM VALUE
      SELECT id, org_id, type, pod_id, inbox_id, thread_id, message_id, domain_id, payload, coalesce(created_at, now()),
        message_labels
      FROM event_rows
    ), ${webhookDeliveries()}, queued_webhook_jobs AS MATERIALIZED (
      SELECT (SELECT count(*) FROM webhook_jobs) AS jobs
    )`;
}
