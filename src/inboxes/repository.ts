// Inboxes: SQL only, always inside the caller's TenantScope.
import { type Selectable, sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import { keysWithin } from "../auth/revocation.ts";
import type { Db } from "../db/database.ts";
import { pageById } from "../db/keyset.ts";
import type { InboxTable } from "../db/types.ts";

export type Inbox = Selectable<InboxTable>;

function scoped(db: Db, scope: TenantScope) {
  let query = db.selectFrom("inboxes").selectAll().where("org_id", "=", scope.orgId);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("id", "=", scope.inboxId);
  return query;
}

export async function inboxesByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<Inbox[]> {
  if (ids.length === 0) return [];
  return scoped(db, scope).where("id", "in", ids).execute();
}

export interface InboxFilter {
  podId?: string | undefined;
}

export async function listInboxes(
  db: Db,
  scope: TenantScope,
  filter: InboxFilter,
  page: import("../db/keyset.ts").KeysetPage<string>,
): Promise<Inbox[]> {
  let query = scoped(db, scope);
  if (filter.podId !== undefined) query = query.where("pod_id", "=", filter.podId);
  return pageById(query, "id", page).execute();
}

export async function inboxByEmail(db: Db, scope: TenantScope, email: string): Promise<Inbox | undefined> {
  return scoped(db, scope).where("email", "=", email.toLowerCase()).executeTakeFirst();
}

export async function insertInbox(
  trx: Db,
  inbox: {
    org_id: string;
    pod_id: string;
    username: string;
    domain: string;
    display_name: string | null;
    client_id: string | null;
    reject_unauthenticated?: boolean;
  },
): Promise<Inbox> {
  const email = `${inbox.username}@${inbox.domain}`;
  const row = await trx
    .insertInto("inboxes")
    .values({ ...inbox, email })
    .returningAll()
    .executeTakeFirstOrThrow();
  await trx.insertInto("inbox_addresses").values({ email, org_id: row.org_id, inbox_id: row.id }).execute();
  return row;
}

/** Whether `domain` may carry inboxes of `podId`: a verified domain of the pod, or shared by all pods. */
export async function verifiedDomainFor(
  db: Db,
  scope: TenantScope,
  podId: string,
  domain: string,
): Promise<boolean> {
  const row = await db
    .selectFrom("domains")
    .select("id")
    .where("org_id", "=", scope.orgId)
    .where("domain", "=", domain)
    .where("status", "=", "VERIFIED")
    .where((eb) => eb.or([eb("pod_id", "is", null), eb("pod_id", "=", podId)]))
    .executeTakeFirst();
  return row !== undefined;
}

/** Sets what is given of an inbox the scope contains; undefined when there is none. */
export async function updateInboxSettings(
  db: Db,
  scope: TenantScope,
  id: string,
  settings: { display_name?: string | null; reject_unauthenticated?: boolean },
): Promise<Inbox | undefined> {
  let query = db
    .updateTable("inboxes")
    .set({ ...settings, updated_at: sql<Date>`now()` })
    .where("org_id", "=", scope.orgId)
    .where("id", "=", id);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("id", "=", scope.inboxId);
  return query.returningAll().executeTakeFirst();
}

/**
 * Deletes an inbox the scope contains; its address, mail, drafts and keys go with it by cascade.
 * Returns the inbox and the ids of the keys that died with it, or undefined when there is none.
 * Run it in a transaction: the inbox row is locked first, so no key can be created for it between
 * reading its keys and deleting it (a key's foreign-key check needs a lock that conflicts).
 */
export async function deleteInbox(
  trx: Db,
  scope: TenantScope,
  id: string,
): Promise<{ inbox: Inbox; apiKeyIds: string[] } | undefined> {
  const locked = await scoped(trx, scope).where("id", "=", id).forUpdate().executeTakeFirst();
  if (!locked) return undefined;
  const apiKeyIds = await keysWithin(trx, scope.orgId, { podId: locked.pod_id, inboxId: locked.id });
  const inbox = await trx
    .deleteFrom("inboxes")
    .where("org_id", "=", scope.orgId)
    .where("id", "=", locked.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return { inbox, apiKeyIds };
}
