// node(id:) and nodes(ids:) over HTTP for every Node type: the same answer as each type's own field,
// nulls that do not tell a hidden object from a missing one, one batched statement per type, bounds.
import { encodeGlobalID } from "@pothos/plugin-relay";
import { beforeAll, describe, expect, it } from "vitest";
import { deliver, nodesOfMessage } from "./helpers/factories.ts";
import { gql, ok, okCounted } from "./helpers/server.ts";
import { serverSuite, worldFixture } from "./helpers/suite.ts";

const { database, server } = serverSuite({ allowPrivateWebhookUrls: true });
const mine = worldFixture({ database, server }, "nodes-mine");
const theirs = worldFixture({ database, server }, "nodes-theirs");
const ids: Record<string, string> = {};
const foreign: Record<string, string> = {};

/** The world's nodes, with an attachment, an event and a webhook delivery of its message. */
async function extraNodes(world: typeof mine, into: Record<string, string>): Promise<void> {
  Object.assign(into, world.ids, await nodesOfMessage(database.db, world.ids.Message, world.ids.Webhook));
}

beforeAll(async () => {
  await extraNodes(mine, ids);
  await extraNodes(theirs, foreign);
});

const NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }";
const NODE = "query($id: ID!) { node(id: $id) { __typename id } }";

describe("node(id:) and nodes(ids:)", () => {
  it("load every Node type, in the order asked", async () => {
    const types = Object.keys(ids);
    expect(types).toEqual(expect.arrayContaining(["Event", "Attachment", "WebhookDelivery", "Message"]));
    for (const type of types) {
      const { node } = await ok(server, NODE, { id: ids[type] }, { key: mine.keys.organization });
      expect(node).toEqual({ __typename: type, id: ids[type] });
    }
    const list = types.map((type) => ids[type]).reverse();
    const { nodes } = await ok(server, NODES, { ids: list }, { key: mine.keys.organization });
    expect(nodes.map((n: { id: string }) => n.id)).toEqual(list);
  });

  it("answer another organization's ids exactly like ids that do not exist", async () => {
    const missing = Object.keys(foreign).map((type) =>
      encodeGlobalID(type, String(9_000_000_000 + Math.floor(Math.random() * 1000))),
    );
    const others = Object.values(foreign);
    const hidden = await gql(server, NODES, { ids: others }, { key: mine.keys.organization });
    const absent = await gql(server, NODES, { ids: missing }, { key: mine.keys.organization });
    expect(hidden.body).toEqual({ data: { nodes: others.map(() => null) } });
    expect(absent.body).toEqual(hidden.body);
    expect(
      (await gql(server, NODES, { ids: ["not-an-id", "VXNlcjox"] }, { key: mine.keys.organization })).body,
    ).toEqual({
      data: { nodes: [null, null] },
    });
  });

  it("hide a message behind a label the caller may not see, and its attachment and event with it", async () => {
    const spam = await deliver(database.db, mine.ids.Inbox, { labels: ["received", "spam"] });
    const key = (
      await ok(
        server,
        "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } secret } }",
        { input: { name: "no spam", permissions: { messageRead: true, inboxRead: true } } },
        { key: mine.keys.organization },
      )
    ).createApiKey.secret as string;
    const { nodes } = await ok(server, NODES, { ids: [spam.id, mine.ids.Message] }, { key });
    expect(nodes).toEqual([null, { __typename: "Message", id: mine.ids.Message }]);
  });

  it("load each type in one statement, whatever the number of ids", async () => {
    const more = await Promise.all([1, 2, 3, 4].map(() => deliver(database.db, mine.ids.Inbox)));
    const statementsFor = async (messages: string[]) => {
      const list = [...messages, ids.Attachment, ids.Event, ids.Inbox];
      const { data, statements } = await okCounted(
        server,
        NODES,
        { ids: list },
        { key: mine.keys.organization },
      );
      expect(data.nodes.every((n: unknown) => n !== null)).toBe(true);
      return statements;
    };
    const one = await statementsFor([mine.ids.Message]);
    const five = await statementsFor([mine.ids.Message, ...more.map((m) => m.id)]);
    // A statement per message would be four more; the one statement of slack is the event read's
    // short-lived shared cache (src/events/bus.ts), hit or missed depending on the moment.
    expect(Math.abs(five - one)).toBeLessThanOrEqual(1);
  });

  it("refuse more than 100 ids with BAD_USER_INPUT naming ids", async () => {
    const list = Array.from({ length: 101 }, () => mine.ids.Message);
    const { body } = await gql(server, NODES, { ids: list }, { key: mine.keys.organization });
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "ids" });
  });

  it("node(id:) of a type that is not a node answers a typed error", async () => {
    const user = encodeGlobalID("User", "1");
    const { body } = await gql(server, NODE, { id: user }, { key: mine.keys.organization });
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "id" });
  });
});
