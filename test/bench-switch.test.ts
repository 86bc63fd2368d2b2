// BENCH_DISABLE_AUTHORIZATION (bench/run.ts measures what permission checks cost): with it, the same
// schema runs without its checks, and rows stay cut to the caller's scope; without it, nothing changes.
import { expect, it } from "vitest";
import { permissionFix } from "../src/auth/permissions.ts";
import { createInboxViaApi, createKey, createOrganization, createPodViaApi } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverOn, serverSuite } from "./helpers/suite.ts";

const { database, server: checked } = serverSuite();
const unchecked = serverOn(database, { benchDisableAuthorization: true });

it("skips permission checks only when switched on, and never widens the scope", async () => {
  const org = await createOrganization(database.db);
  const podA = await createPodViaApi(checked, org.apiKey, "A");
  const podB = await createPodViaApi(checked, org.apiKey, "B");
  const inboxA = await createInboxViaApi(checked, org.apiKey, { podId: podA, username: "in-a" });
  const inboxB = await createInboxViaApi(checked, org.apiKey, { podId: podB, username: "in-b" });
  // A pod key that may read inboxes and nothing else.
  const key = await createKey(checked, org.apiKey, { podId: podA, permissions: { inboxRead: true } });
  const query =
    "query($b: ID!) { inboxes { edges { node { email } } } pods { edges { node { name } } } other: inbox(id: $b) { email } }";

  const denied = await gql(checked, query, { b: inboxB.id }, { key: key.secret });
  expect(denied.body.data?.pods).toBeNull();
  expect(denied.body.errors?.map((e) => e.extensions)).toContainEqual({
    code: "FORBIDDEN",
    requiredPermission: "POD_READ",
    fix: permissionFix("POD_READ"),
  });

  const open = await gql(unchecked, query, { b: inboxB.id }, { key: key.secret });
  expect(open.body.data?.inboxes).toEqual({ edges: [{ node: { email: inboxA.email } }] });
  expect(open.body.data?.pods).toEqual({ edges: [{ node: { name: "A" } }] });
  // Another pod's inbox is still out of reach: the scope is applied in SQL, not by the checks.
  expect(open.body.data?.other).toBeNull();
  expect(open.body.errors?.map((e) => e.extensions)).toEqual([{ code: "NOT_FOUND" }]);
  // Authentication still applies.
  expect((await gql(unchecked, "{ pods { edges { cursor } } }")).status).toBe(401);
  expect((await ok(unchecked, "{ viewer { scope } }", {}, { key: key.secret })).viewer.scope).toBe("POD");
});
