// What a tool's GraphQL operation needs and gives, read from the schema (docs/mcp.md): the
// permissions its selected fields @require, a JSON Schema of its variables (the tool's input) and one
// of its selection (the tool's output). Nothing here is written by hand per tool.
import {
  type DocumentNode,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLOutputType,
  type GraphQLSchema,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  TypeInfo,
  typeFromAST,
  visit,
  visitWithTypeInfo,
} from "graphql";
import type { Permission } from "../auth/permissions.ts";

export type JsonSchema = Record<string, unknown>;

/** The permission a field definition @requires, if any (the directive installed by requires()). */
export function requiredPermissionOf(field: GraphQLField<unknown, unknown>): Permission | undefined {
  const directives = (field.extensions as { directives?: { requires?: { permission?: string } } }).directives;
  const fromExtensions = directives?.requires?.permission;
  if (fromExtensions) return fromExtensions as Permission;
  const directive = field.astNode?.directives?.find((d) => d.name.value === "requires");
  const value = directive?.arguments?.find((a) => a.name.value === "permission")?.value;
  return value?.kind === Kind.ENUM ? (value.value as Permission) : undefined;
}

/** Every permission the fields selected anywhere in the document @require, in first-seen order. */
export function requiredPermissions(schema: GraphQLSchema, document: DocumentNode): Permission[] {
  const found = new Set<Permission>();
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field() {
        const field = typeInfo.getFieldDef();
        if (!field) throw new Error("A tool's operation selects a field the schema does not have.");
        const permission = requiredPermissionOf(field as GraphQLField<unknown, unknown>);
        if (permission) found.add(permission);
      },
    }),
  );
  return [...found];
}

function scalarSchema(type: GraphQLNamedType): JsonSchema {
  if (isEnumType(type)) return { type: "string", enum: type.getValues().map((v) => v.name) };
  switch (type.name) {
    case "Int":
      return { type: "integer" };
    case "Float":
      return { type: "number" };
    case "Boolean":
      return { type: "boolean" };
    case "DateTime":
      return { type: "string", format: "date-time" };
    default:
      return { type: "string" };
  }
}

function withDescription(schema: JsonSchema, description: string | null | undefined): JsonSchema {
  return description ? { ...schema, description } : schema;
}

function nullable(schema: JsonSchema): JsonSchema {
  return { anyOf: [schema, { type: "null" }] };
}

/** A GraphQL input type as JSON Schema (input objects expanded; `null` allowed where GraphQL allows it). */
export function inputTypeSchema(type: GraphQLInputType, seen: readonly string[] = []): JsonSchema {
  if (isNonNullType(type)) return inputTypeSchema(type.ofType as GraphQLInputType, seen);
  if (isListType(type))
    return { type: "array", items: inputTypeSchema(type.ofType as GraphQLInputType, seen) };
  if (isInputObjectType(type)) {
    if (seen.includes(type.name)) return { type: "object" };
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const field of Object.values(type.getFields())) {
      properties[field.name] = withDescription(
        inputTypeSchema(field.type, [...seen, type.name]),
        field.description,
      );
      if (isNonNullType(field.type) && field.defaultValue === undefined) required.push(field.name);
    }
    return withDescription(
      { type: "object", properties, ...(required.length ? { required } : {}), additionalProperties: false },
      type.description,
    );
  }
  return scalarSchema(type);
}

function operationsOf(document: DocumentNode): OperationDefinitionNode[] {
  return document.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
}

/**
 * The tool's input: one property per variable of the document's first operation, described by the
 * argument or input field it is passed to; required when non-null without a default.
 */
export function variablesSchema(schema: GraphQLSchema, document: DocumentNode): JsonSchema {
  const operation = operationsOf(document)[0];
  if (!operation) throw new Error("A tool's document has no operation.");
  const descriptions = new Map<string, string>();
  const typeInfo = new TypeInfo(schema);
  visit(
    operation,
    visitWithTypeInfo(typeInfo, {
      Argument(node) {
        const argument = typeInfo.getArgument();
        if (node.value.kind === Kind.VARIABLE && argument?.description)
          descriptions.set(node.value.name.value, argument.description);
      },
      ObjectField(node) {
        const parent = typeInfo.getParentInputType();
        const named = parent ? getNamedType(parent) : undefined;
        const field = named && isInputObjectType(named) ? named.getFields()[node.name.value] : undefined;
        if (node.value.kind === Kind.VARIABLE && field?.description)
          descriptions.set(node.value.name.value, field.description);
      },
    }),
  );
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const definition of operation.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    const type = typeFromAST(schema, definition.type) as GraphQLInputType | undefined;
    if (!type) throw new Error(`Variable $${name} has a type the schema does not have.`);
    properties[name] = withDescription(inputTypeSchema(type), descriptions.get(name));
    if (isNonNullType(type) && definition.defaultValue === undefined) required.push(name);
  }
  return {
    type: "object",
    properties,
    ...(required.length ? { required } : {}),
    additionalProperties: false,
  };
}

/** The JSON Schema of what a selection set of `type` returns. */
function selectionSchema(
  schema: GraphQLSchema,
  document: DocumentNode,
  type: GraphQLOutputType,
  selectionSet: SelectionSetNode | undefined,
): JsonSchema {
  if (isNonNullType(type)) return selectionSchemaNonNull(schema, document, type.ofType, selectionSet);
  return nullable(selectionSchemaNonNull(schema, document, type, selectionSet));
}

function selectionSchemaNonNull(
  schema: GraphQLSchema,
  document: DocumentNode,
  type: GraphQLOutputType,
  selectionSet: SelectionSetNode | undefined,
): JsonSchema {
  if (isListType(type))
    return { type: "array", items: selectionSchema(schema, document, type.ofType, selectionSet) };
  if (!isObjectType(type)) return scalarSchema(type as GraphQLNamedType);
  if (!selectionSet) throw new Error(`A selection of ${type.name} needs its fields.`);
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  const collect = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.alias?.value ?? selection.name.value;
        if (selection.name.value === "__typename") {
          properties[name] = { type: "string", const: type.name };
          required.push(name);
          continue;
        }
        const field = type.getFields()[selection.name.value];
        if (!field) throw new Error(`${type.name} has no field ${selection.name.value}.`);
        properties[name] = withDescription(
          selectionSchema(schema, document, field.type, selection.selectionSet),
          field.description,
        );
        required.push(name);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        collect(selection.selectionSet);
      } else {
        const fragment = document.definitions.find(
          (d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === selection.name.value,
        );
        if (fragment?.kind === Kind.FRAGMENT_DEFINITION) collect(fragment.selectionSet);
      }
    }
  };
  collect(selectionSet);
  return { type: "object", properties, required: [...new Set(required)], additionalProperties: false };
}

/** The JSON Schema of the `data` of the document's first operation. */
export function dataSchema(schema: GraphQLSchema, document: DocumentNode): JsonSchema {
  const operation = operationsOf(document)[0];
  if (!operation) throw new Error("A tool's document has no operation.");
  const root =
    operation.operation === "query"
      ? schema.getQueryType()
      : operation.operation === "mutation"
        ? schema.getMutationType()
        : schema.getSubscriptionType();
  if (!root) throw new Error(`The schema has no ${operation.operation} type.`);
  return selectionSchemaNonNull(schema, document, root, operation.selectionSet);
}

/** Follows `path` (property names; "[]" steps into array items) through a data schema, unwrapping null. */
export function schemaAt(root: JsonSchema, path: readonly string[]): JsonSchema {
  let current = root;
  for (const step of path) {
    const anyOf = current.anyOf as JsonSchema[] | undefined;
    if (anyOf) current = anyOf.find((s) => s.type !== "null") ?? current;
    if (step === "[]") current = current.items as JsonSchema;
    else current = (current.properties as Record<string, JsonSchema>)[step] as JsonSchema;
    if (!current) throw new Error(`No schema at ${path.join(".")}.`);
  }
  return current;
}
