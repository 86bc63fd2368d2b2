// Key lifecycle rules: scope containment, no escalation of permissions, one-time secrets, revocation.
import { GraphQLError } from "graphql";
import { entriesOutside, intersectAllowedIps, normalizeAllowedIps } from "../auth/allowed-ips.ts";
import { notifyAuthChange } from "../auth/authenticator.ts";
import { generateApiKey, hashToken, keyDisplayPrefix } from "../auth/keys.ts";
import {
  type KeyScope,
  PERMISSIONS,
  type Permission,
  permissionFlag,
  permissionFromFlag,
  SCOPE_CEILINGS,
} from "../auth/permissions.ts";
import type { AuthenticatedPrincipal, TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { PermissionFlag } from "../db/types.ts";
import { badUserInput, notFound } from "../errors.ts";
import { inboxesByIds } from "../inboxes/repository.ts";
import { podsByIds } from "../pods/repository.ts";
import type { Services } from "../services.ts";
import {
  type ApiKey,
  type ApiKeyChanges,
  deleteApiKey,
  insertApiKey,
  lockApiKey,
  updateApiKeyRow,
} from "./repository.ts";

export interface CreateApiKeyInput {
  name: string;
  podId?: string | undefined;
  inboxId?: string | undefined;
  /** The requested whitelist; `null`/undefined asks for everything the creator may give. */
  permissions?: readonly Permission[] | null | undefined;
  expiresAt?: Date | null | undefined;
  /** null/undefined: the creator's own allow-list (none for a person or an unbound key). */
  allowedIps?: readonly string[] | null | undefined;
  sendRequiresApproval?: boolean | null | undefined;
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

  const allowedIps = allowListFor(creator.principal, input.allowedIps);
  const sendRequiresApproval = approvalFor(creator.principal, input.sendRequiresApproval);

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
        allowed_ips: allowedIps,
        send_requires_approval: sendRequiresApproval,
      },
      hashToken(secret, services.config.tokenPepper),
    ),
  );
  return { apiKey, secret };
}

/**
 * A new key's allow-list: the creator's own when none is asked for; otherwise the one asked for,
 * normalized, every entry of which must lie inside the creator's own list (when it has one).
 */
function allowListFor(
  creator: AuthenticatedPrincipal,
  requested: readonly string[] | null | undefined,
): string[] | null {
  if (requested === undefined || requested === null)
    return creator.allowedIps ? [...creator.allowedIps] : null;
  return withinCallerList(creator, normalizeAllowedIps(requested));
}

function withinCallerList(caller: AuthenticatedPrincipal, entries: string[]): string[] {
  const outside = entriesOutside(entries, caller.allowedIps);
  if (outside.length > 0) {
    throw badUserInput(
      `allowedIps may only narrow the calling key's own allow-list; outside it: ${outside.join(", ")}.`,
      "allowedIps",
    );
  }
  return entries;
}

/** Keys made by an approval-bound key are approval-bound too: asking otherwise is refused. */
function approvalFor(creator: AuthenticatedPrincipal, requested: boolean | null | undefined): boolean {
  if (creator.sendRequiresApproval) {
    if (requested === false) throw approvalBound();
    return true;
  }
  return requested === true;
}

function approvalBound(): GraphQLError {
  return new GraphQLError(
    "An approval-bound key cannot make or leave a key free of approval: sendRequiresApproval stays true.",
    { extensions: { code: "FORBIDDEN", field: "sendRequiresApproval" } },
  );
}

export const DEFAULT_ROLL_GRACE_MS = 24 * 60 * 60 * 1000;
export const MAX_ROLL_GRACE_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * Rolls a key inside the caller's scope: a new secret with the same name, scope, permissions,
 * allow-list, approval binding and expiry (each cut to the caller's own, never wider), while the old
 * key keeps working until `expireOldAt` (default now + 24 h, at most now + 7 days) on every node.
 */
export async function rollApiKey(
  services: Services,
  caller: Creator,
  input: { id: string; expireOldAt?: Date | null | undefined },
): Promise<{ apiKey: ApiKey; secret: string }> {
  const now = Date.now();
  const expireOldAt = input.expireOldAt ?? new Date(now + DEFAULT_ROLL_GRACE_MS);
  if (expireOldAt.getTime() <= now) throw badUserInput("expireOldAt must be in the future.", "expireOldAt");
  if (expireOldAt.getTime() > now + MAX_ROLL_GRACE_MS) {
    throw badUserInput("expireOldAt may be at most 7 days from now.", "expireOldAt");
  }
  const own = caller.principal;
  const secret = generateApiKey();
  const { apiKey, old } = await services.db.transaction().execute(async (trx) => {
    const old = await lockApiKey(trx, caller.scope, input.id);
    if (!old) throw notFound("ApiKey");
    if (old.expires_at && old.expires_at.getTime() <= now) {
      throw badUserInput("This key has expired: create a new one instead.", "id");
    }
    const scope = old.scope as KeyScope;
    const permissions = constrainPermissions(whitelistOf(old), own.permissions, scope);
    let expiresAt = old.expires_at;
    if (own.expiresAt && (!expiresAt || expiresAt > own.expiresAt)) expiresAt = own.expiresAt;
    const allowedIps = intersectAllowedIps(old.allowed_ips, own.allowedIps);
    if (allowedIps !== null && allowedIps.length === 0) {
      throw badUserInput(
        "The key's allow-list and yours have no address in common: the new key could not be used.",
        "id",
      );
    }
    const apiKey = await insertApiKey(
      trx,
      {
        org_id: old.org_id,
        name: old.name,
        prefix: keyDisplayPrefix(secret),
        scope,
        pod_id: old.pod_id,
        inbox_id: old.inbox_id,
        permissions:
          permissions === null ? null : permissions.map((p) => permissionFlag(p) as PermissionFlag),
        created_by_api_key_id: own.kind === "apiKey" ? own.apiKeyId : null,
        created_by_user_id: own.kind === "session" ? own.userId : null,
        expires_at: expiresAt,
        allowed_ips: allowedIps,
        send_requires_approval: old.send_requires_approval || own.sendRequiresApproval,
      },
      hashToken(secret, services.config.tokenPepper),
    );
    const graceEnd = old.expires_at && old.expires_at < expireOldAt ? old.expires_at : expireOldAt;
    await updateApiKeyRow(trx, caller.scope, old.id, { expires_at: graceEnd });
    await notifyAuthChange(trx, { kind: "apiKey", orgId: old.org_id, id: old.id });
    return { apiKey, old };
  });
  services.authenticator.invalidate({ kind: "apiKey", orgId: old.org_id, id: old.id });
  return { apiKey, secret };
}

export interface UpdateApiKeyInput {
  id: string;
  name?: string | undefined;
  /** The permissions wanted; the key keeps only those it had and the caller has. */
  permissions?: readonly Permission[] | undefined;
  /** Only earlier than the key's expiry (or set where it has none); null is refused. */
  expiresAt?: Date | null | undefined;
  /** A new allow-list (inside the caller's own, when it has one); null lifts it (unbound callers only). */
  allowedIps?: readonly string[] | null | undefined;
  /** true by anyone; false only by a caller that is not approval-bound itself. */
  sendRequiresApproval?: boolean | null | undefined;
}

/**
 * Changes a key inside the caller's scope, only ever narrowing it (docs/permissions.md, "Keys in
 * production"), and puts the change in force on every node before answering.
 */
export async function updateApiKey(
  services: Services,
  caller: Creator,
  input: UpdateApiKeyInput,
): Promise<ApiKey> {
  const own = caller.principal;
  const updated = await services.db.transaction().execute(async (trx) => {
    const key = await lockApiKey(trx, caller.scope, input.id);
    if (!key) throw notFound("ApiKey");
    const changes: ApiKeyChanges = {};
    if (input.name !== undefined) {
      const name = input.name.trim();
      if (name.length === 0 || name.length > 200)
        throw badUserInput("name must be 1 to 200 characters.", "name");
      changes.name = name;
    }
    if (input.permissions !== undefined) {
      const current = new Set(whitelistOf(key) ?? PERMISSIONS);
      const allowed = new Set(PERMISSIONS.filter((p) => current.has(p) && own.permissions.has(p)));
      const granted = constrainPermissions(input.permissions, allowed, key.scope as KeyScope) ?? [];
      changes.permissions = granted.map((p) => permissionFlag(p) as PermissionFlag);
    }
    if (input.expiresAt !== undefined) {
      if (input.expiresAt === null) {
        throw badUserInput("expiresAt can only move earlier; it cannot be removed.", "expiresAt");
      }
      if (input.expiresAt.getTime() <= Date.now()) {
        throw badUserInput("expiresAt must be in the future (delete the key to end it now).", "expiresAt");
      }
      if (key.expires_at && input.expiresAt > key.expires_at) {
        throw badUserInput("expiresAt can only move earlier than the key's current expiry.", "expiresAt");
      }
      // Like a new key, a changed one never outlives the caller.
      changes.expires_at = own.expiresAt && input.expiresAt > own.expiresAt ? own.expiresAt : input.expiresAt;
    }
    if (input.allowedIps !== undefined) {
      if (input.allowedIps === null) {
        if (own.allowedIps !== null) {
          throw badUserInput(
            "allowedIps cannot be lifted by a key that is itself bound to an allow-list.",
            "allowedIps",
          );
        }
        changes.allowed_ips = null;
      } else {
        changes.allowed_ips = withinCallerList(own, normalizeAllowedIps(input.allowedIps));
      }
    }
    if (input.sendRequiresApproval !== undefined && input.sendRequiresApproval !== null) {
      if (!input.sendRequiresApproval && own.sendRequiresApproval) throw approvalBound();
      changes.send_requires_approval = input.sendRequiresApproval;
    }
    if (Object.keys(changes).length === 0) return key;
    const row = await updateApiKeyRow(trx, caller.scope, key.id, changes);
    if (!row) throw notFound("ApiKey");
    await notifyAuthChange(trx, { kind: "apiKey", orgId: row.org_id, id: row.id });
    return row;
  });
  services.authenticator.invalidate({ kind: "apiKey", orgId: updated.org_id, id: updated.id });
  return updated;
}

function whitelistOf(key: ApiKey): Permission[] | null {
  return key.permissions === null
    ? null
    : key.permissions.map(permissionFromFlag).filter((p): p is Permission => p !== undefined);
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
