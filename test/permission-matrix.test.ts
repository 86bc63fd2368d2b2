// The permission matrix, generated from the printed schema itself: every field and mutation carrying
// @requires, for each scope (organization, pod, inbox), granted and denied. A guarded field without a
// case here, or an auth rule without its directive (or the reverse), fails the suite.
import { encodeGlobalID } from "@pothos/plugin-relay";
import {
  buildSchema,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isNonNullType,
  isObjectType,
  isScalarType,
} from "graphql";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type KeyScope,
  type Permission,
  permissionFieldName,
  permissionFix,
  SCOPE_CEILINGS,
} from "../src/auth/permissions.ts";
import { NODE_READ_PERMISSIONS } from "../src/schema/builder.ts";
import { schema as liveSchema } from "../src/schema/index.ts";
import { printSchemaSdl } from "../src/schema/print.ts";
import {
  createInboxViaApi,
  createKey,
  createPodViaApi,
  deliver,
  nodesOfMessage,
} from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { sseSubscribe } from "./helpers/subscriptions.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";

const printed = buildSchema(printSchemaSdl());

interface Guarded {
  typeName: string;
  fieldName: string;
  permission: Permission;
  field: GraphQLField<unknown, unknown>;
}

function guardedFields(): Guarded[] {
  const out: Guarded[] = [];
  for (const type of Object.values(printed.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith("__")) continue;
    for (const field of Object.values(type.getFields())) {
      const directive = field.astNode?.directives?.find((d) => d.name.value === "requires");
      if (!directive) continue;
      const value = directive.arguments?.[0]?.value;
      out.push({
        typeName: type.name,
        fieldName: field.name,
        permission: (value && "value" in value ? value.value : "") as Permission,
        field,
      });
    }
  }
  return out;
}

const GUARDED = guardedFields();
const SCOPES: KeyScope[] = ["ORGANIZATION", "POD", "INBOX"];

describe("the @requires directive and the auth rule", () => {
  it("are installed together on every field (one declaration), with the same permission", () => {
    const mismatches: string[] = [];
    for (const type of Object.values(liveSchema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith("__")) continue;
      for (const field of Object.values(type.getFields())) {
        const options = (field.extensions as { pothosOptions?: { authScopes?: unknown } }).pothosOptions;
        const scopes = options?.authScopes as
          | { permission?: string }
          | ((...args: unknown[]) => unknown)
          | undefined;
        const documented = GUARDED.find(
          (g) => g.typeName === type.name && g.fieldName === field.name,
        )?.permission;
        if (type.name === "Query" && field.name === "node") continue; // per-type permission, see NODE_READ_PERMISSIONS
        const enforced = typeof scopes === "object" ? scopes.permission : undefined;
        if (enforced !== documented)
          mismatches.push(`${type.name}.${field.name}: enforced ${enforced}, documented ${documented}`);
      }
    }
    expect(mismatches).toEqual([]);
    expect(GUARDED.length).toBeGreaterThan(30);
  });
});

// ---- fixtures: one organization; scoped keys live in pod A / inbox A ----
const { database, server } = serverSuite({ allowPrivateWebhookUrls: true });
const { org, pods, inboxes, keys } = tenantFixture(
  { database, server },
  {
    pods: ["A", "B"],
    inboxes: { matrix: { pod: "A", username: "matrix" } },
    keys: { pod: { pod: "A" } },
  },
);
const ids: Record<string, string> = {};
const keyCache = new Map<string, string>();

beforeAll(async () => {
  ids.Pod = pods.A;
  ids.otherPod = pods.B;
  ids.Inbox = inboxes.matrix.id;
  const message = await deliver(database.db, inboxes.matrix.id);
  ids.Message = message.id;
  ids.Thread = message.threadId;
  const podKey = keys.pod;
  for (const [typeName, query, input] of [
    [
      "Draft",
      "createDraft(input: $input) { draft { id } }",
      { inboxId: ids.Inbox, to: ["someone@example.test"], subject: "Draft" },
    ],
    [
      "Webhook",
      "createWebhook(input: $input) { webhook { id } }",
      { url: "https://hooks.example.test/in", eventTypes: ["MESSAGE_RECEIVED"] },
    ],
    ["Domain", "createDomain(input: $input) { domain { id } }", { domain: "matrix.example.test" }],
    [
      "ListEntry",
      "createListEntry(input: $input) { listEntry { id } }",
      { direction: "RECEIVE", type: "BLOCK", entry: "spam.example.test", inboxId: ids.Inbox },
    ],
  ] as const) {
    const field = query.split("(")[0] as string;
    if (!printed.getMutationType()?.getFields()[field]) continue;
    const data = await ok(
      server,
      `mutation($input: ${field[0]?.toUpperCase()}${field.slice(1)}Input!) { ${query} }`,
      { input },
      { key: podKey },
    );
    ids[typeName] = Object.values(data[field] as Record<string, { id: string }>)[0]?.id as string;
  }
  ids.ApiKey = (await createKey(server, org.apiKey, { inboxId: ids.Inbox })).id;
  // Attachments, events and webhook deliveries have no mutation that makes one.
  Object.assign(ids, await nodesOfMessage(database.db, ids.Message, ids.Webhook));
});

/** A key of `scope` (inside pod A / inbox A) whose whitelist is exactly `permissions`. */
async function keyFor(scope: KeyScope, permissions: Iterable<Permission>): Promise<string> {
  const list = [...new Set(permissions)].sort();
  const cacheKey = `${scope}:${list.join(",")}`;
  let secret = keyCache.get(cacheKey);
  if (!secret) {
    const where = scope === "POD" ? { podId: ids.Pod } : scope === "INBOX" ? { inboxId: ids.Inbox } : {};
    const flags = Object.fromEntries(list.map((p) => [permissionFieldName(p), true]));
    secret = (await createKey(server, org.apiKey, { ...where, permissions: flags })).secret;
    keyCache.set(cacheKey, secret);
  }
  return secret;
}

// ---- how to call each guarded field ----
/** Inputs for guarded mutations; each call may create what it consumes. Missing entry = failing test. */
const MUTATION_INPUTS: Record<string, () => Promise<Record<string, unknown>>> = {
  createPod: async () => ({ name: "matrix pod" }),
  deletePod: async () => ({ id: await createPodViaApi(server, org.apiKey, "doomed") }),
  createInbox: async () => ({ podId: ids.Pod }),
  updateInbox: async () => ({ id: ids.Inbox, displayName: "Matrix" }),
  deleteInbox: async () => ({ id: (await createInboxViaApi(server, org.apiKey, { podId: ids.Pod })).id }),
  updateMessage: async () => ({ id: ids.Message, addLabels: ["matrix"] }),
  updateMessages: async () => ({ ids: [ids.Message], addLabels: ["matrix"] }),
  updateThread: async () => ({ id: ids.Thread, addLabels: ["matrix"] }),
  deleteThread: async () => ({ id: (await deliver(database.db, ids.Inbox as string)).threadId }),
  createDraft: async () => ({ inboxId: ids.Inbox, subject: "matrix" }),
  updateDraft: async () => ({ id: ids.Draft, subject: "matrix 2" }),
  deleteDraft: async () => {
    const data = await ok(
      server,
      "mutation($input: CreateDraftInput!) { createDraft(input: $input) { draft { id } } }",
      { input: { inboxId: ids.Inbox } },
      { key: org.apiKey },
    );
    return { id: data.createDraft.draft.id };
  },
  createWebhook: async () => ({ url: "https://hooks.example.test/x", eventTypes: ["MESSAGE_RECEIVED"] }),
  updateWebhook: async () => ({ id: ids.Webhook, enabled: true }),
  deleteWebhook: async () => {
    const podKey = await keyFor("POD", ["WEBHOOK_CREATE", "MESSAGE_READ"]);
    const data = await ok(
      server,
      "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }",
      { input: { url: "https://hooks.example.test/d", eventTypes: ["MESSAGE_SENT"] } },
      { key: podKey },
    );
    return { id: data.createWebhook.webhook.id };
  },
  createDomain: async () => ({ domain: `d${Math.random().toString(36).slice(2, 8)}.example.test` }),
  verifyDomain: async () => ({ id: ids.Domain }),
  deleteDomain: async () => {
    const podKey = await keyFor("POD", ["DOMAIN_CREATE"]);
    const data = await ok(
      server,
      "mutation($input: CreateDomainInput!) { createDomain(input: $input) { domain { id } } }",
      { input: { domain: `x${Math.random().toString(36).slice(2, 8)}.example.test` } },
      { key: podKey },
    );
    return { id: data.createDomain.domain.id };
  },
  createListEntry: async () => ({
    direction: "SEND",
    type: "BLOCK",
    entry: `${Math.random().toString(36).slice(2, 8)}.example.test`,
    inboxId: ids.Inbox,
  }),
  deleteListEntry: async () => {
    const inboxKey = await keyFor("INBOX", ["LIST_ENTRY_CREATE"]);
    const data = await ok(
      server,
      "mutation($input: CreateListEntryInput!) { createListEntry(input: $input) { listEntry { id } } }",
      {
        input: {
          direction: "RECEIVE",
          type: "ALLOW",
          entry: `${Math.random().toString(36).slice(2, 8)}@example.test`,
        },
      },
      { key: inboxKey },
    );
    return { id: data.createListEntry.listEntry.id };
  },
  sendMessage: async () => ({ inboxId: ids.Inbox, to: ["matrix@mailroom.localhost"], subject: "matrix" }),
  replyToMessage: async () => ({ messageId: ids.Message, text: "matrix" }),
  forwardMessage: async () => ({ messageId: ids.Message, to: ["matrix@mailroom.localhost"] }),
  sendDraft: async () => {
    const data = await ok(
      server,
      "mutation($input: CreateDraftInput!) { createDraft(input: $input) { draft { id } } }",
      { input: { inboxId: ids.Inbox, to: ["matrix@mailroom.localhost"] } },
      { key: org.apiKey },
    );
    return { id: data.createDraft.draft.id };
  },
  approveDraft: async () => {
    // A draft held from an approval-bound key (docs/sending.md, "Approval before sending").
    const bound = await ok(
      server,
      "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
      { input: { name: "matrix bound", sendRequiresApproval: true } },
      { key: org.apiKey },
    );
    const held = await gql(
      server,
      "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } } }",
      { input: { inboxId: ids.Inbox, to: ["matrix@mailroom.localhost"], subject: "matrix" } },
      { key: bound.createApiKey.secret },
    );
    return { id: held.body.errors?.[0]?.extensions?.draftId };
  },
  createApiKey: async () => ({ name: "matrix" }),
  deleteApiKey: async () => ({ id: (await createKey(server, org.apiKey, { inboxId: ids.Inbox })).id }),
  rollApiKey: async () => ({ id: (await createKey(server, org.apiKey, { inboxId: ids.Inbox })).id }),
  updateApiKey: async () => ({
    id: (await createKey(server, org.apiKey, { inboxId: ids.Inbox })).id,
    name: "narrowed",
  }),
};

/**
 * Mutations whose input asks for what another permission guards, granted with the field's own: a
 * webhook that runs on message events must belong to a caller that may read messages
 * (docs/webhooks.md).
 */
const INPUT_NEEDS: Record<string, Permission> = {
  createWebhook: "MESSAGE_READ",
  updateWebhook: "MESSAGE_READ",
};

function sampleArg(fieldReturn: GraphQLNamedType, argName: string, argType: GraphQLNamedType): unknown {
  if (argName === "id") return ids[fieldReturn.name];
  if (argName === "inboxId") return ids.Inbox;
  if (argName === "podId") return ids.Pod;
  if (argName === "from") return new Date(Date.now() - 3_600_000).toISOString();
  if (argName === "to") return new Date().toISOString();
  if (argName === "query" && fieldReturn.name === "MessageSearchConnection") return "matrix";
  if (isEnumType(argType)) return argType.getValues()[0]?.value;
  throw new Error(`no sample for required argument ${argName}`);
}

function selectionFor(type: GraphQLNamedType): string {
  return isScalarType(type) || isEnumType(type) ? "" : "{ __typename }";
}

/** The operation and variables that reach a guarded field, plus the permission the route itself needs. */
async function operationFor(
  g: Guarded,
): Promise<{ query: string; variables: Record<string, unknown>; path: string[]; route?: Permission }> {
  const returnType = getNamedType(g.field.type);
  if (g.typeName === "Mutation") {
    const makeInput = MUTATION_INPUTS[g.fieldName];
    if (!makeInput)
      throw new Error(`guarded mutation ${g.fieldName} has no matrix case: add it to MUTATION_INPUTS`);
    const inputType = getNamedType(
      g.field.args.find((a) => a.name === "input")?.type as GraphQLInputType,
    ) as GraphQLNamedType;
    if (!isInputObjectType(inputType)) throw new Error(`${g.fieldName} takes no input object`);
    return {
      query: `mutation($input: ${inputType.name}!) { ${g.fieldName}(input: $input) ${selectionFor(returnType)} }`,
      variables: { input: await makeInput() },
      path: [g.fieldName],
      ...(INPUT_NEEDS[g.fieldName] ? { route: INPUT_NEEDS[g.fieldName] } : {}),
    };
  }
  const variables: Record<string, unknown> = {};
  const declarations: string[] = [];
  const args: string[] = [];
  for (const arg of g.field.args) {
    const sample =
      isNonNullType(arg.type) || arg.name === "id"
        ? sampleArg(returnType, arg.name, getNamedType(arg.type))
        : undefined;
    if (sample === undefined) continue;
    declarations.push(`$${arg.name}: ${arg.type.toString()}`);
    args.push(`${arg.name}: $${arg.name}`);
    variables[arg.name] = sample;
  }
  const call = `${g.fieldName}${args.length ? `(${args.join(", ")})` : ""} ${selectionFor(returnType)}`;
  if (g.typeName === "Query") {
    return {
      query: `query${declarations.length ? `(${declarations.join(", ")})` : ""} { ${call} }`,
      variables,
      path: [g.fieldName],
    };
  }
  const parent = printed.getType(g.typeName) as GraphQLObjectType;
  if (!parent.getInterfaces().some((i) => i.name === "Node") || !ids[g.typeName]) {
    throw new Error(
      `guarded field ${g.typeName}.${g.fieldName} is not on a Node type with a fixture: add a route`,
    );
  }
  variables.nodeId = ids[g.typeName];
  declarations.push("$nodeId: ID!");
  return {
    query: `query(${declarations.join(", ")}) { node(id: $nodeId) { ... on ${g.typeName} { ${call} } } }`,
    variables,
    path: ["node", g.fieldName],
    route: NODE_READ_PERMISSIONS[g.typeName],
  };
}

function forbiddenAt(
  body: { errors?: { path?: (string | number)[]; extensions?: Record<string, unknown> }[] },
  path: (string | number)[],
) {
  return body.errors?.find(
    (e) => JSON.stringify(e.path) === JSON.stringify(path) && e.extensions?.code === "FORBIDDEN",
  );
}

describe.each(SCOPES)("the permission matrix for %s keys", (scope) => {
  it.each(GUARDED.map((g) => [`${g.typeName}.${g.fieldName} (${g.permission})`, g] as const))(
    "%s",
    async (_name, g) => {
      const ceiling = SCOPE_CEILINGS[scope];
      if (g.typeName === "Subscription") {
        // Subscriptions are authorized when they start (over SSE here; graphql-ws runs the same pipeline).
        const query = `subscription { ${g.fieldName} { __typename } }`;
        const refusalOf = async (permissions: Permission[]) => {
          const subscriber = await sseSubscribe(server.url, await keyFor(scope, permissions), query);
          await new Promise((r) => setTimeout(r, 150));
          await subscriber.dispose();
          return (subscriber.errors as { extensions?: Record<string, unknown> }[]).find(
            (e) => e.extensions?.code === "FORBIDDEN",
          );
        };
        const granted = await refusalOf([g.permission]);
        if (ceiling.has(g.permission)) expect(granted).toBeUndefined();
        else
          expect(granted?.extensions).toEqual({
            code: "FORBIDDEN",
            requiredPermission: g.permission,
            fix: permissionFix(g.permission),
          });
        const denied = await refusalOf([...ceiling].filter((p) => p !== g.permission));
        expect(denied?.extensions).toEqual({
          code: "FORBIDDEN",
          requiredPermission: g.permission,
          fix: permissionFix(g.permission),
        });
        return;
      }
      const op = await operationFor(g);
      const route = op.route && op.route !== g.permission ? [op.route] : [];
      // When the parent needs the same permission as the field, a refusal stops at the parent.
      const refusedAt = op.route === g.permission ? ["node"] : op.path;
      if (route.length && !ceiling.has(route[0] as Permission)) {
        // The parent itself is out of this scope's reach: the route is refused before the field.
        const response = await gql(server, op.query, op.variables, {
          key: await keyFor(scope, [g.permission, ...route]),
        });
        expect(forbiddenAt(response.body, ["node"])?.extensions?.requiredPermission).toBe(route[0]);
        return;
      }
      // Granted: only this permission (and the route's); allowed exactly when the ceiling allows it.
      const granted = await gql(server, op.query, op.variables, {
        key: await keyFor(scope, [g.permission, ...route]),
      });
      expect(granted.status).toBe(200);
      const refusal = forbiddenAt(granted.body, refusedAt);
      if (ceiling.has(g.permission)) {
        expect(refusal, JSON.stringify(granted.body.errors)).toBeUndefined();
        expect(
          granted.body.errors?.filter((e) => e.extensions?.code === "INTERNAL_SERVER_ERROR") ?? [],
        ).toEqual([]);
      } else {
        expect(refusal?.extensions).toEqual({
          code: "FORBIDDEN",
          requiredPermission: g.permission,
          fix: permissionFix(g.permission),
        });
      }
      // Denied: everything else the scope allows, but not this permission.
      const others = [...ceiling].filter((p) => p !== g.permission);
      const denied = await gql(server, op.query, op.variables, {
        key: await keyFor(scope, [...others, ...route]),
      });
      expect(denied.status).toBe(200);
      expect(forbiddenAt(denied.body, refusedAt)?.extensions).toEqual({
        code: "FORBIDDEN",
        requiredPermission: g.permission,
        fix: permissionFix(g.permission),
      });
    },
  );
});

/**
 * What a type's objects need besides its read permission: a delivery is seen only when its event is
 * (a message event needs MESSAGE_READ), exactly as in Webhook.deliveries.
 */
const NODE_VISIBILITY_PERMISSIONS: Readonly<Record<string, Permission[]>> = {
  WebhookDelivery: ["MESSAGE_READ"],
};

describe("node(id:)", () => {
  it.each(Object.entries(NODE_READ_PERMISSIONS))(
    "needs %s's read permission (%s)",
    async (typeName, permission) => {
      if (!ids[typeName]) throw new Error(`no fixture for ${typeName}`);
      const query = "query($id: ID!) { node(id: $id) { id } }";
      const granted = await gql(
        server,
        query,
        { id: ids[typeName] },
        { key: await keyFor("ORGANIZATION", [permission, ...(NODE_VISIBILITY_PERMISSIONS[typeName] ?? [])]) },
      );
      expect(granted.body).toEqual({ data: { node: { id: ids[typeName] } } });
      const others = [...SCOPE_CEILINGS.ORGANIZATION].filter((p) => p !== permission);
      const denied = await gql(
        server,
        query,
        { id: ids[typeName] },
        { key: await keyFor("ORGANIZATION", others) },
      );
      expect(forbiddenAt(denied.body, ["node"])?.extensions).toEqual({
        code: "FORBIDDEN",
        requiredPermission: permission,
        fix: permissionFix(permission),
      });
    },
  );

  it.each(Object.entries(NODE_READ_PERMISSIONS))(
    "nodes(ids:) applies %s's read permission (%s) per id",
    async (typeName, permission) => {
      if (!ids[typeName]) throw new Error(`no fixture for ${typeName}`);
      const query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }";
      const variables = { ids: [ids[typeName], ids.Pod] };
      const granted = await gql(server, query, variables, {
        key: await keyFor("ORGANIZATION", [
          permission,
          "POD_READ",
          ...(NODE_VISIBILITY_PERMISSIONS[typeName] ?? []),
        ]),
      });
      expect(granted.body).toEqual({ data: { nodes: [{ id: ids[typeName] }, { id: ids.Pod }] } });
      const others = [...SCOPE_CEILINGS.ORGANIZATION].filter((p) => p !== permission);
      const denied = await gql(server, query, variables, { key: await keyFor("ORGANIZATION", others) });
      expect((denied.body as { data: { nodes: unknown[] } }).data.nodes).toEqual(
        permission === "POD_READ" ? [null, null] : [null, { id: ids.Pod }],
      );
      expect(forbiddenAt(denied.body, ["nodes", 0])?.extensions).toEqual({
        code: "FORBIDDEN",
        requiredPermission: permission,
        fix: permissionFix(permission),
      });
    },
  );

  it("resolves the caller's organization and refuses another's id like a missing one", async () => {
    const mine = (await ok(server, "{ viewer { organization { id } } }", {}, { key: org.apiKey })).viewer
      .organization.id;
    expect(
      (await ok(server, "query($id: ID!) { node(id: $id) { id } }", { id: mine }, { key: org.apiKey })).node
        .id,
    ).toBe(mine);
    const other = await gql(
      server,
      "query($id: ID!) { node(id: $id) { id } }",
      { id: encodeGlobalID("Organization", "999999") },
      { key: org.apiKey },
    );
    expect(other.body.data).toEqual({ node: null });
    expect(other.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
  });
});
