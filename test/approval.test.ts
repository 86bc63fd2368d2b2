// Approval before sending (issue 16, part 5; docs/sending.md, "Approval before sending"): an
// approval-bound key's mail never leaves by itself. Every sending path stops at a PENDING_APPROVAL
// draft with APPROVAL_REQUIRED and the draft's id; nothing reaches a hosted inbox or the relay until
// a caller that is not approval-bound approves it; keys it creates are bound too; the
// DRAFT_PENDING_APPROVAL event reaches subscribers and webhooks.
import { decodeGlobalID } from "@pothos/plugin-relay";
import { describe, expect, it } from "vitest";
import { httpEndpoint, readBody } from "./helpers/http-endpoint.ts";
import { RelaySink } from "./helpers/relay.ts";
import { gql, ok } from "./helpers/server.ts";
import { wsSubscribe } from "./helpers/subscriptions.ts";
import { running, serverSuite, tenantFixture } from "./helpers/suite.ts";
import { sleep, until } from "./helpers/wait.ts";

const hooks: string[] = [];
const receiver = httpEndpoint((req, res) =>
  readBody(req, (body) => {
    hooks.push(body);
    res.writeHead(200).end();
  }),
);
const sink = running(new RelaySink());
const { database, server } = serverSuite(() => ({
  smtpRelayUrl: `smtp://127.0.0.1:${sink.port}`,
  allowPrivateWebhookUrls: true,
  workerPollIntervalMs: 50,
}));
const suffix = Math.random().toString(36).slice(2, 8);
const {
  org,
  inboxes: { sender, hosted },
} = tenantFixture(
  { database, server },
  {
    pods: ["A"],
    inboxes: {
      sender: { pod: "A", username: `appr-sender-${suffix}` },
      hosted: { pod: "A", username: `appr-hosted-${suffix}` },
    },
  },
);

const PAYLOAD = "{ message { id subject } }";
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) ${PAYLOAD} }`;
const REPLY = `mutation($input: ReplyToMessageInput!) { replyToMessage(input: $input) ${PAYLOAD} }`;
const FORWARD = `mutation($input: ForwardMessageInput!) { forwardMessage(input: $input) ${PAYLOAD} }`;
const SEND_DRAFT = `mutation($input: SendDraftInput!) { sendDraft(input: $input) ${PAYLOAD} }`;
const APPROVE = `mutation($input: ApproveDraftInput!) { approveDraft(input: $input) ${PAYLOAD} }`;
const CREATE_DRAFT = `mutation($input: CreateDraftInput!) { createDraft(input: $input) { draft { id sendStatus } } }`;
const UPDATE_DRAFT = `mutation($input: UpdateDraftInput!) { updateDraft(input: $input) { draft { id sendStatus } } }`;
const DRAFT = `query($id: ID!) { node(id: $id) { ... on Draft { id sendStatus subject to cc } } }`;
const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id sendRequiresApproval } } }`;

let counter = 0;
const unique = (label: string) => `${label}-${++counter}-${suffix}`;

async function boundKey(creator = org.apiKey, extra: Record<string, unknown> = {}) {
  const data = await ok(
    server,
    CREATE_KEY,
    { input: { name: unique("bound"), sendRequiresApproval: true, ...extra } },
    { key: creator },
  );
  return data.createApiKey.secret as string;
}

/** Mail with this subject anywhere: stored messages (sent copies and hosted deliveries) and the relay. */
async function traces(subject: string) {
  const stored = await database.db
    .selectFrom("messages")
    .select(["id", "direction", "inbox_id"])
    .where("subject", "like", `%${subject}%`)
    .execute();
  const relayed = sink.received.filter((mail) => mail.raw.toString("latin1").includes(subject));
  return { stored, relayed };
}

/** The call failed APPROVAL_REQUIRED; the held draft (as the org key reads it). */
async function held(response: Awaited<ReturnType<typeof gql>>) {
  expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "APPROVAL_REQUIRED" });
  const draftId = response.body.errors?.[0]?.extensions?.draftId as string;
  expect(decodeGlobalID(draftId).typename).toBe("Draft");
  const draft = (await ok(server, DRAFT, { id: draftId }, { key: org.apiKey })).node;
  expect(draft.sendStatus).toBe("PENDING_APPROVAL");
  return draft;
}

async function receivedMessage(subject: string) {
  await ok(server, SEND, { input: { inboxId: hosted.id, to: [sender.email], subject } }, { key: org.apiKey });
  return until(async () => {
    const row = await database.db
      .selectFrom("messages")
      .select("id")
      .where("subject", "=", subject)
      .where("direction", "=", "INBOUND")
      .executeTakeFirst();
    return row && { id: Buffer.from(`Message:${row.id}`).toString("base64") };
  }, 20_000);
}

describe("every sending path of an approval-bound key stops at PENDING_APPROVAL", () => {
  it("sendMessage, replyToMessage, forwardMessage and sendDraft deliver nothing; approveDraft sends once", async () => {
    const key = await boundKey();
    const outside = `someone-${suffix}@elsewhere.test`;

    const subject = unique("direct");
    const direct = await held(
      await gql(
        server,
        SEND,
        { input: { inboxId: sender.id, to: [hosted.email, outside], subject, text: "hello" } },
        { key },
      ),
    );
    expect(direct.to).toEqual([hosted.email, outside]);

    const original = await receivedMessage(unique("original"));
    const replied = await held(
      await gql(server, REPLY, { input: { messageId: original.id, text: "a reply" } }, { key }),
    );
    expect(replied.to).toEqual([hosted.email]);
    const forwarded = await held(
      await gql(server, FORWARD, { input: { messageId: original.id, to: [outside], text: "fyi" } }, { key }),
    );
    const draftSubject = unique("drafted");
    const created = await ok(
      server,
      CREATE_DRAFT,
      { input: { inboxId: sender.id, to: [hosted.email, outside], subject: draftSubject } },
      { key },
    );
    const viaDraft = await held(
      await gql(server, SEND_DRAFT, { input: { id: created.createDraft.draft.id } }, { key }),
    );
    expect(viaDraft.id).toBe(created.createDraft.draft.id);
    // Sending it again is held again; editing it is refused to the bound key; approving it is forbidden.
    await held(await gql(server, SEND_DRAFT, { input: { id: viaDraft.id } }, { key }));
    const edit = await gql(server, UPDATE_DRAFT, { input: { id: viaDraft.id, subject: "changed" } }, { key });
    expect(edit.body.errors?.[0]?.extensions?.code).toBe("CONFLICT");
    const selfApproval = await gql(server, APPROVE, { input: { id: viaDraft.id } }, { key });
    expect(selfApproval.body.errors?.[0]?.extensions).toMatchObject({ code: "FORBIDDEN" });
    expect(selfApproval.body.errors?.[0]?.message).toMatch(/approval-bound/);

    // Give delivery every chance: nothing was stored as sent, nothing reached an inbox or the relay.
    await sleep(500);
    for (const s of [subject, draftSubject]) expect((await traces(s)).stored).toEqual([]);
    const sentReplies = await database.db
      .selectFrom("messages")
      .select("id")
      .where("direction", "=", "OUTBOUND")
      .where((eb) => eb.or([eb("subject", "like", "Re:%"), eb("subject", "like", "Fwd:%")]))
      .where("subject", "like", `%${suffix}%`)
      .execute();
    expect(sentReplies).toEqual([]);

    // The org key approves each: each is sent once, to the hosted inbox and through the relay.
    for (const draft of [direct, replied, forwarded, viaDraft]) {
      const idempotencyKey = unique("approve");
      const first = await ok(
        server,
        APPROVE,
        { input: { id: draft.id, idempotencyKey } },
        { key: org.apiKey },
      );
      const again = await ok(
        server,
        APPROVE,
        { input: { id: draft.id, idempotencyKey } },
        { key: org.apiKey },
      );
      expect(again.approveDraft.message.id).toBe(first.approveDraft.message.id);
      const gone = await gql(server, APPROVE, { input: { id: draft.id } }, { key: org.apiKey });
      expect(gone.body.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    }
    await until(async () => (await traces(subject)).relayed.length === 1, 20_000);
    await until(
      async () => (await traces(subject)).stored.filter((row) => row.direction === "INBOUND").length === 1,
      20_000,
    );
    await until(async () => (await traces(draftSubject)).relayed.length === 1, 20_000);
    await sleep(300);
    expect((await traces(subject)).relayed).toHaveLength(1);
    expect((await traces(subject)).stored.filter((row) => row.direction === "OUTBOUND")).toHaveLength(1);
  });

  it("a scheduled draft of an approval-bound key never sends by itself", async () => {
    const key = await boundKey();
    const subject = unique("scheduled");
    const sendAt = new Date(Date.now() + 1500).toISOString();
    const created = await ok(
      server,
      CREATE_DRAFT,
      { input: { inboxId: sender.id, to: [hosted.email], subject, sendAt } },
      { key },
    );
    expect(created.createDraft.draft.sendStatus).toBe("SCHEDULED");
    const id = created.createDraft.draft.id;
    await until(
      async () =>
        (await ok(server, DRAFT, { id }, { key: org.apiKey })).node.sendStatus === "PENDING_APPROVAL",
      20_000,
    );
    await sleep(500);
    expect(await traces(subject)).toEqual({ stored: [], relayed: [] });
    await ok(server, APPROVE, { input: { id } }, { key: org.apiKey });
    await until(
      async () => (await traces(subject)).stored.filter((row) => row.direction === "INBOUND").length === 1,
      20_000,
    );
  });

  it("a person's scheduled draft changed by an approval-bound key waits for approval too", async () => {
    const key = await boundKey();
    const subject = unique("touched");
    const created = await ok(
      server,
      CREATE_DRAFT,
      {
        input: {
          inboxId: sender.id,
          to: [hosted.email],
          subject: "x",
          sendAt: new Date(Date.now() + 2000).toISOString(),
        },
      },
      { key: org.apiKey },
    );
    const id = created.createDraft.draft.id;
    await ok(server, UPDATE_DRAFT, { input: { id, subject } }, { key });
    await until(
      async () =>
        (await ok(server, DRAFT, { id }, { key: org.apiKey })).node.sendStatus === "PENDING_APPROVAL",
      20_000,
    );
    expect(await traces(subject)).toEqual({ stored: [], relayed: [] });
  });

  it("a key created by an approval-bound key is bound, and cannot unbind itself", async () => {
    const parent = await boundKey();
    const freed = await gql(
      server,
      CREATE_KEY,
      { input: { name: unique("free"), sendRequiresApproval: false } },
      { key: parent },
    );
    expect(freed.body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    const data = await ok(server, CREATE_KEY, { input: { name: unique("child") } }, { key: parent });
    expect(data.createApiKey.apiKey.sendRequiresApproval).toBe(true);
    const child = data.createApiKey.secret as string;
    const subject = unique("child-send");
    await held(
      await gql(server, SEND, { input: { inboxId: sender.id, to: [hosted.email], subject } }, { key: child }),
    );
    await sleep(300);
    expect(await traces(subject)).toEqual({ stored: [], relayed: [] });
  });

  it("lets the approval-bound author withdraw (delete) its held draft", async () => {
    const key = await boundKey();
    const draft = await held(
      await gql(
        server,
        SEND,
        { input: { inboxId: sender.id, to: [hosted.email], subject: unique("withdrawn") } },
        { key },
      ),
    );
    await ok(
      server,
      "mutation($id: ID!) { deleteDraft(input: { id: $id }) { deletedId } }",
      { id: draft.id },
      { key },
    );
    const approve = await gql(server, APPROVE, { input: { id: draft.id } }, { key: org.apiKey });
    expect(approve.body.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
  });

  it("refuses what a held draft cannot carry, rather than dropping it", async () => {
    const key = await boundKey();
    const response = await gql(
      server,
      SEND,
      { input: { inboxId: sender.id, to: [hosted.email], subject: unique("labelled"), labels: ["mine"] } },
      { key },
    );
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "labels" });
  });
});

describe("the DRAFT_PENDING_APPROVAL event", () => {
  it("reaches a subscriber and a webhook", async () => {
    await ok(
      server,
      "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }",
      { input: { url: `${receiver.url}/approval`, eventTypes: ["DRAFT_PENDING_APPROVAL"] } },
      { key: org.apiKey },
    );
    const subscriber = await wsSubscribe(
      server.wsUrl,
      org.apiKey,
      "subscription { events(types: [DRAFT_PENDING_APPROVAL]) { type inbox { id } draft { id } } }",
    );
    try {
      const key = await boundKey();
      const response = await gql(
        server,
        SEND,
        { input: { inboxId: sender.id, to: [hosted.email], subject: unique("evented") } },
        { key },
      );
      const draft = await held(response);
      await subscriber.waitFor(1, 20_000);
      expect(subscriber.received[0].events).toEqual({
        type: "DRAFT_PENDING_APPROVAL",
        inbox: { id: sender.id },
        draft: { id: draft.id },
      });
      await until(() => hooks.length > 0, 20_000);
      const body = JSON.parse(hooks[0] as string);
      expect(body.type).toBe("draft.pending_approval");
      expect(body.data).toMatchObject({ inboxId: sender.id, draftId: draft.id });
    } finally {
      await subscriber.dispose();
    }
  });

  it("is not shown to a reader without DRAFT_READ", async () => {
    const reader = await ok(
      server,
      CREATE_KEY,
      { input: { name: unique("reader"), permissions: { messageRead: true } } },
      { key: org.apiKey },
    );
    const subscriber = await wsSubscribe(
      server.wsUrl,
      reader.createApiKey.secret,
      "subscription { events(types: [DRAFT_PENDING_APPROVAL, MESSAGE_SENT]) { type } }",
    );
    try {
      const key = await boundKey();
      await held(
        await gql(
          server,
          SEND,
          { input: { inboxId: sender.id, to: [hosted.email], subject: unique("hidden") } },
          { key },
        ),
      );
      // A later event it may see arrives alone: the held draft's event was not delivered to it.
      await ok(
        server,
        SEND,
        { input: { inboxId: sender.id, to: [hosted.email], subject: unique("seen") } },
        { key: org.apiKey },
      );
      await subscriber.waitFor(1, 20_000);
      expect(subscriber.received.map((event: any) => event.events.type)).toEqual(["MESSAGE_SENT"]);
    } finally {
      await subscriber.dispose();
    }
  });
});
