// Hostile input, generated from the printed schema like the permission matrix: every argument and
// every input field (at any depth) of every query, mutation and subscription field, and of every
// field below them, is fed what a careless or hostile client sends — ids no bigint can hold,
// malformed and foreign-looking ids, forged cursors, NUL and other control characters, over-long
// text, oversized lists, extreme numbers and dates. None may answer INTERNAL_SERVER_ERROR, hang, or
// change the database when it is refused; text and list rules answer BAD_USER_INPUT naming the field.
// A new argument is covered the day it appears in schema.graphql.
import { encodeGlobalID } from "@pothos/plugin-relay";
import {
  buildSchema,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
} from "graphql";
import { describe, expect, it } from "vitest";
import { schema as liveSchema } from "../src/schema/index.ts";
import { DEFAULT_MAX_ITEMS, DEFAULT_MAX_LENGTH, type InputRule } from "../src/schema/input-rules.ts";
import { printSchemaSdl } from "../src/schema/print.ts";
import { databaseChecksum } from "./helpers/database.ts";
import { gql } from "./helpers/server.ts";
import { sseSubscribe } from "./helpers/subscriptions.ts";
import { serverSuite, worldFixture } from "./helpers/suite.ts";
import type { World } from "./helpers/world.ts";

const printed = buildSchema(printSchemaSdl());
const NODE_TYPES = [
  "Organization",
  "Pod",
  "Inbox",
  "Thread",
  "Message",
  "Draft",
  "Webhook",
  "Domain",
  "ListEntry",
  "ApiKey",
] as const;

/** One place a client can put a value: an argument, or a field of an input object below one. */
interface Site {
  parent: GraphQLObjectType;
  field: GraphQLField<unknown, unknown>;
  /** [argument, input field, input field, …] */
  path: string[];
  type: GraphQLInputType;
  /** The rule the live schema declares there (input-rules.ts), defaults when none. */
  rule: InputRule;
}

function liveRule(parent: string, field: string, path: string[]): InputRule {
  const liveField = (liveSchema.getType(parent) as GraphQLObjectType).getFields()[field];
  let target: GraphQLArgument | GraphQLInputField | undefined = liveField?.args.find(
    (a) => a.name === path[0],
  );
  for (const name of path.slice(1)) {
    const type = getNamedType(target?.type as GraphQLInputType);
    target = isInputObjectType(type) ? type.getFields()[name] : undefined;
  }
  if (!target) throw new Error(`live schema has no ${parent}.${field}(${path.join(".")})`);
  return (target.extensions as { inputRule?: InputRule }).inputRule ?? {};
}

function sites(): Site[] {
  const out: Site[] = [];
  const walk = (
    parent: GraphQLObjectType,
    field: GraphQLField<unknown, unknown>,
    path: string[],
    type: GraphQLInputType,
    seen: Set<string>,
  ) => {
    out.push({ parent, field, path, type, rule: liveRule(parent.name, field.name, path) });
    const named = getNamedType(type);
    if (!isInputObjectType(named) || seen.has(named.name)) return;
    for (const inputField of Object.values(named.getFields())) {
      walk(parent, field, [...path, inputField.name], inputField.type, new Set([...seen, named.name]));
    }
  };
  for (const type of Object.values(printed.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith("__")) continue;
    for (const field of Object.values(type.getFields())) {
      for (const arg of field.args) walk(type, field, [arg.name], arg.type, new Set());
    }
  }
  return out;
}

const SITES = sites();

// ---- valid values for everything that is not under test (world, below) ----

const ID_BY_NAME: Record<string, (typeof NODE_TYPES)[number]> = {
  podId: "Pod",
  podIds: "Pod",
  inboxId: "Inbox",
  inboxIds: "Inbox",
  messageId: "Message",
  inReplyToMessageId: "Message",
  forwardOfMessageId: "Message",
  threadId: "Thread",
  draftId: "Draft",
  ids: "Message",
};

/** The Node type an `id` argument of this field names, read from the field's name (deletePod → Pod). */
function idTypeOf(fieldName: string, argName: string, returnType: GraphQLNamedType): string {
  const byName = ID_BY_NAME[argName];
  if (byName) return byName;
  const stem = fieldName.replace(/^(create|update|delete|verify|send|approve|roll|replyTo|forward)/, "");
  const match = NODE_TYPES.find((type) => stem.toLowerCase() === type.toLowerCase());
  if (match) return match;
  return NODE_TYPES.includes(returnType.name as never) ? returnType.name : "Pod";
}

const STRING_SAMPLES: Record<string, string> = {
  url: "https://hooks.example.test/hostile",
  email: "someone@example.test",
  humanEmail: "human@example.test",
  domain: "hostile.example.test",
  entry: "hostile.example.test",
  username: "hostile",
  otpCode: "123456",
  filename: "a.txt",
  contentBase64: "aGk=",
};

function sample(
  type: GraphQLInputType,
  name: string,
  fieldName: string,
  returnType: GraphQLNamedType,
): unknown {
  if (isNonNullType(type)) return sample(type.ofType, name, fieldName, returnType);
  if (isListType(type)) {
    if (["to", "cc", "bcc", "replyTo"].includes(name)) return ["someone@example.test"];
    return [sample(type.ofType, name, fieldName, returnType)];
  }
  const named = getNamedType(type);
  if (isEnumType(named)) return named.getValues()[0]?.value;
  if (isInputObjectType(named)) {
    const value: Record<string, unknown> = {};
    for (const field of Object.values(named.getFields())) {
      if (isNonNullType(field.type))
        value[field.name] = sample(field.type, field.name, fieldName, returnType);
    }
    return value;
  }
  switch (named.name) {
    case "ID": {
      const idType = idTypeOf(fieldName, name, returnType);
      return world.ids[idType as keyof World["ids"]] ?? world.ids.Pod;
    }
    case "Int":
      return 1;
    case "Float":
      return 1;
    case "Boolean":
      return false;
    case "DateTime":
      return name === "from" ? new Date(Date.now() - 3_600_000).toISOString() : new Date().toISOString();
    default:
      return STRING_SAMPLES[name] ?? "hostile";
  }
}

// ---- what a hostile client sends ----
interface Hostile {
  label: string;
  value: unknown;
  /** The error code it must get; undefined: any answer but INTERNAL_SERVER_ERROR. */
  code?: "BAD_USER_INPUT" | "NOT_FOUND" | "NOT_FOUND|BAD_USER_INPUT";
  /** `extensions.field` the error must name. */
  field?: string;
}

const b64 = (value: unknown) =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

function hostileValues(site: Site): Hostile[] {
  const leaf = site.path.at(-1) as string;
  const unwrapped = isNonNullType(site.type) ? site.type.ofType : site.type;
  const named = getNamedType(site.type);
  const out: Hostile[] = [];
  if (isListType(unwrapped)) {
    const item = sample(unwrapped.ofType, leaf, site.field.name, getNamedType(site.field.type));
    const max = site.rule.maxItems ?? DEFAULT_MAX_ITEMS;
    out.push({
      label: `${max + 1} items`,
      value: Array.from({ length: max + 1 }, () => item),
      code: "BAD_USER_INPUT",
      field: leaf,
    });
  }
  const wrap = (value: unknown) => (isListType(unwrapped) ? [value] : value);
  if (named.name === "ID") {
    // The type the site expects, and one it does not.
    const expected = idTypeOf(site.field.name, leaf, getNamedType(site.field.type));
    for (const type of new Set([expected, expected === "Message" ? "Pod" : "Message"])) {
      for (const id of ["9223372036854775808", "99999999999999999999", "-1", "0x10", "007", "1e3", ""]) {
        out.push({
          label: `${type} id ${JSON.stringify(id)}`,
          value: wrap(encodeGlobalID(type, id)),
          code: "NOT_FOUND|BAD_USER_INPUT",
        });
      }
    }
    for (const id of ["not-an-id", "", "Pod:1", b64("Pod"), b64(":1"), "%%%"]) {
      out.push({
        label: `malformed id ${JSON.stringify(id)}`,
        value: wrap(id),
        code: "NOT_FOUND|BAD_USER_INPUT",
      });
    }
  }
  if (named.name === "JSON") {
    // checkAccess's variables: an object or nothing.
    for (const value of [[1], "text", 7]) {
      out.push({ label: `JSON ${JSON.stringify(value)}`, value, code: "BAD_USER_INPUT", field: leaf });
    }
  }
  if (named.name === "String" || named.name === "ID") {
    out.push(
      { label: "NUL", value: wrap("a\u0000b"), code: "BAD_USER_INPUT", field: leaf },
      { label: "control character", value: wrap("a\u0001b"), code: "BAD_USER_INPUT", field: leaf },
      { label: "escape sequence", value: wrap("\u001b[2J"), code: "BAD_USER_INPUT", field: leaf },
      { label: "lone surrogate", value: wrap("a\ud800b") },
    );
    if (!site.rule.multiline) {
      out.push({
        label: "line break in one-line text",
        value: wrap("a\nb"),
        code: "BAD_USER_INPUT",
        field: leaf,
      });
      const max = site.rule.maxLength ?? DEFAULT_MAX_LENGTH;
      out.push({
        label: `${max + 1} characters`,
        value: wrap("x".repeat(max + 1)),
        code: "BAD_USER_INPUT",
        field: leaf,
      });
    }
  }
  if (named.name === "String" && (leaf === "after" || leaf === "before")) {
    for (const forged of [
      ["1", "1"],
      ["Tue 1 2", "1"],
      ["2026-01-01T00:00:00.000Z", "99999999999999999999"],
      ["2026-02-30T00:00:00.000Z", "1"],
      ["+275760-09-13T00:00:00.000Z", "1"],
      "99999999999999999999",
      "0",
      {},
      [],
      null,
      123,
      "event:99999999999999999999",
      "event:-1",
      "event:007",
    ]) {
      out.push({
        label: `forged cursor ${JSON.stringify(forged)}`,
        value: b64(forged),
        code: "BAD_USER_INPUT",
        field: leaf,
      });
    }
    out.push({ label: "cursor that is not base64", value: "%%%", code: "BAD_USER_INPUT", field: leaf });
  }
  if (named.name === "Int") {
    for (const n of [2147483647, -2147483648, -1, 0]) out.push({ label: `Int ${n}`, value: wrap(n) });
  }
  if (named.name === "DateTime") {
    for (const text of [
      "0000-01-01T00:00:00Z",
      "9999-12-31T23:59:59.999Z",
      "2026-02-30T00:00:00Z",
      "2026-13-45T99:99:99Z",
    ]) {
      out.push({ label: `DateTime ${text}`, value: wrap(text) });
    }
  }
  return out;
}

// ---- how to reach a site ----
function selectionOf(type: GraphQLNamedType): string {
  return isScalarType(type) || isEnumType(type) ? "" : "{ __typename }";
}

/** A route from Query to a field of a non-root type: node(id:) for Node types, else a field chain. */
function routeTo(parent: GraphQLObjectType): { open: string; close: string } {
  if (parent.getInterfaces().some((i) => i.name === "Node")) {
    const id = world.ids[parent.name as keyof World["ids"]];
    if (!id) throw new Error(`no fixture of Node type ${parent.name}: add it to test/helpers/world.ts`);
    return { open: `node(id: ${JSON.stringify(id)}) { ... on ${parent.name} {`, close: "} }" };
  }
  // Breadth first through fields that need no argument.
  const queue: { type: GraphQLObjectType; open: string; close: string }[] = [
    { type: printed.getQueryType() as GraphQLObjectType, open: "", close: "" },
  ];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const { type, open, close } = queue.shift() as (typeof queue)[number];
    for (const field of Object.values(type.getFields())) {
      if (field.args.some((a) => isNonNullType(a.type))) continue;
      const target = getNamedType(field.type);
      if (!isObjectType(target) || seen.has(target.name)) continue;
      const next = { type: target, open: `${open} ${field.name} {`, close: `} ${close}` };
      if (target.name === parent.name) return next;
      seen.add(target.name);
      queue.push(next);
    }
  }
  throw new Error(`no route from Query to ${parent.name}: give it a fixture or a route`);
}

interface Call {
  kind: "query" | "mutation" | "subscription";
  query: string;
  variables: Record<string, unknown>;
}

function callFor(site: Site, value: unknown): Call {
  const { parent, field } = site;
  const returnType = getNamedType(field.type);
  const variables: Record<string, unknown> = {};
  const declarations: string[] = [];
  const args: string[] = [];
  for (const arg of field.args) {
    let argValue: unknown;
    if (arg.name === site.path[0]) {
      argValue =
        site.path.length === 1
          ? value
          : withValueAt(
              sample(arg.type, arg.name, field.name, returnType),
              site.path.slice(1),
              value,
              arg.type,
              (type, name) => sample(type, name, field.name, returnType),
            );
    } else if (isNonNullType(arg.type)) {
      argValue = sample(arg.type, arg.name, field.name, returnType);
    } else continue;
    variables[arg.name] = argValue;
    declarations.push(`$${arg.name}: ${arg.type.toString()}`);
    args.push(`${arg.name}: $${arg.name}`);
  }
  const call = `${field.name}(${args.join(", ")}) ${selectionOf(returnType)}`;
  const head = (kind: string) => `${kind}(${declarations.join(", ")})`;
  if (parent.name === "Mutation")
    return { kind: "mutation", query: `${head("mutation")} { ${call} }`, variables };
  if (parent.name === "Subscription")
    return { kind: "subscription", query: `${head("subscription")} { ${call} }`, variables };
  if (parent.name === "Query") return { kind: "query", query: `${head("query")} { ${call} }`, variables };
  const route = routeTo(parent);
  return { kind: "query", query: `${head("query")} { ${route.open} ${call} ${route.close} }`, variables };
}

/**
 * `base` (a sample of `type`, an input object or a list of one) with `value` put at `path` inside it,
 * filling the required fields of what is missing so that only `value` is under test.
 */
function withValueAt(
  base: unknown,
  path: string[],
  value: unknown,
  type: GraphQLInputType,
  fill: (type: GraphQLInputType, name: string) => unknown,
): unknown {
  const named = getNamedType(type);
  if (!isInputObjectType(named)) throw new Error("path below a value that is not an input object");
  const list = isListType(isNonNullType(type) ? type.ofType : type);
  const current = (list && Array.isArray(base) ? base[0] : base) as Record<string, unknown> | undefined;
  const object = { ...(current ?? (fill(named, "") as Record<string, unknown>)) };
  const [head, ...rest] = path as [string, ...string[]];
  const field = named.getFields()[head] as GraphQLInputField;
  object[head] =
    rest.length === 0
      ? value
      : withValueAt(object[head] ?? fill(field.type, head), rest, value, field.type, fill);
  return list ? [object] : object;
}

// ---- the run ----
// Rate limits off: this test sends thousands of requests, sign-ups and logins among them. Mail to
// outside addresses refused (as in production without a relay): captured mail would settle in the
// background and change the checksums the next refused mutation is compared with.
const { database, server } = serverSuite({
  allowPrivateWebhookUrls: true,
  rateLimitPerMinute: 0,
  outboundMode: "refuse",
});
const world = worldFixture({ database, server });

type ErrorBody = { message: string; extensions?: Record<string, unknown> };

async function send(call: Call): Promise<{ status: number; errors: ErrorBody[]; data: unknown }> {
  const key = world.keys.organization;
  if (call.kind === "subscription") {
    const subscriber = await sseSubscribe(server.url, key, call.query, call.variables);
    // A subscription that starts is a live stream: give a refusal time to arrive, then leave.
    await subscriber.waitForResults(1, 400).catch(() => {});
    await subscriber.dispose();
    return { status: 200, errors: subscriber.errors as ErrorBody[], data: null };
  }
  const response = await Promise.race([
    gql(server, call.query, call.variables, { key }),
    new Promise<never>((_resolve, reject) =>
      setTimeout(() => reject(new Error("no answer within 10 s: the request hangs")), 10_000),
    ),
  ]);
  return { status: response.status, errors: response.body.errors ?? [], data: response.body.data };
}

describe("hostile input, generated from the schema", () => {
  it("has hostile values for every argument and input field a client can fill with text or a list", () => {
    expect(SITES.length).toBeGreaterThan(100);
    const uncovered = SITES.filter((site) => {
      const named = getNamedType(site.type);
      const list = isListType(isNonNullType(site.type) ? site.type.ofType : site.type);
      // Booleans and enums admit nothing but their values (GraphQL validation); input objects are
      // covered field by field.
      const exempt = !list && (isEnumType(named) || isInputObjectType(named) || named.name === "Boolean");
      return !exempt && hostileValues(site).length === 0;
    });
    expect(uncovered.map((s) => `${s.parent.name}.${s.field.name}(${s.path.join(".")})`)).toEqual([]);
  });

  it.each(
    SITES.map((site) => [`${site.parent.name}.${site.field.name}(${site.path.join(".")})`, site] as const),
  )("%s", async (_name, site) => {
    const mutation = site.parent.name === "Mutation";
    let before = mutation ? await databaseChecksum(database) : "";
    for (const hostile of hostileValues(site)) {
      const call = callFor(site, hostile.value);
      const result = await send(call);
      const what = `${hostile.label}: ${JSON.stringify(result.errors)}`;
      expect(result.status, what).toBeLessThan(500);
      expect(
        result.errors.filter((e) => e.extensions?.code === "INTERNAL_SERVER_ERROR" || !e.extensions?.code),
        what,
      ).toEqual([]);
      if (hostile.code) {
        const codes = hostile.code.split("|");
        const refusal = result.errors.find((e) => codes.includes(String(e.extensions?.code)));
        // An id is decoded only where it is used: a list filter may answer an empty page instead.
        if (!(hostile.code.includes("NOT_FOUND") && result.errors.length === 0)) {
          expect(refusal, what).toBeDefined();
          if (hostile.field) expect(refusal?.extensions?.field, what).toBe(hostile.field);
        }
      }
      if (mutation) {
        const after = await databaseChecksum(database);
        // A refused mutation changes nothing; an accepted one (an extreme but valid value) may.
        if (result.errors.length > 0) expect(after, `${hostile.label} changed the database`).toBe(before);
        before = after;
      }
    }
  });
});
