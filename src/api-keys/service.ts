// Key lifecycle rules: scope containment, no escalation of permissions, one-time secrets, revocation.
import { notifyAuthChange } from "../auth/authenticator.ts";
import { generateApiKey, hashToken, keyDisplayPrefix } from "../auth/keys.ts";
import {
  type KeyScope,
  PERMISSIONS,
  type Permission,
  permissionFlag,
  SCOPE_CEILINGS,
} from "../auth/permissions.ts";
import type { AuthenticatedPrincipal, TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { PermissionFlag } from "../db/types.ts";
import { badUserInput, notFound } from "../errors.ts";
import { inboxesByIds } from "../inboxes/repository.ts";
import { podsByIds } from "../pods/repository.ts";
import type { Services } from "../services.ts";
import { type ApiKey, deleteApiKey, insertApiKey } from "./repository.ts";

export interface CreateApiKeyInput {
  name: string;
  podId?: string | undefined;
  inboxId?: string | undefined;
  /** The requested whitelist; `null`/undefined asks for everything the creator may give. */
  permissions?: readonly Permission[] | null | undefined;
  expiresAt?: Date | null | undefined;
}

export interface Creator {
  principal: AuthenticatedPrincipal;
  scope: TenantScope;
}

/**
 * What a new key may hold: the request (or everything) ∩ the creator's effective permissions ∩ the
 * new key's scope ceiling. `null` (full access within scope) only when nothing was cut away.
 */
export function constrainPermissions(
  requested: readonly Permission[] | null | undefined,
  creatorPermissions: ReadonlySet<Permission>,
  scope: KeyScope,
): Permission[] | null {
  const ceiling = SCOPE_CEILINGS[scope];
  const wanted = requested ? new Set(requested) : null;
  const granted = PERMISSIONS.filter(
    (p) => ceiling.has(p) && creatorPermissions.has(p) && (!wanted || wanted.has(p)),
  );
  const everything = PERMISSIONS.filter((p) => ceiling.has(p));
  return wanted === null && granted.length === everything.length ? null : granted;
}

async function targetScope(services: Services, creator: Creator, input: CreateApiKeyInput) {
  const { db } = services;
  const own = creator.principal;
  if (input.inboxId !== undefined) {
    const [inbox] = await inboxesByIds(db, creator.scope, [input.inboxId]);
    if (!inbox) throw notFound("Inbox");
    if (input.podId !== undefined && input.podId !== inbox.pod_id) {
      throw badUserInput("inboxId is not an inbox of podId.", "inboxId");
    }
    return { scope: "INBOX" as const, podId: inbox.pod_id, inboxId: inbox.id };
  }
  if (input.podId !== undefined) {
    // An inbox-scoped key's rows do not include its pod: a pod key would be wider than itself.
    const [pod] = own.scope === "INBOX" ? [] : await podsByIds(db, creator.scope, [input.podId]);
    if (!pod) throw notFound("Pod");
    return { scope: "POD" as const, podId: pod.id, inboxId: null };
  }
  // Without podId/inboxId a key gets its creator's own scope: never wider.
  return { scope: own.scope, podId: own.podId, inboxId: own.inboxId };
}

export async function createApiKey(
  services: Services,
  creator: Creator,
  input: CreateApiKeyInput,
): Promise<{ apiKey: ApiKey; secret: string }> {
  const name = input.name.trim();
  if (name.length === 0 || name.length > 200) throw badUserInput("name must be 1 to 200 characters.", "name");
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) {
    throw badUserInput("expiresAt must be in the future.", "expiresAt");
  }
  const target = await targetScope(services, creator, input);
  const permissions = constrainPermissions(input.permissions, creator.principal.permissions, target.scope);
  // A key that expires cannot mint one that outlives it.
  const creatorExpiry = creator.principal.expiresAt;
  let expiresAt = input.expiresAt ?? null;
  if (creatorExpiry && (!expiresAt || expiresAt > creatorExpiry)) expiresAt = creatorExpiry;

  const secret = generateApiKey();
  const apiKey = await services.db.transaction().execute((trx) =>
    insertApiKey(
      trx,
      {
        org_id: creator.principal.orgId,
        name,
        prefix: keyDisplayPrefix(secret),
        scope: target.scope,
        pod_id: target.podId,
        inbox_id: target.inboxId,
        permissions:
          permissions === null ? null : permissions.map((p) => permissionFlag(p) as PermissionFlag),
        created_by_api_key_id: creator.principal.kind === "apiKey" ? creator.principal.apiKeyId : null,
        created_by_user_id: creator.principal.kind === "session" ? creator.principal.userId : null,
        expires_at: expiresAt,
      },
      hashToken(secret, services.config.tokenPepper),
    ),
  );
  return { apiKey, secret };
}

/** Deletes a key inside the caller's scope and revokes it on every node before answering. */
export async function revokeApiKey(services: Services, scope: TenantScope, id: string): Promise<ApiKey> {
  const deleted = await services.db.transaction().execute(async (trx) => {
    const row = await deleteApiKey(trx, scope, id);
    if (row) await notifyAuthChange(trx, { kind: "apiKey", orgId: row.org_id, id: row.id });
    return row;
  });
  if (!deleted) throw notFound("ApiKey");
  // Our own node must not wait for the notification to loop back.
  services.authenticator.invalidate({ kind: "apiKey", orgId: deleted.org_id, id: deleted.id });
  return deleted;
}

/** A new full-access organization key (bootstrap, agent sign-up): its secret, shown once, and its id. */
export async function mintOrganizationKey(
  trx: Db,
  orgId: string,
  options: { name: string; pepper: string | undefined; createdByUserId?: string },
): Promise<{ secret: string; id: string }> {
  const secret = generateApiKey();
  const key = await insertApiKey(
    trx,
    {
      org_id: orgId,
      name: options.name,
      prefix: keyDisplayPrefix(secret),
      scope: "ORGANIZATION",
      pod_id: null,
      inbox_id: null,
      permissions: null,
      created_by_user_id: options.createdByUserId ?? null,
    },
    hashToken(secret, options.pepper),
  );
  return { secret, id: key.id };
}
