// The events table is the outbox: an event row is written in the transaction that writes its data
// and announced with NOTIFY inside that transaction, so it is published iff the data committed.
import { sql } from "kysely";
import type { Db } from "../db/database.ts";
import type { EventType, JsonObject } from "../db/types.ts";

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

/** What NOTIFY carries: enough to route an event to subscribers without reading it back. */
export interface EventAnnouncement {
  orgId: string;
  id: string;
  type: EventType;
  podId: string | null;
  inboxId: string | null;
  messageId: string | null;
}

/**
 * Records an event. Ids come from one sequence, but a transaction that took a smaller id could
 * commit after one that took a larger id, and a subscriber replaying "after id N" would miss it.
 * A transaction-scoped advisory lock per organization, taken just before the insert and held
 * until commit, makes an organization's events commit in id order, so the id is a gap-free cursor.
 */
export async function recordEvent(trx: Db, event: NewEvent): Promise<string> {
  await sql`SELECT pg_advisory_xact_lock(${EVENTS_LOCK_CLASS}::int, ${Number(event.orgId) | 0}::int)`.execute(
    trx,
  );
  const row = await trx
    .insertInto("events")
    .values({
      org_id: event.orgId,
      type: event.type,
      pod_id: event.podId ?? null,
      inbox_id: event.inboxId ?? null,
      thread_id: event.threadId ?? null,
      message_id: event.messageId ?? null,
      domain_id: event.domainId ?? null,
      payload: event.payload ?? {},
      ...(event.createdAt ? { created_at: event.createdAt } : {}),
    })
    .returning("id")
    .executeTakeFirstOrThrow();
  const announcement: EventAnnouncement = {
    orgId: event.orgId,
    id: row.id,
    type: event.type,
    podId: event.podId ?? null,
    inboxId: event.inboxId ?? null,
    messageId: event.messageId ?? null,
  };
  await sql`SELECT pg_notify(${EVENTS_CHANNEL}, ${JSON.stringify(announcement)})`.execute(trx);
  await enqueueWebhookDeliveries(trx, announcement);
  return row.id;
}

/** Advisory lock namespace for event ordering (two-int form: class, organization). */
const EVENTS_LOCK_CLASS = 0x4d52; // "MR"

export const DELIVER_WEBHOOK = "deliver-webhook";

/**
 * One delivery row and one job per (event, matching webhook), in the event's transaction. A webhook
 * matches when it is enabled, subscribes to the type, and the event lies inside the pod or inbox it
 * belongs to (webhooks are scoped like the key that created them) and inside its podIds/inboxIds filters.
 * The job's key is the delivery's, so the same delivery is never queued twice.
 */
async function enqueueWebhookDeliveries(trx: Db, event: EventAnnouncement): Promise<void> {
  await sql`
    WITH targets AS (
      SELECT w.id FROM webhooks w
      WHERE w.org_id = ${event.orgId} AND w.enabled AND ${event.type} = ANY(w.event_types)
        AND (w.pod_id IS NULL OR w.pod_id = ${event.podId}::bigint)
        AND (w.inbox_id IS NULL OR w.inbox_id = ${event.inboxId}::bigint)
        AND (w.pod_ids IS NULL OR cardinality(w.pod_ids) = 0 OR ${event.podId}::bigint = ANY(w.pod_ids))
        AND (w.inbox_ids IS NULL OR cardinality(w.inbox_ids) = 0 OR ${event.inboxId}::bigint = ANY(w.inbox_ids))
    ), deliveries AS (
      INSERT INTO webhook_deliveries (org_id, webhook_id, event_id)
      SELECT ${event.orgId}, id, ${event.id} FROM targets
      ON CONFLICT DO NOTHING
      RETURNING id
    )
    SELECT graphile_worker.add_job(
      ${DELIVER_WEBHOOK},
      json_build_object('orgId', ${event.orgId}::text, 'deliveryId', d.id::text),
      max_attempts => ${WEBHOOK_MAX_ATTEMPTS}::int,
      job_key => ${DELIVER_WEBHOOK} || ':' || ${event.orgId}::text || ':' || d.id::text
    ) FROM deliveries d`.execute(trx);
}

/** An immediate attempt, then the retries of the schedule (config.webhookRetryDelaysMs, 7 by default). */
export const WEBHOOK_MAX_ATTEMPTS = 8;
