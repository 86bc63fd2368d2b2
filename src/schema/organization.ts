import { notFound } from "../errors.ts";
import { type Organization, organizationOf } from "../organizations/repository.ts";
import { builder } from "./builder.ts";
import { scopeOf } from "./context.ts";
import { OrganizationStatusEnum } from "./permission.ts";

export const OrganizationRef = builder.objectRef<Organization>("Organization");

builder.node(OrganizationRef, {
  id: { resolve: (organization) => organization.id },
  // Many at once (nodes(ids:)), each answered alone: one id that is not the caller's fails only itself.
  loadMany: async (ids, context) => {
    const organization = await organizationOf(context.services.db, scopeOf(context));
    // Any organization but the caller's own is reported exactly like a missing one.
    // Pothos reports an Error in the list as that id's error; its type lists only loaded objects.
    return ids.map(
      (id) =>
        (organization && organization.id === String(id)
          ? organization
          : notFound("Organization")) as unknown as Organization,
    );
  },
  fields: (t) => ({
    name: t.exposeString("name"),
    status: t.field({ type: OrganizationStatusEnum, resolve: (organization) => organization.status }),
    createdAt: t.field({ type: "DateTime", resolve: (organization) => organization.created_at }),
  }),
});

builder.queryField("organization", (t) =>
  t.field({
    type: OrganizationRef,
    description: "The caller's organization.",
    authScopes: { authenticated: true },
    resolve: async (_root, _args, context) => {
      const organization = await organizationOf(context.services.db, scopeOf(context));
      if (!organization) throw notFound("Organization");
      return organization;
    },
  }),
);
