// Metrics: counts of events per type and time bucket, SQL only, inside the caller's TenantScope.
import { sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { EventType } from "../db/types.ts";

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
 * index searches, the time range on created_at; scope and filters only discard rows it found.
 * A caller that may not see a label does not count events about messages carrying it (a hidden
 * message is absent from every count); that is one primary-key probe per event found.
 */
export function metricsQuery(db: Db, scope: TenantScope, filter: MetricsFilter) {
  // Buckets start at whole minutes, hours and days in UTC, whatever the session's time zone.
  const bucket = sql<Date>`date_bin(${BUCKET_INTERVALS[filter.bucket]}::interval, e.created_at, timestamptz '2000-01-01 00:00:00+00')`;
  let query = db
    .selectFrom("events as e")
    .select(["e.type", bucket.as("bucket"), sql<string>`count(*)`.as("count")])
    .where("e.org_id", "=", scope.orgId)
    .where("e.type", "in", [...filter.types])
    .where("e.created_at", ">=", filter.from)
    .where("e.created_at", "<", filter.to);
  if (scope.podId !== null) query = query.where("e.pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("e.inbox_id", "=", scope.inboxId);
  if (filter.podId !== undefined) query = query.where("e.pod_id", "=", filter.podId);
  if (filter.inboxId !== undefined) query = query.where("e.inbox_id", "=", filter.inboxId);
  if (scope.hiddenLabels.length > 0) {
    query = query.where(
      sql<boolean>`NOT EXISTS (
        SELECT 1 FROM messages m
        WHERE m.org_id = e.org_id AND m.id = e.message_id AND m.labels && ${[...scope.hiddenLabels]}::text[]
      )`,
    );
  }
  return query.groupBy(["e.type", sql`2`]).orderBy(sql`2`).orderBy("e.type");
}

export async function countEvents(db: Db, scope: TenantScope, filter: MetricsFilter): Promise<MetricCount[]> {
  if (filter.types.length === 0) return [];
  const rows = await metricsQuery(db, scope, filter).execute();
  return rows.map((row) => ({ type: row.type, bucket: row.bucket, count: Number(row.count) }));
}
