// Events: SQL only. Reads apply the caller's visibility; `settledEventsAfter` reads for a whole
// organization so that every subscriber of the node can be served from one read.
import { type Selectable, sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { EventTable, EventType } from "../db/types.ts";
import type { EventPosition } from "./cursor.ts";
import { type EventVisibility, eventReadable } from "./visibility.ts";

export type Event = Selectable<EventTable>;

export interface EventFilter {
  types?: readonly EventType[] | undefined;
  podIds?: readonly string[] | undefined;
  inboxIds?: readonly string[] | undefined;
}

/**
 * Events are read in (xid, id) order, and only those whose transaction is older than every
 * transaction still running (the statement's snapshot xmin): those have all committed or aborted,
 * so no event can appear later before them (docs/events.md, "Order without a lock").
 */
const SETTLED = sql<boolean>`e.xid < pg_snapshot_xmin(pg_current_snapshot())`;

const after = (position: EventPosition) =>
  sql<boolean>`(e.xid, e.id) > (${position.xid}::xid8, ${position.id}::bigint)`;

/**
 * The settled events after `position` that `visibility` may read, judged by the labels they carried
 * (the subscriber then checks each message as it is now, in memory).
 */
export async function eventsAfter(
  db: Db,
  visibility: EventVisibility,
  position: EventPosition,
  filter: EventFilter,
  limit: number,
): Promise<Event[]> {
  let query = db
    .selectFrom("events as e")
    .selectAll("e")
    .where("e.org_id", "=", visibility.orgId)
    .where(after(position))
    .where(SETTLED)
    .where(eventReadable("e", visibility));
  if (filter.types?.length) query = query.where("e.type", "in", filter.types);
  if (filter.podIds?.length) query = query.where("e.pod_id", "in", filter.podIds);
  if (filter.inboxIds?.length) query = query.where("e.inbox_id", "in", filter.inboxIds);
  return query.orderBy("e.xid", "asc").orderBy("e.id", "asc").limit(limit).execute();
}

/** The events among `ids` that `visibility` may read (by the same rule as eventsAfter), in no order. */
export async function readableEventsByIds(
  db: Db,
  visibility: EventVisibility,
  ids: readonly string[],
): Promise<Event[]> {
  if (ids.length === 0) return [];
  return db
    .selectFrom("events as e")
    .selectAll("e")
    .where("e.org_id", "=", visibility.orgId)
    .where("e.id", "in", ids)
    .where(eventReadable("e", visibility))
    .execute();
}

/** Up to `limit` settled events of the organization after `position`, in order, for everyone (live subscribers judge them in memory). */
export async function settledEventsAfter(
  db: Db,
  orgId: string,
  position: EventPosition,
  limit: number,
): Promise<Event[]> {
  return db
    .selectFrom("events as e")
    .selectAll("e")
    .where("e.org_id", "=", orgId)
    .where(after(position))
    .where(SETTLED)
    .orderBy("e.xid", "asc")
    .orderBy("e.id", "asc")
    .limit(limit)
    .execute();
}

/** The position of the organization's newest settled event (the cursor "now"), or START. */
export async function latestPosition(db: Db, scope: TenantScope): Promise<EventPosition> {
  const row = await db
    .selectFrom("events as e")
    .select(["e.xid", "e.id"])
    .where("e.org_id", "=", scope.orgId)
    .where(SETTLED)
    .orderBy("e.xid", "desc")
    .orderBy("e.id", "desc")
    .limit(1)
    .executeTakeFirst();
  return row ?? { xid: "0", id: "0" };
}
