// Events: SQL only. Reads apply the caller's TenantScope; `eventMessages` reads for a whole
// organization once per event so that every subscriber of the node can be served from one read.
import type { Selectable } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { EventTable, EventType } from "../db/types.ts";
import { type EventVisibility, eventReadable } from "./visibility.ts";

export type Event = Selectable<EventTable>;

export interface EventFilter {
  types?: readonly EventType[] | undefined;
  podIds?: readonly string[] | undefined;
  inboxIds?: readonly string[] | undefined;
}

/**
 * The events after `afterId` that `visibility` may read, judged by the labels they carried (the
 * subscriber then checks each message as it is now, in memory).
 */
export async function eventsAfter(
  db: Db,
  visibility: EventVisibility,
  afterId: string,
  filter: EventFilter,
  limit: number,
): Promise<Event[]> {
  let query = db
    .selectFrom("events as e")
    .selectAll("e")
    .where("e.org_id", "=", visibility.orgId)
    .where("e.id", ">", afterId)
    .where(eventReadable("e", visibility));
  if (filter.types?.length) query = query.where("e.type", "in", filter.types);
  if (filter.podIds?.length) query = query.where("e.pod_id", "in", filter.podIds);
  if (filter.inboxIds?.length) query = query.where("e.inbox_id", "in", filter.inboxIds);
  return query.orderBy("e.id", "asc").limit(limit).execute();
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

/** The newest event id of the organization (the cursor "now"), or "0". */
export async function latestEventId(db: Db, scope: TenantScope): Promise<string> {
  const row = await db
    .selectFrom("events")
    .select("id")
    .where("org_id", "=", scope.orgId)
    .orderBy("id", "desc")
    .limit(1)
    .executeTakeFirst();
  return row?.id ?? "0";
}

export async function eventsByIds(db: Db, orgId: string, ids: readonly string[]): Promise<Event[]> {
  if (ids.length === 0) return [];
  return db.selectFrom("events").selectAll().where("org_id", "=", orgId).where("id", "in", ids).execute();
}
