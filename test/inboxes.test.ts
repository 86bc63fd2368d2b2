// updateInbox and deleteInbox: display names, scope, and deleting an inbox with everything
// in it, its inbox-scoped keys revoked at once on every node.
import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import { describe, expect, it } from "vitest";
import { permissionFix } from "../src/auth/permissions.ts";
import { createInboxViaApi, createKey } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverOn, serverSuite, tenantFixture } from "./helpers/suite.ts";

const MESSAGE_401 = "Authentication required. Provide a valid session cookie or Bearer token.";

const { database, server } = serverSuite();
const other = serverOn(database);
const { org, pods } = tenantFixture({ database, server }, { pods: ["A", "B"] });

const rowId = (globalId: string) => decodeGlobalID(globalId).id;

const UPDATE = `mutation($input: UpdateInboxInput!) {
  updateInbox(input: $input) { inbox { id email displayName pod { id } } }
}`;
const DELETE = "mutation($id: ID!) { deleteInbox(input: { id: $id }) { deletedId } }";
const GET = "query($id: ID!) { inbox(id: $id) { id displayName } }";

async function errorOf(key: string, query: string, variables: Record<string, unknown>) {
  const response = await gql(server, query, variables, { key });
  expect(response.status).toBe(200);
  expect(response.body.errors).toHaveLength(1);
  return response.body.errors?.[0]?.extensions;
}

async function expect401(response: Awaited<ReturnType<typeof gql>>) {
  expect(response.status).toBe(401);
  expect(response.headers.get("www-authenticate")).toBe('Bearer realm="API", charset="UTF-8"');
  expect(response.body).toEqual({
    errors: [{ message: MESSAGE_401, extensions: { code: "UNAUTHENTICATED" } }],
  });
}

let counter = 0;
const newInbox = (podId: string) =>
  createInboxViaApi(server, org.apiKey, { podId, username: `box-${++counter}` });

describe("updateInbox", () => {
  it("sets the display name, trimmed; an empty one removes it", async () => {
    const inbox = await newInbox(pods.A);
    const set = (
      await ok(
        server,
        UPDATE,
        { input: { id: inbox.id, displayName: "  Support Desk  " } },
        { key: org.apiKey },
      )
    ).updateInbox.inbox;
    expect(set).toEqual({
      id: inbox.id,
      email: inbox.email,
      displayName: "Support Desk",
      pod: { id: pods.A },
    });
    expect((await ok(server, GET, { id: inbox.id }, { key: org.apiKey })).inbox.displayName).toBe(
      "Support Desk",
    );
    for (const empty of ["", "   "]) {
      const cleared = (
        await ok(server, UPDATE, { input: { id: inbox.id, displayName: empty } }, { key: org.apiKey })
      ).updateInbox.inbox;
      expect(cleared.displayName).toBeNull();
    }
  });

  it("allows 200 characters and refuses more, naming the field", async () => {
    const inbox = await newInbox(pods.A);
    const longest = "d".repeat(200);
    expect(
      (await ok(server, UPDATE, { input: { id: inbox.id, displayName: longest } }, { key: org.apiKey }))
        .updateInbox.inbox.displayName,
    ).toBe(longest);
    expect(
      await errorOf(org.apiKey, UPDATE, { input: { id: inbox.id, displayName: "d".repeat(201) } }),
    ).toEqual({ code: "BAD_USER_INPUT", field: "displayName" });
    expect((await ok(server, GET, { id: inbox.id }, { key: org.apiKey })).inbox.displayName).toBe(longest);
  });

  it("lets an inbox key update its own inbox and nothing else (NOT_FOUND)", async () => {
    const own = await newInbox(pods.A);
    const sibling = await newInbox(pods.A);
    const key = (await createKey(server, org.apiKey, { inboxId: own.id })).secret;
    expect(
      (await ok(server, UPDATE, { input: { id: own.id, displayName: "Mine" } }, { key })).updateInbox.inbox
        .displayName,
    ).toBe("Mine");
    expect(await errorOf(key, UPDATE, { input: { id: sibling.id, displayName: "Not mine" } })).toEqual({
      code: "NOT_FOUND",
    });
    expect((await ok(server, GET, { id: sibling.id }, { key: org.apiKey })).inbox.displayName).toBeNull();
  });

  it("keeps a pod key inside its pod, treats bad ids as missing, and needs INBOX_UPDATE", async () => {
    const inA = await newInbox(pods.A);
    const inB = await newInbox(pods.B);
    const podKey = (await createKey(server, org.apiKey, { podId: pods.A })).secret;
    expect(
      (await ok(server, UPDATE, { input: { id: inA.id, displayName: "A" } }, { key: podKey })).updateInbox
        .inbox.displayName,
    ).toBe("A");
    for (const id of [inB.id, pods.A, "garbage", encodeGlobalID("Inbox", "999999999")]) {
      expect(await errorOf(podKey, UPDATE, { input: { id, displayName: "x" } })).toEqual({
        code: "NOT_FOUND",
      });
    }
    const readOnly = (await createKey(server, org.apiKey, { permissions: { inboxRead: true } })).secret;
    expect(await errorOf(readOnly, UPDATE, { input: { id: inA.id, displayName: "x" } })).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "INBOX_UPDATE",
      fix: permissionFix("INBOX_UPDATE"),
    });
  });
});

describe("deleteInbox", () => {
  it("deletes the inbox with its mail, drafts and keys, and frees its address", async () => {
    const inbox = await newInbox(pods.A);
    const survivor = await newInbox(pods.A);
    const id = rowId(inbox.id);
    const row = await database.db
      .selectFrom("inboxes")
      .select(["org_id", "pod_id"])
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
    const thread = await database.db
      .insertInto("threads")
      .values({ org_id: row.org_id, pod_id: row.pod_id, inbox_id: id, subject: "s" })
      .returning("id")
      .executeTakeFirstOrThrow();
    await database.db
      .insertInto("messages")
      .values({
        org_id: row.org_id,
        pod_id: row.pod_id,
        inbox_id: id,
        thread_id: thread.id,
        message_id_header: "<doomed@sender.test>",
        from_address: "sender@sender.test",
        direction: "INBOUND",
      })
      .execute();
    await ok(
      server,
      'mutation($inboxId: ID!) { createDraft(input: { inboxId: $inboxId, subject: "doomed" }) { draft { id } } }',
      { inboxId: inbox.id },
      { key: org.apiKey },
    );
    await createKey(server, org.apiKey, { inboxId: inbox.id });
    await createKey(server, org.apiKey, { inboxId: survivor.id });

    expect((await ok(server, DELETE, { id: inbox.id }, { key: org.apiKey })).deleteInbox).toEqual({
      deletedId: inbox.id,
    });
    expect(await errorOf(org.apiKey, GET, { id: inbox.id })).toEqual({ code: "NOT_FOUND" });
    const listed = (
      await ok(server, "{ inboxes(first: 200) { edges { node { id } } } }", {}, { key: org.apiKey })
    ).inboxes.edges.map((edge: any) => edge.node.id);
    expect(listed).not.toContain(inbox.id);
    expect(listed).toContain(survivor.id);
    for (const table of ["threads", "messages", "drafts", "api_keys", "inbox_addresses"] as const) {
      const rows = await database.db.selectFrom(table).select("org_id").where("inbox_id", "=", id).execute();
      expect(rows, table).toEqual([]);
    }
    const survivorKeys = await database.db
      .selectFrom("api_keys")
      .select("id")
      .where("inbox_id", "=", rowId(survivor.id))
      .execute();
    expect(survivorKeys).toHaveLength(1);
    // The address may be taken again.
    const again = await createInboxViaApi(server, org.apiKey, {
      podId: pods.B,
      username: inbox.email.split("@")[0],
    });
    expect(again.email).toBe(inbox.email);
    expect(await errorOf(org.apiKey, DELETE, { id: inbox.id })).toEqual({ code: "NOT_FOUND" });
  });

  it("revokes the inbox's keys at once: 401 on this node's next request and on another node within a second", async () => {
    const inbox = await newInbox(pods.A);
    const inboxKey = await createKey(server, org.apiKey, { inboxId: inbox.id });
    const podKey = (await createKey(server, org.apiKey, { podId: pods.A })).secret;
    // Both nodes have the key cached.
    await ok(server, "{ viewer { scope } }", {}, { key: inboxKey.secret });
    await ok(other, "{ viewer { scope } }", {}, { key: inboxKey.secret });

    await ok(server, DELETE, { id: inbox.id }, { key: podKey });

    await expect401(await gql(server, "{ viewer { scope } }", {}, { key: inboxKey.secret }));
    const started = Date.now();
    for (;;) {
      const response = await gql(other, "{ viewer { scope } }", {}, { key: inboxKey.secret });
      if (response.status === 401) {
        await expect401(response);
        break;
      }
      if (Date.now() - started > 1000) throw new Error("the other node still accepts the key after 1 s");
      await new Promise((r) => setTimeout(r, 25));
    }
    // The pod key that deleted the inbox is untouched.
    expect((await ok(server, "{ viewer { scope } }", {}, { key: podKey })).viewer.scope).toBe("POD");
  });

  it("is out of an inbox key's reach (FORBIDDEN) and a pod key's outside its pod (NOT_FOUND)", async () => {
    const inA = await newInbox(pods.A);
    const inB = await newInbox(pods.B);
    const inboxKey = (await createKey(server, org.apiKey, { inboxId: inA.id })).secret;
    expect(await errorOf(inboxKey, DELETE, { id: inA.id })).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "INBOX_DELETE",
      fix: permissionFix("INBOX_DELETE"),
    });
    const podKey = (await createKey(server, org.apiKey, { podId: pods.A })).secret;
    for (const id of [inB.id, pods.B, "garbage", encodeGlobalID("Inbox", "999999999")]) {
      expect(await errorOf(podKey, DELETE, { id })).toEqual({ code: "NOT_FOUND" });
    }
    expect((await ok(server, GET, { id: inB.id }, { key: org.apiKey })).inbox.id).toBe(inB.id);
    expect((await ok(server, GET, { id: inA.id }, { key: inboxKey })).inbox.id).toBe(inA.id);
  });
});
