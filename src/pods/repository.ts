// Pods: SQL only, always inside the caller's TenantScope.
import type { Selectable } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import { keysWithin } from "../auth/revocation.ts";
import type { Db } from "../db/database.ts";
import type { KeysetPage } from "../db/keyset.ts";
import { pageById } from "../db/keyset.ts";
import type { PodTable } from "../db/types.ts";

export type Pod = Selectable<PodTable>;

function scoped(db: Db, scope: TenantScope) {
  let query = db.selectFrom("pods").selectAll().where("org_id", "=", scope.orgId);
  if (scope.podId !== null) query = query.where("id", "=", scope.podId);
  return query;
}

export async function listPods(db: Db, scope: TenantScope, page: KeysetPage<string>): Promise<Pod[]> {
  const query = scoped(db, scope);
  return pageById(query, "id", page).execute();
}

export async function podsByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<Pod[]> {
  if (ids.length === 0) return [];
  return scoped(db, scope).where("id", "in", ids).execute();
}

export async function insertPod(db: Db, orgId: string, name: string, clientId: string | null): Promise<Pod> {
  return db
    .insertInto("pods")
    .values({ org_id: orgId, name, client_id: clientId })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The organization's oldest pod, where inboxes go when an organization-scoped caller names none. */
export async function firstPod(db: Db, scope: TenantScope): Promise<Pod | undefined> {
  return scoped(db, scope).orderBy("id", "asc").limit(1).executeTakeFirst();
}

/** Deletes a pod (everything in it cascades) and says which API keys went with it. */
export async function deletePod(
  trx: Db,
  scope: TenantScope,
  id: string,
): Promise<{ pod: Pod; apiKeyIds: string[] } | undefined> {
  // Locked first, so no key can be created in the pod between reading its keys and deleting it.
  const locked = await scoped(trx, scope).where("id", "=", id).forUpdate().executeTakeFirst();
  if (!locked) return undefined;
  const apiKeyIds = await keysWithin(trx, scope.orgId, { podId: locked.id });
  const pod = await trx
    .deleteFrom("pods")
    .where("org_id", "=", scope.orgId)
    .where("id", "=", locked.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return { pod, apiKeyIds };
}
