// Reading mail the way agents do: MessageFilter and order on messages and threads, the sender's and
// recipients' display names, every header in order, and the new text of a reply without its quoted
// history, on mail that arrives over real SMTP.
import { beforeAll, describe, expect, it } from "vitest";
import { createKey } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { compose, sendRaw } from "./helpers/smtp.ts";
import { serverOn, serverSuite, tenantFixture } from "./helpers/suite.ts";

const { database, server } = serverSuite({}, { smtpPort: 0 });
const {
  org,
  inboxes: { reader: inbox, elsewhere: other },
} = tenantFixture(
  { database, server },
  {
    pods: ["Reading"],
    inboxes: {
      reader: { pod: "Reading", username: "reader" },
      elsewhere: { pod: "Reading", username: "elsewhere" },
    },
  },
);

/** A query with the organization's key. */
const read = (query: string, variables: Record<string, unknown> = {}) =>
  ok(server, query, variables, { key: org.apiKey });

let counter = 0;
/** Mails `inbox` over SMTP and returns the Message-ID it carried. */
async function mail(to: { email: string }, options: Parameters<typeof compose>[0]): Promise<string> {
  counter++;
  const messageId = `<reading-${counter}@sender.example>`;
  const raw = await compose({
    messageId,
    date: new Date(Date.UTC(2026, 10, 1, 0, counter)),
    ...options,
    to: options.to ?? to.email,
  });
  await sendRaw(server.smtpPort as number, { from: "bounce@sender.example", to: [to.email] }, raw);
  return messageId;
}

const SUBJECTS = `query($filter: MessageFilter, $order: SortOrder, $first: Int, $after: String) {
  inbox(id: "INBOX") { messages(filter: $filter, order: $order, first: $first, after: $after) {
    edges { cursor node { subject } } pageInfo { hasNextPage endCursor } } }
}`;

async function subjects(
  filter: Record<string, unknown> | null,
  extra: Record<string, unknown> = {},
  key = org.apiKey,
) {
  const data = await ok(server, SUBJECTS.replace("INBOX", inbox.id), { filter, ...extra }, { key });
  return data.inbox.messages.edges.map((edge: { node: { subject: string } }) => edge.node.subject);
}

beforeAll(async () => {
  await mail(inbox, {
    from: '"Ann Lee" <ann.lee@customers.example>',
    subject: "Invoice 1042",
    text: "Please pay.",
  });
  await mail(inbox, {
    from: "bob@vendor.example",
    cc: '"Carol Diaz" <carol@vendor.example>',
    subject: "Your 50% discount_code",
    text: "Here it is.",
    attachments: [{ filename: "code.txt", content: "SAVE50" }],
  });
  await mail(inbox, { from: '"ANN LEE" <ann@other.example>', subject: "Lunch?", text: "Tuesday?" });
  await mail(inbox, {
    from: "spammer@spam.example",
    subject: "Invoice 9999 WIN",
    text: "Click.",
    headers: { "X-Spam-Flag": "YES" },
  });
  await mail(other, {
    from: '"Ann Lee" <ann.lee@customers.example>',
    subject: "Invoice elsewhere",
    text: "x",
  });
});

describe("MessageFilter on messages", () => {
  it("matches the sender's address or display name, in any case", async () => {
    expect(await subjects({ from: "ann lee" })).toEqual(["Lunch?", "Invoice 1042"]);
    expect(await subjects({ from: "CUSTOMERS.example" })).toEqual(["Invoice 1042"]);
  });

  it("matches any To or Cc recipient's address or name", async () => {
    expect(await subjects({ to: "carol diaz" })).toEqual(["Your 50% discount_code"]);
    expect(await subjects({ to: "reader@" })).toHaveLength(4);
  });

  it("takes % and _ literally", async () => {
    expect(await subjects({ subject: "50%" })).toEqual(["Your 50% discount_code"]);
    expect(await subjects({ subject: "%" })).toEqual(["Your 50% discount_code"]);
    expect(await subjects({ subject: "t_c" })).toEqual(["Your 50% discount_code"]);
    expect(await subjects({ subject: "_" })).toEqual(["Your 50% discount_code"]);
  });

  it("matches time, attachments and labels, and every condition at once", async () => {
    const [second] = await read(
      `{ inbox(id: "${inbox.id}") { messages(order: OLDEST_FIRST, first: 2) { edges { node { createdAt } } } } }`,
    ).then((d) =>
      d.inbox.messages.edges.slice(1).map((e: { node: { createdAt: string } }) => e.node.createdAt),
    );
    expect(await subjects({ since: second })).toEqual([
      "Invoice 9999 WIN",
      "Lunch?",
      "Your 50% discount_code",
    ]);
    expect(await subjects({ until: second })).toEqual(["Invoice 1042"]);
    expect(await subjects({ hasAttachments: true })).toEqual(["Your 50% discount_code"]);
    expect(await subjects({ hasAttachments: false })).toEqual(["Invoice 9999 WIN", "Lunch?", "Invoice 1042"]);
    expect(await subjects({ labels: ["received"], subject: "invoice", from: "ann" })).toEqual([
      "Invoice 1042",
    ]);
  });

  it("never finds what a hidden label hides, and asking for a hidden label finds nothing", async () => {
    const noSpam = (
      await createKey(server, org.apiKey, { permissions: { messageRead: true, inboxRead: true } })
    ).secret;
    expect(await subjects({ subject: "invoice" }, {}, noSpam)).toEqual(["Invoice 1042"]);
    expect(await subjects({ labels: ["spam"] }, {}, noSpam)).toEqual([]);
    expect(await subjects({ subject: "invoice" })).toEqual(["Invoice 9999 WIN", "Invoice 1042"]);
  });

  it("pages oldest first with cursors that continue the same order", async () => {
    const first = await read(SUBJECTS.replace("INBOX", inbox.id), {
      filter: null,
      order: "OLDEST_FIRST",
      first: 2,
    });
    const page = first.inbox.messages;
    expect(page.edges.map((e: { node: { subject: string } }) => e.node.subject)).toEqual([
      "Invoice 1042",
      "Your 50% discount_code",
    ]);
    expect(page.pageInfo.hasNextPage).toBe(true);
    expect(await subjects(null, { order: "OLDEST_FIRST", after: page.pageInfo.endCursor })).toEqual([
      "Lunch?",
      "Invoice 9999 WIN",
    ]);
  });

  it("filters a pod's messages with Query.messages(podId:)", async () => {
    const data = await read(
      `query($filter: MessageFilter) { messages(filter: $filter) { edges { node { subject inbox { id } } } } }`,
      { filter: { subject: "invoice", from: "ann" } },
    );
    expect(data.messages.edges.map((e: { node: { subject: string } }) => e.node.subject).sort()).toEqual([
      "Invoice 1042",
      "Invoice elsewhere",
    ]);
  });
});

describe("MessageFilter on threads", () => {
  const THREADS = `query($filter: MessageFilter, $order: SortOrder) {
    inbox(id: "INBOX") { threads(filter: $filter, order: $order) { edges { node { subject messageCount } } } } }`;
  const threads = async (filter: Record<string, unknown>, order = "NEWEST_FIRST", key = org.apiKey) =>
    (
      await ok(server, THREADS.replace("INBOX", inbox.id), { filter, order }, { key })
    ).inbox.threads.edges.map((e: { node: { subject: string } }) => e.node.subject);

  it("matches a thread when one of its visible messages meets every condition", async () => {
    expect(await threads({ from: "ann" })).toEqual(["Lunch?", "Invoice 1042"]);
    expect(await threads({ from: "ann" }, "OLDEST_FIRST")).toEqual(["Invoice 1042", "Lunch?"]);
    // Conditions hold on one message, not spread over two.
    expect(await threads({ from: "bob", subject: "lunch" })).toEqual([]);
  });

  it("never matches a thread through a message hidden from the caller", async () => {
    const noSpam = (
      await createKey(server, org.apiKey, { permissions: { threadRead: true, inboxRead: true } })
    ).secret;
    expect(await threads({ subject: "9999" }, "NEWEST_FIRST", noSpam)).toEqual([]);
    expect(await threads({ subject: "9999" })).toEqual(["Invoice 9999 WIN"]);
  });
});

describe("what a message shows", () => {
  it("gives the sender and recipients with their display names", async () => {
    const data = await read(
      `{ inbox(id: "${inbox.id}") { messages(filter: { subject: "discount" }) { edges { node {
        from fromAddress { address name } toAddresses { address name } ccAddresses { address name } } } } } }`,
    );
    expect(data.inbox.messages.edges[0].node).toEqual({
      from: "bob@vendor.example",
      fromAddress: { address: "bob@vendor.example", name: null },
      toAddresses: [{ address: inbox.email, name: null }],
      ccAddresses: [{ address: "carol@vendor.example", name: "Carol Diaz" }],
    });
    const ann = await read(
      `{ inbox(id: "${inbox.id}") { messages(filter: { subject: "1042" }) { edges { node { fromAddress { address name } } } } } }`,
    );
    expect(ann.inbox.messages.edges[0].node.fromAddress).toEqual({
      address: "ann.lee@customers.example",
      name: "Ann Lee",
    });
  });

  it("gives sent mail the names it was sent with", async () => {
    await read("mutation($input: UpdateInboxInput!) { updateInbox(input: $input) { inbox { id } } }", {
      input: { id: inbox.id, displayName: "Reading Desk" },
    });
    const sent = await read(
      `mutation($input: SendMessageInput!) { sendMessage(input: $input) { message {
        fromAddress { address name } toAddresses { address name } headers { name value } } } }`,
      { input: { inboxId: inbox.id, to: [`Other Desk <${other.email}>`], subject: "Names", text: "hi" } },
    );
    expect(sent.sendMessage.message.fromAddress).toEqual({ address: inbox.email, name: "Reading Desk" });
    expect(sent.sendMessage.message.toAddresses).toEqual([{ address: other.email, name: "Other Desk" }]);
    const names = sent.sendMessage.message.headers.map((h: { name: string }) => h.name.toLowerCase());
    expect(names).toEqual(expect.arrayContaining(["from", "to", "subject", "message-id", "date"]));
  });

  it("lists every header in order, unfolded, as received", async () => {
    const raw = Buffer.from(
      [
        "Received: from a.example by b.example;",
        "\tMon, 30 Nov 2026 10:00:00 +0000",
        "X-First: 1",
        "From: dora@sender.example",
        `To: ${inbox.email}`,
        "Subject: Headers",
        "X-First: 2",
        "Message-ID: <headers@sender.example>",
        "",
        "Body.",
        "",
      ].join("\r\n"),
    );
    await sendRaw(server.smtpPort as number, { from: "dora@sender.example", to: [inbox.email] }, raw);
    const data = await read(
      `{ inbox(id: "${inbox.id}") { messages(filter: { subject: "Headers" }) { edges { node { headers { name value } size } } } } }`,
    );
    const node = data.inbox.messages.edges[0].node;
    expect(node.headers).toEqual([
      { name: "Received", value: "from a.example by b.example;\tMon, 30 Nov 2026 10:00:00 +0000" },
      { name: "X-First", value: "1" },
      { name: "From", value: "dora@sender.example" },
      { name: "To", value: inbox.email },
      { name: "Subject", value: "Headers" },
      { name: "X-First", value: "2" },
      { name: "Message-ID", value: "<headers@sender.example>" },
    ]);
    expect(node.size).toBe(raw.length);
  });
});

describe("the new text of a reply", () => {
  /** A node with a small body allowance, on the same database. */
  const small = serverOn(database, { maxInlineBodyBytes: 1024 });
  const CASES: { client: string; text: string; expected: string }[] = [
    {
      client: "Gmail",
      text: "Sounds good, see you then.\n\nOn Mon, Nov 30, 2026 at 10:00 AM Ann Lee <ann@example.com> wrote:\n> Shall we meet at ten?\n>\n> Ann\n",
      expected: "Sounds good, see you then.",
    },
    {
      client: "Outlook (Original Message)",
      text: "Yes, approved.\n\n-----Original Message-----\nFrom: Ann Lee <ann@example.com>\nSent: Monday, November 30, 2026 10:00 AM\nTo: Bob <bob@example.com>\nSubject: Budget\n\nPlease approve the budget.\n",
      expected: "Yes, approved.",
    },
    {
      client: "Outlook (From/Sent block)",
      text: "Yes.\n\n________________________________\nFrom: Ann Lee <ann@example.com>\nSent: Monday, November 30, 2026 10:00\nTo: Bob\nSubject: Budget\n\nPlease approve.\n",
      expected: "Yes.",
    },
    {
      client: "Apple Mail",
      text: "Fine by me.\n\nOn 30 Nov 2026, at 10:00, Ann Lee <ann@example.com> wrote:\n\n> Shall we meet at ten?\n",
      expected: "Fine by me.",
    },
    {
      client: "a signature below the reply",
      text: "Thanks, received.\n\n-- \nBob Smith\nExample Inc.\n",
      expected: "Thanks, received.",
    },
    {
      client: "an inline reply",
      text: "Hi Ann,\n\n> Can you make Tuesday?\nYes, Tuesday works.\n\n> And bring the report?\nI will.\n",
      expected: "Hi Ann,\nYes, Tuesday works.\nI will.",
    },
    {
      client: "a message that quotes nothing",
      text: "Just a note.\nSecond line.",
      expected: "Just a note.\nSecond line.",
    },
  ];

  it.each(CASES)("removes the quoted history of $client", async ({ text, expected }) => {
    const messageId = await mail(inbox, { from: "ann@example.com", subject: `Reply ${counter}`, text });
    const data = await read(
      `{ inbox(id: "${inbox.id}") { messages(first: 1) { edges { node { messageId text extractedText } } } } }`,
    );
    const node = data.inbox.messages.edges[0].node;
    expect(node.messageId).toBe(messageId);
    expect(node.extractedText).toBe(expected);
    expect(node.text.trim()).toBe(text.trim());
  });

  it.each([
    {
      client: "Gmail",
      html: '<div dir="ltr">Sounds good.</div><br><div class="gmail_quote"><div class="gmail_attr">On Mon, Ann wrote:<br></div><blockquote class="gmail_quote">Shall we meet?</blockquote></div>',
      kept: "Sounds good.",
      removed: "Shall we meet?",
    },
    {
      client: "Outlook on the web",
      html: '<div>Yes, approved.</div><hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Ann Lee<br><b>Sent:</b> Monday<br><b>Subject:</b> Budget<div>&nbsp;</div></div><div>Please approve the budget.</div>',
      kept: "Yes, approved.",
      removed: "Please approve the budget.",
    },
    {
      client: "Apple Mail",
      html: '<div>Fine by me.</div><div><br><blockquote type="cite"><div>On 30 Nov 2026, at 10:00, Ann Lee wrote:</div><div>Shall we?</div></blockquote></div>',
      kept: "Fine by me.",
      removed: "Shall we?",
    },
  ])("removes the quoted history of $client HTML", async ({ html, kept, removed }) => {
    await mail(inbox, { from: "ann@example.com", subject: `Html ${counter}`, html });
    const data = await read(
      `{ inbox(id: "${inbox.id}") { messages(first: 1) { edges { node { extractedHtml } } } } }`,
    );
    const extracted = data.inbox.messages.edges[0].node.extractedHtml as string;
    expect(extracted).toContain(kept);
    expect(extracted).not.toContain(removed);
  });

  it("keeps a bottom-posted HTML reply whole rather than lose the author's words", async () => {
    const html =
      '<div class="moz-cite-prefix">On 11/30/26 10:00, Ann wrote:<br></div><blockquote type="cite">Shall we?</blockquote><p>Sure.</p>';
    await mail(inbox, { from: "ann@example.com", subject: "Bottom", html });
    const data = await read(
      `{ inbox(id: "${inbox.id}") { messages(first: 1) { edges { node { extractedHtml } } } } }`,
    );
    expect(data.inbox.messages.edges[0].node.extractedHtml).toContain("Sure.");
  });

  it("counts extracted text against the response's body allowance, like the body", async () => {
    await mail(inbox, { from: "ann@example.com", subject: "Long note", text: "word ".repeat(180) });
    const response = await gql(
      small,
      `{ inbox(id: "${inbox.id}") { messages(filter: { subject: "Long note" }) { edges { node { text extractedText } } } } }`,
      {},
      { key: org.apiKey },
    );
    const refused = response.body.errors?.filter((e) => e.extensions?.code === "BAD_USER_INPUT") ?? [];
    expect(refused.map((e) => e.extensions?.field)).toContain("extractedText");
  });
});
