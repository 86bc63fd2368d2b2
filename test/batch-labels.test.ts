// updateMessages and updateThread (issue 16, part 3): the label change of updateMessage on many
// messages at once, all or nothing; and on every message of a thread the caller can see.
import { decodeGlobalID } from "@pothos/plugin-relay";
import { describe, expect, it } from "vitest";
import { createKey, deliver } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";

const { database, server } = serverSuite();
const suffix = Math.random().toString(36).slice(2, 8);
const {
  org,
  inboxes: { a, b },
  keys,
} = tenantFixture(
  { database, server },
  {
    pods: ["A", "B"],
    inboxes: {
      a: { pod: "A", username: `batch-a-${suffix}` },
      b: { pod: "B", username: `batch-b-${suffix}` },
    },
    keys: { podA: { pod: "A" } },
  },
);
const {
  inboxes: { foreign },
} = tenantFixture(
  { database, server },
  { name: "Other", pods: ["X"], inboxes: { foreign: { pod: "X", username: `batch-x-${suffix}` } } },
);

const UPDATE_MESSAGES = `mutation($input: UpdateMessagesInput!) { updateMessages(input: $input) { messages { id labels } } }`;
const UPDATE_THREAD = `mutation($input: UpdateThreadInput!) { updateThread(input: $input) { thread { id labels messages { edges { node { id labels } } } } } }`;

async function storedLabels(globalIds: string[]) {
  const ids = globalIds.map((id) => decodeGlobalID(id).id);
  const rows = await database.db
    .selectFrom("messages")
    .select(["id", "labels"])
    .where("id", "in", ids)
    .execute();
  const byId = new Map(rows.map((row) => [String(row.id), row.labels]));
  return ids.map((id) => byId.get(id));
}

describe("updateMessages", () => {
  it("adds and removes labels on every message named, in the order named", async () => {
    const messages = await Promise.all([1, 2, 3].map(() => deliver(database.db, a.id)));
    const ids = messages.map((m) => m.id).reverse();
    const data = await ok(
      server,
      UPDATE_MESSAGES,
      { input: { ids, addLabels: ["project-x"], removeLabels: ["unread"] } },
      { key: org.apiKey },
    );
    expect(data.updateMessages.messages.map((m: any) => m.id)).toEqual(ids);
    for (const labels of await storedLabels(ids)) {
      expect(labels).toContain("project-x");
      expect(labels).not.toContain("unread");
    }
  });

  it("is all or nothing: an id of another organization, another pod or a hidden message is NOT_FOUND and nothing changes", async () => {
    const mine = await deliver(database.db, a.id);
    const otherPod = await deliver(database.db, b.id);
    const otherOrg = await deliver(database.db, foreign.id);
    const spam = await deliver(database.db, a.id, { labels: ["received", "spam"] });
    const hidingKey = (
      await createKey(server, org.apiKey, {
        permissions: { messageRead: true, messageUpdate: true, threadRead: true },
      })
    ).secret;
    const cases: [string[], string][] = [
      [[mine.id, otherOrg.id], org.apiKey],
      [[mine.id, otherPod.id], keys.podA],
      [[mine.id, spam.id], hidingKey],
    ];
    for (const [ids, key] of cases) {
      const response = await gql(
        server,
        UPDATE_MESSAGES,
        { input: { ids, addLabels: ["should-not"] } },
        { key },
      );
      expect(response.body.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
      for (const labels of await storedLabels([mine.id, otherOrg.id, otherPod.id, spam.id]))
        expect(labels).not.toContain("should-not");
    }
  });

  it("takes 1 to 100 ids and updateMessage's label rules", async () => {
    const none = await gql(
      server,
      UPDATE_MESSAGES,
      { input: { ids: [], addLabels: ["x"] } },
      { key: org.apiKey },
    );
    expect(none.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT" });
    const message = await deliver(database.db, a.id);
    const many = await gql(
      server,
      UPDATE_MESSAGES,
      { input: { ids: Array.from({ length: 101 }, () => message.id), addLabels: ["x"] } },
      { key: org.apiKey },
    );
    expect(many.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const system = await gql(
      server,
      UPDATE_MESSAGES,
      { input: { ids: [message.id], addLabels: ["sent"] } },
      { key: org.apiKey },
    );
    expect(system.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "addLabels" });
  });
});

describe("updateThread", () => {
  it("changes every message of the thread the caller can see, and leaves hidden ones alone", async () => {
    const first = await deliver(database.db, a.id, { subject: `thread-${suffix}` });
    const second = await deliver(database.db, a.id, {
      subject: `Re: thread-${suffix}`,
      inReplyTo: first.messageIdHeader,
      references: [first.messageIdHeader],
    });
    const spam = await deliver(database.db, a.id, {
      subject: `Re: thread-${suffix}`,
      inReplyTo: first.messageIdHeader,
      references: [first.messageIdHeader],
      labels: ["received", "spam"],
    });
    expect(new Set([first.threadId, second.threadId, spam.threadId]).size).toBe(1);
    const hidingKey = (
      await createKey(server, org.apiKey, {
        permissions: { messageRead: true, messageUpdate: true, threadRead: true },
      })
    ).secret;
    const data = await ok(
      server,
      UPDATE_THREAD,
      { input: { id: first.threadId, addLabels: ["followed"] } },
      { key: hidingKey },
    );
    expect(data.updateThread.thread.labels).toContain("followed");
    const [l1, l2, l3] = await storedLabels([first.id, second.id, spam.id]);
    expect(l1).toContain("followed");
    expect(l2).toContain("followed");
    expect(l3).not.toContain("followed");
  });

  it("is NOT_FOUND for a thread outside the caller's scope", async () => {
    const other = await deliver(database.db, b.id);
    const response = await gql(
      server,
      UPDATE_THREAD,
      { input: { id: other.threadId, addLabels: ["x"] } },
      { key: keys.podA },
    );
    expect(response.body.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    expect((await storedLabels([other.id]))[0]).not.toContain("x");
  });
});
