// Slow neighbours: every webhook attempt has one total deadline (DNS, connect, headers and a capped
// body), and one webhook's deliveries run one at a time in a queue of their own, so an endpoint that
// hangs or drips its answer holds one job slot at most, never the deliveries of anyone else.
import { decodeGlobalID } from "@pothos/plugin-relay";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { createInboxViaApi, deliver } from "./helpers/factories.ts";
import { httpEndpoint, readBody } from "./helpers/http-endpoint.ts";
import { ok } from "./helpers/server.ts";
import { organizationFixture, serverSuite } from "./helpers/suite.ts";
import { until } from "./helpers/wait.ts";

const DEADLINE_MS = 1_500;
const CONCURRENCY = 4;

/** When each message id reached the healthy endpoint. */
const arrivals = new Map<string, number>();
/** Requests to the slow endpoints: when they arrived and when their connection closed. */
const slow: { path: string; at: number; closedAt?: number }[] = [];

const healthy = httpEndpoint((req, res) =>
  readBody(req, (body) => {
    arrivals.set(JSON.parse(body).data.messageId, Date.now());
    res.writeHead(200).end();
  }),
);
// /drip answers 200 at once, then one byte a second, forever; /silent never answers at all.
const slowEndpoint = httpEndpoint((req, res) => {
  const request: (typeof slow)[number] = { path: req.url ?? "/", at: Date.now() };
  slow.push(request);
  req.socket.on("close", () => {
    request.closedAt = Date.now();
  });
  req.resume();
  if (req.url !== "/drip") return;
  res.writeHead(200, { "content-type": "text/plain" });
  const drip = setInterval(() => res.write("."), 1_000);
  res.write(".");
  req.socket.on("close", () => clearInterval(drip));
});
const { database, server } = serverSuite({
  allowPrivateWebhookUrls: true,
  workerPollIntervalMs: 50,
  workerConcurrency: CONCURRENCY,
  webhookTimeoutMs: DEADLINE_MS,
  webhookRetryDelaysMs: [60_000],
});
const org = organizationFixture(database);

async function webhookFor(url: string, inboxId: string): Promise<string> {
  const data = await ok(
    server,
    "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }",
    { input: { url, eventTypes: ["MESSAGE_RECEIVED"], inboxIds: [inboxId] } },
    { key: org.apiKey },
  );
  return data.createWebhook.webhook.id;
}

async function deliveryOf(webhookId: string) {
  return database.db
    .selectFrom("webhook_deliveries")
    .select(["status", "last_status_code", "last_error", "attempts"])
    .where("webhook_id", "=", decodeGlobalID(webhookId).id)
    .executeTakeFirst();
}

/** Milliseconds from a message's commit to its arrival at the healthy endpoint, one message at a time. */
async function healthyLatencies(inboxId: string, count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const message = await deliver(database.db, inboxId);
    const committed = Date.now();
    const arrived = await until(() => arrivals.get(message.id), 20_000);
    latencies.push(arrived - committed);
  }
  return latencies;
}

describe("a webhook attempt", () => {
  it("has a deadline of WEBHOOK_TIMEOUT_MS, 10 s unless set", () => {
    expect(loadConfig({}).webhookTimeoutMs).toBe(10_000);
    expect(loadConfig({ WEBHOOK_TIMEOUT_MS: "2500" }).webhookTimeoutMs).toBe(2_500);
    expect(() => loadConfig({ WEBHOOK_TIMEOUT_MS: "0" })).toThrow(
      /^Invalid configuration: WEBHOOK_TIMEOUT_MS/,
    );
  });

  it("ends at its deadline when the endpoint never answers: the socket is closed and the attempt fails", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "silent" });
    const hook = await webhookFor(`${slowEndpoint.url}/silent`, inbox.id);
    await deliver(database.db, inbox.id);
    const delivery = await until(async () => {
      const row = await deliveryOf(hook);
      return row?.last_error ? row : undefined;
    });
    expect(delivery).toMatchObject({
      status: "PENDING",
      last_error: `timed out after ${DEADLINE_MS / 1000} s`,
    });
    const request = await until(() => {
      const found = slow.find((r) => r.path === "/silent" && r.closedAt !== undefined);
      return found;
    });
    expect((request.closedAt as number) - request.at).toBeLessThan(DEADLINE_MS + 1_000);
  });

  it("takes a 200 whose body drips as an answer, and closes the socket at the deadline", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "drip-once" });
    const hook = await webhookFor(`${slowEndpoint.url}/drip`, inbox.id);
    const before = slow.length;
    await deliver(database.db, inbox.id);
    const delivery = await until(async () => {
      const row = await deliveryOf(hook);
      return row?.status === "SUCCEEDED" ? row : undefined;
    });
    expect(delivery).toMatchObject({ last_status_code: 200, attempts: 1 });
    const request = await until(() => slow.slice(before).find((r) => r.closedAt !== undefined));
    expect((request.closedAt as number) - request.at).toBeLessThan(DEADLINE_MS + 1_000);
  });
});

describe("slow neighbours", () => {
  it("lets a healthy webhook's deliveries arrive promptly while another's endpoint drips", async () => {
    const healthyInbox = await createInboxViaApi(server, org.apiKey, { username: "healthy" });
    const dripInbox = await createInboxViaApi(server, org.apiKey, { username: "dripping" });
    await webhookFor(`${healthy.url}/healthy`, healthyInbox.id);
    const alone = await healthyLatencies(healthyInbox.id, 5);

    await webhookFor(`${slowEndpoint.url}/drip`, dripInbox.id);
    const before = slow.length;
    // Twice as many slow deliveries as there are job slots, all queued before the healthy ones.
    for (let i = 0; i < 2 * CONCURRENCY; i++) await deliver(database.db, dripInbox.id);
    await until(() => slow.length > before);
    const beside = await healthyLatencies(healthyInbox.id, 5);

    console.info(
      `healthy webhook latency (ms), alone: ${alone.join(", ")}; beside a dripping endpoint: ${beside.join(", ")}`,
    );
    // Without isolation every slot is held for a whole deadline (twice over) before a healthy delivery runs.
    expect(Math.max(...beside)).toBeLessThan(DEADLINE_MS / 2);
    // One slot at most: each of the dripping webhook's attempts starts after the one before ended.
    const attempts = slow.slice(before).sort((a, b) => a.at - b.at);
    attempts.slice(1).forEach((attempt, i) => {
      // (Give or take the moment the receiver notices its side of the closed connection.)
      expect(attempt.at + 100).toBeGreaterThanOrEqual(attempts[i]?.closedAt ?? Number.POSITIVE_INFINITY);
    });
  });
});
