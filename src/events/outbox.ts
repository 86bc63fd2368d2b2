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
  return row.id;
}

/** Advisory lock namespace for event ordering (two-int form: class, organization). */
const EVENTS_LOCK_CLASS = 0x4d52; // "MR"
