// Scheduled drafts (issue 16, part 2; docs/sending.md): sendAt, sendStatus, unscheduling with an
// explicit null, drafts(sendStatus:), replyAll and forwardOf; sending through graphile-worker jobs
// exactly once, across a restart and across two nodes on one database.
import { decodeGlobalID } from "@pothos/plugin-relay";
import { describe, expect, it } from "vitest";
import { deliver } from "./helpers/factories.ts";
import { gql, ok, startTestServer } from "./helpers/server.ts";
import { serverOn, serverSuite, tenantFixture } from "./helpers/suite.ts";
import { sleep, until } from "./helpers/wait.ts";

const CONFIG = { workerPollIntervalMs: 100 };
const { database, server, replaceServer } = serverSuite(CONFIG);
/** A second node on the same database. */
const second = serverOn(database, CONFIG);
const suffix = Math.random().toString(36).slice(2, 8);
const {
  org,
  inboxes: { sender, target, cc },
} = tenantFixture(
  { database, server },
  {
    pods: ["A"],
    inboxes: {
      sender: { pod: "A", username: `sched-sender-${suffix}` },
      target: { pod: "A", username: `sched-target-${suffix}` },
      cc: { pod: "A", username: `sched-cc-${suffix}` },
    },
  },
);

const DRAFT = "id sendAt sendStatus failureReason replyAll forwardOf { id } inReplyTo { id } subject to cc";
const CREATE = `mutation($input: CreateDraftInput!) { createDraft(input: $input) { draft { ${DRAFT} } } }`;
const UPDATE = `mutation($input: UpdateDraftInput!) { updateDraft(input: $input) { draft { ${DRAFT} } } }`;
const SEND_DRAFT = `mutation($input: SendDraftInput!) { sendDraft(input: $input) { message { id } } }`;
const DRAFT_QUERY = `query($id: ID!) { draft(id: $id) { ${DRAFT} } }`;

let counter = 0;
const unique = (label: string) => `${label}-${++counter}-${suffix}`;
const rowId = (globalId: string) => decodeGlobalID(globalId).id;
const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

async function create(input: Record<string, unknown>) {
  return (await ok(server, CREATE, { input: { inboxId: sender.id, ...input } }, { key: org.apiKey }))
    .createDraft.draft;
}

async function draftNow(id: string) {
  return (await ok(server, DRAFT_QUERY, { id }, { key: org.apiKey })).draft;
}

async function statusBecomes(id: string, status: string, timeoutMs = 30_000) {
  return until(async () => {
    const draft = await draftNow(id);
    return draft.sendStatus === status ? draft : undefined;
  }, timeoutMs);
}

/** Sent copies (in the sending inbox) and delivered copies (in `inboxId`) with this subject. */
async function copies(subject: string, inboxId = target.id) {
  const rows = await database.db
    .selectFrom("messages")
    .select(["inbox_id", "direction", "id"])
    .where("subject", "=", subject)
    .execute();
  return {
    sent: rows.filter((row) => row.inbox_id === rowId(sender.id) && row.direction === "OUTBOUND"),
    delivered: rows.filter((row) => row.inbox_id === rowId(inboxId) && row.direction === "INBOUND"),
  };
}

async function deliveredOnce(subject: string, inboxId = target.id) {
  await until(async () => (await copies(subject, inboxId)).delivered.length > 0, 30_000);
  // Give a second send, if there were one, time to land too.
  await sleep(500);
  return copies(subject, inboxId);
}

async function failure(query: string, input: Record<string, unknown>) {
  const response = await gql(server, query, { input }, { key: org.apiKey });
  expect(response.body.errors, JSON.stringify(response.body)).toHaveLength(1);
  return response.body.errors?.[0] as { message: string; extensions: Record<string, unknown> };
}

describe("sendAt rules", () => {
  it("refuses a time in the past or more than 90 days ahead, naming sendAt", async () => {
    for (const sendAt of [inSeconds(-60), inSeconds(91 * 24 * 3600)]) {
      const error = await failure(CREATE, { inboxId: sender.id, to: [target.email], sendAt });
      expect(error.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "sendAt" });
    }
    const draft = await create({ to: [target.email], subject: unique("later") });
    const error = await failure(UPDATE, { id: draft.id, sendAt: inSeconds(-1) });
    expect(error.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "sendAt" });
  });

  it("refuses to schedule a draft with no one to send to", async () => {
    const error = await failure(CREATE, { inboxId: sender.id, subject: "nobody", sendAt: inSeconds(3600) });
    expect(error.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "to" });
  });

  it("absent sendAt leaves the schedule, an explicit null unschedules, and drafts(sendStatus:) lists by state", async () => {
    const draft = await create({
      to: [target.email],
      subject: unique("unschedule"),
      sendAt: inSeconds(3600),
    });
    expect(draft.sendStatus).toBe("SCHEDULED");
    const renamed = (
      await ok(server, UPDATE, { input: { id: draft.id, subject: "renamed" } }, { key: org.apiKey })
    ).updateDraft.draft;
    expect(renamed).toMatchObject({ sendStatus: "SCHEDULED", sendAt: draft.sendAt });
    const jobs = () =>
      database.db
        .selectFrom("graphile_worker.jobs" as any)
        .select("key" as any)
        .where("key" as any, "=", `send-scheduled-draft:${org.organizationId}:${rowId(draft.id)}`)
        .execute();
    // Moved: the pending job is replaced, not doubled.
    await ok(server, UPDATE, { input: { id: draft.id, sendAt: inSeconds(7200) } }, { key: org.apiKey });
    expect(await jobs()).toHaveLength(1);
    const list = async (status: string) =>
      (
        await ok(
          server,
          `query($s: DraftSendStatus) { drafts(inboxId: "${sender.id}", sendStatus: $s) { edges { node { id } } } }`,
          { s: status },
          { key: org.apiKey },
        )
      ).drafts.edges.map((edge: any) => edge.node.id);
    expect(await list("SCHEDULED")).toContain(draft.id);
    const unscheduled = (
      await ok(server, UPDATE, { input: { id: draft.id, sendAt: null } }, { key: org.apiKey })
    ).updateDraft.draft;
    expect(unscheduled).toMatchObject({ sendStatus: "DRAFT", sendAt: null });
    expect(await jobs()).toHaveLength(0);
    expect(await list("SCHEDULED")).not.toContain(draft.id);
    expect(await list("DRAFT")).toContain(draft.id);
  });
});

describe("the scheduled send", () => {
  it("sends at sendAt, once, emits MESSAGE_SENT, and leaves the draft SENT (no longer editable)", async () => {
    const subject = unique("on-time");
    const draft = await create({ to: [target.email], subject, text: "at last", sendAt: inSeconds(2) });
    expect(draft.sendStatus).toBe("SCHEDULED");
    expect((await copies(subject)).sent).toHaveLength(0);
    await statusBecomes(draft.id, "SENT");
    const { sent, delivered } = await deliveredOnce(subject);
    expect(sent).toHaveLength(1);
    expect(delivered).toHaveLength(1);
    const events = await database.db
      .selectFrom("events")
      .select("type")
      .where("message_id", "=", (sent[0] as { id: string }).id)
      .where("type", "=", "MESSAGE_SENT")
      .execute();
    expect(events).toHaveLength(1);
    const error = await failure(UPDATE, { id: draft.id, subject: "too late" });
    expect(error.extensions.code).toBe("CONFLICT");
    const again = await failure(SEND_DRAFT, { id: draft.id });
    expect(again.extensions.code).toBe("CONFLICT");
  });

  it("a refused send leaves the draft FAILED with its reason", async () => {
    const draft = await create({
      to: [`nobody-${suffix}@mailroom.localhost`],
      subject: unique("doomed"),
      sendAt: inSeconds(1),
    });
    const failed = await statusBecomes(draft.id, "FAILED");
    expect(failed.failureReason).toMatch(/no inbox/);
    // A failed draft can be fixed and scheduled again.
    const fixed = (
      await ok(
        server,
        UPDATE,
        { input: { id: draft.id, to: [target.email], sendAt: inSeconds(1) } },
        { key: org.apiKey },
      )
    ).updateDraft.draft;
    expect(fixed).toMatchObject({ sendStatus: "SCHEDULED", failureReason: null });
    await statusBecomes(draft.id, "SENT");
  });

  it("sendDraft of a scheduled draft sends it now, and the schedule sends nothing more", async () => {
    const subject = unique("by-hand");
    const draft = await create({ to: [target.email], subject, sendAt: inSeconds(2) });
    await ok(server, SEND_DRAFT, { input: { id: draft.id } }, { key: org.apiKey });
    await sleep(3000);
    const { sent, delivered } = await deliveredOnce(subject);
    expect(sent).toHaveLength(1);
    expect(delivered).toHaveLength(1);
  });

  it("replyAll and forwardOf shape what is sent", async () => {
    const original = await deliver(database.db, sender.id, {
      from: target.email,
      to: [sender.email, cc.email],
      subject: unique("thread"),
    });
    const reply = await create({
      inReplyToMessageId: original.id,
      replyAll: true,
      text: "to all",
      sendAt: inSeconds(1),
    });
    expect(reply).toMatchObject({ replyAll: true, inReplyTo: { id: original.id } });
    await statusBecomes(reply.id, "SENT");
    const [message] = await database.db
      .selectFrom("messages")
      .select(["to_addresses", "cc_addresses", "subject", "in_reply_to"])
      .where(
        "id",
        "=",
        (
          await database.db
            .selectFrom("drafts")
            .select("sent_message_id")
            .where("id", "=", rowId(reply.id))
            .executeTakeFirstOrThrow()
        ).sent_message_id as string,
      )
      .execute();
    expect(message?.to_addresses).toEqual([target.email]);
    expect(message?.cc_addresses).toEqual([cc.email]);
    expect(message?.subject).toMatch(/^Re: /);
    const forward = await create({ forwardOfMessageId: original.id, to: [cc.email], sendAt: inSeconds(1) });
    expect(forward.forwardOf).toEqual({ id: original.id });
    await statusBecomes(forward.id, "SENT");
    const raw = await database.db
      .selectFrom("messages")
      .select(["raw_mime", "subject"])
      .where(
        "id",
        "=",
        (
          await database.db
            .selectFrom("drafts")
            .select("sent_message_id")
            .where("id", "=", rowId(forward.id))
            .executeTakeFirstOrThrow()
        ).sent_message_id as string,
      )
      .executeTakeFirstOrThrow();
    expect(raw.subject).toMatch(/^Fwd: /);
    expect(raw.raw_mime?.toString("latin1")).toContain("message/rfc822");
  });

  it("is sent once when the server is stopped before its time and started after it", async () => {
    const subject = unique("restart");
    const draft = await create({ to: [target.email], subject, sendAt: inSeconds(3) });
    // Only this node may send it: the other one stops too.
    await Promise.all([server.stop(), second.stop()]);
    await sleep(4000);
    expect((await copies(subject)).sent).toHaveLength(0);
    await replaceServer();
    Object.assign(second, await startTestServer(database.url, CONFIG));
    await statusBecomes(draft.id, "SENT");
    const { sent, delivered } = await deliveredOnce(subject);
    expect(sent).toHaveLength(1);
    expect(delivered).toHaveLength(1);
  });

  it("is sent exactly once with two nodes on one database", async () => {
    const subjects = Array.from({ length: 6 }, () => unique("two-nodes"));
    const drafts = await Promise.all(
      subjects.map((subject, index) =>
        ok(
          index % 2 === 0 ? server : second,
          CREATE,
          { input: { inboxId: sender.id, to: [target.email], subject, sendAt: inSeconds(2) } },
          { key: org.apiKey },
        ),
      ),
    );
    for (const data of drafts) await statusBecomes(data.createDraft.draft.id, "SENT");
    for (const subject of subjects) {
      const { sent, delivered } = await deliveredOnce(subject);
      expect(sent, subject).toHaveLength(1);
      expect(delivered, subject).toHaveLength(1);
    }
  });
});
