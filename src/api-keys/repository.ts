// API keys: SQL only, always inside the caller's TenantScope. The hash lives in api_key_hashes.
import type { Insertable, Selectable, Updateable } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { KeysetPage } from "../db/keyset.ts";
import { pageById } from "../db/keyset.ts";
import type { ApiKeyTable } from "../db/types.ts";

export type ApiKey = Selectable<ApiKeyTable>;

/** A pod-scoped caller sees keys of its pod (pod- and inbox-scoped); an inbox-scoped one, its inbox's keys. */
function scoped(db: Db, scope: TenantScope) {
  let query = db.selectFrom("api_keys").selectAll().where("org_id", "=", scope.orgId);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  return query;
}

export async function apiKeysByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<ApiKey[]> {
  if (ids.length === 0) return [];
  return scoped(db, scope).where("id", "in", ids).execute();
}

export interface ApiKeyFilter {
  podId?: string | undefined;
  inboxId?: string | undefined;
}

export async function listApiKeys(
  db: Db,
  scope: TenantScope,
  filter: ApiKeyFilter,
  page: KeysetPage<string>,
): Promise<ApiKey[]> {
  let query = scoped(db, scope);
  if (filter.podId !== undefined) query = query.where("pod_id", "=", filter.podId);
  if (filter.inboxId !== undefined) query = query.where("inbox_id", "=", filter.inboxId);
  return pageById(query, "id", page).execute();
}

/** Inserts the key and its hash lookup. Scope checks happen before, in the service. */
export async function insertApiKey(
  trx: Db,
  key: Omit<Insertable<ApiKeyTable>, "id">,
  keyHash: Buffer,
): Promise<ApiKey> {
  const row = await trx.insertInto("api_keys").values(key).returningAll().executeTakeFirstOrThrow();
  await trx
    .insertInto("api_key_hashes")
    .values({ key_hash: keyHash, org_id: row.org_id, api_key_id: row.id })
    .execute();
  return row;
}

/** Deletes a key the scope contains (its hash lookup cascades); undefined when there is none. */
export async function deleteApiKey(trx: Db, scope: TenantScope, id: string): Promise<ApiKey | undefined> {
  let query = trx.deleteFrom("api_keys").where("org_id", "=", scope.orgId).where("id", "=", id);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  return query.returningAll().executeTakeFirst();
}

/** A key the scope contains, locked for the rest of the transaction (roll, update); undefined when none. */
export async function lockApiKey(trx: Db, scope: TenantScope, id: string): Promise<ApiKey | undefined> {
  return scoped(trx, scope).where("id", "=", id).forUpdate().executeTakeFirst();
}

export type ApiKeyChanges = Partial<
  Pick<
    Updateable<ApiKeyTable>,
    "name" | "permissions" | "expires_at" | "allowed_ips" | "send_requires_approval"
  >
>;

/** Changes a key the scope contains; undefined when there is none. */
export async function updateApiKeyRow(
  trx: Db,
  scope: TenantScope,
  id: string,
  changes: ApiKeyChanges,
): Promise<ApiKey | undefined> {
  let query = trx.updateTable("api_keys").set(changes).where("org_id", "=", scope.orgId).where("id", "=", id);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  return query.returningAll().executeTakeFirst();
}
