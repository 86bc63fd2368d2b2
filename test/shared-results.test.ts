// Subscription results shared among subscribers (src/events/shared-results.ts): subscribers with the
// same operation and visibility share one execution per event; every other subscriber still receives
// exactly what it would alone, which here is what the same selection returns to its key over HTTP.
import { describe, expect, it } from "vitest";
import { createKey, deliver } from "./helpers/factories.ts";
import { gql } from "./helpers/server.ts";
import { type Subscriber, sseSubscribe, wsSubscribe } from "./helpers/subscriptions.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";

const { database, server } = serverSuite();
const {
  org,
  pods,
  inboxes: { a1: inboxA1 },
} = tenantFixture(
  { database, server },
  {
    pods: ["A"],
    inboxes: { a1: { pod: "A", username: "shared-a1" }, a2: { pod: "A", username: "shared-a2" } },
  },
);

/** Fields whose values depend on visibility: hidden labels, scope, and a permission (THREAD_READ). */
const MESSAGE_SELECTION = `{
  id subject labels
  thread { id messageCount labels subject }
  inbox {
    email
    pod { id inboxes(first: 10) { edges { node { email } } } }
    threads(first: 5) { edges { node { id messageCount } } }
    messages(first: $first) { edges { node { id } } }
  }
}`;
const EVENTS = `subscription($first: Int) { events { type message ${MESSAGE_SELECTION} } }`;
const ALONE = `query($id: ID!, $first: Int) { message(id: $id) ${MESSAGE_SELECTION} }`;

/** A result as the client sees it: data, and each error's code at its path below the message. */
function normalise(message: unknown, errors: any[] | undefined, prefix: number) {
  return {
    message,
    errors: (errors ?? [])
      .map((e) => ({ path: (e.path ?? []).slice(prefix).join("."), code: e.extensions?.code }))
      .sort((a, b) => a.path.localeCompare(b.path)),
  };
}

async function alone(key: string, messageId: string, first: number) {
  const { body } = await gql(server, ALONE, { id: messageId, first }, { key });
  return normalise(body.data?.message, body.errors, 1);
}

const lastResult = (s: Subscriber) => {
  const result = s.results.at(-1);
  return normalise(result?.data?.events?.message, result?.errors, 2);
};

describe("shared subscription results", () => {
  it("gives subscribers of different visibility exactly what each would receive alone", async () => {
    const keys = {
      organization: org.apiKey,
      noSpam: (
        await createKey(server, org.apiKey, {
          permissions: { inboxRead: true, threadRead: true, messageRead: true },
        })
      ).secret,
      noThreads: (
        await createKey(server, org.apiKey, {
          permissions: { inboxRead: true, messageRead: true, labelSpamRead: true },
        })
      ).secret,
      pod: (await createKey(server, org.apiKey, { podId: pods.A })).secret,
      inbox: (await createKey(server, org.apiKey, { inboxId: inboxA1.id })).secret,
    };
    // Three subscribers per key, interleaved, all on one node: any sharing across keys would show.
    const subscribers: { name: keyof typeof keys; subscriber: Subscriber }[] = [];
    for (let round = 0; round < 3; round++) {
      for (const name of Object.keys(keys) as (keyof typeof keys)[]) {
        subscribers.push({
          name,
          subscriber: await wsSubscribe(server.wsUrl, keys[name], EVENTS, { first: 10 }),
        });
      }
    }
    const sees = (name: keyof typeof keys) => name !== "noSpam";
    const check = async (messageId: string, expectedCount: (name: keyof typeof keys) => number) => {
      for (const { name, subscriber } of subscribers) {
        const count = expectedCount(name);
        if (count === 0) continue;
        await subscriber.waitForResults(count);
      }
      await new Promise((r) => setTimeout(r, 200));
      for (const { name, subscriber } of subscribers) {
        expect(subscriber.results.length, name).toBe(expectedCount(name));
        if (expectedCount(name) === 0) continue;
        expect(lastResult(subscriber), name).toEqual(await alone(keys[name], messageId, 10));
      }
    };

    // Spam first: hidden from noSpam, who receives no event at all.
    const spam = await deliver(database.db, inboxA1.id, { subject: "offer", labels: ["received", "spam"] });
    await check(spam.id, (name) => (sees(name) ? 1 : 0));
    // A reply in the same thread: everyone receives it, but the thread looks different to each.
    const reply = await deliver(database.db, inboxA1.id, {
      subject: "Re: offer",
      inReplyTo: spam.messageIdHeader,
      references: [spam.messageIdHeader],
    });
    await check(reply.id, (name) => (sees(name) ? 2 : 1));

    const message = (name: keyof typeof keys) =>
      subscribers.find((s) => s.name === name)?.subscriber.results.at(-1) as {
        data: { events: { message: any } };
        errors?: any[];
      };
    // The thread's aggregates are over visible messages only, and as of each event (fresh loaders).
    expect(message("organization").data.events.message.thread).toMatchObject({ messageCount: 2 });
    expect(message("organization").data.events.message.thread.labels).toContain("spam");
    expect(message("noSpam").data.events.message.thread).toMatchObject({ messageCount: 1 });
    expect(message("noSpam").data.events.message.thread.labels).not.toContain("spam");
    expect(message("noSpam").data.events.message.inbox.messages.edges).toHaveLength(1);
    expect(message("organization").data.events.message.inbox.messages.edges).toHaveLength(2);
    const firstOfOrganization = subscribers.find((s) => s.name === "organization")?.subscriber
      .results[0] as any;
    expect(firstOfOrganization.data.events.message.thread.messageCount).toBe(1);
    // A permission a nested field needs: FORBIDDEN (and null) for one key, data for the others.
    expect(message("noThreads").data.events.message.inbox.threads).toBeNull();
    expect(message("noThreads").errors?.map((e) => e.extensions.code)).toEqual(["FORBIDDEN"]);
    expect(message("organization").errors).toBeUndefined();
    expect(message("organization").data.events.message.inbox.threads.edges).toHaveLength(1);
    // Scope: an inbox-scoped key sees one inbox of the pod, a pod-scoped key both.
    expect(message("inbox").data.events.message.inbox.pod.inboxes.edges).toHaveLength(1);
    expect(message("pod").data.events.message.inbox.pod.inboxes.edges).toHaveLength(2);

    await Promise.all(subscribers.map(({ subscriber }) => subscriber.dispose()));
  });

  it("executes an event once for any number of subscribers with the same operation and visibility", async () => {
    const key = (await createKey(server, org.apiKey, { name: "fan" })).secret;
    // Another credential with the same reach shares too; another page size (variables) does not.
    const twin = (await createKey(server, org.apiKey, { name: "twin" })).secret;
    const { app } = server;
    const measure = async (subscribers: Subscriber[]) => {
      await new Promise((r) => setTimeout(r, 300));
      const [statements, executions] = [app.services.statementCount(), app.sharedResults.executions()];
      await deliver(database.db, inboxA1.id, { subject: "counted" });
      await Promise.all(subscribers.map((s) => s.waitForResults(s.results.length + 1)));
      await new Promise((r) => setTimeout(r, 300));
      return {
        statements: app.services.statementCount() - statements,
        executions: app.sharedResults.executions() - executions,
      };
    };

    const one = [await wsSubscribe(server.wsUrl, key, EVENTS, { first: 10 })];
    const single = await measure(one);
    expect(single.executions).toBe(1);
    // Reading the event and its message, then the thread, inbox, pod and lists it selects.
    expect(single.statements).toBeGreaterThan(2);

    const many = [...one];
    for (let i = 0; i < 11; i++) many.push(await wsSubscribe(server.wsUrl, key, EVENTS, { first: 10 }));
    many.push(await wsSubscribe(server.wsUrl, twin, EVENTS, { first: 10 }));
    many.push(await sseSubscribe(server.url, key, EVENTS, { first: 10 }));
    const shared = await measure(many);
    expect(shared).toEqual(single);
    const results = many.map((s) => JSON.stringify(s.results.at(-1)));
    expect(new Set(results).size).toBe(1);

    const otherPage = await wsSubscribe(server.wsUrl, key, EVENTS, { first: 1 });
    const withOtherPage = await measure([...many, otherPage]);
    expect(withOtherPage.executions).toBe(2);
    expect(otherPage.results.at(-1)?.data?.events.message.inbox.messages.edges).toHaveLength(1);
    expect(many[0]?.results.at(-1)?.data?.events.message.inbox.messages.edges.length).toBeGreaterThan(1);

    await Promise.all([...many, otherPage].map((s) => s.dispose()));
  });
});
