// The Pothos builder: plugins, auth scopes, scalars and the one guard helper. It defines no types.
import SchemaBuilder from "@pothos/core";
import DataloaderPlugin from "@pothos/plugin-dataloader";
import DirectivePlugin from "@pothos/plugin-directives";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin, { type AuthFailure, AuthScopeFailureType } from "@pothos/plugin-scope-auth";
import SimpleObjectsPlugin from "@pothos/plugin-simple-objects";
import { GraphQLError, type GraphQLSchema, isInterfaceType, isObjectType, Kind } from "graphql";
import { forbidden, isPermission, type Permission } from "../auth/permissions.ts";
import { badUserInput, notFound, unauthenticated } from "../errors.ts";
import type { Context } from "./context.ts";
import { isNodeType, issuedGlobalId, parseGlobalId, unloadableIdError } from "./global-id.ts";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "./page-size.ts";

export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: { permission: Permission; authenticated: boolean };
  Directives: {
    requires: { locations: "FIELD_DEFINITION"; args: { permission: Permission } };
  };
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
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
    // Subscriptions are authorized once, when they start; each event is then filtered at delivery.
    authorizeOnSubscribe: true,
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
    encodeGlobalID: (typename, id) => issuedGlobalId(typename, id),
    // A malformed id is reported like a missing row: NOT_FOUND, never a bare error.
    decodeGlobalID: (globalID) => {
      const parsed = parseGlobalId(globalID);
      if (!parsed) throw notFound();
      return parsed;
    },
    clientMutationId: "omit",
    cursorType: "String",
    nodeQueryOptions: {
      nullable: true,
      description:
        "Any object by its global id. Needs the read permission of the object's type (Pod: POD_READ, Inbox: INBOX_READ, …).",
      // node(id:) is direct access: it needs the same read permission as the type's own query.
      authScopes: (_parent, args) => {
        // The relay plugin has already parsed the id into { typename, id }.
        const parsed = args.id as unknown as { typename?: string } | string;
        const typename = typeof parsed === "string" ? typenameOf(parsed) : (parsed.typename ?? "");
        const permission = NODE_READ_PERMISSIONS[typename];
        return permission ? { permission } : { authenticated: true };
      },
      resolve: (_root, args, _context, info, resolveNode) => {
        if (!isNodeType(info.schema, args.id.typename))
          throw unloadableIdError(info.schema, args.id.typename);
        return resolveNode(args.id);
      },
    },
    nodesQueryOptions: false,
    edgesFieldOptions: { nullable: false, description: "The items of this page, in the list's order." },
    nodeFieldOptions: { nullable: false, description: "The item." },
    cursorFieldOptions: {
      description: "Opaque: pass it as `after` (or `before`) to continue right after (before) this item.",
    },
    pageInfoFieldOptions: { description: "Where this page sits in the list and how to fetch the next one." },
    pageInfoTypeOptions: { description: "Where a page sits in its list (Relay cursor connections)." },
    hasNextPageFieldOptions: { description: "True when more items follow this page." },
    hasPreviousPageFieldOptions: { description: "True when items precede this page." },
    startCursorFieldOptions: { description: "The first item's cursor; null for an empty page." },
    endCursorFieldOptions: {
      description: "The last item's cursor, for `after` of the next page; null for an empty page.",
    },
    firstArgOptions: {
      description: `At most this many items from the start (or after \`after\`): 0–${MAX_PAGE_SIZE}, default ${DEFAULT_PAGE_SIZE}.`,
    },
    afterArgOptions: {
      description: "Continue after this cursor (an edge's `cursor` or `pageInfo.endCursor`).",
    },
    lastArgOptions: {
      description: `At most this many items from the end (or before \`before\`): 0–${MAX_PAGE_SIZE}.`,
    },
    beforeArgOptions: {
      description: "Continue before this cursor (an edge's `cursor` or `pageInfo.startCursor`).",
    },
    nodeTypeOptions: {
      description: "An object with a global id, loadable with `node(id:)` and `nodes(ids:)`.",
    },
    idFieldOptions: { description: "Global id: opaque, stable, accepted by `node(id:)`." },
  },
});

/** The permission that direct access (node(id:)) to an object of each type needs. */
export const NODE_READ_PERMISSIONS: Readonly<Record<string, Permission>> = {
  Pod: "POD_READ",
  Inbox: "INBOX_READ",
  Thread: "THREAD_READ",
  Message: "MESSAGE_READ",
  Draft: "DRAFT_READ",
  Webhook: "WEBHOOK_READ",
  Domain: "DOMAIN_READ",
  ListEntry: "LIST_ENTRY_READ",
  ApiKey: "API_KEY_READ",
  Attachment: "MESSAGE_READ",
  WebhookDelivery: "WEBHOOK_READ",
};

function typenameOf(globalId: string): string {
  return parseGlobalId(globalId)?.typename ?? "";
}

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
 * permission (whose FORBIDDEN error carries `extensions.fix`, src/auth/permissions.ts) and the
 * `@requires(permission:)` directive that documents it, from which describeRequirements ends the
 * field's description with `Requires <PERMISSION>.` — so the rule, the error, the directive and the
 * documentation cannot drift.
 */
export function requires<P extends Permission>(permission: P) {
  return {
    // Nullable, so a denied field is null with its FORBIDDEN error and the rest of the response survives.
    nullable: true,
    authScopes: { permission },
    directives: { requires: { permission } },
  } as const;
}

/** The sentence that ends a guarded field's description. */
export function requirementSentence(permission: Permission): string {
  return `Requires ${permission}.`;
}

/**
 * Ends the description of every field that requires() guards with requirementSentence, read from the
 * `@requires` directive requires() declared (what GraphiQL's documentation explorer shows).
 */
export function describeRequirements(schema: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) && !isInterfaceType(type)) continue;
    for (const field of Object.values(type.getFields())) {
      const permission = requiredPermissionOfField(field);
      if (!permission) continue;
      const sentence = requirementSentence(permission);
      if (field.description?.endsWith(sentence)) continue;
      field.description = field.description ? `${field.description.trimEnd()} ${sentence}` : sentence;
      // The directives plugin gives the field an AST node too; SDL printers read its description.
      if (field.astNode) {
        field.astNode = { ...field.astNode, description: { kind: Kind.STRING, value: field.description } };
      }
    }
  }
  return schema;
}

/** The permission requires() declared on a field (its `@requires` directive), if any. */
export function requiredPermissionOfField(field: {
  extensions?: Readonly<Record<string, unknown>> | null;
}): Permission | undefined {
  const directives = field.extensions?.directives as { requires?: { permission?: unknown } } | undefined;
  const permission = directives?.requires?.permission;
  return typeof permission === "string" && isPermission(permission) ? permission : undefined;
}

/** The builder's schema types, for helpers that take one of its field builders. */
export type BuilderTypes = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

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
