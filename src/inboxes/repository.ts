// Inboxes: SQL only, always inside the caller's TenantScope.
import type { Selectable } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
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
