// Queries run as compiled code (src/server/compiled-queries.ts) answer exactly what the ordinary
// executor answers: the same data for every leaf field of every Node type and for introspection,
// and on any error the ordinary executor's own response (messages, locations, paths). Mutations are
// never compiled.
import {
  execute,
  type GraphQLObjectType,
  type GraphQLOutputType,
  getIntrospectionQuery,
  getNamedType,
  isLeafType,
  isNonNullType,
  parse,
} from "graphql";
import { beforeAll, describe, expect, it } from "vitest";
import type { AuthenticatedPrincipal } from "../src/auth/principal.ts";
import { createContext } from "../src/schema/context.ts";
import { schema } from "../src/schema/index.ts";
import { compiledQueryRuns } from "../src/server/compiled-queries.ts";
import { gql } from "./helpers/server.ts";
import { serverSuite, worldFixture } from "./helpers/suite.ts";

const { database, server } = serverSuite({ allowPrivateWebhookUrls: true });
const world = worldFixture({ database, server });
let principal: AuthenticatedPrincipal;

beforeAll(async () => {
  const found = await server.app.services.authenticator.authenticateApiKey(world.keys.organization);
  if (!found) throw new Error("the world's key does not authenticate");
  principal = found;
});

/** graphql-js's answer to the same request, with a context of its own. */
async function ordinary(query: string, variables: Record<string, unknown> = {}) {
  const result = await execute({
    schema,
    document: parse(query),
    variableValues: variables,
    contextValue: createContext(server.app.services, principal, { baseUrl: server.url }),
  });
  return JSON.parse(JSON.stringify(result)) as { data?: unknown; errors?: Record<string, unknown>[] };
}

/** Download links carry their expiry in seconds: two runs a second apart differ there alone. */
function withoutLinkTokens(body: unknown): unknown {
  return JSON.parse(JSON.stringify(body).replace(/\/files\/[\w-]+/g, "/files/<token>"));
}

/** Every leaf field of a type that takes no required argument (objects by their id, if any). */
function leaves(typeName: string): string {
  const type = schema.getType(typeName) as GraphQLObjectType;
  const names: string[] = [];
  for (const field of Object.values(type.getFields())) {
    if (field.args.some((arg) => isNonNullType(arg.type) && arg.defaultValue === undefined)) continue;
    const named = getNamedType(field.type as GraphQLOutputType);
    if (isLeafType(named)) names.push(field.name);
    else if ("getFields" in named && "id" in named.getFields()) names.push(`${field.name} { id }`);
  }
  return names.join(" ");
}

describe("compiled queries", () => {
  it("answer every Node type's leaf fields as the ordinary executor does", async () => {
    for (const type of Object.keys(world.ids) as (keyof typeof world.ids)[]) {
      const query = `query($id: ID!) { node(id: $id) { __typename id ... on ${type} { ${leaves(type)} } } }`;
      const variables = { id: world.ids[type] };
      const before = { ...compiledQueryRuns };
      const response = await gql(server, query, variables, { key: world.keys.organization });
      expect(response.body.errors, type).toBeUndefined();
      expect(compiledQueryRuns.compiled).toBe(before.compiled + 1);
      expect(compiledQueryRuns.again).toBe(before.again);
      expect(withoutLinkTokens(response.body), type).toEqual(
        withoutLinkTokens(await ordinary(query, variables)),
      );
    }
  });

  it("answer the benchmark's nested inbox read and introspection as the ordinary executor does", async () => {
    const nested = `query($id: ID!) { inbox(id: $id) { threads(first: 50) { edges { cursor node { subject
      messageCount messages(first: 3) { edges { node { from subject labels } } } } } pageInfo { hasNextPage endCursor } } } }`;
    for (const [query, variables] of [
      [nested, { id: world.ids.Inbox }],
      [getIntrospectionQuery({ descriptions: true, directiveIsRepeatable: true }), {}],
    ] as const) {
      const before = compiledQueryRuns.again;
      const response = await gql(server, query, variables, { key: world.keys.organization });
      expect(response.body.errors).toBeUndefined();
      expect(compiledQueryRuns.again).toBe(before);
      expect(response.body).toEqual(await ordinary(query, variables));
    }
  });

  it("answer a run with errors through the ordinary executor: the same errors, with their locations", async () => {
    // A denied field (a pod key reading its organization's other pod) and a missing node.
    const query = `query($id: ID!) {
      node(id: $id) { id }
      inbox(id: $id) { id }
    }`;
    const variables = { id: world.otherInboxId };
    const before = { ...compiledQueryRuns };
    const response = await gql(server, query, variables, { key: world.keys.pod });
    const expected = await (async () => {
      const found = await server.app.services.authenticator.authenticateApiKey(world.keys.pod);
      const result = await execute({
        schema,
        document: parse(query),
        variableValues: variables,
        contextValue: createContext(server.app.services, found as AuthenticatedPrincipal, {
          baseUrl: server.url,
        }),
      });
      return JSON.parse(JSON.stringify(result)) as { errors?: Record<string, unknown>[] };
    })();
    expect(expected.errors?.length).toBeGreaterThan(0);
    expect(compiledQueryRuns.again).toBe(before.again + 1);
    expect(
      response.body.errors?.map(({ message, locations, path }: any) => ({ message, locations, path })),
    ).toEqual(expected.errors?.map(({ message, locations, path }) => ({ message, locations, path })));
    for (const error of response.body.errors ?? []) expect(error).toHaveProperty("locations");
    // Once a run of it had errors, the operation goes to graphql-js directly: no second run again.
    const later = { ...compiledQueryRuns };
    const again = await gql(server, query, variables, { key: world.keys.pod });
    expect(again.body).toEqual(response.body);
    expect(compiledQueryRuns).toEqual(later);
  });

  it("never compile a mutation", async () => {
    const before = { ...compiledQueryRuns };
    const response = await gql(
      server,
      `mutation { createPod(input: { name: "not compiled" }) { pod { id } } }`,
      {},
      {
        key: world.keys.organization,
      },
    );
    expect(response.body.errors).toBeUndefined();
    expect(compiledQueryRuns).toEqual(before);
  });
});
