// Who is calling, and what that lets them touch: the Principal, and the TenantScope derived from it.
import type { KeyScope, OrganizationStatus, PermissionSet, Role } from "./permissions.ts";

interface PrincipalBase {
  orgId: string;
  organizationStatus: OrganizationStatus;
  scope: KeyScope;
  podId: string | null;
  inboxId: string | null;
  /** Effective permissions: every ceiling already applied. */
  permissions: PermissionSet;
  /** Past this instant the credential is treated as deleted. */
  expiresAt: Date | null;
  /** The addresses the credential may be used from (src/auth/allowed-ips.ts); null: any. */
  allowedIps: readonly string[] | null;
  /** Mail it sends waits for approval, and keys it creates inherit that. */
  sendRequiresApproval: boolean;
}

export interface ApiKeyPrincipal extends PrincipalBase {
  kind: "apiKey";
  apiKeyId: string;
  /** The key's own whitelist (`null`: full access within scope), before the ceilings. */
  whitelist: readonly string[] | null;
}

export interface SessionPrincipal extends PrincipalBase {
  kind: "session";
  sessionId: string;
  userId: string;
  role: Role;
}

export interface AnonymousPrincipal {
  kind: "anonymous";
}

export type AuthenticatedPrincipal = ApiKeyPrincipal | SessionPrincipal;
export type Principal = AuthenticatedPrincipal | AnonymousPrincipal;

export const ANONYMOUS: AnonymousPrincipal = { kind: "anonymous" };

/** System labels hidden from callers without the matching LABEL_*_READ permission. */
export const HIDDEN_LABEL_PERMISSIONS = {
  spam: "LABEL_SPAM_READ",
  blocked: "LABEL_BLOCKED_READ",
  trash: "LABEL_TRASH_READ",
} as const;

/**
 * What every repository function receives and applies in SQL: the rows a caller may touch.
 * `podId`/`inboxId` narrow it for pod- and inbox-scoped callers; `hiddenLabels` removes messages
 * carrying any of these labels.
 */
export interface TenantScope {
  orgId: string;
  podId: string | null;
  inboxId: string | null;
  hiddenLabels: readonly string[];
}

export function tenantScopeOf(principal: AuthenticatedPrincipal): TenantScope {
  const hiddenLabels = Object.entries(HIDDEN_LABEL_PERMISSIONS)
    .filter(([, permission]) => !principal.permissions.has(permission))
    .map(([label]) => label);
  return { orgId: principal.orgId, podId: principal.podId, inboxId: principal.inboxId, hiddenLabels };
}

/** The whole organization, for work the system does on its behalf (nothing hidden). */
export function organizationScope(orgId: string): TenantScope {
  return { orgId, podId: null, inboxId: null, hiddenLabels: [] };
}

export function isExpired(principal: AuthenticatedPrincipal, now = Date.now()): boolean {
  return principal.expiresAt !== null && principal.expiresAt.getTime() <= now;
}
