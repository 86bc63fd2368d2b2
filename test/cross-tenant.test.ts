// Cross-tenant probing, generated from the schema: every id argument of every query and mutation
// (and node(id:)), given an id from another organization, another pod or another inbox, answers
// exactly what a random id answers; and a refused mutation changes nothing in the database.
import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import {
  buildSchema,
  type GraphQLField,
  type GraphQLInputObjectType,
  type GraphQLInputType,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
} from "graphql";
import { beforeAll, describe, expect, it } from "vitest";
import { printSchemaSdl } from "../src/schema/print.ts";
import { databaseChecksum } from "./helpers/database.ts";
import { createKey, deliver } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";

const printed = buildSchema(printSchemaSdl());

/** Which type an id argument names, by its name; `id` is the type the field returns or deletes. */
const ID_TYPES: Record<string, string> = {
  podId: "Pod",
  podIds: "Pod",
  inboxId: "Inbox",
  inboxIds: "Inbox",
  messageId: "Message",
  inReplyToMessageId: "Message",
  forwardOfMessageId: "Message",
  ids: "Message",
  threadId: "Thread",
};
/** For mutations whose `input.id` names an object of this type. */
const MUTATION_TARGETS: Record<string, string> = {
  deletePod: "Pod",
  updateInbox: "Inbox",
  deleteInbox: "Inbox",
  updateMessage: "Message",
  updateThread: "Thread",
  deleteThread: "Thread",
  updateDraft: "Draft",
  deleteDraft: "Draft",
  updateWebhook: "Webhook",
  deleteWebhook: "Webhook",
  verifyDomain: "Domain",
  deleteDomain: "Domain",
  deleteListEntry: "ListEntry",
  deleteApiKey: "ApiKey",
  rollApiKey: "ApiKey",
  updateApiKey: "ApiKey",
  replyToMessage: "Message",
  forwardMessage: "Message",
  sendDraft: "Draft",
  approveDraft: "Draft",
};
/** The rest of a valid input, so that only the id decides the answer. */
const BASE_INPUTS: Record<string, Record<string, unknown>> = {
  updateInbox: { displayName: "x" },
  updateMessage: { addLabels: ["x"] },
  updateMessages: { addLabels: ["x"] },
  updateThread: { addLabels: ["x"] },
  createApiKey: { name: "x" },
  createInbox: {},
  createDraft: { subject: "x" },
  createWebhook: { url: "https://hooks.example.test/p", eventTypes: ["MESSAGE_RECEIVED"] },
  createListEntry: { direction: "RECEIVE", type: "BLOCK", entry: "probe.example.test" },
  createDomain: { domain: "probe.example.test" },
  updateWebhook: { enabled: false },
  updateDraft: { subject: "x" },
  sendMessage: { to: ["someone@example.test"], subject: "x", text: "x" },
  forwardMessage: { to: ["someone@example.test"] },
  replyToMessage: { text: "x" },
};

interface Probe {
  name: string;
  operation: "query" | "mutation";
  field: GraphQLField<unknown, unknown>;
  /** Where the id goes: an argument, or a field of the `input` argument. */
  argument: string;
  inInput: boolean;
  list: boolean;
  idType: string;
}

function typeOfId(fieldName: string, argument: string, returnTypeName: string): string {
  if (argument === "id") return MUTATION_TARGETS[fieldName] ?? returnTypeName;
  const type = ID_TYPES[argument];
  if (!type) throw new Error(`no type known for id argument ${fieldName}(${argument}): add it to ID_TYPES`);
  return type;
}

function isIdType(type: GraphQLInputType): boolean {
  return getNamedType(type).name === "ID";
}

function probes(): Probe[] {
  const out: Probe[] = [];
  for (const operation of ["query", "mutation"] as const) {
    const root = operation === "query" ? printed.getQueryType() : printed.getMutationType();
    for (const field of Object.values(root?.getFields() ?? {})) {
      if (field.name === "node") continue; // every type through node(id:): its own test below
      const returnName = getNamedType(field.type).name;
      for (const arg of field.args) {
        if (isIdType(arg.type)) {
          const list = isListType(isNonNullType(arg.type) ? arg.type.ofType : arg.type);
          out.push({
            name: `${field.name}(${arg.name})`,
            operation,
            field,
            argument: arg.name,
            inInput: false,
            list,
            idType: typeOfId(field.name, arg.name, returnName),
          });
        }
        const input = getNamedType(arg.type);
        if (arg.name === "input" && isInputObjectType(input)) {
          for (const inputField of Object.values((input as GraphQLInputObjectType).getFields())) {
            if (!isIdType(inputField.type)) continue;
            const list = isListType(
              isNonNullType(inputField.type) ? inputField.type.ofType : inputField.type,
            );
            out.push({
              name: `${field.name}(input.${inputField.name})`,
              operation,
              field,
              argument: inputField.name,
              inInput: true,
              list,
              idType: typeOfId(field.name, inputField.name, returnName),
            });
          }
        }
      }
    }
  }
  return out;
}

const PROBES = probes();

// ---- two organizations; in the caller's, two pods with an inbox each ----
const { database, server } = serverSuite({ allowPrivateWebhookUrls: true });
const mine = tenantFixture(
  { database, server },
  {
    name: "Mine",
    pods: ["A", "B"],
    inboxes: {
      home: { pod: "A", username: "home" },
      sibling: { pod: "A", username: "sibling" },
      elsewhere: { pod: "B", username: "elsewhere" },
    },
    keys: { pod: { pod: "A" }, inbox: { inbox: "home" } },
  },
);
const theirs = tenantFixture(
  { database, server },
  { name: "Theirs", pods: ["T"], inboxes: { theirs: { pod: "T", username: "theirs" } } },
);
/** [typename] → an id of that type in: the other organization, the other pod, the other inbox of pod A. */
const foreign: Record<"organization" | "pod" | "inbox", Record<string, string>> = {
  organization: {},
  pod: {},
  inbox: {},
};
const callers: Record<string, string> = {};
let homeInbox = "";

async function populate(key: string, podId: string, inboxId: string, into: Record<string, string>) {
  into.Pod = podId;
  into.Inbox = inboxId;
  const message = await deliver(database.db, inboxId);
  into.Message = message.id;
  into.Thread = message.threadId;
  into.ApiKey = (await createKey(server, key, { inboxId })).id;
  const podKey = (await createKey(server, key, { podId })).secret;
  const inboxKey = (await createKey(server, key, { inboxId })).secret;
  const creations: [string, string, Record<string, unknown>, string][] = [
    [
      "Draft",
      "mutation($input: CreateDraftInput!) { created: createDraft(input: $input) { object: draft { id } } }",
      { inboxId, subject: "d" },
      inboxKey,
    ],
    [
      "Webhook",
      "mutation($input: CreateWebhookInput!) { created: createWebhook(input: $input) { object: webhook { id } } }",
      { url: "https://hooks.example.test/w", eventTypes: ["MESSAGE_SENT"] },
      podKey,
    ],
    [
      "Domain",
      "mutation($input: CreateDomainInput!) { created: createDomain(input: $input) { object: domain { id } } }",
      { domain: `${Math.random().toString(36).slice(2, 9)}.example.test` },
      podKey,
    ],
    [
      "ListEntry",
      "mutation($input: CreateListEntryInput!) { created: createListEntry(input: $input) { object: listEntry { id } } }",
      { direction: "SEND", type: "ALLOW", entry: "ok.example.test" },
      inboxKey,
    ],
  ];
  for (const [typeName, mutation, input, creator] of creations) {
    into[typeName] = (await ok(server, mutation, { input }, { key: creator })).created.object.id;
  }
}

beforeAll(async () => {
  homeInbox = mine.inboxes.home.id;
  await populate(theirs.org.apiKey, theirs.pods.T, theirs.inboxes.theirs.id, foreign.organization);
  await populate(mine.org.apiKey, mine.pods.B, mine.inboxes.elsewhere.id, foreign.pod);
  await populate(mine.org.apiKey, mine.pods.A, mine.inboxes.sibling.id, foreign.inbox);
  callers.organization = mine.org.apiKey;
  callers.pod = mine.keys.pod;
  callers.inbox = mine.keys.inbox;
  // An inbox has no "other inbox" pod: the inbox key probes pods with another pod's id.
  foreign.inbox.Pod = mine.pods.B;
  // lastUsedAt is written (off the request path) on a key's first use: get that out of the way.
  for (const key of Object.values(callers)) await ok(server, "{ viewer { scope } }", {}, { key });
  await new Promise((r) => setTimeout(r, 200));
});

function callFor(probe: Probe, id: string) {
  const value = probe.list ? [id] : id;
  const selection =
    isScalarType(getNamedType(probe.field.type)) || isEnumType(getNamedType(probe.field.type))
      ? ""
      : "{ __typename }";
  if (probe.inInput) {
    const inputArg = probe.field.args.find((a) => a.name === "input");
    const base = { ...(BASE_INPUTS[probe.field.name] ?? {}) };
    // Other required ids of the input point at the caller's own objects.
    const inputType = getNamedType(inputArg?.type as GraphQLInputType) as GraphQLInputObjectType;
    for (const f of Object.values(inputType.getFields())) {
      if (f.name !== probe.argument && isNonNullType(f.type) && isIdType(f.type)) base[f.name] = homeInbox;
    }
    return {
      query: `${probe.operation}($input: ${inputArg?.type.toString()}) { ${probe.field.name}(input: $input) ${selection} }`,
      variables: { input: { ...base, [probe.argument]: value } },
    };
  }
  const arg = probe.field.args.find((a) => a.name === probe.argument);
  const extra = probe.field.args.filter((a) => a.name !== probe.argument && isNonNullType(a.type));
  const extraValues: Record<string, unknown> = {};
  for (const a of extra) {
    const named = getNamedType(a.type);
    extraValues[a.name] = isEnumType(named)
      ? named.getValues()[0]?.value
      : a.name === "from"
        ? new Date(Date.now() - 3_600_000).toISOString()
        : new Date().toISOString();
  }
  const declarations = [
    `$id: ${arg?.type.toString()}`,
    ...extra.map((a) => `$${a.name}: ${a.type.toString()}`),
  ];
  const args = [`${probe.argument}: $id`, ...extra.map((a) => `${a.name}: $${a.name}`)];
  return {
    query: `${probe.operation}(${declarations.join(", ")}) { ${probe.field.name}(${args.join(", ")}) ${selection} }`,
    variables: { id: value, ...extraValues },
  };
}

const normalise = (body: { data?: unknown; errors?: { message: string; extensions?: unknown }[] }) => ({
  data: body.data,
  errors: body.errors?.map((e) => ({ message: e.message, extensions: e.extensions })),
});

describe.each(["organization", "pod", "inbox"] as const)("ids from another %s", (boundary) => {
  it.each(PROBES.map((p) => [p.name, p] as const))(
    "%s answers like a random id and changes nothing",
    async (_name, probe) => {
      // The organization key probes other organizations; the pod key other pods; the inbox key other inboxes.
      const key = callers[boundary] as string;
      const foreignId = foreign[boundary][probe.idType];
      if (!foreignId) throw new Error(`no ${boundary}-foreign fixture of type ${probe.idType}`);
      const randomId = encodeGlobalID(probe.idType, String(900_000_000 + Math.floor(Math.random() * 1000)));
      expect(decodeGlobalID(foreignId).typename).toBe(probe.idType);
      // Every column, last_used_at too: each caller key was used once in beforeAll, so a probe cannot
      // be the first use that writes it.
      const before = probe.operation === "mutation" ? await databaseChecksum(database, []) : "";
      const probed = await gql(server, callFor(probe, foreignId).query, callFor(probe, foreignId).variables, {
        key,
      });
      const after = probe.operation === "mutation" ? await databaseChecksum(database, []) : "";
      const random = await gql(server, callFor(probe, randomId).query, callFor(probe, randomId).variables, {
        key,
      });
      expect(probed.status).toBe(random.status);
      expect(normalise(probed.body)).toEqual(normalise(random.body));
      if (probe.operation === "mutation") expect(after).toBe(before);
    },
  );

  it("node(id:) answers every foreign id like a random one", async () => {
    const key = callers[boundary] as string;
    for (const [typeName, id] of Object.entries(foreign[boundary])) {
      const probed = await gql(server, "query($id: ID!) { node(id: $id) { __typename } }", { id }, { key });
      const random = await gql(
        server,
        "query($id: ID!) { node(id: $id) { __typename } }",
        { id: encodeGlobalID(typeName, "987654321") },
        { key },
      );
      expect(normalise(probed.body), `${typeName} ${id}`).toEqual(normalise(random.body));
    }
  });
});
