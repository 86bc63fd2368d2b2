// docs/permissions.md "Scopes", "Permissions" and the denied-permission error, checked
// against a small model written from the document's own words, then end to end on a server.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { constrainPermissions } from "../src/api-keys/service.ts";
import { effectivePermissions, PERMISSIONS, permissionFix } from "../src/auth/permissions.ts";
import { setOrganizationStatus } from "../src/organizations/service.ts";
import { addMember, hashPassword } from "../src/users/service.ts";
import {
  createInboxViaApi,
  createKey,
  createOrganization,
  createPodViaApi,
  DELETE_KEY,
} from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";

// ---- The model: the flag lists exactly as docs/permissions.md spells them. ----
const FLAGS = `inbox_read inbox_create inbox_update inbox_delete thread_read thread_delete message_read
message_send message_update label_spam_read label_blocked_read label_trash_read draft_read
draft_create draft_update draft_delete draft_send webhook_read webhook_create webhook_update
webhook_delete domain_read domain_create domain_update domain_delete list_entry_read
list_entry_create list_entry_delete metrics_read api_key_read api_key_create api_key_delete
pod_read pod_create pod_delete`
  .split(/\s+/)
  .map((f) => f.toUpperCase());
const matches = (patterns: string) => {
  const res = patterns.split(" ").map((p) => new RegExp(`^${p.replace(/\*/g, "[A-Z_]+")}$`));
  return new Set(FLAGS.filter((f) => res.some((re) => re.test(f))));
};
const MODEL_SCOPE: Record<string, Set<string>> = {
  ORGANIZATION: new Set(FLAGS),
  POD: new Set(FLAGS.filter((f) => f !== "POD_CREATE" && f !== "POD_DELETE")),
  INBOX: matches(
    "INBOX_READ INBOX_UPDATE THREAD_* MESSAGE_* LABEL_*_READ DRAFT_* LIST_ENTRY_* METRICS_READ API_KEY_*",
  ),
};
const MODEL_ORG: Record<string, Set<string>> = {
  ACTIVE: new Set(FLAGS),
  AGENT_VERIFIED: new Set(FLAGS),
  AGENT_UNVERIFIED: matches(
    "INBOX_READ INBOX_UPDATE THREAD_* MESSAGE_* LABEL_*_READ DRAFT_* METRICS_READ API_KEY_READ",
  ),
};
const MODEL_ROLE: Record<string, Set<string>> = {
  ADMIN: new Set(FLAGS),
  MEMBER: new Set(FLAGS.filter((f) => f !== "API_KEY_CREATE" && f !== "API_KEY_DELETE")),
};
const intersect = (...sets: Set<string>[]) => new Set(FLAGS.filter((f) => sets.every((s) => s.has(f))));

const scopeArb = fc.constantFrom("ORGANIZATION", "POD", "INBOX") as fc.Arbitrary<
  "ORGANIZATION" | "POD" | "INBOX"
>;
const statusArb = fc.constantFrom("ACTIVE", "AGENT_UNVERIFIED", "AGENT_VERIFIED") as fc.Arbitrary<
  "ACTIVE" | "AGENT_UNVERIFIED" | "AGENT_VERIFIED"
>;
const whitelistArb = fc.option(fc.subarray([...PERMISSIONS]), { nil: null });

describe("the permission model", () => {
  it("has the 35 flags of docs/permissions.md", () => {
    expect([...PERMISSIONS].sort()).toEqual([...FLAGS].sort());
    expect(PERMISSIONS).toHaveLength(35);
  });

  it("effective permissions = scope ceiling ∩ whitelist (or all) ∩ organization ceiling ∩ role ceiling", () => {
    fc.assert(
      fc.property(
        scopeArb,
        whitelistArb,
        statusArb,
        fc.option(fc.constantFrom("ADMIN", "MEMBER"), { nil: undefined }),
        (scope, whitelist, status, role) => {
          const actual = effectivePermissions({
            scope,
            whitelist,
            organizationStatus: status,
            role: role as "ADMIN" | "MEMBER" | undefined,
          });
          const expected = intersect(
            MODEL_SCOPE[scope] as Set<string>,
            whitelist === null ? new Set(FLAGS) : new Set(whitelist),
            MODEL_ORG[status] as Set<string>,
            role ? (MODEL_ROLE[role] as Set<string>) : new Set(FLAGS),
          );
          expect([...actual].sort()).toEqual([...expected].sort());
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("never lets a created key hold a permission its creator lacks or its scope forbids", () => {
    fc.assert(
      fc.property(
        scopeArb,
        whitelistArb,
        statusArb,
        scopeArb,
        whitelistArb,
        (creatorScope, creatorList, status, newScope, requested) => {
          const creator = effectivePermissions({
            scope: creatorScope,
            whitelist: creatorList,
            organizationStatus: status,
          });
          const stored = constrainPermissions(requested, creator, newScope);
          const granted = effectivePermissions({
            scope: newScope,
            whitelist: stored,
            organizationStatus: status,
          });
          const model = intersect(
            requested === null ? new Set(FLAGS) : new Set(requested),
            new Set(creator),
            MODEL_SCOPE[newScope] as Set<string>,
            MODEL_ORG[status] as Set<string>,
          );
          expect([...granted].sort()).toEqual([...model].sort());
          for (const p of granted) expect(creator.has(p)).toBe(true);
          // The stored whitelist is what the key shows: never more than the creator could give.
          if (stored !== null)
            for (const p of stored) expect(creator.has(p) && MODEL_SCOPE[newScope]?.has(p)).toBe(true);
          else
            expect([...(MODEL_SCOPE[newScope] as Set<string>)].every((p) => creator.has(p as never))).toBe(
              true,
            );
        },
      ),
      { numRuns: 2000 },
    );
  });
});

// ---- End to end ----
const { database, server } = serverSuite();
const {
  org,
  pods,
  inboxes: { a: inboxA, b: inboxB },
} = tenantFixture(
  { database, server },
  {
    pods: ["A", "B"],
    inboxes: { a: { pod: "A", username: "alpha" }, b: { pod: "B", username: "beta" } },
  },
);

const viewerPermissions = async (key: string) =>
  (await ok(server, "{ viewer { scope permissions } }", {}, { key })).viewer as {
    scope: string;
    permissions: string[];
  };

describe("scopes and ceilings, end to end", () => {
  it("gives a key with no permissions everything its scope ceiling allows", async () => {
    const pod = await createKey(server, org.apiKey, { podId: pods.A });
    const inbox = await createKey(server, org.apiKey, { inboxId: inboxA.id });
    expect(pod.apiKey.permissions).toBeNull();
    expect(inbox.apiKey.permissions).toBeNull();
    expect(new Set((await viewerPermissions(org.apiKey)).permissions)).toEqual(MODEL_SCOPE.ORGANIZATION);
    expect(await viewerPermissions(pod.secret)).toEqual({
      scope: "POD",
      permissions: PERMISSIONS.filter((p) => MODEL_SCOPE.POD?.has(p)),
    });
    expect(await viewerPermissions(inbox.secret)).toEqual({
      scope: "INBOX",
      permissions: PERMISSIONS.filter((p) => MODEL_SCOPE.INBOX?.has(p)),
    });
  });

  it("treats permissions as a whitelist: only true is granted; a flag outside the ceiling stays denied", async () => {
    const key = await createKey(server, org.apiKey, {
      podId: pods.A,
      permissions: { inboxRead: true, podRead: false, podCreate: true, podDelete: true },
    });
    expect((await viewerPermissions(key.secret)).permissions).toEqual(["INBOX_READ"]);
    expect(key.apiKey.permissions).toMatchObject({ inboxRead: true, podRead: false, podCreate: false });
    const denied = await gql(
      server,
      "{ pods { edges { cursor } } inboxes { edges { node { email } } } }",
      {},
      { key: key.secret },
    );
    expect(denied.status).toBe(200);
    expect(denied.body.data).toEqual({ pods: null, inboxes: { edges: [{ node: { email: inboxA.email } }] } });
    expect(denied.body.errors).toEqual([
      expect.objectContaining({
        path: ["pods"],
        extensions: { code: "FORBIDDEN", requiredPermission: "POD_READ", fix: permissionFix("POD_READ") },
      }),
    ]);
    const mutation = await gql(
      server,
      'mutation { createPod(input: { name: "no" }) { pod { id } } }',
      {},
      { key: key.secret },
    );
    expect(mutation.status).toBe(200);
    expect(mutation.body.errors?.[0]?.extensions).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "POD_CREATE",
      fix: permissionFix("POD_CREATE"),
    });
    expect(
      (await ok(server, "{ pods { edges { node { name } } } }", {}, { key: org.apiKey })).pods.edges,
    ).toHaveLength(2);
  });

  it("keeps a pod key inside its pod and an inbox key inside its inbox (NOT_FOUND outside, never FORBIDDEN)", async () => {
    const pod = await createKey(server, org.apiKey, { podId: pods.A });
    const inbox = await createKey(server, org.apiKey, { inboxId: inboxA.id });
    const inboxesOf = async (key: string) =>
      (await ok(server, "{ inboxes { edges { node { email } } } }", {}, { key })).inboxes.edges.map(
        (e: any) => e.node.email,
      );
    expect(await inboxesOf(pod.secret)).toEqual([inboxA.email]);
    expect(await inboxesOf(inbox.secret)).toEqual([inboxA.email]);
    for (const key of [pod.secret, inbox.secret]) {
      const outside = await gql(
        server,
        "query($id: ID!) { inbox(id: $id) { email } }",
        { id: inboxB.id },
        { key },
      );
      expect(outside.body.data).toEqual({ inbox: null });
      expect(outside.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
      const node = await gql(server, "query($id: ID!) { node(id: $id) { id } }", { id: pods.B }, { key });
      expect(node.body.data).toEqual({ node: null });
    }
  });

  it("lets a member (not an administrator) do everything but create and delete keys", async () => {
    const orgId = await orgRowId();
    const passwordHash = await hashPassword("member password 1");
    await database.db
      .transaction()
      .execute((trx) => addMember(trx, orgId, "member@example.test", passwordHash, "MEMBER"));
    const login = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query:
          'mutation { login(input: { email: "member@example.test", password: "member password 1" }) { user { role } } }',
      }),
    });
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const viewer = (await ok(server, "{ viewer { scope user { role } permissions } }", {}, { cookie }))
      .viewer;
    expect(viewer.user.role).toBe("MEMBER");
    expect(new Set(viewer.permissions)).toEqual(MODEL_ROLE.MEMBER);
    const create = await gql(
      server,
      'mutation { createApiKey(input: { name: "x" }) { secret } }',
      {},
      { cookie },
    );
    expect(create.body.errors?.[0]?.extensions).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "API_KEY_CREATE",
      fix: permissionFix("API_KEY_CREATE"),
    });
  });

  it("cuts an unverified agent organization down to its ceiling, and lifts it on verification", async () => {
    const agent = await createOrganization(database.db, "Agent Org");
    const orgId = (
      await database.db
        .selectFrom("organizations")
        .select("id")
        .where("name", "=", "Agent Org")
        .executeTakeFirstOrThrow()
    ).id;
    await ok(server, "{ viewer { scope } }", {}, { key: agent.apiKey }); // cached
    await setOrganizationStatus(server.app.services, orgId, "AGENT_UNVERIFIED");
    let permissions: string[] = [];
    for (let i = 0; i < 40; i++) {
      permissions = (await viewerPermissions(agent.apiKey)).permissions;
      if (permissions.length < 35) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(new Set(permissions)).toEqual(MODEL_ORG.AGENT_UNVERIFIED);
    const denied = await gql(
      server,
      'mutation { createApiKey(input: { name: "x" }) { secret } }',
      {},
      { key: agent.apiKey },
    );
    expect(denied.body.errors?.[0]?.extensions).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "API_KEY_CREATE",
      fix: permissionFix("API_KEY_CREATE"),
    });
    await setOrganizationStatus(server.app.services, orgId, "AGENT_VERIFIED");
    for (let i = 0; i < 40; i++) {
      permissions = (await viewerPermissions(agent.apiKey)).permissions;
      if (permissions.length === 35) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(permissions).toHaveLength(35);
  });
});

async function orgRowId(): Promise<string> {
  const row = await database.db
    .selectFrom("organizations")
    .select("id")
    .where("name", "=", "Acme")
    .executeTakeFirstOrThrow();
  return row.id;
}

describe("no escalation", () => {
  it("creates keys only inside the creator's scope", async () => {
    const pod = await createKey(server, org.apiKey, { podId: pods.A });
    const inbox = await createKey(server, org.apiKey, { inboxId: inboxA.id });
    // Inside: a pod key makes a key for an inbox of its pod; without podId/inboxId a key gets the creator's scope.
    expect((await createKey(server, pod.secret, { inboxId: inboxA.id })).apiKey.scope).toBe("INBOX");
    expect((await createKey(server, pod.secret)).apiKey.scope).toBe("POD");
    expect((await createKey(server, inbox.secret)).apiKey.scope).toBe("INBOX");
    // Outside: another pod, another pod's inbox, or an inbox key reaching for its pod.
    const attempts: [string, Record<string, unknown>][] = [
      [pod.secret, { podId: pods.B }],
      [pod.secret, { inboxId: inboxB.id }],
      [inbox.secret, { podId: pods.A }],
      [inbox.secret, { inboxId: inboxB.id }],
    ];
    for (const [key, input] of attempts) {
      const response = await gql(
        server,
        "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
        { input: { name: "x", ...input } },
        { key },
      );
      expect(response.body.data).toEqual({ createApiKey: null });
      expect(response.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
    }
  });

  it("constrains a created key's permissions to the creator's and shows the constrained set", async () => {
    const creator = await createKey(server, org.apiKey, {
      podId: pods.A,
      permissions: { inboxRead: true, apiKeyCreate: true, apiKeyRead: true },
    });
    const all = Object.fromEntries(
      PERMISSIONS.map((p) => [p.toLowerCase().replace(/_([a-z])/g, (_, c) => c.toUpperCase()), true]),
    );
    const child = await createKey(server, creator.secret, { permissions: all });
    expect(child.apiKey.permissions).toMatchObject({
      inboxRead: true,
      apiKeyCreate: true,
      apiKeyRead: true,
      podRead: false,
      podCreate: false,
    });
    expect((await viewerPermissions(child.secret)).permissions).toEqual([
      "INBOX_READ",
      "API_KEY_READ",
      "API_KEY_CREATE",
    ]);
    const grandchild = await createKey(server, child.secret, {});
    expect((await viewerPermissions(grandchild.secret)).permissions).toEqual([
      "INBOX_READ",
      "API_KEY_READ",
      "API_KEY_CREATE",
    ]);
  });

  it("a key created by an expiring key expires no later than it", async () => {
    const expiresAt = new Date(Date.now() + 3_600_000);
    const creator = await createKey(server, org.apiKey, { expiresAt: expiresAt.toISOString() });
    const child = await createKey(server, creator.secret, {});
    expect(new Date(child.apiKey.expiresAt).getTime()).toBe(expiresAt.getTime());
  });

  it("lists and deletes only keys inside the caller's scope", async () => {
    const pod = await createKey(server, org.apiKey, { podId: pods.A, name: "pod-a" });
    const podBKey = await createKey(server, org.apiKey, { podId: pods.B, name: "pod-b" });
    const inAKey = await createKey(server, org.apiKey, { inboxId: inboxA.id, name: "inbox-a" });
    const listed = (
      await ok(
        server,
        "{ apiKeys(first: 200) { edges { node { id scope pod { id } } } } }",
        {},
        { key: pod.secret },
      )
    ).apiKeys.edges.map((e: any) => e.node);
    expect(listed.length).toBeGreaterThan(0);
    for (const key of listed) expect(key.pod.id).toBe(pods.A);
    expect(listed.map((k: any) => k.id)).not.toContain(podBKey.id);
    const outside = await gql(server, DELETE_KEY, { id: podBKey.id }, { key: pod.secret });
    expect(outside.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
    const orgKeyId = (await ok(server, "{ viewer { apiKey { id } } }", {}, { key: org.apiKey })).viewer.apiKey
      .id;
    const upward = await gql(server, DELETE_KEY, { id: orgKeyId }, { key: pod.secret });
    expect(upward.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
    await ok(server, "{ viewer { scope } }", {}, { key: podBKey.secret });
    expect(
      (await ok(server, DELETE_KEY, { id: inAKey.id }, { key: pod.secret })).deleteApiKey.deletedId,
    ).toBe(inAKey.id);
    expect((await gql(server, "{ viewer { scope } }", {}, { key: inAKey.secret })).status).toBe(401);
  });
});

describe("secrets", () => {
  it("shows the secret once and keeps only a hash: the ApiKey type has no secret or hash field", async () => {
    const fields = (await ok(server, '{ __type(name: "ApiKey") { fields { name } } }')).__type.fields
      .map((f: any) => f.name)
      .sort();
    expect(fields).toEqual([
      "allowedIps",
      "createdAt",
      "expiresAt",
      "id",
      "inbox",
      "lastUsedAt",
      "name",
      "permissions",
      "pod",
      "prefix",
      "scope",
      "sendRequiresApproval",
    ]);
  });

  it("leaves no secret text anywhere in the database", async () => {
    const key = await createKey(server, org.apiKey, { name: "needle" });
    const login = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: `mutation { login(input: { email: "${org.adminEmail}", password: "${org.adminPassword}" }) { user { email } } }`,
      }),
    });
    const sessionToken = /mailroom_session=([^;]+)/.exec(
      login.headers.get("set-cookie") ?? "",
    )?.[1] as string;
    expect(sessionToken).toBeTruthy();
    const tables = await database.db
      .selectFrom("information_schema.tables" as any)
      .select("table_name" as any)
      .where("table_schema" as any, "=", "public")
      .execute();
    let dump = "";
    for (const { table_name } of tables as { table_name: string }[]) {
      const rows = await database.pool.query(`SELECT t::text AS row FROM ${table_name} t`);
      dump += rows.rows.map((r) => r.row).join("\n");
    }
    expect(dump.length).toBeGreaterThan(1000);
    for (const secret of [key.secret, key.secret.slice(3), org.apiKey, sessionToken, org.adminPassword]) {
      expect(dump).not.toContain(secret);
      expect(dump).not.toContain(Buffer.from(secret).toString("hex"));
      expect(dump).not.toContain(Buffer.from(secret).toString("base64"));
    }
  });
});

describe("deleting a pod", () => {
  it("revokes the keys scoped to it (and its inboxes) at once", async () => {
    const pod = await createPodViaApi(server, org.apiKey, "doomed");
    const inbox = await createInboxViaApi(server, org.apiKey, { podId: pod });
    const podKey = await createKey(server, org.apiKey, { podId: pod });
    const inboxKey = await createKey(server, org.apiKey, { inboxId: inbox.id });
    await ok(server, "{ viewer { scope } }", {}, { key: podKey.secret });
    await ok(server, "{ viewer { scope } }", {}, { key: inboxKey.secret });
    await ok(
      server,
      "mutation($id: ID!) { deletePod(input: { id: $id }) { deletedId } }",
      { id: pod },
      { key: org.apiKey },
    );
    expect((await gql(server, "{ viewer { scope } }", {}, { key: podKey.secret })).status).toBe(401);
    expect((await gql(server, "{ viewer { scope } }", {}, { key: inboxKey.secret })).status).toBe(401);
  });
});
