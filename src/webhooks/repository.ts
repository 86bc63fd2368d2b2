// Webhooks: SQL only, always inside the caller's TenantScope.
import { type Selectable, sql, type Updateable } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { KeysetPage } from "../db/keyset.ts";
import { pageById } from "../db/keyset.ts";
import type { EventType, WebhookDeliveryTable, WebhookTable } from "../db/types.ts";
import { type EventVisibility, eventReadable } from "../events/visibility.ts";
import { CREATOR_KEY_REVOKED, creatorActive } from "../events/webhook-fan-out.ts";

export type Webhook = Selectable<WebhookTable>;

/**
 * An organization-wide caller sees every webhook; a pod-scoped one the webhooks its pod owns; an
 * inbox-scoped one (whose ceiling has no WEBHOOK_* permission) only those its inbox would own.
 * `enabled` and `disabled_reason` are as they are now: a webhook whose creating key expired reads as
 * disabled before anything has been written about it.
 */
function scoped(db: Db, scope: TenantScope) {
  const active = creatorActive("w", "k");
  let query = db
    .selectFrom("webhooks as w")
    .leftJoin("api_keys as k", (join) =>
      join.onRef("k.org_id", "=", "w.org_id").onRef("k.id", "=", "w.created_by_api_key_id"),
    )
    .select([
      "w.org_id",
      "w.id",
      "w.pod_id",
      "w.inbox_id",
      "w.url",
      "w.event_types",
      "w.pod_ids",
      "w.inbox_ids",
      "w.secret_salt",
      "w.created_at",
      "w.updated_at",
      "w.created_by_api_key_id",
      "w.created_by_user_id",
      "w.message_read",
      "w.domain_read",
      "w.draft_read",
      "w.hidden_labels",
      sql<boolean>`w.enabled AND ${active}`.as("enabled"),
      sql<string | null>`CASE WHEN ${active} THEN w.disabled_reason ELSE ${CREATOR_KEY_REVOKED} END`.as(
        "disabled_reason",
      ),
    ])
    .where("w.org_id", "=", scope.orgId);
  if (scope.podId !== null) query = query.where("w.pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("w.inbox_id", "=", scope.inboxId);
  return query;
}

export async function webhooksByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<Webhook[]> {
  if (ids.length === 0) return [];
  return scoped(db, scope).where("w.id", "in", ids).execute();
}

export async function listWebhooks(db: Db, scope: TenantScope, page: KeysetPage<string>): Promise<Webhook[]> {
  return pageById(scoped(db, scope), "w.id", page).execute();
}

/** A webhook the scope contains, as it is now, locked until the end of the transaction `trx`. */
export async function lockWebhook(trx: Db, scope: TenantScope, id: string): Promise<Webhook | undefined> {
  return scoped(trx, scope).where("w.id", "=", id).forUpdate("w").executeTakeFirst();
}

/** Who made or last changed a webhook, and what it may see (its scope is the webhook's own). */
export interface RecordedVisibility {
  createdByApiKeyId: string | null;
  createdByUserId: string | null;
  messageRead: boolean;
  domainRead: boolean;
  draftRead: boolean;
  hiddenLabels: readonly string[];
}

function visibilityColumns(visibility: RecordedVisibility) {
  return {
    created_by_api_key_id: visibility.createdByApiKeyId,
    created_by_user_id: visibility.createdByUserId,
    message_read: visibility.messageRead,
    domain_read: visibility.domainRead,
    draft_read: visibility.draftRead,
    hidden_labels: [...visibility.hiddenLabels],
  };
}

export interface NewWebhook {
  url: string;
  eventTypes: EventType[];
  podIds: string[] | null;
  inboxIds: string[] | null;
  secretSalt: Buffer;
  visibility: RecordedVisibility;
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
      ...visibilityColumns(webhook.visibility),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export interface WebhookChanges {
  url?: string | undefined;
  eventTypes?: EventType[] | undefined;
  enabled: boolean;
  disabledReason: string | null;
  visibility: RecordedVisibility;
}

/** Applies the changes to a webhook the scope contains; undefined when there is none. */
export async function updateWebhook(
  db: Db,
  scope: TenantScope,
  id: string,
  changes: WebhookChanges,
): Promise<Webhook | undefined> {
  const values: Updateable<WebhookTable> = {
    updated_at: new Date(),
    enabled: changes.enabled,
    disabled_reason: changes.disabledReason,
    ...visibilityColumns(changes.visibility),
  };
  if (changes.url !== undefined) values.url = changes.url;
  if (changes.eventTypes !== undefined) values.event_types = changes.eventTypes;
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

/**
 * Deliveries inside the caller's scope (through the webhook's own scope), and only those about events
 * the caller may read: a delivery about spam is as hidden from a caller without LABEL_SPAM_READ as the
 * spam itself.
 */
function readableDeliveries(db: Db, visibility: EventVisibility) {
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
    .where("d.org_id", "=", visibility.orgId)
    .where(eventReadable("e", visibility));
  if (visibility.podId !== null) query = query.where("w.pod_id", "=", visibility.podId);
  if (visibility.inboxId !== null) query = query.where("w.inbox_id", "=", visibility.inboxId);
  return query;
}

/** A webhook's deliveries the caller may read (readableDeliveries), newest first. */
export async function listDeliveries(
  db: Db,
  visibility: EventVisibility,
  webhookId: string,
  page: KeysetPage<string>,
): Promise<WebhookDelivery[]> {
  return pageById(
    readableDeliveries(db, visibility).where("d.webhook_id", "=", webhookId),
    "d.id",
    page,
  ).execute();
}

/** The deliveries among `ids` the caller may read (readableDeliveries), in no order. */
export async function deliveriesByIds(
  db: Db,
  visibility: EventVisibility,
  ids: readonly string[],
): Promise<WebhookDelivery[]> {
  if (ids.length === 0) return [];
  return readableDeliveries(db, visibility).where("d.id", "in", ids).execute();
}
