import { notFound } from "../errors.ts";
import { type Organization, organizationOf } from "../organizations/repository.ts";
import { builder } from "./builder.ts";
import { scopeOf } from "./context.ts";
import { OrganizationStatusEnum } from "./permission.ts";

export const OrganizationRef = builder.objectRef<Organization>("Organization");

builder.node(OrganizationRef, {
  id: { resolve: (organization) => organization.id },
  loadOne: async (id, context) => {
    const organization = await organizationOf(context.services.db, scopeOf(context));
    // Any organization but the caller's own is reported exactly like a missing one.
    if (!organization || organization.id !== String(id)) throw notFound("Organization");
    return organization;
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
