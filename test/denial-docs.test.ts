// Self-explaining denials (docs/permissions.md, "Keys in production"): the one requires() declaration
// gives every guarded field its `@requires` directive, a description ending `Requires <PERMISSION>.`
// (what GraphiQL's documentation explorer shows, read here from live introspection over HTTP), and a
// FORBIDDEN error with `extensions.fix`.
import { readFileSync } from "node:fs";
import { type EnumValueNode, type FieldDefinitionNode, Kind, parse, type StringValueNode } from "graphql";
import { describe, expect, it } from "vitest";
import { PERMISSIONS, permissionFix } from "../src/auth/permissions.ts";
import { SCHEMA_FILE } from "../src/schema/print.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";

const { database, server } = serverSuite();
const { org } = tenantFixture({ database, server }, { inboxes: { a: { username: "denial-docs-a" } } });

const INTROSPECTION = `{ __schema { types { name fields(includeDeprecated: true) { name description } } } }`;

/** Type.field → the permission of its @requires in schema.graphql. */
function directivesInSdl(): Map<string, string> {
  const document = parse(readFileSync(SCHEMA_FILE, "utf8"));
  const found = new Map<string, string>();
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION && definition.kind !== Kind.INTERFACE_TYPE_DEFINITION)
      continue;
    for (const field of (definition.fields ?? []) as FieldDefinitionNode[]) {
      const requires = field.directives?.find((d) => d.name.value === "requires");
      const value = requires?.arguments?.[0]?.value as EnumValueNode | undefined;
      if (value) found.set(`${definition.name.value}.${field.name.value}`, value.value);
      const description = (field.description as StringValueNode | undefined)?.value ?? "";
      if (value)
        expect(description, `${definition.name.value}.${field.name.value} in schema.graphql`).toMatch(
          new RegExp(`Requires ${value.value}\\.$`),
        );
    }
  }
  return found;
}

describe("guarded fields document their permission", () => {
  it("live introspection ends each guarded field's description with `Requires <PERMISSION>.`, as its @requires says", async () => {
    const sdl = directivesInSdl();
    expect(sdl.size).toBeGreaterThan(40);
    const data = await ok(server, INTROSPECTION, {}, { key: org.apiKey });
    const described = new Map<string, string>();
    const descriptions = new Map<string, string>();
    for (const type of data.__schema.types as {
      name: string;
      fields: { name: string; description: string | null }[] | null;
    }[]) {
      for (const field of type.fields ?? []) {
        descriptions.set(`${type.name}.${field.name}`, field.description ?? "");
        const match = /Requires ([A-Z_]+)\.$/.exec(field.description ?? "");
        if (match?.[1]) described.set(`${type.name}.${field.name}`, match[1]);
      }
    }
    // Both ways: no guarded field without the sentence, no sentence without the guard.
    expect(Object.fromEntries(described)).toEqual(Object.fromEntries(sdl));
    const example = descriptions.get("Query.apiKeys");
    console.log(`introspection: Query.apiKeys.description = ${JSON.stringify(example)}`);
    console.log(
      `introspection: Mutation.createDomain.description = ${JSON.stringify(descriptions.get("Mutation.createDomain"))}`,
    );
    expect(example).toBe("Requires API_KEY_READ.");
    expect(descriptions.get("Mutation.createDomain")).toMatch(/verifyDomain\. Requires DOMAIN_CREATE\.$/);
  });
});

describe("a missing permission says how to fix it", () => {
  it("every FORBIDDEN error for a missing permission carries extensions.fix naming it and the scope", async () => {
    const data = await ok(
      server,
      `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }`,
      { input: { name: "nothing", permissions: { inboxRead: false } } },
      { key: org.apiKey },
    );
    const key = data.createApiKey.secret as string;
    const response = await gql(
      server,
      `{ pods(first: 1) { edges { node { id } } } inboxes(first: 1) { edges { node { id } } } }`,
      {},
      { key },
    );
    const errors = response.body.errors ?? [];
    expect(errors.map((e) => e.extensions)).toEqual([
      { code: "FORBIDDEN", requiredPermission: "POD_READ", fix: permissionFix("POD_READ") },
      { code: "FORBIDDEN", requiredPermission: "INBOX_READ", fix: permissionFix("INBOX_READ") },
    ]);
    const create = await gql(
      server,
      `mutation { createPod(input: { name: "x" }) { pod { id } } }`,
      {},
      { key },
    );
    expect(create.body.errors?.[0]?.extensions?.fix).toBe(
      "Grant the POD_CREATE permission to an organization-scoped key (pod- and inbox-scoped keys cannot hold it) covering the objects you want, or use such a key.",
    );
  });

  it("the fix is one sentence naming the permission, for each of the 35", () => {
    for (const permission of PERMISSIONS) {
      const fix = permissionFix(permission);
      expect(fix).toContain(permission);
      expect(fix).toMatch(/^[A-Z][^.]*\.$/);
      expect(fix).toMatch(/scoped/);
    }
    expect(permissionFix("MESSAGE_READ")).toContain("inbox");
    expect(permissionFix("WEBHOOK_READ")).toContain("pod or the organization");
  });
});
