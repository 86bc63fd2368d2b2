// The sharing key of subscription results (src/auth/visibility.ts): equal exactly when two callers can
// see the same things, and the principal a shared execution runs as carries that and nothing else.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  effectivePermissions,
  type KeyScope,
  type OrganizationStatus,
  PERMISSIONS,
  type Permission,
} from "../src/auth/permissions.ts";
import {
  type ApiKeyPrincipal,
  type AuthenticatedPrincipal,
  type SessionPrincipal,
  tenantScopeOf,
} from "../src/auth/principal.ts";
import { principalFor, VISIBILITY_FIELDS, visibilityKey, visibilityOf } from "../src/auth/visibility.ts";

function apiKey(overrides: Partial<ApiKeyPrincipal> = {}): ApiKeyPrincipal {
  return {
    kind: "apiKey",
    apiKeyId: "1",
    orgId: "10",
    organizationStatus: "ACTIVE",
    scope: "ORGANIZATION",
    podId: null,
    inboxId: null,
    whitelist: null,
    permissions: effectivePermissions({
      scope: "ORGANIZATION",
      whitelist: null,
      organizationStatus: "ACTIVE",
    }),
    expiresAt: null,
    allowedIps: null,
    sendRequiresApproval: false,
    ...overrides,
  };
}

const without = (...denied: Permission[]) => new Set(PERMISSIONS.filter((p) => !denied.includes(p)));

describe("visibilityKey", () => {
  it("covers every field of the visibility", () => {
    expect([...VISIBILITY_FIELDS].sort()).toEqual(Object.keys(visibilityOf(apiKey())).sort());
  });

  it("differs whenever what the caller can see differs", () => {
    const base = apiKey();
    const variants: Record<string, AuthenticatedPrincipal> = {
      "another organization": apiKey({ orgId: "11" }),
      "pod scope": apiKey({ scope: "POD", podId: "20", permissions: without("POD_CREATE", "POD_DELETE") }),
      "another pod": apiKey({ scope: "POD", podId: "21", permissions: without("POD_CREATE", "POD_DELETE") }),
      "inbox scope": apiKey({ scope: "INBOX", podId: "20", inboxId: "30", permissions: base.permissions }),
      "spam hidden": apiKey({ permissions: without("LABEL_SPAM_READ") }),
      "trash hidden": apiKey({ permissions: without("LABEL_TRASH_READ") }),
      "no THREAD_READ": apiKey({ permissions: without("THREAD_READ") }),
      "no POD_CREATE": apiKey({ permissions: without("POD_CREATE") }),
      "unverified organization": apiKey({ organizationStatus: "AGENT_UNVERIFIED" }),
      "a session": { ...apiKey(), kind: "session", sessionId: "5", userId: "6", role: "ADMIN" },
    };
    const keys = new Map([[visibilityKey(base), "base"]]);
    for (const [name, principal] of Object.entries(variants)) {
      const key = visibilityKey(principal);
      expect(keys.get(key), name).toBeUndefined();
      keys.set(key, name);
    }
  });

  it("is the same for different credentials with the same reach", () => {
    const base = apiKey();
    const twins: AuthenticatedPrincipal[] = [
      apiKey({ apiKeyId: "2" }),
      apiKey({ expiresAt: new Date("2030-01-01T00:00:00Z") }),
      // A whitelist of everything is the same reach as no whitelist.
      apiKey({ apiKeyId: "3", whitelist: [...PERMISSIONS] }),
      // The same permissions, added in another order.
      apiKey({ permissions: new Set([...PERMISSIONS].reverse()) }),
    ];
    for (const twin of twins) expect(visibilityKey(twin)).toBe(visibilityKey(base));
    const admin: SessionPrincipal = {
      ...apiKey(),
      kind: "session",
      sessionId: "1",
      userId: "1",
      role: "ADMIN",
    };
    expect(visibilityKey({ ...admin, sessionId: "2", userId: "2" })).toBe(visibilityKey(admin));
  });

  it("is equal exactly when the visibility is, and then so is the principal a shared execution runs as", () => {
    const principal = fc.record({
      kind: fc.constantFrom("apiKey" as const, "session" as const),
      apiKeyId: fc.constantFrom("1", "2"),
      orgId: fc.constantFrom("10", "11"),
      organizationStatus: fc.constantFrom<OrganizationStatus>("ACTIVE", "AGENT_UNVERIFIED"),
      scope: fc.constantFrom<KeyScope>("ORGANIZATION", "POD", "INBOX"),
      podId: fc.constantFrom(null, "20"),
      inboxId: fc.constantFrom(null, "30"),
      // Mostly everything, sometimes one or two of the permissions resolvers check withheld.
      denied: fc.subarray<Permission>(["LABEL_SPAM_READ", "THREAD_READ", "MESSAGE_READ", "POD_READ"], {
        maxLength: 2,
      }),
      expiresAt: fc.constantFrom(null, new Date(0)),
      allowedIps: fc.constantFrom(null, ["10.0.0.0/8"]),
      sendRequiresApproval: fc.boolean(),
    });
    type Drawn = typeof principal extends fc.Arbitrary<infer T> ? T : never;
    const build = ({ denied, kind, ...rest }: Drawn) =>
      (kind === "apiKey"
        ? { ...rest, kind, whitelist: null, permissions: without(...denied) }
        : {
            ...rest,
            kind,
            sessionId: rest.apiKeyId,
            userId: rest.apiKeyId,
            role: "ADMIN",
            permissions: without(...denied),
          }) as AuthenticatedPrincipal;
    const observable = (p: AuthenticatedPrincipal) => ({
      ...visibilityOf(p),
      tenantScope: tenantScopeOf(p),
    });
    fc.assert(
      fc.property(principal, principal, (a, b) => {
        const [left, right] = [build(a), build(b)];
        const sameKey = visibilityKey(left) === visibilityKey(right);
        expect(sameKey).toBe(JSON.stringify(visibilityOf(left)) === JSON.stringify(visibilityOf(right)));
        if (sameKey) {
          expect(observable(principalFor(visibilityOf(left)))).toEqual(
            observable(principalFor(visibilityOf(right))),
          );
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("principalFor", () => {
  it("carries the visibility, and refuses to tell which credential it stands for", () => {
    const original = apiKey({
      apiKeyId: "7",
      scope: "POD",
      podId: "20",
      permissions: without("LABEL_SPAM_READ", "POD_CREATE", "POD_DELETE"),
      expiresAt: new Date("2030-01-01T00:00:00Z"),
    });
    const shared = principalFor(visibilityOf(original));
    expect(visibilityOf(shared)).toEqual(visibilityOf(original));
    expect(tenantScopeOf(shared)).toEqual(tenantScopeOf(original));
    expect([...shared.permissions].sort()).toEqual([...original.permissions].sort());
    for (const field of [
      "apiKeyId",
      "whitelist",
      "sessionId",
      "userId",
      "role",
      "expiresAt",
      "allowedIps",
      "sendRequiresApproval",
    ]) {
      expect(() => (shared as unknown as Record<string, unknown>)[field], field).toThrow(/not part of/);
    }
    expect(Object.isFrozen(shared)).toBe(true);
  });
});
