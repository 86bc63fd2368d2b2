// Creating an organization with its first administrator and an organization-scoped key, and changing
// an organization's status (its permission ceiling) on every node.
import { mintOrganizationKey } from "../api-keys/service.ts";
import { notifyAuthChange } from "../auth/authenticator.ts";
import type { OrganizationStatus } from "../db/types.ts";
import type { Services } from "../services.ts";
import { addMember, hashPassword } from "../users/service.ts";
import { insertOrganization, updateOrganizationStatus } from "./repository.ts";

export interface BootstrapInput {
  name: string;
  adminEmail: string;
  adminPassword: string;
}

/** The command line's bootstrap works without a running server: it needs only the database and config. */
export async function bootstrapOrganization(
  services: Pick<Services, "db" | "config">,
  input: BootstrapInput,
) {
  const passwordHash = await hashPassword(input.adminPassword);
  return services.db.transaction().execute(async (trx) => {
    const organizationId = await insertOrganization(trx, input.name, "ACTIVE");
    const admin = await addMember(trx, organizationId, input.adminEmail, passwordHash, "ADMIN");
    const key = await mintOrganizationKey(trx, organizationId, {
      name: "bootstrap",
      pepper: services.config.tokenPepper,
      createdByUserId: admin.id,
    });
    return { organizationId, adminEmail: admin.email, apiKey: key.secret };
  });
}

/** Changes an organization's status (its permission ceiling) and makes every node forget cached principals. */
export async function setOrganizationStatus(
  services: Pick<Services, "db" | "authenticator">,
  orgId: string,
  status: OrganizationStatus,
): Promise<void> {
  await services.db.transaction().execute(async (trx) => {
    await updateOrganizationStatus(trx, orgId, status);
    await notifyAuthChange(trx, { kind: "organization", orgId });
  });
  services.authenticator.invalidate({ kind: "organization", orgId });
}
