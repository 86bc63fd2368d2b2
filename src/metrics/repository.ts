// Metrics: counts of events per type and time bucket, SQL only, inside the caller's TenantScope.
import { sql } from "kysely";
import type { Db } from "../db/database.ts";
import type { EventType } from "../db/types.ts";
import { type EventVisibility, eventReadable } from "../events/visibility.ts";

export type MetricBucket = "MINUTE" | "HOUR" | "DAY";

const BUCKET_INTERVALS: Readonly<Record<MetricBucket, string>> = {
  MINUTE: "1 minute",
  HOUR: "1 hour",
  DAY: "1 day",
};

export interface MetricsFilter {
  /** [from, to): from inclusive, to exclusive. */
  from: Date;
  to: Date;
  /** Never empty: the types are part of the index condition. */
  types: readonly EventType[];
  podId?: string | undefined;
  inboxId?: string | undefined;
  bucket: MetricBucket;
}

export interface MetricCount {
  type: EventType;
  bucket: Date;
  count: number;
}

/**
 * The counting query. `(org_id, type, created_at)` serves it: equality on org_id, the type list as
 * index searches, the time range on created_at; scope, filters and visibility only discard rows it
 * found. Only events the caller may read count (src/events/visibility.ts): no DOMAIN_VERIFIED without
 * DOMAIN_READ, no message events without MESSAGE_READ, none about a message that carried a label
 * hidden from the caller when it happened. The labels are on the event row: no other table is read.
 */
export function metricsQuery(db: Db, visibility: EventVisibility, filter: MetricsFilter) {
  // Buckets start at whole minutes, hours and days in UTC, whatever the session's time zone.
  const bucket = sql<Date>`date_bin(${BUCKET_INTERVALS[filter.bucket]}::interval, e.created_at, timestamptz '2000-01-01 00:00:00+00')`;
  let query = db
    .selectFrom("events as e")
    .select(["e.type", bucket.as("bucket"), sql<string>`count(*)`.as("count")])
    .where("e.org_id", "=", visibility.orgId)
    .where("e.type", "in", [...filter.types])
    .where("e.created_at", ">=", filter.from)
    .where("e.created_at", "<", filter.to)
    .where(eventReadable("e", visibility));
  if (filter.podId !== undefined) query = query.where("e.pod_id", "=", filter.podId);
  if (filter.inboxId !== undefined) query = query.where("e.inbox_id", "=", filter.inboxId);
  return query.groupBy(["e.type", sql`2`]).orderBy(sql`2`).orderBy("e.type");
}

export async function countEvents(
  db: Db,
  visibility: EventVisibility,
  filter: MetricsFilter,
): Promise<MetricCount[]> {
  if (filter.types.length === 0) return [];
  const rows = await metricsQuery(db, visibility, filter).execute();
  return rows.map((row) => ({ type: row.type, bucket: row.bucket, count: Number(row.count) }));
}
