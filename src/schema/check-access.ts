// Query.checkAccess (docs/permissions.md, "Checking access before deploying"): parses and validates a
// document against the schema without running it, then walks what it selects (fragments, inline
// fragments, aliases, @include/@skip with the given variables) over the same @requires declarations
// the server enforces (read from the schema's fields, as requires() declared them), and lists every
// field the caller's effective permissions do not allow, with its path as it would appear in the
// result (list indexes left out). A denied field is null at run time, so nothing under it is listed.
import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLError,
  type GraphQLObjectType,
  type GraphQLSchema,
  getNamedType,
  getVariableValues,
  isAbstractType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  parse,
  type SelectionSetNode,
  specifiedRules,
  type ValueNode,
  validate,
  valueFromAST,
} from "graphql";
import type { Permission } from "../auth/permissions.ts";
import type { AuthenticatedPrincipal } from "../auth/principal.ts";
import { badUserInput } from "../errors.ts";
import { builder, NODE_READ_PERMISSIONS, requiredPermissionOfField } from "./builder.ts";
import { parseGlobalId } from "./global-id.ts";
import { inputRule } from "./input-rules.ts";
import { PermissionEnum } from "./permission.ts";

export interface AccessDenial {
  path: string[];
  /** The schema coordinate of the field, such as `Query.pods` or `Message.rawUrl`. */
  field: string;
  requiredPermission: Permission;
}

export interface AccessReport {
  allowed: boolean;
  denials: AccessDenial[];
}

/** Far more than any real document, few enough that a fragment bomb cannot make the walk expensive. */
const MAX_VISITS = 20_000;
const MAX_QUERY_LENGTH = 100_000;

/** The report for `query` with `variables`, for `principal`, against `schema`. */
export function checkAccess(
  schema: GraphQLSchema,
  principal: AuthenticatedPrincipal,
  query: string,
  variables: unknown,
): AccessReport {
  if (
    variables !== null &&
    variables !== undefined &&
    (typeof variables !== "object" || Array.isArray(variables))
  ) {
    throw badUserInput("variables must be an object.", "variables");
  }
  if (query.length > MAX_QUERY_LENGTH) throw badUserInput("query is too long to check.", "query");
  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: 10_000 });
  } catch (error) {
    throw badUserInput(`query does not parse: ${(error as GraphQLError).message}`, "query");
  }
  const errors = validate(schema, document, specifiedRules);
  if (errors.length > 0) {
    throw badUserInput(
      `query is not valid: ${errors.map((e) => e.message).join(" ")}`.slice(0, 2000),
      "query",
    );
  }
  const fragments = new Map(
    document.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  const denials: AccessDenial[] = [];
  const seen = new Set<string>();
  let visits = 0;

  for (const operation of document.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  )) {
    const coerced = getVariableValues(
      schema,
      operation.variableDefinitions ?? [],
      (variables ?? {}) as Record<string, unknown>,
    );
    if (coerced.errors) {
      throw badUserInput(`variables: ${coerced.errors.map((e) => e.message).join(" ")}`, "variables");
    }
    const values = coerced.coerced;
    const root = schema.getRootType(operation.operation);
    if (!root) continue;

    const included = (node: FieldNode | SelectionSetNode["selections"][number]) => {
      for (const directive of node.directives ?? []) {
        const name = directive.name.value;
        if (name !== "skip" && name !== "include") continue;
        const argument = directive.arguments?.find((a) => a.name.value === "if");
        const value = argument
          ? valueFromAST(argument.value, schema.getType("Boolean") as never, values)
          : undefined;
        if (name === "skip" && value === true) return false;
        if (name === "include" && value !== true) return false;
      }
      return true;
    };

    /** Collects the fields a selection set selects on `type`, in order, by response key (as execution does). */
    const collect = (
      type: GraphQLObjectType,
      selectionSet: SelectionSetNode,
      into: Map<string, FieldNode[]>,
    ) => {
      for (const selection of selectionSet.selections) {
        if (++visits > MAX_VISITS) throw badUserInput("query is too large to check.", "query");
        if (!included(selection)) continue;
        if (selection.kind === Kind.FIELD) {
          const key = selection.alias?.value ?? selection.name.value;
          into.set(key, [...(into.get(key) ?? []), selection]);
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          if (appliesTo(selection.typeCondition?.name.value, type))
            collect(type, selection.selectionSet, into);
        } else {
          const fragment = fragments.get(selection.name.value);
          if (fragment && appliesTo(fragment.typeCondition.name.value, type)) {
            collect(type, fragment.selectionSet, into);
          }
        }
      }
      return into;
    };

    const appliesTo = (condition: string | undefined, type: GraphQLObjectType) => {
      if (condition === undefined || condition === type.name) return true;
      const conditionType = schema.getType(condition);
      return (
        conditionType !== undefined && isAbstractType(conditionType) && schema.isSubType(conditionType, type)
      );
    };

    const walk = (type: GraphQLObjectType, selectionSets: readonly SelectionSetNode[], path: string[]) => {
      const fields = new Map<string, FieldNode[]>();
      for (const selectionSet of selectionSets) collect(type, selectionSet, fields);
      for (const [key, nodes] of fields) {
        const first = nodes[0] as FieldNode;
        const name = first.name.value;
        if (name.startsWith("__")) continue;
        const definition = type.getFields()[name];
        if (!definition) continue;
        const fieldPath = [...path, key];
        const permission = requiredPermissionOfField(definition) ?? nodePermission(type, first, values);
        if (permission && !principal.permissions.has(permission)) {
          const id = `${fieldPath.join("\u0000")}|${permission}`;
          if (!seen.has(id)) {
            seen.add(id);
            denials.push({ path: fieldPath, field: `${type.name}.${name}`, requiredPermission: permission });
          }
          continue;
        }
        const named = getNamedType(definition.type);
        const childSets = nodes.flatMap((node) => (node.selectionSet ? [node.selectionSet] : []));
        if (childSets.length === 0) continue;
        // An interface or union: every object type it may be, as it may be at run time.
        const possible = isObjectType(named)
          ? [named]
          : isAbstractType(named)
            ? schema.getPossibleTypes(named)
            : [];
        for (const objectType of possible) walk(objectType, childSets, fieldPath);
      }
    };
    walk(root, [operation.selectionSet], []);
  }
  return { allowed: denials.length === 0, denials };
}

/** node(id:) needs the read permission of the id's type (src/schema/builder.ts, NODE_READ_PERMISSIONS). */
function nodePermission(
  type: GraphQLObjectType,
  field: FieldNode,
  variables: Record<string, unknown>,
): Permission | undefined {
  if (type.name !== "Query" || field.name.value !== "node") return undefined;
  const argument = field.arguments?.find((a) => a.name.value === "id");
  if (!argument) return undefined;
  const value =
    argument.value.kind === Kind.VARIABLE
      ? variables[argument.value.name.value]
      : argument.value.kind === Kind.STRING
        ? argument.value.value
        : undefined;
  const typename = typeof value === "string" ? parseGlobalId(value)?.typename : undefined;
  return typename ? NODE_READ_PERMISSIONS[typename] : undefined;
}

builder.scalarType("JSON", {
  description: "Any JSON value.",
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => literalValue(ast, variables ?? undefined),
});

function literalValue(ast: ValueNode, variables: Record<string, unknown> | undefined): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((value) => literalValue(value, variables));
    case Kind.OBJECT:
      return Object.fromEntries(
        ast.fields.map((field) => [field.name.value, literalValue(field.value, variables)]),
      );
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
    default:
      throw badUserInput("Not a JSON value.");
  }
}

const AccessDenialRef = builder.simpleObject("AccessDenial", {
  description: "A field the document selects that the caller may not read or call.",
  fields: (t) => ({
    path: t.stringList({
      description: "Where the field would appear in the result (list indexes left out).",
    }),
    field: t.string({ description: "The field's schema coordinate, such as Query.pods." }),
    requiredPermission: t.field({ type: PermissionEnum }),
  }),
});

const AccessReportRef = builder.simpleObject("AccessReport", {
  fields: (t) => ({
    allowed: t.boolean({ description: "True when nothing the document selects is denied." }),
    denials: t.field({ type: [AccessDenialRef] }),
  }),
});

builder.queryField("checkAccess", (t) =>
  t.field({
    type: AccessReportRef,
    authScopes: { authenticated: true },
    description:
      "Checks a document (validated against the schema, not run) against your permissions: every field it selects that you may not use, with its path. The same rules the server enforces.",
    args: {
      // A document spans lines; its length is bounded here and by the request size.
      query: t.arg.string({ required: true, ...inputRule({ multiline: true, maxLength: MAX_QUERY_LENGTH }) }),
      variables: t.arg({ type: "JSON", ...inputRule({ multiline: true }) }),
    },
    resolve: (_root, args, context, info) =>
      checkAccess(info.schema, context.principal as AuthenticatedPrincipal, args.query, args.variables),
  }),
);
