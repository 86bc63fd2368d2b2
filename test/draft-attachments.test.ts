// Draft attachments (issue 16; docs/sending.md, "Draft attachments"): stored with the draft, replaced
// by updateDraft (an explicit null clears them), read and downloaded like a message's, and sent with
// the draft on every path — sendDraft, the scheduled send, approveDraft — arriving with their bytes,
// filename and type both at the SMTP relay and in a hosted inbox. Also: an approval-bound key that
// repeats a held send with one idempotency key gets the first held draft back, even when 10 race.
import { decodeGlobalID } from "@pothos/plugin-relay";
import { simpleParser } from "mailparser";
import { describe, expect, it } from "vitest";
import { createKey, DELETE_KEY } from "./helpers/factories.ts";
import { RelaySink } from "./helpers/relay.ts";
import { gql, ok, okCounted } from "./helpers/server.ts";
import { running, serverSuite, tenantFixture } from "./helpers/suite.ts";
import { until } from "./helpers/wait.ts";

const TTL_SECONDS = 600;
const sink = running(new RelaySink());
const { database, server } = serverSuite(() => ({
  smtpRelayUrl: `smtp://127.0.0.1:${sink.port}`,
  workerPollIntervalMs: 50,
  fileUrlTtlSeconds: TTL_SECONDS,
  rateLimitPerMinute: 0,
  // Small, so that the test of the limit sends little.
  maxOutboundBytes: 256 * 1024,
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
      sender: { pod: "A", username: `datt-sender-${suffix}` },
      hosted: { pod: "A", username: `datt-hosted-${suffix}` },
    },
  },
);

const ATTACHMENTS = "attachments { id filename contentType size disposition contentBase64 downloadUrl }";
const DRAFT = `id sendStatus subject ${ATTACHMENTS}`;
const CREATE = `mutation($input: CreateDraftInput!) { createDraft(input: $input) { draft { ${DRAFT} } } }`;
const UPDATE = `mutation($input: UpdateDraftInput!) { updateDraft(input: $input) { draft { ${DRAFT} } } }`;
const READ_DRAFT = `query($id: ID!) { draft(id: $id) { ${DRAFT} } }`;
const SEND_DRAFT = `mutation($input: SendDraftInput!) { sendDraft(input: $input) { message { id } } }`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } } }`;
const APPROVE = `mutation($input: ApproveDraftInput!) { approveDraft(input: $input) { message { id } } }`;

let counter = 0;
const unique = (label: string) => `${label}-${++counter}-${suffix}`;

const PDF = Buffer.from("%PDF-1.4\n% not really a pdf, but its bytes must arrive as they are \x00\xff\n");
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 1, 2, 3, 254, 255]);
const files = [
  { filename: "invoice.pdf", contentType: "application/pdf", contentBase64: PDF.toString("base64") },
  { filename: "Grüße.png", contentType: "image/png", contentBase64: PNG.toString("base64") },
];

async function createDraft(input: Record<string, unknown>, key = org.apiKey) {
  return (await ok(server, CREATE, { input: { inboxId: sender.id, ...input } }, { key })).createDraft.draft;
}

/** The attachments of the message with this subject that arrived in the hosted inbox (INBOUND). */
async function deliveredAttachments(subject: string) {
  const row = await until(
    () =>
      database.db
        .selectFrom("messages")
        .select("id")
        .where("subject", "=", subject)
        .where("direction", "=", "INBOUND")
        .where("inbox_id", "=", decodeGlobalID(hosted.id).id)
        .executeTakeFirst(),
    20_000,
  );
  const data = await ok(
    server,
    "query($id: ID!) { message(id: $id) { attachments { filename contentType contentBase64 } } }",
    { id: Buffer.from(`Message:${row.id}`).toString("base64") },
    { key: org.apiKey },
  );
  return data.message.attachments;
}

/** The attachments of the mail with this subject that reached the SMTP relay, parsed. */
async function relayedAttachments(subject: string) {
  const mail = await until(
    () => sink.received.find((received) => received.raw.toString("latin1").includes(subject)),
    20_000,
  );
  const parsed = await simpleParser(mail.raw);
  return parsed.attachments.map((a) => ({
    filename: a.filename,
    contentType: a.contentType,
    content: a.content,
  }));
}

/** Both the relay's copy and the hosted inbox's copy carry exactly `files`. */
async function expectArrived(subject: string) {
  expect(await relayedAttachments(subject)).toEqual([
    { filename: "invoice.pdf", contentType: "application/pdf", content: PDF },
    { filename: "Grüße.png", contentType: "image/png", content: PNG },
  ]);
  expect(await deliveredAttachments(subject)).toEqual([
    { filename: "invoice.pdf", contentType: "application/pdf", contentBase64: PDF.toString("base64") },
    { filename: "Grüße.png", contentType: "image/png", contentBase64: PNG.toString("base64") },
  ]);
}

const outside = () => `${unique("someone")}@elsewhere.test`;

describe("a draft's attachments", () => {
  it("are stored, read like a message's, replaced by updateDraft and cleared by an explicit null", async () => {
    const draft = await createDraft({ subject: unique("stored"), attachments: files });
    expect(draft.attachments).toMatchObject([
      {
        filename: "invoice.pdf",
        contentType: "application/pdf",
        size: PDF.length,
        disposition: "attachment",
      },
      { filename: "Grüße.png", contentType: "image/png", size: PNG.length },
    ]);
    expect(draft.attachments[0].contentBase64).toBe(PDF.toString("base64"));
    expect(decodeGlobalID(draft.attachments[0].id).typename).toBe("DraftAttachment");
    // Its id names no message's attachment (same row number or not) and does not load by id.
    const byId = await gql(
      server,
      "query($id: ID!, $ids: [ID!]!) { node(id: $id) { id } nodes(ids: $ids) { id } }",
      { id: draft.attachments[0].id, ids: [draft.attachments[0].id] },
      { key: org.apiKey },
    );
    expect(byId.body.data).toEqual({ node: null, nodes: [null] });
    expect(byId.body.errors?.map((error) => error.extensions?.code)).toEqual(["NOT_FOUND"]);

    const download = await fetch(draft.attachments[1].downloadUrl);
    expect(download.status).toBe(200);
    expect(download.headers.get("content-type")).toBe("image/png");
    expect(download.headers.get("content-disposition")).toContain("filename*=UTF-8''Gr%C3%BC%C3%9Fe.png");
    expect(Buffer.from(await download.arrayBuffer()).equals(PNG)).toBe(true);

    // Another field changed: the attachments stay.
    const renamed = (
      await ok(server, UPDATE, { input: { id: draft.id, subject: "renamed" } }, { key: org.apiKey })
    ).updateDraft.draft;
    expect(renamed.attachments.map((a: any) => a.filename)).toEqual(["invoice.pdf", "Grüße.png"]);
    // A list replaces them.
    const replaced = (
      await ok(
        server,
        UPDATE,
        { input: { id: draft.id, attachments: [{ filename: "notes.txt", contentBase64: "aGk=" }] } },
        { key: org.apiKey },
      )
    ).updateDraft.draft;
    expect(replaced.attachments).toMatchObject([
      { filename: "notes.txt", contentType: "text/plain", size: 2 },
    ]);
    // The replaced files' links answer 404, like any file that is gone.
    expect((await fetch(draft.attachments[1].downloadUrl)).status).toBe(404);
    // An explicit null clears them.
    const cleared = (
      await ok(server, UPDATE, { input: { id: draft.id, attachments: null } }, { key: org.apiKey })
    ).updateDraft.draft;
    expect(cleared.attachments).toEqual([]);
  });

  it("are bounded like a send's attachments, with BAD_USER_INPUT naming the field", async () => {
    const tooMany = Array.from({ length: 101 }, (_, i) => ({ filename: `${i}.txt`, contentBase64: "aA==" }));
    const cases = [
      tooMany,
      [{ filename: "x.bin", contentBase64: "not base64!" }],
      [{ filename: "", contentBase64: "aA==" }],
      [{ filename: "x.bin", contentType: "not a type", contentBase64: "aA==" }],
      [
        {
          filename: "big.bin",
          contentBase64: Buffer.alloc(server.app.services.config.maxOutboundBytes + 3).toString("base64"),
        },
      ],
    ];
    for (const attachments of cases) {
      const created = await gql(
        server,
        CREATE,
        { input: { inboxId: sender.id, attachments } },
        { key: org.apiKey },
      );
      expect(created.body.errors?.[0]?.extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        field: "attachments",
      });
    }
    const draft = await createDraft({ attachments: [files[0]] });
    const updated = await gql(
      server,
      UPDATE,
      { input: { id: draft.id, attachments: tooMany } },
      { key: org.apiKey },
    );
    expect(updated.body.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "attachments",
    });
    // Nothing changed.
    const now = (await ok(server, READ_DRAFT, { id: draft.id }, { key: org.apiKey })).draft;
    expect(now.attachments.map((a: any) => a.filename)).toEqual(["invoice.pdf"]);
  });

  it("are listed for a page of drafts without a statement per draft", async () => {
    const box = (
      await ok(
        server,
        "mutation($input: CreateInboxInput!) { createInbox(input: $input) { inbox { id } } }",
        { input: { username: unique("page") } },
        { key: org.apiKey },
      )
    ).createInbox.inbox;
    for (let i = 0; i < 5; i++) {
      await ok(
        server,
        CREATE,
        { input: { inboxId: box.id, attachments: [{ filename: `${i}.txt`, contentBase64: "aGk=" }] } },
        { key: org.apiKey },
      );
    }
    const query = `query($inbox: ID!, $n: Int) { drafts(inboxId: $inbox, first: $n) { edges { node { id
      attachments { filename downloadUrl } } } } }`;
    const statements = async (n: number) => {
      const { data, statements } = await okCounted(server, query, { inbox: box.id, n }, { key: org.apiKey });
      expect(data.drafts.edges).toHaveLength(n);
      for (const edge of data.drafts.edges) expect(edge.node.attachments).toHaveLength(1);
      return statements;
    };
    expect(await statements(5)).toBe(await statements(1));
  });
});

describe("every sending path sends a draft's attachments", () => {
  it("sendDraft", async () => {
    const subject = unique("send-draft");
    const draft = await createDraft({ subject, to: [hosted.email, outside()], attachments: files });
    await ok(server, SEND_DRAFT, { input: { id: draft.id } }, { key: org.apiKey });
    await expectArrived(subject);
  });

  it("the scheduled send", async () => {
    const subject = unique("scheduled");
    const draft = await createDraft({
      subject,
      to: [hosted.email, outside()],
      attachments: files,
      sendAt: new Date(Date.now() + 1500).toISOString(),
    });
    expect(draft.sendStatus).toBe("SCHEDULED");
    await expectArrived(subject);
    const sent = (await ok(server, READ_DRAFT, { id: draft.id }, { key: org.apiKey })).draft;
    expect(sent.sendStatus).toBe("SENT");
  });

  it("approveDraft, of a draft an approval-bound key sent and of a send it made with attachments", async () => {
    const bound = (await createKey(server, org.apiKey, { name: unique("bound"), sendRequiresApproval: true }))
      .secret;
    const drafted = unique("bound-draft");
    const draft = await createDraft(
      { subject: drafted, to: [hosted.email, outside()], attachments: files },
      bound,
    );
    const held = await gql(server, SEND_DRAFT, { input: { id: draft.id } }, { key: bound });
    expect(held.body.errors?.[0]?.extensions).toMatchObject({ code: "APPROVAL_REQUIRED", draftId: draft.id });

    const direct = unique("bound-send");
    const sent = await gql(
      server,
      SEND,
      { input: { inboxId: sender.id, to: [hosted.email, outside()], subject: direct, attachments: files } },
      { key: bound },
    );
    expect(sent.body.errors?.[0]?.extensions?.code).toBe("APPROVAL_REQUIRED");
    const heldId = sent.body.errors?.[0]?.extensions?.draftId as string;
    // The held draft shows what will be sent, attachments included.
    const waiting = (await ok(server, READ_DRAFT, { id: heldId }, { key: org.apiKey })).draft;
    expect(waiting.sendStatus).toBe("PENDING_APPROVAL");
    expect(waiting.attachments.map((a: any) => a.contentBase64)).toEqual(files.map((f) => f.contentBase64));

    for (const id of [draft.id, heldId]) await ok(server, APPROVE, { input: { id } }, { key: org.apiKey });
    await expectArrived(drafted);
    await expectArrived(direct);
  });
});

describe("download links to a draft's attachments", () => {
  it("need DRAFT_READ, and answer 404 once the draft or the minting key is deleted", async () => {
    const reader = await createKey(server, org.apiKey, {
      permissions: { draftRead: true, draftCreate: true },
    });
    const draft = await createDraft({ attachments: [files[0]] }, reader.secret);
    const link = draft.attachments[0].downloadUrl as string;
    expect((await fetch(link)).status).toBe(200);
    // A key without DRAFT_READ cannot read the draft, so it gets no link.
    const blind = await createKey(server, org.apiKey, { permissions: { messageRead: true } });
    const denied = await gql(server, READ_DRAFT, { id: draft.id }, { key: blind.secret });
    expect(denied.body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    // Deleting the key that minted the link ends it; the org key's own link still works.
    const own = (await ok(server, READ_DRAFT, { id: draft.id }, { key: org.apiKey })).draft.attachments[0]
      .downloadUrl as string;
    await ok(server, DELETE_KEY, { id: reader.id }, { key: org.apiKey });
    expect((await fetch(link)).status).toBe(404);
    expect((await fetch(own)).status).toBe(200);
    // Deleting the draft ends every link.
    await ok(
      server,
      "mutation($id: ID!) { deleteDraft(input: { id: $id }) { deletedId } }",
      { id: draft.id },
      { key: org.apiKey },
    );
    expect((await fetch(own)).status).toBe(404);
  });

  it("expire after FILE_URL_TTL_SECONDS", async () => {
    const draft = await createDraft({ attachments: [files[1]] });
    const link = draft.attachments[0].downloadUrl as string;
    const clock = server.app.services.clock;
    clock.advance((TTL_SECONDS - 2) * 1000);
    expect((await fetch(link)).status).toBe(200);
    clock.advance(2000);
    expect((await fetch(link)).status).toBe(404);
  });
});

describe("an approval-bound key repeating a held send with one idempotency key", () => {
  it("gets the first held draft back, sequentially and when 10 calls race", async () => {
    const bound = (
      await createKey(server, org.apiKey, { name: unique("bound-idem"), sendRequiresApproval: true })
    ).secret;
    const input = (subject: string, idempotencyKey: string) => ({
      input: { inboxId: sender.id, to: [hosted.email], subject, text: "once", idempotencyKey },
    });
    const heldDrafts = (subject: string) =>
      database.db.selectFrom("drafts").select("id").where("subject", "=", subject).execute();

    const subject = unique("repeat");
    const key = unique("idem");
    const first = await gql(server, SEND, input(subject, key), { key: bound });
    const again = await gql(server, SEND, input(subject, key), { key: bound });
    expect(first.body.errors?.[0]?.extensions?.code).toBe("APPROVAL_REQUIRED");
    expect(again.body.errors?.[0]?.extensions).toEqual(first.body.errors?.[0]?.extensions);
    expect(await heldDrafts(subject)).toHaveLength(1);
    // Another input with the same key is a conflict, as for any send.
    const other = await gql(server, SEND, input(unique("other"), key), { key: bound });
    expect(other.body.errors?.[0]?.extensions?.code).toBe("IDEMPOTENCY_CONFLICT");

    const raced = unique("race");
    const raceKey = unique("race-key");
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => gql(server, SEND, input(raced, raceKey), { key: bound })),
    );
    const answers = responses.map((response) => response.body.errors?.[0]?.extensions);
    for (const answer of answers) expect(answer?.code).toBe("APPROVAL_REQUIRED");
    expect(new Set(answers.map((answer) => answer?.draftId)).size).toBe(1);
    expect(await heldDrafts(raced)).toHaveLength(1);

    // Once approved, a repeat answers with the message it became, and nothing is sent again.
    const draftId = answers[0]?.draftId as string;
    const approved = await ok(server, APPROVE, { input: { id: draftId } }, { key: org.apiKey });
    const after = await ok(server, SEND, input(raced, raceKey), { key: bound });
    expect(after.sendMessage.message.id).toBe(approved.approveDraft.message.id);
  });
});
