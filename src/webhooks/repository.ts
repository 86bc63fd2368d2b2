// Webhooks: SQL only, always inside the caller's TenantScope.
import type { Selectable, Updateable } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import { pageById } from "../db/keyset.ts";
import type { EventType, WebhookDeliveryTable, WebhookTable } from "../db/types.ts";
import type { KeysetPage } from "../schema/connection.ts";

export type Webhook = Selectable<WebhookTable>;

/**
 * An organization-wide caller sees every webhook; a pod-scoped one the webhooks its pod owns; an
 * inbox-scoped one (whose ceiling has no WEBHOOK_* permission) only those its inbox would own.
 */
function scoped(db: Db, scope: TenantScope) {
  let query = db.selectFrom("webhooks").selectAll().where("org_id", "=", scope.orgId);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  return query;
}

export async function webhooksByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<Webhook[]> {
  if (ids.length === 0) return [];
  return scoped(db, scope).where("id", "in", ids).execute();
}

export async function listWebhooks(db: Db, scope: TenantScope, page: KeysetPage<string>): Promise<Webhook[]> {
  const query = scoped(db, scope);
  return pageById(query, "id", page).execute();
}

export interface NewWebhook {
  url: string;
  eventTypes: EventType[];
  podIds: string[] | null;
  inboxIds: string[] | null;
  secretSalt: Buffer;
}

/** The caller's scope owns the new webhook: a pod-scoped caller's webhook belongs to its pod. */
export async function insertWebhook(db: Db, scope: TenantScope, webhook: NewWebhook): Promise<Webhook> {
  return db
    .insertInto("webhooks")
    .values({
      org_id: scope.orgId,
      pod_id: scope.podId,
      inbox_id: scope.inboxId,
      url: webhook.url,
      event_types: webhook.eventTypes,
      pod_ids: webhook.podIds,
      inbox_ids: webhook.inboxIds,
      secret_salt: webhook.secretSalt,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export interface WebhookChanges {
  url?: string | undefined;
  eventTypes?: EventType[] | undefined;
  enabled?: boolean | undefined;
}

/** Applies the changes to a webhook the scope contains; undefined when there is none. */
export async function updateWebhook(
  db: Db,
  scope: TenantScope,
  id: string,
  changes: WebhookChanges,
): Promise<Webhook | undefined> {
  const values: Updateable<WebhookTable> = { updated_at: new Date() };
  if (changes.url !== undefined) values.url = changes.url;
  if (changes.eventTypes !== undefined) values.event_types = changes.eventTypes;
  if (changes.enabled !== undefined) {
    values.enabled = changes.enabled;
    // Re-enabling clears why it was switched off (e.g. by repeated delivery failures).
    if (changes.enabled) values.disabled_reason = null;
  }
  let query = db.updateTable("webhooks").set(values).where("org_id", "=", scope.orgId).where("id", "=", id);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  return query.returningAll().executeTakeFirst();
}

/** Deletes a webhook the scope contains (its delivery records cascade); undefined when there is none. */
export async function deleteWebhook(db: Db, scope: TenantScope, id: string): Promise<Webhook | undefined> {
  let query = db.deleteFrom("webhooks").where("org_id", "=", scope.orgId).where("id", "=", id);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  return query.returningAll().executeTakeFirst();
}

export type WebhookDelivery = Selectable<WebhookDeliveryTable> & { event_type: string };

/** A webhook's deliveries, newest first, inside the caller's scope (through the webhook's own scope). */
export async function listDeliveries(
  db: Db,
  scope: TenantScope,
  webhookId: string,
  page: KeysetPage<string>,
): Promise<WebhookDelivery[]> {
  let query = db
    .selectFrom("webhook_deliveries as d")
    .innerJoin("webhooks as w", (join) =>
      join.onRef("w.org_id", "=", "d.org_id").onRef("w.id", "=", "d.webhook_id"),
    )
    .innerJoin("events as e", (join) =>
      join.onRef("e.org_id", "=", "d.org_id").onRef("e.id", "=", "d.event_id"),
    )
    .selectAll("d")
    .select("e.type as event_type")
    .where("d.org_id", "=", scope.orgId)
    .where("d.webhook_id", "=", webhookId);
  if (scope.podId !== null) query = query.where("w.pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("w.inbox_id", "=", scope.inboxId);
  return pageById(query, "d.id", page).execute();
}
