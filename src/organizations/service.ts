// Creating an organization with its first administrator and an organization-scoped key.
import { sql } from "kysely";
import { mintOrganizationKey } from "../api-keys/service.ts";
import { notifyAuthChange } from "../auth/authenticator.ts";
import type { Db } from "../db/database.ts";
import { addMember, hashPassword } from "../users/service.ts";

export interface BootstrapInput {
  name: string;
  adminEmail: string;
  adminPassword: string;
  tokenPepper?: string | undefined;
}

export async function bootstrapOrganization(db: Db, input: BootstrapInput) {
  const passwordHash = await hashPassword(input.adminPassword);
  return db.transaction().execute(async (trx) => {
    const organization = await trx
      .insertInto("organizations")
      .values({ name: input.name, status: "ACTIVE" })
      .returning(["id"])
      .executeTakeFirstOrThrow();
    const admin = await addMember(trx, organization.id, input.adminEmail, passwordHash, "ADMIN");
    const key = await mintOrganizationKey(trx, organization.id, {
      name: "bootstrap",
      pepper: input.tokenPepper,
      createdByUserId: admin.id,
    });
    return { organizationId: organization.id, adminEmail: admin.email, apiKey: key.secret };
  });
}

/** Changes an organization's status (its permission ceiling) and makes every node forget cached principals. */
export async function setOrganizationStatus(
  db: Db,
  orgId: string,
  status: "ACTIVE" | "AGENT_UNVERIFIED" | "AGENT_VERIFIED",
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable("organizations")
      .set({ status, updated_at: sql`now()` })
      .where("id", "=", orgId)
      .execute();
    await notifyAuthChange(trx, { kind: "organization", orgId });
  });
}
