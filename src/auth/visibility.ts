// What a caller can see, as one value. Subscribers with equal visibility receive equal results for the
// same operation and event, so src/events/shared-results.ts executes an event once for all of them,
// as the principal built here from the visibility alone.
import type { KeyScope, OrganizationStatus, Permission } from "./permissions.ts";
import { PERMISSIONS } from "./permissions.ts";
import type { ApiKeyPrincipal, AuthenticatedPrincipal, SessionPrincipal } from "./principal.ts";

/**
 * Every field of a principal is either visibility (it decides what resolvers return, so it is part of
 * the key and of the principal a shared execution runs as) or identity (which credential it is: never
 * in a shared execution, so results can be shared across keys with the same reach). A new principal
 * field fails to compile here until it is classified.
 */
const PRINCIPAL_FIELDS = {
  kind: "visibility",
  orgId: "visibility",
  organizationStatus: "visibility",
  scope: "visibility",
  podId: "visibility",
  inboxId: "visibility",
  permissions: "visibility",
  // Whitelist and role only matter through the effective `permissions`, which already apply them.
  apiKeyId: "identity",
  whitelist: "identity",
  sessionId: "identity",
  userId: "identity",
  role: "identity",
  // Expiry ends the subscription (src/schema/event.ts); it changes no result.
  expiresAt: "identity",
  // Where a key may be used from and whether its mail waits for approval: checked per request and
  // per send, never a difference in what a read returns.
  allowedIps: "identity",
  sendRequiresApproval: "identity",
} as const satisfies Record<keyof ApiKeyPrincipal | keyof SessionPrincipal, "visibility" | "identity">;

export interface Visibility {
  kind: AuthenticatedPrincipal["kind"];
  orgId: string;
  organizationStatus: OrganizationStatus;
  scope: KeyScope;
  podId: string | null;
  inboxId: string | null;
  /** The effective permissions, in catalog order. */
  permissions: readonly Permission[];
}

export const VISIBILITY_FIELDS = Object.keys(PRINCIPAL_FIELDS).filter(
  (field) => PRINCIPAL_FIELDS[field as keyof typeof PRINCIPAL_FIELDS] === "visibility",
) as (keyof Visibility)[];
const IDENTITY_FIELDS = Object.keys(PRINCIPAL_FIELDS).filter(
  (field) => PRINCIPAL_FIELDS[field as keyof typeof PRINCIPAL_FIELDS] === "identity",
);

export function visibilityOf(principal: AuthenticatedPrincipal): Visibility {
  return {
    kind: principal.kind,
    orgId: principal.orgId,
    organizationStatus: principal.organizationStatus,
    scope: principal.scope,
    podId: principal.podId,
    inboxId: principal.inboxId,
    permissions: PERMISSIONS.filter((permission) => principal.permissions.has(permission)),
  };
}

// Principals are immutable (a refresh makes a new one), so each one's key is computed once.
const keys = new WeakMap<AuthenticatedPrincipal, string>();

/** Equal for two principals exactly when their visibilities are equal. */
export function visibilityKey(principal: AuthenticatedPrincipal): string {
  let key = keys.get(principal);
  if (key === undefined) {
    const visibility = visibilityOf(principal);
    key = JSON.stringify(VISIBILITY_FIELDS.map((field) => visibility[field]));
    keys.set(principal, key);
  }
  return key;
}

/**
 * The principal a shared execution runs as: the visibility and nothing else. Reading an identity field
 * throws instead of answering with some subscriber's key or user, so a resolver that starts to depend
 * on one fails loudly until that field is made part of the visibility.
 */
export function principalFor(visibility: Visibility): AuthenticatedPrincipal {
  const principal = { ...visibility, permissions: new Set(visibility.permissions) };
  for (const field of IDENTITY_FIELDS) {
    Object.defineProperty(principal, field, {
      enumerable: false,
      get() {
        throw new Error(`${field} is not part of a shared subscription result's visibility`);
      },
    });
  }
  return Object.freeze(principal) as unknown as AuthenticatedPrincipal;
}
