// Webhook delivery through durable jobs: Standard Webhooks signatures, retries with the same
// webhook-id, 410 Gone disables, private targets refused at delivery, pod-scoped webhooks.
import type { IncomingHttpHeaders } from "node:http";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import {
  createInboxViaApi,
  createKey,
  createOrganization,
  createPodViaApi,
  deliver,
} from "./helpers/factories.ts";
import { httpEndpoint, readBody } from "./helpers/http-endpoint.ts";
import { ok, startTestServer } from "./helpers/server.ts";
import { organizationFixture, serverSuite } from "./helpers/suite.ts";
import { until } from "./helpers/wait.ts";

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

const received: Received[] = [];
/** Status codes the receiver answers with, one per request; then 200. */
let script: number[] = [];
const receiver = httpEndpoint((req, res) =>
  readBody(req, (body) => {
    received.push({ headers: req.headers, body });
    res.writeHead(script.shift() ?? 200).end();
  }),
);
const { database, server, replaceServer } = serverSuite({
  allowPrivateWebhookUrls: true,
  workerPollIntervalMs: 50,
  webhookRetryDelaysMs: [200, 200, 200],
});
const org = organizationFixture(database);

async function createWebhook(path: string, key = org.apiKey, extra: Record<string, unknown> = {}) {
  const data = await ok(
    server,
    "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret webhook { id } } }",
    { input: { url: `${receiver.url}${path}`, eventTypes: ["MESSAGE_RECEIVED"], ...extra } },
    { key },
  );
  return { id: data.createWebhook.webhook.id as string, secret: data.createWebhook.secret as string };
}

const deliveriesOf = async (id: string) =>
  (
    await ok(
      server,
      "query($id: ID!) { node(id: $id) { ... on Webhook { enabled deliveries { edges { node { status attempts lastStatusCode lastError eventType } } } } } }",
      { id },
      { key: org.apiKey },
    )
  ).node;

describe("webhook delivery", () => {
  it("signs the body with the Standard Webhooks scheme and the secret shown at creation", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "hooked" });
    const hook = await createWebhook("/signed");
    const message = await deliver(database.db, inbox.id, { subject: "Signed" });
    const request = await until(() =>
      received.find((r) => r.headers["webhook-id"] && r.body.includes(message.id)),
    );
    const verified = new StandardWebhook(hook.secret).verify(
      request.body,
      request.headers as Record<string, string>,
    ) as any;
    expect(verified).toMatchObject({
      type: "message.received",
      data: { messageId: message.id, inboxId: inbox.id, message: { subject: "Signed" } },
    });
    expect(request.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/=]+$/);
    expect(() =>
      new StandardWebhook(`whsec_${Buffer.alloc(32, 1).toString("base64")}`).verify(
        request.body,
        request.headers as Record<string, string>,
      ),
    ).toThrow();
    const delivery = await until(async () => {
      const node = await deliveriesOf(hook.id);
      return node.deliveries.edges[0]?.node.status === "SUCCEEDED"
        ? node.deliveries.edges[0].node
        : undefined;
    });
    expect(delivery).toMatchObject({ attempts: 1, lastStatusCode: 200, eventType: "MESSAGE_RECEIVED" });
    await ok(
      server,
      "mutation($id: ID!) { deleteWebhook(input: { id: $id }) { deletedId } }",
      { id: hook.id },
      { key: org.apiKey },
    );
  });

  it("retries a failing target with the same webhook-id until it succeeds", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "flaky" });
    const hook = await createWebhook("/flaky");
    script = [500, 503];
    const before = received.length;
    const message = await deliver(database.db, inbox.id);
    await until(async () =>
      (await deliveriesOf(hook.id)).deliveries.edges[0]?.node.status === "SUCCEEDED" ? true : undefined,
    );
    const attempts = received.slice(before).filter((r) => r.body.includes(message.id));
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((a) => a.headers["webhook-id"])).size).toBe(1);
    expect((await deliveriesOf(hook.id)).deliveries.edges[0].node).toMatchObject({
      attempts: 3,
      lastStatusCode: 200,
    });
    await ok(
      server,
      "mutation($id: ID!) { deleteWebhook(input: { id: $id }) { deletedId } }",
      { id: hook.id },
      { key: org.apiKey },
    );
  });

  it("disables a webhook whose target answers 410 Gone", async () => {
    const inbox = await createInboxViaApi(server, org.apiKey, { username: "gone" });
    const hook = await createWebhook("/gone");
    script = [410];
    await deliver(database.db, inbox.id);
    const node = await until(async () => {
      const n = await deliveriesOf(hook.id);
      return n.enabled === false ? n : undefined;
    });
    expect(node.deliveries.edges[0].node).toMatchObject({ status: "FAILED", lastStatusCode: 410 });
    await deliver(database.db, inbox.id);
    await new Promise((r) => setTimeout(r, 300));
    expect((await deliveriesOf(hook.id)).deliveries.edges).toHaveLength(1);
  });

  it("refuses at delivery a target that now resolves to a private address", async () => {
    const strict = await startTestServer(database.url, {
      allowPrivateWebhookUrls: false,
      workerPollIntervalMs: 50,
      webhookRetryDelaysMs: [50],
    });
    try {
      // Created when the name was public; its address has since changed (DNS rebinding).
      const strictOrg = await createOrganization(database.db, "Strict");
      const created = await ok(
        strict,
        'mutation { createWebhook(input: { url: "https://93.184.216.34/hook", eventTypes: [MESSAGE_RECEIVED] }) { webhook { id } } }',
        {},
        { key: strictOrg.apiKey },
      );
      const hookId = created.createWebhook.webhook.id;
      await database.db
        .updateTable("webhooks")
        .set({ url: `${receiver.url}/rebound` })
        .where("url", "=", "https://93.184.216.34/hook")
        .execute();
      // Only the strict server may run this organization's job: stop the permissive one's worker from racing it.
      await server.stop();
      const inbox = await createInboxViaApi(strict, strictOrg.apiKey, { username: "rebound" });
      const before = received.length;
      await deliver(database.db, inbox.id);
      const delivery = await until(async () => {
        const node = (
          await ok(
            strict,
            "query($id: ID!) { node(id: $id) { ... on Webhook { deliveries { edges { node { status lastError } } } } } }",
            { id: hookId },
            { key: strictOrg.apiKey },
          )
        ).node;
        return node.deliveries.edges[0]?.node.lastError ? node.deliveries.edges[0].node : undefined;
      });
      expect(delivery.lastError).toMatch(/private or internal address/);
      expect(received.length).toBe(before);
    } finally {
      await strict.stop();
      await replaceServer();
    }
  });

  it("sends a pod key's webhook only its pod's events", async () => {
    const podA = await createPodViaApi(server, org.apiKey, "hooks A");
    const podB = await createPodViaApi(server, org.apiKey, "hooks B");
    const inA = await createInboxViaApi(server, org.apiKey, { podId: podA });
    const inB = await createInboxViaApi(server, org.apiKey, { podId: podB });
    const podKey = (await createKey(server, org.apiKey, { podId: podA })).secret;
    const hook = await createWebhook("/pod-a", podKey);
    const a = await deliver(database.db, inA.id);
    await deliver(database.db, inB.id);
    await until(() => received.some((r) => r.body.includes(a.id)));
    await new Promise((r) => setTimeout(r, 300));
    const node = await deliveriesOf(hook.id);
    expect(node.deliveries.edges).toHaveLength(1);
  });
});
