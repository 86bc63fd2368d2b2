// Suppressions (issue 16, part 4; docs/sending.md): a recipient the relay refuses for good (550 at
// RCPT TO, from the relay sink for reject.test) lands on the organization's SEND BLOCK list,
// read-only, with the relay's answer; the next send to it, or to any address on a SEND BLOCK list,
// fails with RECIPIENT_BLOCKED naming the recipients, before anything is stored.
import { decodeGlobalID } from "@pothos/plugin-relay";
import { describe, expect, it } from "vitest";
import { RelaySink } from "./helpers/relay.ts";
import { gql, ok } from "./helpers/server.ts";
import { running, serverSuite, tenantFixture } from "./helpers/suite.ts";
import { until } from "./helpers/wait.ts";

const sink = running(new RelaySink());
const { database, server } = serverSuite(() => ({
  smtpRelayUrl: `smtp://127.0.0.1:${sink.port}`,
  outboundMaxAttempts: 3,
  outboundRetryBaseMs: 50,
  workerPollIntervalMs: 100,
  // A domain a list entry may name (a .localhost address is no entry), so a hosted inbox can be blocked.
  mailDomain: "hosted.example.test",
}));
const suffix = Math.random().toString(36).slice(2, 8);
const {
  org,
  pods,
  inboxes: { sender, hosted },
} = tenantFixture(
  { database, server },
  {
    pods: ["A"],
    inboxes: {
      sender: { pod: "A", username: `supp-sender-${suffix}` },
      hosted: { pod: "A", username: `supp-hosted-${suffix}` },
    },
  },
);

const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } } }`;
const ENTRY_FIELDS = "id entry reason readOnly pod { id } inbox { id }";
const LIST = `query { listEntries(direction: SEND, type: BLOCK, first: 200) { edges { node { ${ENTRY_FIELDS} } } } }`;
const CREATE = `mutation($input: CreateListEntryInput!) { createListEntry(input: $input) { listEntry { ${ENTRY_FIELDS} } } }`;
const DELETE = `mutation($id: ID!) { deleteListEntry(input: { id: $id }) { deletedId } }`;

let counter = 0;
const unique = (label: string) => `${label}-${++counter}-${suffix}`;

async function sendTo(to: string[], subject: string, extra: Record<string, unknown> = {}) {
  return gql(server, SEND, { input: { inboxId: sender.id, to, subject, ...extra } }, { key: org.apiKey });
}

async function storedWithSubject(subject: string) {
  return database.db.selectFrom("messages").select("id").where("subject", "=", subject).execute();
}

async function sendBlocks() {
  return (await ok(server, LIST, {}, { key: org.apiKey })).listEntries.edges.map((edge: any) => edge.node);
}

describe("suppressions after a permanent relay failure", () => {
  it("a 550 adds a read-only SEND BLOCK entry with the reason; the next send is RECIPIENT_BLOCKED and stores nothing", async () => {
    const bounced = `gone-${suffix}@reject.test`;
    const first = await sendTo([bounced, `fine-${suffix}@elsewhere.test`], unique("first"));
    expect(first.body.errors).toBeUndefined();
    const messageId = decodeGlobalID((first.body.data as any).sendMessage.message.id).id;
    await until(async () => {
      const row = await database.db
        .selectFrom("messages")
        .select("delivery_status")
        .where("id", "=", messageId)
        .executeTakeFirstOrThrow();
      return row.delivery_status === "BOUNCED";
    }, 20_000);
    const entry = (await sendBlocks()).find((node: any) => node.entry === bounced);
    expect(entry).toMatchObject({ readOnly: true, pod: null, inbox: null });
    expect(entry.reason).toMatch(/550|No such user/);
    // Only the refused recipient: the one the relay took is not suppressed.
    expect((await sendBlocks()).map((node: any) => node.entry)).not.toContain(
      `fine-${suffix}@elsewhere.test`,
    );

    const subject = unique("second");
    const second = await sendTo([`other-${suffix}@elsewhere.test`], subject, { cc: [bounced.toUpperCase()] });
    expect(second.body.errors?.[0]?.extensions).toMatchObject({
      code: "RECIPIENT_BLOCKED",
      recipients: [bounced],
    });
    expect(await storedWithSubject(subject)).toHaveLength(0);

    // A person may delete it (to try the address again); then the send goes out (and bounces again).
    await ok(server, DELETE, { id: entry.id }, { key: org.apiKey });
    const third = await sendTo([bounced], unique("third"));
    expect(third.body.errors).toBeUndefined();
    // Refused alone (nodemailer then fails the whole send), it is suppressed again.
    await until(
      async () => (await sendBlocks()).some((node: any) => node.entry === bounced && node.readOnly),
      20_000,
    );
  });

  it("every blocked recipient is named, hosted ones too, and nothing is stored", async () => {
    await ok(
      server,
      CREATE,
      { input: { direction: "SEND", type: "BLOCK", entry: hosted.email, reason: "asked not to be mailed" } },
      { key: org.apiKey },
    );
    await ok(
      server,
      CREATE,
      { input: { direction: "SEND", type: "BLOCK", entry: "blocked-domain.test", podId: pods.A } },
      { key: org.apiKey },
    );
    const subject = unique("many");
    const response = await sendTo([hosted.email, `a-${suffix}@elsewhere.test`], subject, {
      bcc: [`someone@blocked-domain.test`],
    });
    expect(response.body.errors?.[0]?.extensions?.code).toBe("RECIPIENT_BLOCKED");
    const recipients = (response.body.errors?.[0]?.extensions?.recipients ?? []) as string[];
    expect([...recipients].sort()).toEqual([hosted.email, "someone@blocked-domain.test"].sort());
    expect(await storedWithSubject(subject)).toHaveLength(0);
  });

  it("createListEntry takes a reason, and never makes a read-only entry", async () => {
    const created = (
      await ok(
        server,
        CREATE,
        {
          input: {
            direction: "SEND",
            type: "BLOCK",
            entry: `person-${suffix}@example.test`,
            reason: "  complained  ",
          },
        },
        { key: org.apiKey },
      )
    ).createListEntry.listEntry;
    expect(created).toMatchObject({ reason: "complained", readOnly: false });
    const readOnly = await gql(
      server,
      CREATE,
      { input: { direction: "SEND", type: "BLOCK", entry: `x-${suffix}@example.test`, readOnly: true } },
      { key: org.apiKey },
    );
    expect(readOnly.body.errors?.length).toBeGreaterThan(0);
    const tooLong = await gql(
      server,
      CREATE,
      {
        input: {
          direction: "SEND",
          type: "BLOCK",
          entry: `y-${suffix}@example.test`,
          reason: "r".repeat(1001),
        },
      },
      { key: org.apiKey },
    );
    expect(tooLong.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });
});
