// The rules every argument a client sends must pass before any resolver runs: text without control
// characters, bounded text, bounded lists. An argument or input field may declare its own rule with
// `inputRule(...)`; the defaults fit nearly all of them. One check, run for every operation over
// HTTP, SSE and WebSocket, walks the operation's arguments against the schema, so a new argument is
// covered the day it is added (docs/limits.md, "Arguments").
import {
  BREAK,
  type DocumentNode,
  type GraphQLArgument,
  type GraphQLError,
  type GraphQLInputField,
  type GraphQLInputType,
  type GraphQLSchema,
  getArgumentValues,
  getOperationAST,
  getVariableValues,
  isInputObjectType,
  isListType,
  isNonNullType,
  TypeInfo,
  visit,
  visitWithTypeInfo,
} from "graphql";
import type { Plugin } from "graphql-yoga";
import { badUserInput } from "../errors.ts";

export interface InputRule {
  /** Text that may span lines (a mail body): tab, line feed, form feed and carriage return are allowed. */
  multiline?: boolean;
  /** Characters at most; default DEFAULT_MAX_LENGTH for single-line text, none for multi-line text. */
  maxLength?: number;
  /** Items at most in a list; default DEFAULT_MAX_ITEMS. */
  maxItems?: number;
}

/** Single-line text (names, addresses, subjects, labels, ids) is at most this long unless declared. */
export const DEFAULT_MAX_LENGTH = 4096;
/** A list argument holds at most this many items unless declared. */
export const DEFAULT_MAX_ITEMS = 100;

/** Spread into an argument's or input field's options to give it its own rule. */
export function inputRule(rule: InputRule) {
  return { extensions: { inputRule: rule } } as const;
}

/** Mail bodies (text, html) and attachment content: many lines, bounded only by the request size. */
export const MAIL_BODY = inputRule({ multiline: true });
/** Label filters: labels are 1 to 64 characters, and each one filtered on costs the query a condition. */
export const LABEL_FILTER = inputRule({ maxItems: 20, maxLength: 64 });

/** NUL and every C0 control character and DEL: none belongs in one line of text. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const SINGLE_LINE_FORBIDDEN = /[\u0000-\u001f\u007f]/;
/** A body may hold tab, line feed, form feed and carriage return, as mail does; never NUL and the rest. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const MULTILINE_FORBIDDEN = /[\u0000-\u0008\u000b\u000e-\u001f\u007f]/;

function ruleOf(target: GraphQLArgument | GraphQLInputField): InputRule {
  return (target.extensions as { inputRule?: InputRule }).inputRule ?? {};
}

/** `input.to[2]` → "to": the argument or input field a client must correct. */
function fieldOf(path: readonly (string | number)[]): string {
  return String([...path].reverse().find((part) => typeof part === "string") ?? "");
}

function pathText(path: readonly (string | number)[]): string {
  return path
    .map((part, i) => (typeof part === "number" ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join("");
}

function checkText(
  text: string,
  rule: InputRule,
  path: readonly (string | number)[],
): GraphQLError | undefined {
  const forbidden = rule.multiline ? MULTILINE_FORBIDDEN : SINGLE_LINE_FORBIDDEN;
  if (forbidden.test(text)) {
    return badUserInput(
      `${pathText(path)} must not contain NUL or other control characters${rule.multiline ? " (tab, line breaks and form feed are allowed)" : ""}.`,
      fieldOf(path),
    );
  }
  const maxLength = rule.maxLength ?? (rule.multiline ? undefined : DEFAULT_MAX_LENGTH);
  if (maxLength !== undefined && text.length > maxLength) {
    return badUserInput(`${pathText(path)} must be at most ${maxLength} characters.`, fieldOf(path));
  }
  return undefined;
}

/** The first rule a coerced value breaks, walking lists and input objects with their own rules. */
function checkValue(
  value: unknown,
  type: GraphQLInputType,
  rule: InputRule,
  path: (string | number)[],
): GraphQLError | undefined {
  if (value === null || value === undefined) return undefined;
  const unwrapped = isNonNullType(type) ? type.ofType : type;
  if (isListType(unwrapped)) {
    const items = Array.isArray(value) ? value : [value];
    const maxItems = rule.maxItems ?? DEFAULT_MAX_ITEMS;
    if (items.length > maxItems) {
      return badUserInput(`${pathText(path)} may hold at most ${maxItems} items.`, fieldOf(path));
    }
    for (let i = 0; i < items.length; i++) {
      const error = checkValue(items[i], unwrapped.ofType, rule, [...path, i]);
      if (error) return error;
    }
    return undefined;
  }
  if (isInputObjectType(unwrapped)) {
    const fields = unwrapped.getFields();
    for (const [name, fieldValue] of Object.entries(value as Record<string, unknown>)) {
      const field = fields[name];
      if (!field) continue;
      const error = checkValue(fieldValue, field.type, ruleOf(field), [...path, name]);
      if (error) return error;
    }
    return undefined;
  }
  // Scalars and enums: every text that arrives as a string (String, ID and custom scalars' input).
  return typeof value === "string" ? checkText(value, rule, path) : undefined;
}

/**
 * The first argument of the operation that breaks a rule, as a BAD_USER_INPUT error naming it, or
 * undefined. Variables that do not coerce are left to the executor, which reports them.
 */
export function inputViolation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  rawVariables: Record<string, unknown> | null | undefined,
): GraphQLError | undefined {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation) return undefined;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables ?? {});
  if (coerced.errors) return undefined;
  const variables = coerced.coerced;
  const typeInfo = new TypeInfo(schema);
  let violation: GraphQLError | undefined;
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      OperationDefinition: (node) => (node === operation ? undefined : false),
      Field(node) {
        const field = typeInfo.getFieldDef();
        if (!field || field.args.length === 0 || !node.arguments?.length) return undefined;
        let values: Record<string, unknown>;
        try {
          values = getArgumentValues(field, node, variables);
        } catch {
          return undefined; // the executor reports arguments that do not coerce
        }
        for (const arg of field.args) {
          violation = checkValue(values[arg.name], arg.type, ruleOf(arg), [arg.name]);
          if (violation) return BREAK;
        }
        return undefined;
      },
      // Directive arguments (@include(if:), @skip(if:)) are booleans: nothing to check.
      Directive: () => false,
    }),
  );
  return violation;
}

/** Enforces the rules before execution (queries, mutations) and before a subscription starts. */
export function useInputRules(): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const violation = inputViolation(args.schema, args.document, args.operationName, args.variableValues);
      if (violation) setResultAndStopExecution({ errors: [violation] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const violation = inputViolation(args.schema, args.document, args.operationName, args.variableValues);
      if (violation) setResultAndStopExecution({ errors: [violation] });
    },
  };
}
