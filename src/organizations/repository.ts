// Organizations: SQL only. A caller sees only its own; creating one and changing its status act for
// the system (bootstrap, agent sign-up and verification).
import { type Selectable, sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { OrganizationStatus, OrganizationTable } from "../db/types.ts";

export type Organization = Selectable<OrganizationTable>;

/** The caller's own organization: the only one any scope can see. */
export async function organizationOf(db: Db, scope: TenantScope): Promise<Organization | undefined> {
  return db.selectFrom("organizations").selectAll().where("id", "=", scope.orgId).executeTakeFirst();
}

export async function insertOrganization(trx: Db, name: string, status: OrganizationStatus): Promise<string> {
  const row = await trx
    .insertInto("organizations")
    .values({ name, status })
    .returning("id")
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function updateOrganizationStatus(
  trx: Db,
  orgId: string,
  status: OrganizationStatus,
): Promise<void> {
  await trx
    .updateTable("organizations")
    .set({ status, updated_at: sql`now()` })
    .where("id", "=", orgId)
    .execute();
}
