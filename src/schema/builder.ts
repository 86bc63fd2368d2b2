// The Pothos builder: plugins, auth scopes, scalars and the one guard helper. It defines no types.
import SchemaBuilder from "@pothos/core";
import DataloaderPlugin from "@pothos/plugin-dataloader";
import DirectivePlugin from "@pothos/plugin-directives";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin, { type AuthFailure, AuthScopeFailureType } from "@pothos/plugin-scope-auth";
import SimpleObjectsPlugin from "@pothos/plugin-simple-objects";
import { GraphQLError, Kind } from "graphql";
import { isPermission, type Permission } from "../auth/permissions.ts";
import type { Context } from "../context.ts";
import { badUserInput, forbidden, unauthenticated } from "../errors.ts";

export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: { permission: Permission; authenticated: boolean };
  Directives: {
    requires: { locations: "FIELD_DEFINITION"; args: { permission: Permission } };
  };
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    ID: { Input: string; Output: string | number | bigint };
  };
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  DefaultFieldNullability: false;
}>({
  defaultFieldNullability: false,
  plugins: [ScopeAuthPlugin, DirectivePlugin, RelayPlugin, DataloaderPlugin, SimpleObjectsPlugin],
  directives: { useGraphQLToolsUnorderedDirectives: true },
  scopeAuth: {
    // Introspection and public fields never reach here; scopes are evaluated per field.
    authScopes: (context) => ({
      authenticated: context.principal.kind !== "anonymous",
      permission: (permission: Permission) =>
        context.principal.kind !== "anonymous" && context.principal.permissions.has(permission),
    }),
    unauthorizedError: (_parent, context, _info, result) => {
      if (context.principal.kind === "anonymous") return unauthenticated();
      const permission = requiredPermissionOf(result.failure);
      return permission
        ? forbidden(permission)
        : new GraphQLError(result.message, { extensions: { code: "FORBIDDEN" } });
    },
  },
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
    nodeQueryOptions: { nullable: true },
    nodesQueryOptions: false,
    edgesFieldOptions: { nullable: false },
    nodeFieldOptions: { nullable: false },
  },
});

function requiredPermissionOf(failure: AuthFailure): Permission | undefined {
  switch (failure.kind) {
    case AuthScopeFailureType.AuthScope:
      return failure.scope === "permission" &&
        typeof failure.parameter === "string" &&
        isPermission(failure.parameter)
        ? failure.parameter
        : undefined;
    case AuthScopeFailureType.AllAuthScopes:
    case AuthScopeFailureType.AnyAuthScopes:
      return failure.failures.map(requiredPermissionOf).find((p) => p !== undefined);
    default:
      return undefined;
  }
}

/**
 * The one declaration for a guarded field: it installs the scope-auth rule that enforces the
 * permission and the `@requires(permission:)` directive that documents it, so they cannot drift.
 */
export function requires<P extends Permission>(permission: P) {
  return {
    // Nullable, so a denied field is null with its FORBIDDEN error and the rest of the response survives.
    nullable: true,
    authScopes: { permission },
    directives: { requires: { permission } },
  } as const;
}

builder.queryType({});
builder.mutationType({});

builder.scalarType("DateTime", {
  description: "An instant, as an ISO 8601 string in UTC (e.g. 2026-11-22T13:45:00.000Z).",
  serialize: (value) => (value instanceof Date ? value : new Date(value)).toISOString(),
  parseValue: (value) => parseDateTime(value),
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined),
});

function parseDateTime(value: unknown): Date {
  const date = typeof value === "string" ? new Date(value) : new Date(Number.NaN);
  if (typeof value !== "string" || !/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(date.getTime())) {
    throw badUserInput("DateTime must be an ISO 8601 string such as 2026-11-22T13:45:00Z.");
  }
  return date;
}
