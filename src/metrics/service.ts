import type { EventType } from "../db/types.ts";
import { badUserInput, notFound } from "../errors.ts";
import type { EventVisibility } from "../events/visibility.ts";
import { inboxesByIds } from "../inboxes/repository.ts";
import { podsByIds } from "../pods/repository.ts";
import type { Services } from "../services.ts";
import { countEvents, type MetricBucket, type MetricCount } from "./repository.ts";

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
export const MAX_RANGE_DAYS = 400;
/** At most this many buckets per type: a week of minutes. */
export const MAX_BUCKETS = 7 * 24 * 60;
const BUCKET_MS: Readonly<Record<MetricBucket, number>> = { MINUTE: MINUTE_MS, HOUR: HOUR_MS, DAY: DAY_MS };

/** The bucket a range gets unless the caller picks one: minutes up to 2 hours, hours up to 7 days, else days. */
export function defaultBucket(from: Date, to: Date): MetricBucket {
  const range = to.getTime() - from.getTime();
  if (range <= 2 * HOUR_MS) return "MINUTE";
  if (range <= 7 * DAY_MS) return "HOUR";
  return "DAY";
}

export interface MetricsInput {
  from: Date;
  to: Date;
  /** null/undefined: every type; empty: none. */
  types?: readonly EventType[] | null | undefined;
  podId?: string | undefined;
  inboxId?: string | undefined;
  bucket?: MetricBucket | null | undefined;
  allTypes: readonly EventType[];
}

/** Counts of the events the caller may read (see countEvents), inside its scope. */
export async function metrics(
  services: Pick<Services, "db">,
  visibility: EventVisibility,
  input: MetricsInput,
): Promise<MetricCount[]> {
  const { db } = services;
  const range = input.to.getTime() - input.from.getTime();
  if (range <= 0) throw badUserInput("to must be after from.", "to");
  if (range > MAX_RANGE_DAYS * DAY_MS)
    throw badUserInput(`The range from … to may span at most ${MAX_RANGE_DAYS} days.`, "to");
  const bucket = input.bucket ?? defaultBucket(input.from, input.to);
  if (Math.ceil(range / BUCKET_MS[bucket]) > MAX_BUCKETS)
    throw badUserInput(`bucket ${bucket} allows at most ${MAX_BUCKETS} buckets in the range.`, "bucket");

  // Filters name rows the caller must be able to see. An inbox-scoped caller's rows do not include
  // its pod, so a pod filter is outside its visibility.
  if (input.podId !== undefined) {
    const [pod] = visibility.inboxId !== null ? [] : await podsByIds(db, visibility, [input.podId]);
    if (!pod) throw notFound("Pod");
  }
  if (input.inboxId !== undefined) {
    const [inbox] = await inboxesByIds(db, visibility, [input.inboxId]);
    if (!inbox) throw notFound("Inbox");
  }
  const types = input.types == null ? input.allTypes : [...new Set(input.types)];
  return countEvents(db, visibility, {
    from: input.from,
    to: input.to,
    types,
    podId: input.podId,
    inboxId: input.inboxId,
    bucket,
  });
}
