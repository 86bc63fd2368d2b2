// The Permission enum, the @requires directive that documents guarded fields, and scope enums.
import {
  DirectiveLocation,
  GraphQLDirective,
  type GraphQLEnumType,
  GraphQLNonNull,
  type GraphQLSchema,
} from "graphql";
import { PERMISSION_DESCRIPTIONS, PERMISSIONS } from "../auth/permissions.ts";
import { builder } from "./builder.ts";

export const PermissionEnum = builder.enumType("Permission", {
  description:
    "A permission flag. Effective permissions are the scope ceiling ∩ the key's whitelist ∩ other ceilings.",
  values: Object.fromEntries(
    PERMISSIONS.map((permission) => [permission, { description: PERMISSION_DESCRIPTIONS[permission] }]),
  ) as Record<(typeof PERMISSIONS)[number], { description: string }>,
});

export const KeyScopeEnum = builder.enumType("KeyScope", {
  values: { ORGANIZATION: {}, POD: {}, INBOX: {} } as const,
});

export const OrganizationStatusEnum = builder.enumType("OrganizationStatus", {
  values: { ACTIVE: {}, AGENT_UNVERIFIED: {}, AGENT_VERIFIED: {} } as const,
});

/** Adds the `@requires` definition, typed with the schema's own Permission enum. */
export function withRequiresDirective(schema: GraphQLSchema): GraphQLSchema {
  const permission = schema.getType("Permission") as GraphQLEnumType;
  const requires = new GraphQLDirective({
    name: "requires",
    description: "The permission a caller needs for this field; without it the field fails with FORBIDDEN.",
    locations: [DirectiveLocation.FIELD_DEFINITION],
    args: {
      permission: {
        type: new GraphQLNonNull(permission),
        description: "The permission flag the field needs.",
      },
    },
  });
  const config = schema.toConfig();
  return new (schema.constructor as typeof GraphQLSchema)({
    ...config,
    directives: [...config.directives.filter((d) => d.name !== "requires"), requires],
  });
}
