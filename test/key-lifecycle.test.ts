// Keys in production (docs/permissions.md, "Keys in production"): allow-lists and approval binding
// stored, read and inherited; rollApiKey with its grace period; updateApiKey that only narrows; every
// change in force on the next request on another node sharing the database.
import { describe, expect, it } from "vitest";
import { permissionFix } from "../src/auth/permissions.ts";
import { createKey } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverOn, serverSuite, tenantFixture } from "./helpers/suite.ts";
import { until } from "./helpers/wait.ts";

const { database, server } = serverSuite();
const other = serverOn(database);
const { org, pods, keys } = tenantFixture(
  { database, server },
  {
    pods: ["A", "B"],
    inboxes: { a: { pod: "A", username: "lifecycle-a" } },
    keys: { podA: { pod: "A" }, podB: { pod: "B" } },
  },
);

const KEY_FIELDS =
  "id name scope expiresAt allowedIps sendRequiresApproval permissions { inboxRead podRead apiKeyCreate apiKeyRead messageSend }";
const ROLL = `mutation($input: RollApiKeyInput!) { rollApiKey(input: $input) { secret apiKey { ${KEY_FIELDS} } } }`;
const UPDATE = `mutation($input: UpdateApiKeyInput!) { updateApiKey(input: $input) { apiKey { ${KEY_FIELDS} } } }`;
const VIEWER_KEY = `{ viewer { apiKey { ${KEY_FIELDS} } } }`;
const PODS = "{ pods(first: 5) { edges { node { id } } } }";

async function newKey(creator: string, input: Record<string, unknown> = {}) {
  const data = await ok(
    server,
    `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { ${KEY_FIELDS} } } }`,
    { input: { name: "lifecycle", ...input } },
    { key: creator },
  );
  return { secret: data.createApiKey.secret as string, apiKey: data.createApiKey.apiKey };
}

const errorOf = (response: Awaited<ReturnType<typeof gql>>) => response.body.errors?.[0];

describe("allowedIps and sendRequiresApproval on create and read", () => {
  it("stores them normalized, reads them back, and defaults to any address and no approval", async () => {
    const plain = await newKey(org.apiKey);
    expect(plain.apiKey.allowedIps).toBeNull();
    expect(plain.apiKey.sendRequiresApproval).toBe(false);
    const pinned = await newKey(org.apiKey, {
      allowedIps: ["2001:DB8::1", "10.1.2.3/8", "::ffff:192.0.2.9", "127.0.0.1"],
      sendRequiresApproval: true,
    });
    expect(pinned.apiKey.allowedIps).toEqual(["2001:db8::1", "10.0.0.0/8", "192.0.2.9", "127.0.0.1"]);
    expect(pinned.apiKey.sendRequiresApproval).toBe(true);
    const read = await ok(server, VIEWER_KEY, {}, { key: pinned.secret });
    expect(read.viewer.apiKey.allowedIps).toEqual(pinned.apiKey.allowedIps);
  });

  it("refuses malformed entries, zone ids, empty lists and more than 50 entries, naming the field", async () => {
    for (const allowedIps of [
      ["not-an-ip"],
      ["10.0.0.0/33"],
      ["fe80::1%eth0"],
      ["2001:db8::/129"],
      ["1.2.3.4/-1"],
      [],
      Array.from({ length: 51 }, (_, i) => `10.0.0.${i}`),
    ]) {
      const response = await gql(
        server,
        "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
        { input: { name: "bad", allowedIps } },
        { key: org.apiKey },
      );
      expect(errorOf(response)?.extensions, JSON.stringify(allowedIps)).toMatchObject({
        code: "BAD_USER_INPUT",
        field: "allowedIps",
      });
    }
    const fifty = await newKey(org.apiKey, {
      allowedIps: Array.from({ length: 50 }, (_, i) => `10.0.0.${i}`),
    });
    expect(fifty.apiKey.allowedIps).toHaveLength(50);
  });

  it("a child key inherits the approval binding and the allow-list, and may only narrow the list", async () => {
    const parent = await newKey(org.apiKey, {
      allowedIps: ["127.0.0.0/8", "::1"],
      sendRequiresApproval: true,
    });
    const child = await newKey(parent.secret);
    expect(child.apiKey.sendRequiresApproval).toBe(true);
    expect(child.apiKey.allowedIps).toEqual(["127.0.0.0/8", "::1"]);
    const narrower = await newKey(parent.secret, { allowedIps: ["127.0.0.1"] });
    expect(narrower.apiKey.allowedIps).toEqual(["127.0.0.1"]);
    const escaping = await gql(
      server,
      "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
      { input: { name: "escape", allowedIps: ["127.0.0.1", "10.0.0.0/8"] } },
      { key: parent.secret },
    );
    expect(errorOf(escaping)?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "allowedIps" });
    expect(errorOf(escaping)?.message).toContain("10.0.0.0/8");
    const wider = await gql(
      server,
      "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
      { input: { name: "wider", allowedIps: ["127.0.0.0/7"] } },
      { key: parent.secret },
    );
    expect(errorOf(wider)?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "allowedIps" });
    const free = await gql(
      server,
      "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
      { input: { name: "free", sendRequiresApproval: false } },
      { key: parent.secret },
    );
    expect(errorOf(free)?.extensions?.code).toBe("FORBIDDEN");
  });
});

describe("rollApiKey", () => {
  it("gives a new secret with the same settings; the old one works until expireOldAt, then on no node", async () => {
    const expiresAt = new Date(Date.now() + 30 * 24 * 3600_000).toISOString();
    const original = await newKey(org.apiKey, {
      name: "agent key",
      podId: pods.A,
      permissions: { inboxRead: true, podRead: true, apiKeyRead: true },
      allowedIps: ["127.0.0.1", "::1"],
      sendRequiresApproval: true,
      expiresAt,
    });
    // Warm both nodes' caches with the old key.
    await ok(server, PODS, {}, { key: original.secret });
    await ok(other, PODS, {}, { key: original.secret });

    const before = Date.now();
    const rolled = await ok(server, ROLL, { input: { id: original.apiKey.id } }, { key: org.apiKey });
    const { secret, apiKey } = rolled.rollApiKey;
    expect(secret).not.toBe(original.secret);
    expect(apiKey.id).not.toBe(original.apiKey.id);
    expect({ ...apiKey, id: undefined }).toEqual({ ...original.apiKey, id: undefined });
    await ok(other, PODS, {}, { key: secret });

    // The old key now expires in about 24 hours, on both nodes (on the other once the notification
    // has reached it: it had the key cached with its old expiry).
    for (const node of [server, other]) {
      const old = await until(async () => {
        const data = await ok(node, VIEWER_KEY, {}, { key: original.secret });
        return data.viewer.apiKey.expiresAt !== expiresAt ? data : undefined;
      }, 1000);
      const grace = new Date(old.viewer.apiKey.expiresAt).getTime() - before;
      expect(grace).toBeGreaterThan(24 * 3600_000 - 60_000);
      expect(grace).toBeLessThanOrEqual(24 * 3600_000 + 60_000);
    }

    // Rolled with a grace period that ends at once (almost): refused on the other node next request.
    const second = await ok(
      server,
      ROLL,
      { input: { id: apiKey.id, expireOldAt: new Date(Date.now() + 1500).toISOString() } },
      { key: org.apiKey },
    );
    // The other node cached the key for 30 s: only the revocation channel can make it refuse sooner.
    await until(async () => (await gql(other, PODS, {}, { key: secret })).status === 401);
    expect((await gql(server, PODS, {}, { key: secret })).status).toBe(401);
    await ok(other, PODS, {}, { key: second.rollApiKey.secret });
  });

  it("bounds expireOldAt to (now, now + 7 days] and defaults it to 24 hours", async () => {
    const key = await newKey(org.apiKey);
    for (const expireOldAt of [
      new Date(Date.now() - 1000).toISOString(),
      new Date(Date.now() + 7 * 24 * 3600_000 + 60_000).toISOString(),
    ]) {
      const response = await gql(
        server,
        ROLL,
        { input: { id: key.apiKey.id, expireOldAt } },
        { key: org.apiKey },
      );
      expect(errorOf(response)?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "expireOldAt" });
    }
    const week = new Date(Date.now() + 7 * 24 * 3600_000 - 60_000).toISOString();
    await ok(server, ROLL, { input: { id: key.apiKey.id, expireOldAt: week } }, { key: org.apiKey });
  });

  it("works only on keys inside the caller's scope, and never widens beyond the caller", async () => {
    const inB = await newKey(org.apiKey, { podId: pods.B });
    const foreign = await gql(server, ROLL, { input: { id: inB.apiKey.id } }, { key: keys.podA });
    expect(errorOf(foreign)?.extensions?.code).toBe("NOT_FOUND");
    const orgKey = await newKey(org.apiKey);
    const up = await gql(server, ROLL, { input: { id: orgKey.apiKey.id } }, { key: keys.podA });
    expect(errorOf(up)?.extensions?.code).toBe("NOT_FOUND");

    // A narrow caller rolls a wide key of its pod: the new key is cut to the caller.
    const narrow = await newKey(org.apiKey, {
      podId: pods.A,
      permissions: { apiKeyCreate: true, apiKeyRead: true, podRead: true },
      allowedIps: ["127.0.0.1"],
    });
    const wide = await newKey(org.apiKey, { podId: pods.A });
    const rolled = await ok(server, ROLL, { input: { id: wide.apiKey.id } }, { key: narrow.secret });
    expect(rolled.rollApiKey.apiKey.permissions).toEqual({
      inboxRead: false,
      podRead: true,
      apiKeyCreate: true,
      apiKeyRead: true,
      messageSend: false,
    });
    expect(rolled.rollApiKey.apiKey.allowedIps).toEqual(["127.0.0.1"]);
  });
});

describe("updateApiKey", () => {
  it("narrows permissions (never beyond the key's own or the caller's) in force at once on another node", async () => {
    const target = await newKey(org.apiKey, { podId: pods.A });
    await ok(other, PODS, {}, { key: target.secret });
    const updated = await ok(
      server,
      UPDATE,
      {
        input: { id: target.apiKey.id, name: "renamed", permissions: { inboxRead: true, apiKeyRead: true } },
      },
      { key: org.apiKey },
    );
    expect(updated.updateApiKey.apiKey.name).toBe("renamed");
    expect(updated.updateApiKey.apiKey.permissions).toMatchObject({ inboxRead: true, podRead: false });
    // The other node had the key cached with POD_READ: it refuses as soon as the notification arrives,
    // long before the cache's own 30 s would have let the key be read again.
    const started = Date.now();
    let denied = await gql(other, PODS, {}, { key: target.secret });
    while (!denied.body.errors && Date.now() - started < 10_000)
      denied = await gql(other, PODS, {}, { key: target.secret });
    expect(denied.body.errors?.[0]?.extensions).toMatchObject({
      code: "FORBIDDEN",
      requiredPermission: "POD_READ",
      fix: permissionFix("POD_READ"),
    });

    // Asking for more than it has (podRead again) grants nothing more.
    const again = await ok(
      server,
      UPDATE,
      { input: { id: target.apiKey.id, permissions: { inboxRead: true, podRead: true, apiKeyRead: true } } },
      { key: org.apiKey },
    );
    expect(again.updateApiKey.apiKey.permissions).toMatchObject({
      inboxRead: true,
      podRead: false,
      apiKeyRead: true,
    });

    // A caller without INBOX_READ cannot keep it on the key it updates.
    const caller = await newKey(org.apiKey, {
      podId: pods.A,
      permissions: { apiKeyCreate: true, apiKeyRead: true },
    });
    const cut = await ok(
      server,
      UPDATE,
      { input: { id: target.apiKey.id, permissions: { inboxRead: true, apiKeyRead: true } } },
      { key: caller.secret },
    );
    expect(cut.updateApiKey.apiKey.permissions).toMatchObject({ inboxRead: false, apiKeyRead: true });
  });

  it("moves an expiry only earlier (or sets one), in force on another node", async () => {
    const target = await newKey(org.apiKey);
    await ok(other, PODS, {}, { key: target.secret });
    const soon = new Date(Date.now() + 3600_000).toISOString();
    const set = await ok(
      server,
      UPDATE,
      { input: { id: target.apiKey.id, expiresAt: soon } },
      { key: org.apiKey },
    );
    expect(set.updateApiKey.apiKey.expiresAt).toBe(soon);
    const later = new Date(Date.now() + 7200_000).toISOString();
    for (const expiresAt of [later, null, new Date(Date.now() - 1000).toISOString()]) {
      const response = await gql(
        server,
        UPDATE,
        { input: { id: target.apiKey.id, expiresAt } },
        { key: org.apiKey },
      );
      expect(errorOf(response)?.extensions, String(expiresAt)).toMatchObject({
        code: "BAD_USER_INPUT",
        field: "expiresAt",
      });
    }
    // The other node had the key cached without an expiry: in force there once the notification arrives.
    await until(
      async () => (await ok(other, VIEWER_KEY, {}, { key: target.secret })).viewer.apiKey.expiresAt === soon,
      1000,
    );
    const imminent = new Date(Date.now() + 1500).toISOString();
    await ok(server, UPDATE, { input: { id: target.apiKey.id, expiresAt: imminent } }, { key: org.apiKey });
    await until(async () => (await gql(other, PODS, {}, { key: target.secret })).status === 401);
  });

  it("turns approval on for anyone, off only for a caller not itself approval-bound", async () => {
    const target = await newKey(org.apiKey, { podId: pods.A });
    const on = await ok(
      server,
      UPDATE,
      { input: { id: target.apiKey.id, sendRequiresApproval: true } },
      { key: keys.podA },
    );
    expect(on.updateApiKey.apiKey.sendRequiresApproval).toBe(true);
    const seen = await ok(other, VIEWER_KEY, {}, { key: target.secret });
    expect(seen.viewer.apiKey.sendRequiresApproval).toBe(true);

    const bound = await newKey(org.apiKey, { podId: pods.A, sendRequiresApproval: true });
    const refused = await gql(
      server,
      UPDATE,
      { input: { id: target.apiKey.id, sendRequiresApproval: false } },
      { key: bound.secret },
    );
    expect(errorOf(refused)?.extensions?.code).toBe("FORBIDDEN");
    // Nor may a bound key free itself.
    const self = await gql(
      server,
      UPDATE,
      { input: { id: bound.apiKey.id, sendRequiresApproval: false } },
      { key: bound.secret },
    );
    expect(errorOf(self)?.extensions?.code).toBe("FORBIDDEN");
    const off = await ok(
      server,
      UPDATE,
      { input: { id: target.apiKey.id, sendRequiresApproval: false } },
      { key: keys.podA },
    );
    expect(off.updateApiKey.apiKey.sendRequiresApproval).toBe(false);
  });

  it("changes an allow-list within the caller's own; only an unbound caller lifts one", async () => {
    const bound = await newKey(org.apiKey, { allowedIps: ["127.0.0.0/8", "::1"] });
    const target = await newKey(bound.secret);
    const narrowed = await ok(
      server,
      UPDATE,
      { input: { id: target.apiKey.id, allowedIps: ["127.0.0.1"] } },
      { key: bound.secret },
    );
    expect(narrowed.updateApiKey.apiKey.allowedIps).toEqual(["127.0.0.1"]);
    const escaping = await gql(
      server,
      UPDATE,
      { input: { id: target.apiKey.id, allowedIps: ["0.0.0.0/0"] } },
      { key: bound.secret },
    );
    expect(errorOf(escaping)?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "allowedIps" });
    const lift = await gql(
      server,
      UPDATE,
      { input: { id: target.apiKey.id, allowedIps: null } },
      { key: bound.secret },
    );
    expect(errorOf(lift)?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "allowedIps" });
    const lifted = await ok(
      server,
      UPDATE,
      { input: { id: target.apiKey.id, allowedIps: null } },
      { key: org.apiKey },
    );
    expect(lifted.updateApiKey.apiKey.allowedIps).toBeNull();
  });

  it("answers NOT_FOUND for keys outside the caller's scope and for ids that cannot exist", async () => {
    const inB = await newKey(org.apiKey, { podId: pods.B });
    for (const id of [inB.apiKey.id, "nonsense", "QXBpS2V5Ojk5OTk5OTk5"]) {
      const response = await gql(server, UPDATE, { input: { id, name: "x" } }, { key: keys.podA });
      expect(errorOf(response)?.extensions?.code, id).toBe("NOT_FOUND");
    }
    const stranger = await createKey(server, keys.podB);
    const response = await gql(server, UPDATE, { input: { id: stranger.id, name: "x" } }, { key: keys.podA });
    expect(errorOf(response)?.extensions?.code).toBe("NOT_FOUND");
  });
});
