// Idempotent sends (issue 16, part 1; docs/sending.md): a key per organization, 24 hours, decided by
// the database. Sends go to a hosted inbox of another organization so the delivered copies can be
// counted; every send is checked against the database, not only against the answers.
import { decodeGlobalID } from "@pothos/plugin-relay";
import { describe, expect, it } from "vitest";
import { addJob } from "../src/jobs/worker.ts";
import { PURGE_IDEMPOTENCY_KEYS } from "../src/outbound/idempotency.ts";
import { deliver } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";
import { until } from "./helpers/wait.ts";

const { database, server } = serverSuite({ workerPollIntervalMs: 100 });
const suffix = Math.random().toString(36).slice(2, 8);
const {
  org: acme,
  inboxes: { sender },
} = tenantFixture(
  { database, server },
  { name: "Acme", pods: ["A"], inboxes: { sender: { pod: "A", username: `idem-sender-${suffix}` } } },
);
const {
  org: globex,
  inboxes: { target, other },
} = tenantFixture(
  { database, server },
  {
    name: "Globex",
    pods: ["G"],
    inboxes: {
      target: { pod: "G", username: `idem-target-${suffix}` },
      other: { pod: "G", username: `idem-other-${suffix}` },
    },
  },
);

const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id subject } } }`;
const REPLY = `mutation($input: ReplyToMessageInput!) { replyToMessage(input: $input) { message { id } } }`;
const FORWARD = `mutation($input: ForwardMessageInput!) { forwardMessage(input: $input) { message { id } } }`;
const CREATE_DRAFT = `mutation($input: CreateDraftInput!) { createDraft(input: $input) { draft { id } } }`;
const SEND_DRAFT = `mutation($input: SendDraftInput!) { sendDraft(input: $input) { message { id } } }`;

let counter = 0;
const unique = (label: string) => `${label}-${++counter}-${suffix}`;
const rowId = (globalId: string) => decodeGlobalID(globalId).id;

/** Messages the sending inbox holds with this subject (sent copies). */
async function sentCopies(subject: string) {
  return database.db
    .selectFrom("messages")
    .select(["id", "delivery_status"])
    .where("inbox_id", "=", rowId(sender.id))
    .where("subject", "=", subject)
    .execute();
}

/** Copies delivered to `inbox` with this subject. */
async function delivered(inboxId: string, subject: string) {
  return database.db
    .selectFrom("messages")
    .select("id")
    .where("inbox_id", "=", rowId(inboxId))
    .where("direction", "=", "INBOUND")
    .where("subject", "=", subject)
    .execute();
}

/** Waits until every sent copy with `subject` has been delivered, then reads what arrived. */
async function settledDeliveries(subject: string, inboxId = target.id) {
  await until(async () => {
    const copies = await sentCopies(subject);
    return copies.length > 0 && copies.every((copy) => copy.delivery_status !== "QUEUED");
  }, 20_000);
  return delivered(inboxId, subject);
}

async function sendWith(input: Record<string, unknown>, headers: Record<string, string> = {}) {
  return gql(
    server,
    SEND,
    { input: { inboxId: sender.id, to: [target.email], ...input } },
    { key: acme.apiKey, headers },
  );
}

describe("idempotencyKey on sendMessage", () => {
  it("a repeat with the same key and input returns the first message and sends nothing", async () => {
    const subject = unique("repeat");
    const key = unique("key");
    const first = await sendWith({ subject, text: "once", idempotencyKey: key });
    expect(first.body.errors).toBeUndefined();
    const second = await sendWith({ subject, text: "once", idempotencyKey: key });
    expect(second.body.errors).toBeUndefined();
    const firstId = (first.body.data as any).sendMessage.message.id;
    expect((second.body.data as any).sendMessage.message.id).toBe(firstId);
    expect(await sentCopies(subject)).toHaveLength(1);
    expect(await settledDeliveries(subject)).toHaveLength(1);
    // And after delivery too: the repeat still sends nothing.
    const third = await sendWith({ subject, text: "once", idempotencyKey: key });
    expect((third.body.data as any).sendMessage.message.id).toBe(firstId);
    expect(await sentCopies(subject)).toHaveLength(1);
  });

  it("10 concurrent HTTP calls with one Idempotency-Key header deliver one message", async () => {
    const subject = unique("race");
    const key = unique("race-key");
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => sendWith({ subject, text: "raced" }, { "Idempotency-Key": key })),
    );
    for (const response of responses)
      expect(response.body.errors, JSON.stringify(response.body)).toBeUndefined();
    const ids = new Set(responses.map((response) => (response.body.data as any).sendMessage.message.id));
    expect(ids.size).toBe(1);
    expect(await sentCopies(subject)).toHaveLength(1);
    expect(await settledDeliveries(subject)).toHaveLength(1);
    const jobs = await database.db
      .selectFrom("events")
      .select("id")
      .where("type", "=", "MESSAGE_SENT")
      .where("message_id", "=", rowId([...ids][0] as string))
      .execute();
    expect(jobs).toHaveLength(1);
  });

  it("the same key with a different input is IDEMPOTENCY_CONFLICT and sends nothing", async () => {
    const subject = unique("conflict");
    const key = unique("conflict-key");
    await ok(
      server,
      SEND,
      { input: { inboxId: sender.id, to: [target.email], subject, idempotencyKey: key } },
      { key: acme.apiKey },
    );
    const changed = await sendWith({ subject, text: "another body", idempotencyKey: key });
    expect(changed.body.errors?.[0]?.extensions?.code).toBe("IDEMPOTENCY_CONFLICT");
    expect((changed.body.data as any)?.sendMessage ?? null).toBeNull();
    // The same key on another send mutation is a different input too.
    const message = await deliver(database.db, sender.id, { subject: unique("to reply to") });
    const reply = await gql(
      server,
      REPLY,
      { input: { messageId: message.id, text: "hi", idempotencyKey: key } },
      { key: acme.apiKey },
    );
    expect(reply.body.errors?.[0]?.extensions?.code).toBe("IDEMPOTENCY_CONFLICT");
    expect(await sentCopies(subject)).toHaveLength(1);
  });

  it("absent and null fields are the same input; the header and the field are the same key", async () => {
    const subject = unique("normalised");
    const key = unique("normalised-key");
    const first = await sendWith({ subject, cc: null, idempotencyKey: key });
    const second = await sendWith({ subject }, { "Idempotency-Key": key });
    expect((second.body.data as any).sendMessage.message.id).toBe(
      (first.body.data as any).sendMessage.message.id,
    );
    expect(await sentCopies(subject)).toHaveLength(1);
  });

  it("keys belong to one organization: another organization's same key sends its own mail", async () => {
    const key = unique("shared-key");
    const subject = unique("org-a");
    const acmeSend = await sendWith({ subject, idempotencyKey: key });
    const globexSend = await gql(
      server,
      SEND,
      { input: { inboxId: other.id, to: [target.email], subject, idempotencyKey: key } },
      { key: globex.apiKey },
    );
    expect(globexSend.body.errors).toBeUndefined();
    expect((globexSend.body.data as any).sendMessage.message.id).not.toBe(
      (acmeSend.body.data as any).sendMessage.message.id,
    );
  });

  it("refuses keys that are empty, too long or not printable, naming idempotencyKey", async () => {
    for (const key of ["", "x".repeat(256), "tab\there", "naïve"]) {
      const response = await sendWith({ subject: unique("bad-key"), idempotencyKey: key });
      expect(response.body.errors?.[0]?.extensions?.code, key).toBe("BAD_USER_INPUT");
      expect(response.body.errors?.[0]?.extensions?.field, key).toBe("idempotencyKey");
    }
    const longest = await sendWith({ subject: unique("long-key"), idempotencyKey: "k".repeat(255) });
    expect(longest.body.errors).toBeUndefined();
  });

  it("refuses the header on an operation with two sends, and a header that disagrees with the field", async () => {
    const two = await gql(
      server,
      `mutation($a: SendMessageInput!, $b: SendMessageInput!) {
        a: sendMessage(input: $a) { message { id } } b: sendMessage(input: $b) { message { id } } }`,
      {
        a: { inboxId: sender.id, to: [target.email], subject: unique("two-a") },
        b: { inboxId: sender.id, to: [target.email], subject: unique("two-b") },
      },
      { key: acme.apiKey, headers: { "Idempotency-Key": unique("two") } },
    );
    expect(two.body.errors?.map((error) => error.extensions?.code)).toEqual([
      "BAD_USER_INPUT",
      "BAD_USER_INPUT",
    ]);
    const differ = await sendWith(
      { subject: unique("differ"), idempotencyKey: "one" },
      { "Idempotency-Key": "another" },
    );
    expect(differ.body.errors?.[0]?.extensions?.field).toBe("idempotencyKey");
  });

  it("an expired key may be used again", async () => {
    const key = unique("expired-key");
    const subject = unique("expired");
    const first = await sendWith({ subject, idempotencyKey: key });
    await database.db
      .updateTable("idempotency_keys")
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where("key", "=", key)
      .execute();
    const second = await sendWith({ subject, idempotencyKey: key });
    expect(second.body.errors).toBeUndefined();
    expect((second.body.data as any).sendMessage.message.id).not.toBe(
      (first.body.data as any).sendMessage.message.id,
    );
    expect(await sentCopies(subject)).toHaveLength(2);
  });
});

describe("idempotencyKey on the other sends", () => {
  it("replyToMessage and forwardMessage send once per key", async () => {
    const original = await deliver(database.db, sender.id, { from: target.email, subject: unique("orig") });
    const replyKey = unique("reply-key");
    const replies = await Promise.all(
      [1, 2, 3].map(() =>
        ok(
          server,
          REPLY,
          { input: { messageId: original.id, text: "r", idempotencyKey: replyKey } },
          { key: acme.apiKey },
        ),
      ),
    );
    expect(new Set(replies.map((data) => data.replyToMessage.message.id)).size).toBe(1);
    const forwardKey = unique("forward-key");
    const input = { messageId: original.id, to: [target.email], text: "f", idempotencyKey: forwardKey };
    const first = await ok(server, FORWARD, { input }, { key: acme.apiKey });
    const second = await ok(server, FORWARD, { input }, { key: acme.apiKey });
    expect(second.forwardMessage.message.id).toBe(first.forwardMessage.message.id);
  });

  it("sendDraft with a key: racing calls and a repeat after the draft is gone return the one message", async () => {
    const subject = unique("draft");
    const draft = await ok(
      server,
      CREATE_DRAFT,
      { input: { inboxId: sender.id, to: [target.email], subject } },
      { key: acme.apiKey },
    );
    const input = { id: draft.createDraft.draft.id, idempotencyKey: unique("draft-key") };
    const raced = await Promise.all(
      [1, 2, 3, 4].map(() => gql(server, SEND_DRAFT, { input }, { key: acme.apiKey })),
    );
    for (const response of raced) expect(response.body.errors, JSON.stringify(response.body)).toBeUndefined();
    expect(new Set(raced.map((response) => (response.body.data as any).sendDraft.message.id)).size).toBe(1);
    const again = await ok(server, SEND_DRAFT, { input }, { key: acme.apiKey });
    expect(again.sendDraft.message.id).toBe((raced[0] as any).body.data.sendDraft.message.id);
    expect(await settledDeliveries(subject)).toHaveLength(1);
  });
});

describe("the purge", () => {
  it("a graphile-worker job deletes expired keys and leaves live ones", async () => {
    const live = unique("live-key");
    const expired = unique("dead-key");
    await sendWith({ subject: unique("live"), idempotencyKey: live });
    await sendWith({ subject: unique("dead"), idempotencyKey: expired });
    await database.db
      .updateTable("idempotency_keys")
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where("key", "=", expired)
      .execute();
    await addJob(database.db, PURGE_IDEMPOTENCY_KEYS, {});
    await until(async () => {
      const rows = await database.db
        .selectFrom("idempotency_keys")
        .select("key")
        .where("key", "=", expired)
        .execute();
      return rows.length === 0;
    });
    const kept = await database.db
      .selectFrom("idempotency_keys")
      .select("key")
      .where("key", "=", live)
      .execute();
    expect(kept).toHaveLength(1);
  });

  it("is scheduled as a recurring job, known to graphile-worker's cron", async () => {
    const rows = await until(async () => {
      const found = await database.db
        .selectFrom("graphile_worker._private_known_crontabs" as any)
        .select("identifier" as any)
        .execute();
      return found.length > 0 ? found : undefined;
    });
    expect(rows.map((row: any) => row.identifier)).toContain(PURGE_IDEMPOTENCY_KEYS);
  });
});
