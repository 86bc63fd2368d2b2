// 200 WebSocket subscribers of different scopes and label permissions: each receives exactly the
// events it may see, computed by a small independent model of the rules.
import { describe, expect, it } from "vitest";
import { createInboxViaApi, createKey, createPodViaApi, deliver } from "./helpers/factories.ts";
import type { TestServer } from "./helpers/server.ts";
import { type Subscriber, wsSubscribe } from "./helpers/subscriptions.ts";
import { organizationFixture, serverOn, serverSuite } from "./helpers/suite.ts";

const { database, server: first } = serverSuite();
const servers = [first, serverOn(database)];
const org = organizationFixture(database);

interface Audience {
  pod?: number;
  inbox?: number;
  labels: Set<string>;
  messageRead: boolean;
}

describe("fan-out", () => {
  it("gives each of 200 subscribers exactly the events it may see", async () => {
    const server = servers[0] as TestServer;
    const pods = [
      await createPodViaApi(server, org.apiKey, "P0"),
      await createPodViaApi(server, org.apiKey, "P1"),
    ];
    const inboxes: { id: string; pod: number }[] = [];
    for (let i = 0; i < 4; i++)
      inboxes.push({
        id: (await createInboxViaApi(server, org.apiKey, { podId: pods[i % 2], username: `fan${i}` })).id,
        pod: i % 2,
      });

    const labelFlags = {
      spam: "labelSpamRead",
      blocked: "labelBlockedRead",
      trash: "labelTrashRead",
    } as const;
    const audiences: Audience[] = [];
    const subscribers: Subscriber[] = [];
    const keys = new Map<string, string>();
    const plans: { url: string; key: string }[] = [];
    for (let i = 0; i < 200; i++) {
      const labels = new Set(Object.keys(labelFlags).filter((_, bit) => (i >> bit) & 1));
      const kind = i % 4; // 0: organization, 1: pod, 2: inbox, 3: organization without MESSAGE_READ
      const audience: Audience = { labels, messageRead: kind !== 3 };
      if (kind === 1) audience.pod = i % 2;
      if (kind === 2) audience.inbox = i % 4;
      const permissions: Record<string, boolean> = { inboxRead: true, messageRead: audience.messageRead };
      for (const label of labels) permissions[labelFlags[label as keyof typeof labelFlags]] = true;
      const where =
        audience.pod !== undefined
          ? { podId: pods[audience.pod] }
          : audience.inbox !== undefined
            ? { inboxId: inboxes[audience.inbox]?.id }
            : {};
      const cacheKey = JSON.stringify({ where, permissions });
      let key = keys.get(cacheKey);
      if (!key) {
        key = (await createKey(server, org.apiKey, { ...where, permissions })).secret;
        keys.set(cacheKey, key);
      }
      audiences.push(audience);
      plans.push({ url: (servers[i % 2] as TestServer).wsUrl, key });
    }
    // Spread over two nodes, connecting 25 at a time.
    for (let i = 0; i < plans.length; i += 25) {
      const batch = plans.slice(i, i + 25);
      subscribers.push(
        ...(await Promise.all(
          batch.map((p) => wsSubscribe(p.url, p.key, "subscription { events { message { id } } }")),
        )),
      );
    }

    const sent: { id: string; inbox: number; label: string | null }[] = [];
    const variants = [null, "spam", "blocked", "trash"];
    for (let n = 0; n < 16; n++) {
      const inbox = n % 4;
      const label = variants[Math.floor(n / 4)] ?? null;
      const message = await deliver(database.db, inboxes[inbox]?.id as string, {
        labels: label ? ["received", label] : ["received"],
      });
      sent.push({ id: message.id, inbox, label });
    }
    const expected = audiences.map((a) =>
      sent
        .filter(() => a.messageRead)
        .filter((m) => a.pod === undefined || inboxes[m.inbox]?.pod === a.pod)
        .filter((m) => a.inbox === undefined || m.inbox === a.inbox)
        .filter((m) => m.label === null || a.labels.has(m.label))
        .map((m) => m.id),
    );
    const lastId = (sent.at(-1) as { id: string }).id;
    // Every subscriber that may see the last message has everything before it too (commit order).
    await Promise.all(
      subscribers.map((s, i) =>
        expected[i]?.includes(lastId) ? s.waitFor(expected[i]?.length ?? 0, 15_000) : null,
      ),
    );
    await new Promise((r) => setTimeout(r, 500));
    const mismatches = subscribers.flatMap((s, i) => {
      const got = s.received.map((e) => e.events.message.id);
      return JSON.stringify(got) === JSON.stringify(expected[i])
        ? []
        : [`subscriber ${i}: got ${got.length}, expected ${expected[i]?.length}`];
    });
    expect(mismatches).toEqual([]);
    expect(expected.filter((e) => e.length > 0).length).toBeGreaterThan(100);
    await Promise.all(subscribers.map((s) => s.dispose()));
  }, 120_000);

  it("gives subscribers of one visibility identical frames, from one execution, and other visibilities their own", async () => {
    const server = servers[0] as TestServer;
    const inbox = (await createInboxViaApi(server, org.apiKey, { username: "frames" })).id;
    const same = { permissions: { inboxRead: true, messageRead: true, threadRead: true } };
    const keys = [
      (await createKey(server, org.apiKey, same)).secret,
      (await createKey(server, org.apiKey, same)).secret,
      // No THREAD_READ: the same events, but `threads` fails for it alone.
      (await createKey(server, org.apiKey, { permissions: { inboxRead: true, messageRead: true } })).secret,
      // May read spam: sees one event more.
      (await createKey(server, org.apiKey, { permissions: { ...same.permissions, labelSpamRead: true } }))
        .secret,
    ];
    const query = `subscription($inbox: ID!) {
      events(inboxIds: [$inbox]) { type message { id } inbox { id threads(first: 5) { edges { node { id } } } } }
    }`;
    const subscribers = await Promise.all(
      keys.map((key) => wsSubscribe(server.wsUrl, key, query, { inbox })),
    );
    // Three groups: the two identical subscribers share one.
    expect(server.app.fanOut.groupCount()).toBe(3);
    const executions = server.app.sharedResults.executions();
    const plain = await deliver(database.db, inbox, { labels: ["received"] });
    const spam = await deliver(database.db, inbox, { labels: ["received", "spam"] });
    await Promise.all([
      ...subscribers.slice(0, 3).map((s) => s.waitForResults(1, 10_000)),
      subscribers[3]?.waitForResults(2, 10_000),
    ]);
    await new Promise((r) => setTimeout(r, 300));
    const [a, b, noThreads, spamReader] = subscribers.map((s) => s.results) as Subscriber["results"][];
    const messageOf = (result: Subscriber["results"][number] | undefined) => result?.data?.events.message.id;
    expect(a).toHaveLength(1);
    expect(messageOf(a?.[0])).toBe(plain.id);
    expect(a?.[0]?.errors).toBeUndefined();
    expect(a?.[0]?.data.events.inbox.threads.edges.length).toBeGreaterThan(0);
    expect(b).toEqual(a);
    // Its error is its own: the others' frames carry none, and it gets the rest of the event.
    expect(noThreads).toHaveLength(1);
    expect(messageOf(noThreads?.[0])).toBe(plain.id);
    expect(noThreads?.[0]?.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect(spamReader?.map(messageOf)).toEqual([plain.id, spam.id]);
    expect(spamReader?.every((r) => r.errors === undefined)).toBe(true);
    // One execution per visibility and event: the two identical subscribers shared theirs.
    expect(server.app.sharedResults.executions() - executions).toBe(4);
    await Promise.all(subscribers.map((s) => s.dispose()));
  });

  it("hands a subscriber replaying from a cursor over to the live group with no gap and no duplicate", async () => {
    const server = servers[0] as TestServer;
    const inbox = (await createInboxViaApi(server, org.apiKey, { username: "handoff" })).id;
    const query =
      "subscription($inbox: ID!, $after: String) { events(inboxIds: [$inbox], after: $after) { cursor message { id } } }";
    const live = await wsSubscribe(server.wsUrl, org.apiKey, query, { inbox });
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) sent.push((await deliver(database.db, inbox)).id);
    const [first] = await live.waitFor(1, 10_000);
    // Resumes after the first while mail keeps arriving: replay, catch up to the group, join it.
    const writing = (async () => {
      for (let i = 0; i < 20; i++) sent.push((await deliver(database.db, inbox)).id);
    })();
    const resumed = await wsSubscribe(server.wsUrl, org.apiKey, query, { inbox, after: first.events.cursor });
    await writing;
    await live.waitFor(sent.length, 10_000);
    await resumed.waitFor(sent.length - 1, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(live.received.map((r) => r.events.message.id)).toEqual(sent);
    expect(resumed.received.map((r) => r.events.message.id)).toEqual(sent.slice(1));
    await Promise.all([live.dispose(), resumed.dispose()]);
  });
});
