// One cursor across the three channels (docs/events.md, "One cursor"): a client takes events from a
// webhook (a real HTTP receiver, Standard Webhooks signatures verified), switches to polling
// Query.events from the last payload's cursor, then subscribes over graphql-ws from the last polled
// cursor, while mail keeps arriving over SMTP, through the store and by sending. What the three
// channels delivered, one after the other, must be exactly the events the client may see, in order,
// each once: for a key that sees everything, and for one that may not read spam, blocked or trashed
// mail (mail that arrived so appears on no channel, mail trashed after it arrived keeps its events on
// every channel, and the cursors line up).
import type { IncomingHttpHeaders } from "node:http";
import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { createInboxViaApi, createKey, deliver } from "./helpers/factories.ts";
import { httpEndpoint, readBody } from "./helpers/http-endpoint.ts";
import { ok } from "./helpers/server.ts";
import { smtpTransport } from "./helpers/smtp.ts";
import { wsSubscribe } from "./helpers/subscriptions.ts";
import { organizationFixture, serverSuite } from "./helpers/suite.ts";

const TYPES = ["MESSAGE_RECEIVED", "MESSAGE_SENT", "MESSAGE_DELIVERED", "MESSAGE_BOUNCED"];
/** Payloads the webhooks are sent before the client switches to polling; events polled before it subscribes. */
const FROM_WEBHOOK = 4;
const TO_POLL = 6;

const received = new Map<string, { headers: IncomingHttpHeaders; body: string }[]>();
const receiver = httpEndpoint((req, res) =>
  readBody(req, (body) => {
    const list = received.get(req.url ?? "") ?? [];
    list.push({ headers: req.headers, body });
    received.set(req.url ?? "", list);
    res.writeHead(200).end();
  }),
);
const { database, server } = serverSuite(
  { allowPrivateWebhookUrls: true, workerPollIntervalMs: 50 },
  { smtpPort: 0 },
);
const org = organizationFixture(database);

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One event as a channel delivered it. */
interface Delivered {
  channel: "webhook" | "poll" | "subscription";
  eventId: string;
  cursor: string;
  type: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A client of `key`: its webhook (made before any mail arrives) until FROM_WEBHOOK payloads, then
 * polling from the last payload's cursor until TO_POLL events, then a subscription from the last
 * polled cursor. `onSubscribed` is called once it listens; `run` returns `drain`, which waits until
 * the three channels together delivered `count` events and returns them in the order delivered.
 */
async function switchingClient(key: string, path: string) {
  const created = await ok(
    server,
    "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret } }",
    { input: { url: `${receiver.url}${path}`, eventTypes: TYPES } },
    { key },
  );
  const verifier = new StandardWebhook(created.createWebhook.secret);
  const webhookPayloads = () =>
    (received.get(path) ?? []).map((request) => {
      // Verified as a receiver must: signature, id and timestamp headers over the raw body.
      const payload = verifier.verify(request.body, request.headers as Record<string, string>) as {
        type: string;
        eventId: string;
        cursor: string;
      };
      return {
        channel: "webhook" as const,
        eventId: payload.eventId,
        cursor: payload.cursor,
        type: payload.type.toUpperCase().replace(".", "_"),
      };
    });

  const run = async (onSubscribed: () => void) => {
    const delivered: Delivered[] = [];
    await until("webhook payloads", () => webhookPayloads().length >= FROM_WEBHOOK);
    // Deliveries of one webhook are sent one at a time, in the order of their events.
    delivered.push(...webhookPayloads().slice(0, FROM_WEBHOOK));

    let cursor = delivered.at(-1)?.cursor as string;
    while (delivered.length < FROM_WEBHOOK + TO_POLL) {
      const data = await ok(
        server,
        `query($after: String, $types: [EventType!]) { events(first: 3, after: $after, types: $types) {
          edges { cursor node { id cursor type } } pageInfo { hasNextPage endCursor } } }`,
        { after: cursor, types: TYPES },
        { key },
      );
      const page = data.events;
      for (const edge of page.edges) {
        expect(edge.cursor).toBe(edge.node.cursor);
        delivered.push({ channel: "poll", eventId: edge.node.id, cursor: edge.cursor, type: edge.node.type });
      }
      // An empty page has no endCursor: the client keeps its own.
      if (page.pageInfo.endCursor) cursor = page.pageInfo.endCursor;
      if (!page.pageInfo.hasNextPage) await sleep(40);
    }

    // The client takes a moment to switch: what arrives meanwhile must come as the subscription's replay.
    // It waits until at least one event it may see has arrived after its cursor (a fixed pause can pass
    // with none on a busy machine, and then the replay would have nothing to prove).
    for (let attempt = 0; ; attempt++) {
      const data = await ok(
        server,
        "query($after: String, $types: [EventType!]) { events(first: 1, after: $after, types: $types) { edges { cursor } } }",
        { after: cursor, types: TYPES },
        { key },
      );
      if (data.events.edges.length > 0) break;
      if (attempt > 400) throw new Error("no event arrived after the polled cursor");
      await sleep(50);
    }
    const subscriber = await wsSubscribe(
      server.wsUrl,
      key,
      "subscription($after: String, $types: [EventType!]) { events(after: $after, types: $types) { id cursor type } }",
      { after: cursor, types: TYPES },
    );
    // Events after this one committed once the subscription listened (live); it must also have some up
    // to it, which the pause above makes the replay's.
    const { rows } = await database.pool.query<{ xid: string; id: string }>(
      // Ordered by the columns (qualified), not by the text the select list names alike.
      "SELECT xid::text, id::text FROM events WHERE org_id = $1 ORDER BY events.xid DESC, events.id DESC LIMIT 1",
      [org.organizationId],
    );
    const subscribedAt = rows[0] ?? { xid: "0", id: "0" };
    onSubscribed();
    const drain = async (count: number) => {
      const needed = count - delivered.length;
      if (needed > 0) await subscriber.waitFor(needed, 20_000);
      // Anything more would be a duplicate or an event this client may not see.
      await sleep(500);
      expect(subscriber.errors).toEqual([]);
      await subscriber.dispose();
      // In the organization's order (docs/events.md, "Order without a lock"): after the newest event then.
      const live = subscriber.received.filter((r) => {
        const [xid, id] = Buffer.from(r.events.cursor, "base64url").toString("utf8").split(":").slice(1);
        return (
          BigInt(xid as string) > BigInt(subscribedAt.xid) ||
          (xid === subscribedAt.xid && BigInt(id as string) > BigInt(subscribedAt.id))
        );
      });
      expect(live.length).toBeGreaterThan(0);
      expect(live.length).toBeLessThan(subscriber.received.length);
      return [
        ...delivered,
        ...subscriber.received.map((r) => ({
          channel: "subscription" as const,
          eventId: r.events.id as string,
          cursor: r.events.cursor as string,
          type: r.events.type as string,
        })),
      ];
    };
    return drain;
  };
  return { run, webhookPayloads };
}

/**
 * The oracle: the organization's events of TYPES, in the organization's order (transaction, then id), that a reader hiding `hidden` may
 * see, by the labels each event recorded (docs/events.md), read straight from the table.
 */
async function eventsVisible(hidden: string[]): Promise<string[]> {
  const { rows } = await database.pool.query<{ id: string; message_labels: string[] | null }>(
    "SELECT e.id::text AS id, e.message_labels FROM events e WHERE e.org_id = $1 AND e.type = ANY($2) ORDER BY e.xid, e.id",
    [org.organizationId, TYPES],
  );
  return rows
    .filter((row) => !(row.message_labels ?? []).some((label) => hidden.includes(label)))
    .map((row) => encodeGlobalID("Event", row.id));
}

describe("one cursor across webhooks, polling and subscriptions", () => {
  it("delivers every event once, in order, while switching channel as mail keeps arriving", {
    timeout: 90_000,
  }, async () => {
    const inboxA = await createInboxViaApi(server, org.apiKey, { username: "channels-a" });
    const inboxB = await createInboxViaApi(server, org.apiKey, { username: "channels-b" });
    await ok(
      server,
      "mutation($input: CreateListEntryInput!) { createListEntry(input: $input) { listEntry { id } } }",
      { input: { direction: "RECEIVE", type: "BLOCK", entry: "blocked.example.test" } },
      { key: org.apiKey },
    );
    const restricted = (
      await createKey(server, org.apiKey, {
        permissions: { messageRead: true, threadRead: true, webhookCreate: true },
      })
    ).secret;
    const clients = {
      everything: await switchingClient(org.apiKey, "/everything"),
      noSpam: await switchingClient(restricted, "/no-spam"),
    };

    // Mail keeps arriving until both clients are subscribed, and a little longer.
    let subscribed = 0;
    const hiddenMessages: string[] = [];
    const trashedLater: string[] = [];
    const smtp = smtpTransport(server.smtpPort as number);
    const produce = async () => {
      let afterSubscribed = 0;
      for (let i = 0; afterSubscribed < 8; i++) {
        if (i > 400) throw new Error("the clients never subscribed");
        if (subscribed === 2) afterSubscribed++;
        switch (i % 5) {
          case 0:
            await smtp.sendMail({
              from: "friend@example.test",
              to: inboxA.email,
              subject: `smtp ${i}`,
              text: "hi",
            });
            break;
          case 1: {
            const stored = await deliver(database.db, inboxB.id, { subject: `stored ${i}` });
            // Trashed as soon as it is stored: its event was clean when it happened, so it stays on
            // every channel's cursor, even for the key that may not read trash, whenever each reads.
            await ok(
              server,
              "mutation($input: UpdateMessageInput!) { updateMessage(input: $input) { message { id } } }",
              { input: { id: stored.id, addLabels: ["trash"] } },
              { key: org.apiKey },
            );
            trashedLater.push(stored.id);
            break;
          }
          case 2:
            hiddenMessages.push(
              (await deliver(database.db, inboxA.id, { subject: `spam ${i}`, labels: ["received", "spam"] }))
                .id,
            );
            break;
          case 3:
            // Refused by the RECEIVE list: stored labelled `blocked`.
            await smtp.sendMail({
              from: "pest@blocked.example.test",
              to: inboxB.email,
              subject: `blocked ${i}`,
              text: "buy",
            });
            break;
          case 4:
            // Sent here, delivered to a hosted inbox by a job: MESSAGE_SENT, then RECEIVED and DELIVERED.
            await ok(
              server,
              "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } } }",
              { input: { inboxId: inboxA.id, to: [inboxB.email], subject: `sent ${i}`, text: "hello" } },
              { key: org.apiKey },
            );
            break;
        }
        await sleep(30);
      }
    };
    const onSubscribed = () => {
      subscribed++;
    };
    const [drainEverything, drainNoSpam] = await Promise.all([
      clients.everything.run(onSubscribed),
      clients.noSpam.run(onSubscribed),
      produce(),
    ]).then(([a, b]) => [a, b] as const);
    smtp.close();

    // Every sent message settled (delivered or bounced): no event of this test is still to come.
    const settled = async () => {
      for (let attempt = 0; attempt < 400; attempt++) {
        const { rows } = await database.pool.query<{ queued: string }>(
          "SELECT count(*)::text AS queued FROM messages WHERE org_id = $1 AND delivery_status = 'QUEUED'",
          [org.organizationId],
        );
        if (rows[0]?.queued === "0") return;
        await sleep(50);
      }
      throw new Error("sent mail was not settled");
    };
    await settled();

    const expected = {
      everything: await eventsVisible([]),
      noSpam: await eventsVisible(["spam", "blocked", "trash"]),
    };
    const got = {
      everything: await drainEverything(expected.everything.length),
      noSpam: await drainNoSpam(expected.noSpam.length),
    };

    for (const name of ["everything", "noSpam"] as const) {
      const delivered = got[name];
      // The union, in order, is exactly what the client may see: no gap, no duplicate, nothing hidden.
      expect(
        delivered.map((d) => d.eventId),
        name,
      ).toEqual(expected[name]);
      // Every channel took part, and mail arrived while each was in use.
      const channels = delivered.map((d) => d.channel);
      expect(channels.filter((c) => c === "webhook")).toHaveLength(FROM_WEBHOOK);
      expect(channels.filter((c) => c === "poll").length).toBeGreaterThanOrEqual(TO_POLL);
      expect(channels.filter((c) => c === "subscription").length).toBeGreaterThan(0);
      // One cursor: each event's, whatever channel carried it, is the one Query.events gives it.
      const listed = new Map<string, { cursor: string; type: string }>();
      let after: string | undefined;
      for (;;) {
        const data = await ok(
          server,
          `query($after: String, $types: [EventType!]) { events(first: 200, after: $after, types: $types) {
            edges { node { id cursor type } } pageInfo { hasNextPage endCursor } } }`,
          { after, types: TYPES },
          { key: name === "everything" ? org.apiKey : restricted },
        );
        for (const { node } of data.events.edges)
          listed.set(node.id, { cursor: node.cursor, type: node.type });
        if (!data.events.pageInfo.hasNextPage) break;
        after = data.events.pageInfo.endCursor;
      }
      expect([...listed.keys()]).toEqual(expected[name]);
      for (const d of delivered) expect({ cursor: d.cursor, type: d.type }).toEqual(listed.get(d.eventId));
    }

    // The webhook alone, left running, delivered the same sequence (with the same cursors).
    for (const name of ["everything", "noSpam"] as const) {
      const all = clients[name].webhookPayloads();
      expect(all.map((p) => p.eventId)).toEqual(expected[name].slice(0, all.length));
      expect(all.slice(0, FROM_WEBHOOK)).toEqual(got[name].slice(0, FROM_WEBHOOK));
    }

    // The hidden mail was there, for the key that may see it, and on no channel of the one that may not.
    const hiddenEvents = expected.everything.filter((id) => !expected.noSpam.includes(id));
    // Spam through the store, and mail from a blocked sender over SMTP.
    expect(hiddenEvents.length).toBeGreaterThan(hiddenMessages.length);
    const { rows } = await database.pool.query<{ id: string }>(
      "SELECT id::text FROM events WHERE org_id = $1 AND message_id = ANY($2::bigint[])",
      [org.organizationId, hiddenMessages.map((id) => decodeGlobalID(id).id)],
    );
    for (const row of rows) {
      expect(got.noSpam.map((d) => d.eventId)).not.toContain(encodeGlobalID("Event", row.id));
      expect(got.everything.map((d) => d.eventId)).toContain(encodeGlobalID("Event", row.id));
    }
    // Mail trashed after it arrived kept its events on every channel of the key that may not read trash.
    const trashed = await database.pool.query<{ id: string }>(
      "SELECT id::text FROM events WHERE org_id = $1 AND message_id = ANY($2::bigint[])",
      [org.organizationId, trashedLater.map((id) => decodeGlobalID(id).id)],
    );
    expect(trashed.rows.length).toBe(trashedLater.length);
    for (const row of trashed.rows)
      expect(got.noSpam.map((d) => d.eventId)).toContain(encodeGlobalID("Event", row.id));
  });
});
