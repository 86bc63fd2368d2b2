import type { TenantScope } from "../auth/principal.ts";
import { deleteRevokingKeys } from "../auth/revocation.ts";
import { uniqueViolation } from "../db/errors.ts";
import { badUserInput, conflict, notFound } from "../errors.ts";
import type { Services } from "../services.ts";
import { deletePod, insertPod, type Pod } from "./repository.ts";

export function validateName(name: string, field = "name"): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > 200)
    throw badUserInput(`${field} must be 1 to 200 characters.`, field);
  return trimmed;
}

export function validateClientId(clientId: string | null | undefined): string | null {
  if (clientId == null) return null;
  if (!/^[A-Za-z0-9._:-]{1,128}$/.test(clientId)) {
    throw badUserInput("clientId must be 1 to 128 letters, digits or . _ : -", "clientId");
  }
  return clientId;
}

export async function createPod(
  services: Pick<Services, "db">,
  scope: TenantScope,
  input: { name: string; clientId?: string | null | undefined },
): Promise<Pod> {
  const { db } = services;
  const name = validateName(input.name);
  const clientId = validateClientId(input.clientId);
  try {
    return await insertPod(db, scope.orgId, name, clientId);
  } catch (error) {
    if (uniqueViolation(error) !== undefined)
      throw conflict("A pod with this clientId already exists.", "clientId");
    throw error;
  }
}

/** Deletes the pod with everything in it (inboxes, mail, keys scoped to it, revoked at once). */
export async function removePod(services: Services, scope: TenantScope, id: string): Promise<Pod> {
  const pod = await deleteRevokingKeys(services, scope.orgId, async (trx) => {
    const result = await deletePod(trx, scope, id);
    return result && { deleted: result.pod, apiKeyIds: result.apiKeyIds };
  });
  if (!pod) throw notFound("Pod");
  return pod;
}
