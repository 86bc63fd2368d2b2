// IP allow-lists on API keys (docs/permissions.md, "Keys in production"; docs/operations.md, "Behind
// a proxy"): enforced on HTTP (403), WebSocket (close 4403), SSE and download links; the client
// address is the TCP peer unless TRUST_PROXY says which X-Forwarded-For hops to believe, and the
// per-IP rate limit counts that same address. Loopback tests reach other addresses only through a
// trusted X-Forwarded-For; the direct-peer path is tested with lists that hold or lack 127.0.0.1.
import { describe, expect, it } from "vitest";
import { forwardedClient } from "../src/auth/allowed-ips.ts";
import { loadConfig } from "../src/config.ts";
import { deliver } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { eagerWsClient, sseSubscribe, wsSubscribe } from "./helpers/subscriptions.ts";
import { serverOn, serverSuite, tenantFixture } from "./helpers/suite.ts";
import { until } from "./helpers/wait.ts";

const { database, server } = serverSuite();
// Nodes behind proxies, on the same database: one proxy in front, and a chain of trusted proxies.
const oneHop = serverOn(database, { trustProxy: { hops: 1 } });
const proxyChain = serverOn(database, { trustProxy: { cidrs: ["127.0.0.1", "10.0.0.0/8", "fd00::/8"] } });
const limited = serverOn(database, { trustProxy: { hops: 1 }, rateLimitPerMinute: 3 });
const { org, inboxes } = tenantFixture(
  { database, server },
  {
    inboxes: { a: { username: "allow-list-a" } },
  },
);

const MESSAGE = "This API key cannot be used from this address.";
const VIEWER = "{ viewer { apiKey { id allowedIps } } }";
const UPDATE = `mutation($input: UpdateApiKeyInput!) { updateApiKey(input: $input) { apiKey { allowedIps } } }`;

async function keyFor(allowedIps: string[] | null) {
  const data = await ok(
    server,
    "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id } } }",
    { input: { name: "pinned", allowedIps } },
    { key: org.apiKey },
  );
  return { secret: data.createApiKey.secret as string, id: data.createApiKey.apiKey.id as string };
}

function from(forwardedFor: string) {
  return { headers: { "x-forwarded-for": forwardedFor } };
}

async function expectRefused(response: Awaited<ReturnType<typeof gql>>) {
  expect(response.status).toBe(403);
  expect(response.body.errors).toEqual([{ message: MESSAGE, extensions: { code: "FORBIDDEN" } }]);
  expect(response.body.data ?? null).toBeNull();
}

describe("the client address", () => {
  it("is the peer without TRUST_PROXY, the right-most untrusted hop with it", () => {
    expect(forwardedClient("::ffff:10.0.0.5", "203.0.113.7", null)).toBe("10.0.0.5");
    expect(forwardedClient("127.0.0.1", "203.0.113.7, 198.51.100.1", { hops: 1 })).toBe("198.51.100.1");
    expect(forwardedClient("127.0.0.1", "203.0.113.7, 198.51.100.1", { hops: 2 })).toBe("203.0.113.7");
    // More hops trusted than there are: the left-most address.
    expect(forwardedClient("127.0.0.1", "203.0.113.7", { hops: 5 })).toBe("203.0.113.7");
    const cidrs = { cidrs: ["127.0.0.1", "10.0.0.0/8"] };
    expect(forwardedClient("127.0.0.1", "1.1.1.1, 203.0.113.7, 10.1.1.1, 10.2.2.2", cidrs)).toBe(
      "203.0.113.7",
    );
    // An untrusted peer's header is not read at all.
    expect(forwardedClient("192.0.2.1", "203.0.113.7", cidrs)).toBe("192.0.2.1");
    // Garbage stops the walk at the trusted hop that passed it on.
    expect(forwardedClient("127.0.0.1", "203.0.113.7, not-an-ip, 10.2.2.2", cidrs)).toBe("10.2.2.2");
    expect(forwardedClient("127.0.0.1", "[2001:db8::1]:443, ::ffff:192.0.2.44", { hops: 1 })).toBe(
      "192.0.2.44",
    );
    expect(forwardedClient("127.0.0.1", ["203.0.113.7", "198.51.100.1"], { hops: 1 })).toBe("198.51.100.1");
  });

  it("TRUST_PROXY takes a hop count or CIDR blocks, and refuses anything else", () => {
    expect(loadConfig({ TRUST_PROXY: "2" }).trustProxy).toEqual({ hops: 2 });
    expect(loadConfig({ TRUST_PROXY: "0" }).trustProxy).toBeNull();
    expect(loadConfig({}).trustProxy).toBeNull();
    expect(loadConfig({ TRUST_PROXY: "10.0.0.0/8, ::1" }).trustProxy).toEqual({
      cidrs: ["10.0.0.0/8", "::1"],
    });
    for (const bad of ["proxy.example.com", "10.0.0.0/33", "1,2", "99"]) {
      expect(() => loadConfig({ TRUST_PROXY: bad }), bad).toThrow(/TRUST_PROXY/);
    }
  });
});

describe("HTTP", () => {
  it("serves a key from an address on its list, and refuses it (403) from any other", async () => {
    const loopback = await keyFor(["127.0.0.1"]);
    expect((await gql(server, VIEWER, {}, { key: loopback.secret })).status).toBe(200);
    const mapped = await keyFor(["::ffff:127.0.0.0/104"]);
    expect((await gql(server, VIEWER, {}, { key: mapped.secret })).status).toBe(200);
    const elsewhere = await keyFor(["203.0.113.7", "::1"]);
    await expectRefused(await gql(server, VIEWER, {}, { key: elsewhere.secret }));
    // Public fields too: the key is refused, not the field.
    await expectRefused(await gql(server, "{ __typename }", {}, { key: elsewhere.secret }));
  });

  it("ignores a spoofed X-Forwarded-For without TRUST_PROXY", async () => {
    const key = await keyFor(["203.0.113.7"]);
    await expectRefused(await gql(server, VIEWER, {}, { key: key.secret, ...from("203.0.113.7") }));
    const loopback = await keyFor(["127.0.0.1"]);
    expect((await gql(server, VIEWER, {}, { key: loopback.secret, ...from("203.0.113.7") })).status).toBe(
      200,
    );
  });

  it("behind one proxy, believes only its hop: a client cannot prepend an address", async () => {
    const key = await keyFor(["203.0.113.7"]);
    expect((await gql(oneHop, VIEWER, {}, { key: key.secret, ...from("203.0.113.7") })).status).toBe(200);
    await expectRefused(
      await gql(oneHop, VIEWER, {}, { key: key.secret, ...from("203.0.113.7, 198.51.100.1") }),
    );
    // No header: the proxy itself (loopback) is the client.
    await expectRefused(await gql(oneHop, VIEWER, {}, { key: key.secret }));
  });

  it("behind a chain of trusted proxies, takes the right-most untrusted address", async () => {
    const key = await keyFor(["203.0.113.0/24"]);
    const through = (chain: string) => gql(proxyChain, VIEWER, {}, { key: key.secret, ...from(chain) });
    expect((await through("203.0.113.7, 10.1.1.1, 10.2.2.2")).status).toBe(200);
    expect((await through("198.51.100.1, 203.0.113.7, fd00::5")).status).toBe(200);
    await expectRefused(await through("203.0.113.7, 198.51.100.9, 10.2.2.2"));
  });

  it("matches IPv6 blocks, and IPv4-mapped IPv6 clients against IPv4 entries", async () => {
    const v6 = await keyFor(["2001:db8::/32"]);
    expect((await gql(oneHop, VIEWER, {}, { key: v6.secret, ...from("2001:DB8:1::5") })).status).toBe(200);
    await expectRefused(await gql(oneHop, VIEWER, {}, { key: v6.secret, ...from("2001:db9::1") }));
    await expectRefused(await gql(oneHop, VIEWER, {}, { key: v6.secret, ...from("192.0.2.1") }));
    const v4 = await keyFor(["192.0.2.0/24"]);
    expect((await gql(oneHop, VIEWER, {}, { key: v4.secret, ...from("::ffff:192.0.2.9") })).status).toBe(200);
    expect((await gql(oneHop, VIEWER, {}, { key: v4.secret, ...from("::ffff:c000:209") })).status).toBe(200);
    await expectRefused(await gql(oneHop, VIEWER, {}, { key: v4.secret, ...from("::ffff:192.0.3.9") }));
  });

  it("a narrowed allow-list is in force on another node as soon as the notification arrives", async () => {
    const key = await keyFor(["127.0.0.1", "203.0.113.7"]);
    expect((await gql(oneHop, VIEWER, {}, { key: key.secret, ...from("203.0.113.7") })).status).toBe(200);
    await ok(server, UPDATE, { input: { id: key.id, allowedIps: ["127.0.0.1"] } }, { key: org.apiKey });
    // oneHop had the key cached for 30 s: only the auth channel's NOTIFY, delivered to each node
    // asynchronously after the commit, can make it refuse sooner (docs/permissions.md).
    const viaProxy = () => gql(oneHop, VIEWER, {}, { key: key.secret, ...from("203.0.113.7") });
    await until(async () => (await viaProxy()).status === 403, 1000);
    await expectRefused(await viaProxy());
  });

  it("the per-IP rate limit counts the same address", async () => {
    const anonymous = (address: string) => gql(limited, "{ __typename }", {}, from(address));
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await anonymous("198.51.100.20")).status);
    expect(statuses.at(-1)).toBe(429);
    expect((await anonymous("198.51.100.21")).status).toBe(200);
  });
});

describe("WebSocket and SSE", () => {
  const EVENTS = "subscription { events { __typename } }";

  it("closes a WebSocket with 4403 from an address off the list, and when a narrowing excludes it", async () => {
    const off = await keyFor(["203.0.113.7"]);
    let closed: number | undefined;
    const client = eagerWsClient(server.wsUrl, `Bearer ${off.secret}`, {
      closed: (event) => {
        closed = (event as { code: number }).code;
      },
    });
    await until(() => closed);
    expect(closed).toBe(4403);
    await client.dispose();

    const on = await keyFor(["127.0.0.1", "203.0.113.7"]);
    const subscriber = await wsSubscribe(server.wsUrl, on.secret, EVENTS);
    expect(subscriber.closedCode).toBeUndefined();
    await ok(server, UPDATE, { input: { id: on.id, allowedIps: ["203.0.113.7"] } }, { key: org.apiKey });
    await until(() => subscriber.closedCode);
    expect(subscriber.closedCode).toBe(4403);
    await subscriber.dispose();
  });

  it("refuses an SSE subscription with 403, and ends one whose key is narrowed off its address", async () => {
    const off = await keyFor(["203.0.113.7"]);
    const response = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "text/event-stream",
        authorization: `Bearer ${off.secret}`,
      },
      body: JSON.stringify({ query: EVENTS }),
    });
    const text = await response.text();
    expect(response.status, text).toBe(403);
    expect(text).toContain(MESSAGE);

    const on = await keyFor(["127.0.0.1", "203.0.113.7"]);
    const subscriber = await sseSubscribe(server.url, on.secret, EVENTS);
    expect(subscriber.completed).toBe(false);
    await ok(server, UPDATE, { input: { id: on.id, allowedIps: ["203.0.113.7"] } }, { key: org.apiKey });
    await until(() => subscriber.completed);
    await subscriber.dispose();
  });
});

describe("download links", () => {
  it("work only from an address on the minting key's list, as it is at download time", async () => {
    const message = await deliver(database.db, inboxes.a.id);
    const key = await keyFor(["127.0.0.1", "203.0.113.7"]);
    const minted = await ok(
      server,
      "query($id: ID!) { message(id: $id) { rawUrl } }",
      { id: message.id },
      { key: key.secret },
    );
    const url = minted.message.rawUrl as string;
    expect((await fetch(url)).status).toBe(200);
    // Through a trusted proxy, from an address on the list and from one off it.
    const path = new URL(url).pathname;
    expect((await fetch(`${oneHop.url}${path}`, from("203.0.113.7"))).status).toBe(200);
    expect((await fetch(`${oneHop.url}${path}`, from("198.51.100.1"))).status).toBe(404);
    await ok(server, UPDATE, { input: { id: key.id, allowedIps: ["203.0.113.7"] } }, { key: org.apiKey });
    expect((await fetch(url)).status).toBe(404);
  });
});
