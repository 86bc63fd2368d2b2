import { sortPermissions } from "../auth/permissions.ts";
import type { AuthenticatedPrincipal } from "../auth/principal.ts";
import { notFound } from "../errors.ts";
import { organizationOf } from "../organizations/repository.ts";
import { userOf } from "../users/service.ts";
import { ApiKeyRef } from "./api-key.ts";
import { builder } from "./builder.ts";
import { InboxRef } from "./inbox.ts";
import { OrganizationRef } from "./organization.ts";
import { KeyScopeEnum, PermissionEnum } from "./permission.ts";
import { PodRef } from "./pod.ts";
import { UserRef } from "./user.ts";

const ViewerRef = builder.objectRef<AuthenticatedPrincipal>("Viewer");

ViewerRef.implement({
  description: "The caller: its scope and its effective permissions (every ceiling applied).",
  fields: (t) => ({
    organization: t.field({
      type: OrganizationRef,
      resolve: async (principal, _args, context) => {
        const organization = await organizationOf(context.services.db, {
          orgId: principal.orgId,
          podId: null,
          inboxId: null,
          hiddenLabels: [],
        });
        if (!organization) throw notFound("Organization");
        return organization;
      },
    }),
    scope: t.field({ type: KeyScopeEnum, resolve: (principal) => principal.scope }),
    pod: t.field({ type: PodRef, nullable: true, resolve: (principal) => principal.podId }),
    inbox: t.field({ type: InboxRef, nullable: true, resolve: (principal) => principal.inboxId }),
    apiKey: t.field({
      type: ApiKeyRef,
      nullable: true,
      description: "The key making this request (null for a signed-in person).",
      resolve: (principal) => (principal.kind === "apiKey" ? principal.apiKeyId : null),
    }),
    user: t.field({
      type: UserRef,
      nullable: true,
      description: "The signed-in person (null for an API key).",
      resolve: (principal, _args, context) =>
        principal.kind === "session" ? userOf(context.services, principal) : null,
    }),
    permissions: t.field({
      type: [PermissionEnum],
      resolve: (principal) => sortPermissions(principal.permissions),
    }),
  }),
});

builder.queryField("viewer", (t) =>
  t.field({
    type: ViewerRef,
    authScopes: { authenticated: true },
    resolve: (_root, _args, context) => context.principal as AuthenticatedPrincipal,
  }),
);
