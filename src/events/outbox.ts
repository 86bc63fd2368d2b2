// The events table is the outbox: an event row is written in the transaction that writes its data
// and announced with NOTIFY inside that transaction, so it is published iff the data committed.
import { type RawBuilder, sql } from "kysely";
import type { Db } from "../db/database.ts";
import type { EventType, JsonObject } from "../db/types.ts";
import { webhookDeliveries } from "./webhook-fan-out.ts";

export const EVENTS_CHANNEL = "mailroom_events";

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
 * What NOTIFY carries (eventWrites builds it in SQL): enough to route an event to subscribers
 * without reading it back.
 */
export interface EventAnnouncement {
  orgId: string;
  id: string;
  type: EventType;
  podId: string | null;
  inboxId: string | null;
  messageId: string | null;
  /** When the event was announced (the database's clock, ms since the epoch): delivery lag is measured from it. */
  at?: number;
}

/**
 * Records an event. Ids come from one sequence, but a transaction that took a smaller id could
 * commit after one that took a larger id, and a subscriber replaying "after id N" would miss it.
 * A transaction-scoped advisory lock per organization, taken just before the insert and held
 * until commit, makes an organization's events commit in id order, so the id is a gap-free cursor.
 */
export async function recordEvent(trx: Db, event: NewEvent): Promise<string> {
  await lockEventOrder(trx, [event.orgId]);
  const [id] = await appendEvents(trx, [event]);
  return id as string;
}

/**
 * Takes the event-ordering locks of these organizations (see recordEvent) until commit. A
 * transaction that takes several takes them in one order everywhere, ascending, so two such
 * transactions cannot deadlock on them. Taking them before writing any other row also keeps such
 * a transaction from deadlocking with another writer of the same rows that waits for the lock.
 */
export async function lockEventOrder(trx: Db, orgIds: Iterable<string>): Promise<void> {
  const keys = [...new Set([...orgIds].map(lockKey))].sort((a, b) => a - b);
  if (keys.length === 0) return;
  if (keys.length === 1) {
    await sql`SELECT pg_advisory_xact_lock(${EVENTS_LOCK_CLASS}::int, ${keys[0]}::int)`.execute(trx);
    return;
  }
  // The sorted subquery is not flattened into the outer query, so the locks are taken in its order.
  await sql`
    SELECT pg_advisory_xact_lock(${EVENTS_LOCK_CLASS}::int, k)
    FROM (SELECT k FROM unnest(${keys}::int[]) AS k ORDER BY k) AS sorted`.execute(trx);
}

/**
 * Records events, in order, announces them (NOTIFY, delivered at commit) and queues their webhook
 * deliveries, in one statement, and returns their ids. The caller must already hold lockEventOrder
 * for every organization named (until commit), so that the ids are drawn after the lock is held.
 * An event about a message carries that message's labels as they are in this statement: the
 * message must already be written (and is, by every caller: settling a delivery updates it first).
 */
export async function appendEvents(trx: Db, events: readonly NewEvent[]): Promise<string[]> {
  if (events.length === 0) return [];
  const { rows } = await sql<{ id: string }>`
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
    SELECT id, (SELECT count(*) FROM announced_events) AS announced FROM event_rows ORDER BY ord`.execute(
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
 * The CTE `event_rows` gives each event its `id`. The statement must read `announced_events` (say
 * `(SELECT count(*) FROM announced_events)`): that announces the events and queues their webhook
 * jobs. The caller holds lockEventOrder as for appendEvents.
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
    ), ${webhookDeliveries()}, announced_events AS MATERIALIZED (
      -- Announced at commit in this order: each organization's ids ascending. (Output expressions
      -- with side effects are evaluated after the sort.)
      SELECT pg_notify(${EVENTS_CHANNEL}, json_build_object('orgId', org_id::text, 'id', id::text, 'type', type,
          'podId', pod_id::text, 'inboxId', inbox_id::text, 'messageId', message_id::text,
          'at', floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)::text),
        (SELECT count(*) FROM webhook_jobs) AS jobs
      FROM event_rows ORDER BY ord
    )`;
}

/** Advisory lock namespace for event ordering (two-int form: class, organization). */
const EVENTS_LOCK_CLASS = 0x4d52; // "MR"

function lockKey(orgId: string): number {
  return Number(orgId) | 0;
}
