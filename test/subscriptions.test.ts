// Live events: subscriptions over graphql-ws and SSE, scope and label checks at delivery, replay
// from a cursor with no gap and no duplicate, two nodes on one database, and revocation.
import { describe, expect, it } from "vitest";
import { createKey, deleteKey, deliver } from "./helpers/factories.ts";
import { startTestServer } from "./helpers/server.ts";
import { smtpTransport } from "./helpers/smtp.ts";
import { sseSubscribe, wsSubscribe } from "./helpers/subscriptions.ts";
import { serverOn, serverSuite, tenantFixture } from "./helpers/suite.ts";

const { database, server } = serverSuite();
const other = serverOn(database);
const {
  org,
  pods,
  inboxes: { a: inboxA, b: inboxB },
} = tenantFixture(
  { database, server },
  {
    pods: ["A", "B"],
    inboxes: { a: { pod: "A", username: "live-a" }, b: { pod: "B", username: "live-b" } },
  },
);

const EVENTS = `subscription($after: String, $types: [EventType!]) {
  events(after: $after, types: $types) { cursor type message { id subject labels } inbox { id } }
}`;

describe("Subscription.events", () => {
  it("delivers a committed message event over WebSocket, on this node and on another node", async () => {
    const here = await wsSubscribe(server.wsUrl, org.apiKey, EVENTS);
    const there = await wsSubscribe(other.wsUrl, org.apiKey, EVENTS);
    const message = await deliver(database.db, inboxA.id, { subject: "Live!" });
    for (const subscriber of [here, there]) {
      const [first] = await subscriber.waitFor(1);
      expect(first.events).toMatchObject({
        type: "MESSAGE_RECEIVED",
        message: { id: message.id, subject: "Live!" },
        inbox: { id: inboxA.id },
      });
      expect(subscriber.errors).toEqual([]);
      await subscriber.dispose();
    }
  });

  it("delivers to a subscriber on one node mail received over SMTP by another node", async () => {
    const mx = await startTestServer(database.url, {}, { smtpPort: 0 });
    try {
      const subscriber = await wsSubscribe(server.wsUrl, org.apiKey, EVENTS, { types: ["MESSAGE_RECEIVED"] });
      await smtpTransport(mx.smtpPort as number).sendMail({
        from: "someone@example.test",
        to: inboxB.email,
        subject: "Across nodes",
        text: "hello",
      });
      const [first] = await subscriber.waitFor(1);
      expect(first.events).toMatchObject({
        type: "MESSAGE_RECEIVED",
        message: { subject: "Across nodes" },
        inbox: { id: inboxB.id },
      });
      await subscriber.dispose();
    } finally {
      await mx.stop();
    }
  });

  it("delivers over SSE with a Bearer key", async () => {
    const subscriber = await sseSubscribe(server.url, org.apiKey, EVENTS);
    const message = await deliver(database.db, inboxA.id, { subject: "Over SSE" });
    const [first] = await subscriber.waitFor(1);
    expect(first.events.message.id).toBe(message.id);
    await subscriber.dispose();
  });

  it("replays exactly the events since a cursor, in order, then goes live", async () => {
    const first = await wsSubscribe(server.wsUrl, org.apiKey, EVENTS);
    await deliver(database.db, inboxA.id, { subject: "before" });
    const [seen] = await first.waitFor(1);
    await first.dispose();
    const missed = [];
    for (const subject of ["one", "two", "three"])
      missed.push(await deliver(database.db, inboxA.id, { subject }));
    const resumed = await wsSubscribe(server.wsUrl, org.apiKey, EVENTS, { after: seen.events.cursor });
    await resumed.waitFor(3);
    const live = await deliver(database.db, inboxB.id, { subject: "live" });
    const all = await resumed.waitFor(4);
    expect(all.map((e) => e.events.message.subject)).toEqual(["one", "two", "three", "live"]);
    expect(all.map((e) => e.events.message.id)).toEqual([...missed.map((m) => m.id), live.id]);
    await new Promise((r) => setTimeout(r, 200));
    expect(resumed.received).toHaveLength(4);
    await resumed.dispose();
  });

  it("shows each subscriber only what it could query: scope, MESSAGE_READ and hidden labels", async () => {
    const podKey = (await createKey(server, org.apiKey, { podId: pods.A })).secret;
    const inboxKey = (await createKey(server, org.apiKey, { inboxId: inboxA.id })).secret;
    const noSpam = (await createKey(server, org.apiKey, { permissions: { messageRead: true } })).secret;
    const noMessages = (
      await createKey(server, org.apiKey, { permissions: { inboxRead: true, domainRead: true } })
    ).secret;
    const subscribers = {
      org: await wsSubscribe(server.wsUrl, org.apiKey, EVENTS),
      pod: await wsSubscribe(server.wsUrl, podKey, EVENTS),
      inbox: await wsSubscribe(other.wsUrl, inboxKey, EVENTS),
      noSpam: await wsSubscribe(server.wsUrl, noSpam, EVENTS),
      noMessages: await wsSubscribe(other.wsUrl, noMessages, EVENTS),
    };
    const inA = await deliver(database.db, inboxA.id, { subject: "a" });
    const inB = await deliver(database.db, inboxB.id, { subject: "b" });
    const spam = await deliver(database.db, inboxA.id, { subject: "spam", labels: ["received", "spam"] });
    const marker = await deliver(database.db, inboxA.id, { subject: "marker" });
    await subscribers.org.waitFor(4);
    await subscribers.pod.waitFor(3);
    await subscribers.inbox.waitFor(3);
    await subscribers.noSpam.waitFor(3);
    await new Promise((r) => setTimeout(r, 300));
    const ids = (s: { received: any[] }) => s.received.map((e) => e.events.message.id);
    expect(ids(subscribers.org)).toEqual([inA.id, inB.id, spam.id, marker.id]);
    expect(ids(subscribers.pod)).toEqual([inA.id, spam.id, marker.id]);
    expect(ids(subscribers.inbox)).toEqual([inA.id, spam.id, marker.id]);
    expect(ids(subscribers.noSpam)).toEqual([inA.id, inB.id, marker.id]);
    expect(subscribers.noMessages.received).toEqual([]);
    for (const s of Object.values(subscribers)) await s.dispose();
  });

  it("ends a subscription within a second when its key is deleted, on every node, over WS and SSE", async () => {
    const key = await createKey(server, org.apiKey, { name: "doomed" });
    const ws = await wsSubscribe(other.wsUrl, key.secret, EVENTS);
    const sse = await sseSubscribe(other.url, key.secret, EVENTS);
    const deletedAt = Date.now();
    await deleteKey(server, org.apiKey, key.id);
    const deadline = deletedAt + 1000;
    while ((ws.closedCode === undefined || !sse.completed) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(ws.closedCode).toBe(4401);
    expect(sse.completed).toBe(true);
    await ws.dispose();
    await sse.dispose();
  });
});

describe("ending a subscription", () => {
  it("releases it as soon as its client ends it, without waiting for another event", async () => {
    const node = await startTestServer(database.url);
    try {
      const count = () => node.app.services.events.subscriberCount();
      const subscribers = [
        await wsSubscribe(node.wsUrl, org.apiKey, EVENTS),
        await wsSubscribe(node.wsUrl, org.apiKey, "subscription { messageReceived { id } }"),
        await sseSubscribe(node.url, org.apiKey, "subscription { messageReceived { id } }"),
      ];
      expect(count()).toBe(3);
      await Promise.all(subscribers.map((s) => s.dispose()));
      const deadline = Date.now() + 2000;
      while (count() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(count()).toBe(0);
    } finally {
      await node.stop();
    }
  });
});

describe("Subscription.messageReceived", () => {
  it("yields messages arriving in an inbox, and needs MESSAGE_READ", async () => {
    const subscriber = await wsSubscribe(
      server.wsUrl,
      org.apiKey,
      "subscription($inbox: ID) { messageReceived(inboxId: $inbox) { id subject } }",
      { inbox: inboxB.id },
    );
    await deliver(database.db, inboxA.id, { subject: "elsewhere" });
    const message = await deliver(database.db, inboxB.id, { subject: "for B" });
    const [first] = await subscriber.waitFor(1);
    expect(first.messageReceived).toEqual({ id: message.id, subject: "for B" });
    await subscriber.dispose();

    const denied = await wsSubscribe(
      server.wsUrl,
      (await createKey(server, org.apiKey, { permissions: { inboxRead: true } })).secret,
      "subscription { messageReceived { id } }",
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(JSON.stringify(denied.errors)).toContain("MESSAGE_READ");
    await denied.dispose();
  });
});
