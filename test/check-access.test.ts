// Query.checkAccess (docs/permissions.md, "Checking access before deploying"): the walk over
// fragments, inline fragments, aliases and @include/@skip; typed refusals; and the property that
// matters: for random documents over the schema and random keys, its denials are exactly the
// FORBIDDEN errors of running the document on a database where every object exists.
import fc from "fast-check";
import {
  type GraphQLField,
  type GraphQLObjectType,
  getNamedType,
  isAbstractType,
  isLeafType,
  isNonNullType,
  isObjectType,
} from "graphql";
import { beforeAll, describe, expect, it } from "vitest";
import { PERMISSIONS, type Permission, permissionFieldName } from "../src/auth/permissions.ts";
import { schema } from "../src/schema/index.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverSuite, worldFixture } from "./helpers/suite.ts";

const { database, server } = serverSuite({ allowPrivateWebhookUrls: true });
const world = worldFixture({ database, server });

const CHECK = `query($query: String!, $variables: JSON) { checkAccess(query: $query, variables: $variables) {
  allowed denials { path field requiredPermission } } }`;

async function keyWith(permissions: readonly Permission[]): Promise<string> {
  const data = await ok(
    server,
    "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
    {
      input: {
        name: "check-access",
        permissions: Object.fromEntries(permissions.map((p) => [permissionFieldName(p), true])),
      },
    },
    { key: world.keys.organization },
  );
  return data.createApiKey.secret;
}

async function check(key: string, query: string, variables?: Record<string, unknown>) {
  return (await ok(server, CHECK, { query, variables }, { key })).checkAccess as {
    allowed: boolean;
    denials: { path: string[]; field: string; requiredPermission: Permission }[];
  };
}

describe("checkAccess", () => {
  let inboxOnly: string;
  beforeAll(async () => {
    inboxOnly = await keyWith(["INBOX_READ"]);
  });

  it("follows aliases, fragments, inline fragments and @include/@skip with variables", async () => {
    const query = `query($withPods: Boolean!, $noMessages: Boolean!) {
      mine: inboxes(first: 1) { edges { node { ...Box } } }
      pods(first: 1) @include(if: $withPods) { edges { node { id } } }
      messages(first: 1) @skip(if: $noMessages) { edges { node { id } } }
      ... on Query { apiKeys(first: 1) { edges { node { id } } } }
    }
    fragment Box on Inbox { id email threads: threads(first: 1) { edges { node { id } } } }`;
    const report = await check(inboxOnly, query, { withPods: true, noMessages: false });
    expect(report.allowed).toBe(false);
    expect(report.denials).toEqual(
      expect.arrayContaining([
        { path: ["pods"], field: "Query.pods", requiredPermission: "POD_READ" },
        { path: ["messages"], field: "Query.messages", requiredPermission: "MESSAGE_READ" },
        { path: ["apiKeys"], field: "Query.apiKeys", requiredPermission: "API_KEY_READ" },
      ]),
    );
    const skipped = await check(inboxOnly, query, { withPods: false, noMessages: true });
    expect(skipped.denials.map((d) => d.field)).not.toContain("Query.pods");
    expect(skipped.denials.map((d) => d.field)).not.toContain("Query.messages");
    const allowed = await check(
      inboxOnly,
      "{ inboxes(first: 1) { edges { node { id email } } } viewer { permissions } }",
    );
    expect(allowed).toEqual({ allowed: true, denials: [] });
  });

  it("checks node(id:) by the id's type", async () => {
    const report = await check(inboxOnly, `query($id: ID!) { node(id: $id) { id } }`, {
      id: world.ids.Message,
    });
    expect(report.denials).toEqual([
      { path: ["node"], field: "Query.node", requiredPermission: "MESSAGE_READ" },
    ]);
  });

  it("refuses documents that do not parse or validate, and bad variables, naming the argument", async () => {
    for (const [query, variables, field] of [
      ["{ pods(first: 1) {", undefined, "query"],
      ["{ noSuchField }", undefined, "query"],
      ["query($n: Int!) { pods(first: $n) { edges { node { id } } } }", { n: "many" }, "variables"],
      ["query($n: Int!) { pods(first: $n) { edges { node { id } } } }", undefined, "variables"],
    ] as const) {
      const response = await gql(server, CHECK, { query, variables }, { key: inboxOnly });
      expect(response.body.errors?.[0]?.extensions, query).toMatchObject({ code: "BAD_USER_INPUT", field });
    }
    const notObject = await gql(
      server,
      CHECK,
      { query: "{ viewer { permissions } }", variables: [1] },
      { key: inboxOnly },
    );
    expect(notObject.body.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "variables",
    });
    const anonymous = await gql(server, CHECK, { query: "{ viewer { permissions } }" });
    expect(anonymous.status).toBe(401);
  });
});

// ---- The property: checkAccess's denials are the FORBIDDEN errors of running the document. ----

/** A small deterministic PRNG, so a failing seed reproduces the document. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random read-only document over the schema's Query type, its variables, from `seed`. */
function randomDocument(
  seed: number,
  ids: Record<string, string>,
): { query: string; variables: Record<string, unknown> } {
  const next = random(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)] as T;
  const variables: Record<string, unknown> = {};
  const variableDefinitions: string[] = [];
  const fragments: string[] = [];
  let counter = 0;
  let budget = 30;

  const argumentsFor = (field: GraphQLField<unknown, unknown>): string | undefined => {
    const parts: string[] = [];
    for (const arg of field.args) {
      if (arg.name === "first") parts.push("first: 2");
      else if (isNonNullType(arg.type)) {
        const id = arg.name === "id" ? ids[getNamedType(field.type).name] : undefined;
        if (id === undefined) return undefined;
        parts.push(`id: ${JSON.stringify(id)}`);
      }
    }
    return parts.length ? `(${parts.join(", ")})` : "";
  };

  const selectable = (type: GraphQLObjectType) =>
    Object.values(type.getFields()).filter((field) => {
      const named = getNamedType(field.type);
      if (isAbstractType(named) || field.name === "checkAccess" || field.name === "node") return false;
      return argumentsFor(field) !== undefined;
    });

  const selection = (type: GraphQLObjectType, depth: number): string => {
    const fields = selectable(type);
    const count = 1 + Math.floor(next() * 3);
    const parts: string[] = [];
    for (let i = 0; i < count && budget > 0; i++) {
      const field = pick(fields);
      const named = getNamedType(field.type);
      if (!isLeafType(named) && (depth >= 4 || !isObjectType(named))) continue;
      budget--;
      let text = next() < 0.25 ? `a${++counter}: ${field.name}` : field.name;
      text += argumentsFor(field);
      const roll = next();
      if (roll < 0.12) {
        const name = `v${++counter}`;
        const value = next() < 0.5;
        variableDefinitions.push(`$${name}: Boolean!`);
        variables[name] = value;
        text += next() < 0.5 ? ` @include(if: $${name})` : ` @skip(if: $${name})`;
      } else if (roll < 0.18) {
        text += next() < 0.5 ? " @include(if: true)" : " @skip(if: false)";
      }
      if (isObjectType(named)) text += ` { ${selection(named, depth + 1)} }`;
      const wrap = next();
      if (wrap < 0.12) text = `... on ${type.name} { ${text} }`;
      else if (wrap < 0.22) {
        const name = `F${++counter}`;
        fragments.push(`fragment ${name} on ${type.name} { ${text} }`);
        text = `...${name}`;
      }
      parts.push(text);
    }
    return parts.length ? parts.join(" ") : "__typename";
  };

  const body = selection(schema.getQueryType() as GraphQLObjectType, 0);
  const header = variableDefinitions.length ? `query(${variableDefinitions.join(", ")})` : "query";
  return { query: `${header} { ${body} }\n${fragments.join("\n")}`, variables };
}

/** Whether the object a path's last field belongs to was in the result (any element of a list). */
function parentPresent(data: unknown, path: readonly string[]): boolean {
  if (path.length === 1) return data !== null && data !== undefined;
  if (data === null || data === undefined) return false;
  if (Array.isArray(data)) return data.some((item) => parentPresent(item, path));
  const [head, ...rest] = path as [string, ...string[]];
  return parentPresent((data as Record<string, unknown>)[head], rest);
}

describe("checkAccess against running the document", () => {
  const keys: { secret: string; permissions: Permission[] }[] = [];
  beforeAll(async () => {
    const drawn = fc.sample(fc.subarray([...PERMISSIONS], { minLength: 0 }), { numRuns: 10, seed: 17 });
    for (const permissions of [[...PERMISSIONS], ["INBOX_READ", "POD_READ"] as Permission[], ...drawn]) {
      keys.push({ secret: await keyWith(permissions), permissions });
    }
  });

  it("lists exactly the FORBIDDEN errors execution produces (1,000 random documents and keys)", async () => {
    let denialsSeen = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.nat({ max: 11 }),
        async (seed, keyIndex) => {
          const key = keys[keyIndex % keys.length] as (typeof keys)[number];
          const { query, variables } = randomDocument(seed, world.ids);
          const report = await check(key.secret, query, variables);
          const run = await gql(server, query, variables, { key: key.secret });
          expect(run.body.data, `${query} ${JSON.stringify(run.body.errors)}`).toBeTruthy();
          const forbidden = new Set(
            (run.body.errors ?? [])
              .filter((e) => e.extensions?.code === "FORBIDDEN")
              .map(
                (e) =>
                  `${(e.path ?? []).filter((s) => typeof s === "string").join(".")}|${e.extensions?.requiredPermission}`,
              ),
          );
          const denied = report.denials.map((d) => `${d.path.join(".")}|${d.requiredPermission}`);
          // Every error execution produced is one checkAccess listed.
          for (const error of forbidden)
            expect(denied, `${query}\n${JSON.stringify(variables)}`).toContain(error);
          // Every denial whose parent object exists in this database is an error execution produced.
          for (const denial of report.denials) {
            if (!parentPresent(run.body.data, denial.path)) continue;
            expect([...forbidden], `${query}\n${JSON.stringify(variables)}`).toContain(
              `${denial.path.join(".")}|${denial.requiredPermission}`,
            );
          }
          expect(report.allowed).toBe(report.denials.length === 0);
          denialsSeen += report.denials.length;
        },
      ),
      { numRuns: 1000, seed: Number(process.env.CHECK_ACCESS_SEED ?? 20261201) },
    );
    // The documents do exercise denials, not only allowed reads.
    expect(denialsSeen).toBeGreaterThan(200);
  }, 900_000);
});
