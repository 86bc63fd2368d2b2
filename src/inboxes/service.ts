// Inbox rules: addresses, the pod an inbox lands in, and the domains it may use.

import { randomBase62 } from "../auth/keys.ts";
import type { TenantScope } from "../auth/principal.ts";
import { deleteRevokingKeys } from "../auth/revocation.ts";
import type { Config } from "../config.ts";
import { uniqueViolation } from "../db/errors.ts";
import { badUserInput, conflict, notFound } from "../errors.ts";
import { isReservedMailbox } from "../mail/addresses.ts";
import { firstPod, insertPod, podsByIds } from "../pods/repository.ts";
import { validateClientId } from "../pods/service.ts";
import type { Services } from "../services.ts";
import {
  deleteInbox,
  type Inbox,
  inboxesByIds,
  insertInbox,
  updateInboxSettings,
  verifiedDomainFor,
} from "./repository.ts";

const USERNAME = /^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?$/;

export function validateUsername(username: string): string {
  const value = username.trim().toLowerCase();
  if (!USERNAME.test(value) || value.includes("..")) {
    throw badUserInput(
      "username must be 1 to 64 letters, digits, '.', '_', '+' or '-', starting and ending with a letter or digit.",
      "username",
    );
  }
  return value;
}

/** A username on `domain` that no tenant may take (a reserved local part of the default domain). */
export function assertNotReserved(
  config: Pick<Config, "mailDomain">,
  username: string,
  domain: string,
): void {
  if (isReservedMailbox(config, username, domain)) {
    throw badUserInput(
      `${username}@${domain} is reserved for the service: choose another username.`,
      "username",
    );
  }
}

export interface CreateInboxInput {
  podId?: string | undefined;
  username?: string | null | undefined;
  domain?: string | null | undefined;
  displayName?: string | null | undefined;
  clientId?: string | null | undefined;
  /** Refuse mail whose DMARC verdict is FAIL (docs/authentication.md); default false. */
  rejectUnauthenticated?: boolean | null | undefined;
}

export async function createInbox(
  services: Pick<Services, "db" | "config">,
  scope: TenantScope,
  input: CreateInboxInput,
): Promise<Inbox> {
  const { db, config } = services;
  const username =
    input.username == null ? `agent-${randomBase62(10).toLowerCase()}` : validateUsername(input.username);
  const domain = (input.domain ?? config.mailDomain).trim().toLowerCase();
  const displayName = input.displayName?.trim() || null;
  if (displayName && displayName.length > 200)
    throw badUserInput("displayName must be at most 200 characters.", "displayName");
  const clientId = validateClientId(input.clientId);
  assertNotReserved(config, username, domain);

  return db.transaction().execute(async (trx) => {
    let podId: string;
    if (input.podId !== undefined) {
      const [pod] = await podsByIds(trx, scope, [input.podId]);
      if (!pod) throw notFound("Pod");
      podId = pod.id;
    } else if (scope.podId !== null) {
      podId = scope.podId;
    } else {
      // An organization-wide caller that names no pod: the organization's first pod, made on demand.
      podId = (await firstPod(trx, scope))?.id ?? (await insertPod(trx, scope.orgId, "default", null)).id;
    }
    if (domain !== config.mailDomain && !(await verifiedDomainFor(trx, scope, podId, domain))) {
      throw badUserInput(`domain must be ${config.mailDomain} or a verified domain of this pod.`, "domain");
    }
    try {
      return await insertInbox(trx, {
        org_id: scope.orgId,
        pod_id: podId,
        username,
        domain,
        display_name: displayName,
        client_id: clientId,
        reject_unauthenticated: input.rejectUnauthenticated ?? false,
      });
    } catch (error) {
      const constraint = uniqueViolation(error);
      if (constraint === undefined) throw error;
      if (constraint.includes("client_id"))
        throw conflict("An inbox with this clientId already exists.", "clientId");
      throw conflict(`${username}@${domain} is taken.`, "username");
    }
  });
}

/** A display name as stored: trimmed, at most 200 characters, empty meaning none. */
export function validateDisplayName(displayName: string | null | undefined): string | null {
  const value = displayName?.trim() || null;
  if (value && value.length > 200)
    throw badUserInput("displayName must be at most 200 characters.", "displayName");
  return value;
}

export async function updateInbox(
  services: Pick<Services, "db">,
  scope: TenantScope,
  input: {
    id: string;
    /** Omitted or null: unchanged; an empty string removes the display name. */
    displayName?: string | null | undefined;
    /** Omitted or null: unchanged. */
    rejectUnauthenticated?: boolean | null | undefined;
  },
): Promise<Inbox> {
  const { db } = services;
  const settings: { display_name?: string | null; reject_unauthenticated?: boolean } = {};
  if (input.displayName != null) settings.display_name = validateDisplayName(input.displayName);
  if (input.rejectUnauthenticated != null) settings.reject_unauthenticated = input.rejectUnauthenticated;
  const inbox =
    Object.keys(settings).length === 0
      ? (await inboxesByIds(db, scope, [input.id]))[0]
      : await updateInboxSettings(db, scope, input.id, settings);
  if (!inbox) throw notFound("Inbox");
  return inbox;
}

/**
 * Deletes an inbox with its mail, drafts and the keys scoped to it. Those keys are revoked on every
 * node by notifications sent in the deleting transaction, and on this node before answering.
 */
export async function removeInbox(services: Services, scope: TenantScope, id: string): Promise<Inbox> {
  const deleted = await deleteRevokingKeys(services, scope.orgId, async (trx) => {
    const result = await deleteInbox(trx, scope, id);
    return result && { deleted: result.inbox, apiKeyIds: result.apiKeyIds };
  });
  if (!deleted) throw notFound("Inbox");
  return deleted;
}
