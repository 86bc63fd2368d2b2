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
});
