// Which webhooks hear an event: the CTEs that, in the very statement that writes events, queue one
// delivery per (event, webhook that may read it) (docs/webhooks.md, "What a webhook sees"), and the
// SQL about a webhook's creator and recorded visibility that deliveries and listings share.
import { type RawBuilder, sql } from "kysely";
import { eventReadable, type VisibilityExpressions } from "./visibility.ts";

/** Why a webhook stops when the key that created it is deleted or expires. */
export const CREATOR_KEY_REVOKED = "CREATOR_KEY_REVOKED";

/**
 * True unless the webhook was made by an API key that is gone or expired, given the webhook row
 * aliased `webhook` left-joined to api_keys aliased `key` on its creator. Deletion also disables the
 * webhook for good (db/migrations/…_webhook_visibility.ts); expiry happens without any write, so
 * whoever reads or delivers a webhook asks this.
 */
export function creatorActive(webhook: string, key: string): RawBuilder<boolean> {
  const w = (column: string) => sql.ref(`${webhook}.${column}`);
  const k = (column: string) => sql.ref(`${key}.${column}`);
  return sql<boolean>`(${w("created_by_api_key_id")} IS NULL
    OR (${k("id")} IS NOT NULL AND (${k("expires_at")} IS NULL OR ${k("expires_at")} > now())))`;
}

/** The visibility a webhook recorded from its creator, as SQL over the row aliased `webhook`. */
export function webhookVisibility(webhook: string): VisibilityExpressions {
  const w = (column: string) => sql.ref(`${webhook}.${column}`);
  return {
    orgId: w("org_id"),
    podId: { expression: w("pod_id"), nullable: true },
    inboxId: { expression: w("inbox_id"), nullable: true },
    messageRead: w("message_read"),
    domainRead: w("domain_read"),
    draftRead: w("draft_read"),
    hiddenLabels: w("hidden_labels"),
  };
}

export const DELIVER_WEBHOOK = "deliver-webhook";

/**
 * CTEs of eventWrites: one delivery row (`webhook_delivery_rows`) and one queued job (`webhook_jobs`,
 * a row of the job outbox, src/jobs/outbox.ts) per
 * (event in `event_rows`, matching webhook). A webhook matches when it is enabled, the key that
 * created it still exists and has not expired, it subscribes to the type, the event lies inside its
 * podIds/inboxIds filters, and its recorded visibility may read the event with the labels the event
 * carries: no delivery row ever exists for an event the webhook's creator could not have seen.
 *
 * Each webhook's jobs share a graphile-worker queue, so they run one at a time: a slow or hanging
 * endpoint holds one job slot at most, never all of them. Transactions commit in any order, so a job
 * may run before an earlier event's; the job sends the webhook's earlier deliveries first once its own
 * event has settled (src/webhooks/delivery.ts). The job's key is the delivery's, so the same delivery
 * is never queued twice.
 */
export function webhookDeliveries() {
  return sql`webhook_delivery_rows AS (
      INSERT INTO webhook_deliveries (org_id, webhook_id, event_id)
      SELECT e.org_id, w.id, e.id FROM event_rows e
      JOIN webhooks w ON w.org_id = e.org_id
      LEFT JOIN api_keys k ON k.org_id = w.org_id AND k.id = w.created_by_api_key_id
      WHERE w.enabled AND ${creatorActive("w", "k")} AND e.type = ANY(w.event_types)
        AND (w.pod_ids IS NULL OR cardinality(w.pod_ids) = 0 OR e.pod_id = ANY(w.pod_ids))
        AND (w.inbox_ids IS NULL OR cardinality(w.inbox_ids) = 0 OR e.inbox_id = ANY(w.inbox_ids))
        AND ${eventReadable("e", webhookVisibility("w"))}
      ORDER BY e.id, w.id
      ON CONFLICT DO NOTHING
      RETURNING org_id, id, webhook_id
    ), webhook_jobs AS (
      -- Into the job outbox (src/jobs/outbox.ts), in event order: moved to graphile-worker in id order,
      -- each queue gets this statement's jobs in event order; across transactions the job itself
      -- restores the order (src/webhooks/delivery.ts).
      INSERT INTO job_outbox (task, payload, queue_name, run_at, max_attempts, job_key)
      SELECT ${DELIVER_WEBHOOK}, json_build_object('orgId', d.org_id::text, 'deliveryId', d.id::text),
        ${DELIVER_WEBHOOK} || ':' || d.org_id::text || ':' || d.webhook_id::text, NULL,
        ${WEBHOOK_MAX_ATTEMPTS}, ${DELIVER_WEBHOOK} || ':' || d.org_id::text || ':' || d.id::text
      FROM webhook_delivery_rows d ORDER BY d.id
      RETURNING id
    )`;
}

/** An immediate attempt, then the retries of the schedule (config.webhookRetryDelaysMs, 7 by default). */
export const WEBHOOK_MAX_ATTEMPTS = 8;
