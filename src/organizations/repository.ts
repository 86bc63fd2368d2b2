import type { Selectable } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { OrganizationTable } from "../db/types.ts";

export type Organization = Selectable<OrganizationTable>;

/** The caller's own organization: the only one any scope can see. */
export async function organizationOf(db: Db, scope: TenantScope): Promise<Organization | undefined> {
  return db.selectFrom("organizations").selectAll().where("id", "=", scope.orgId).executeTakeFirst();
}
