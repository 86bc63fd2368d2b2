// Download links (docs/downloads.md): `Message.rawUrl` and `Attachment.downloadUrl`, minted through
// GraphQL and fetched with plain HTTP GETs from a real server, for mail that arrived over SMTP or was
// sent through the API. Every rule of the contract: the exact bytes and headers, expiry, the minting
// credential deleted or expired, the message deleted or hidden by a label at download time, forged
// and garbled tokens, other organizations and pods — all answered 404, and nothing else.
import { randomBytes } from "node:crypto";
import http from "node:http";
import { decodeGlobalID } from "@pothos/plugin-relay";
import { beforeAll, describe, expect, it } from "vitest";
import { permissionFix } from "../src/auth/permissions.ts";
import { ConfigError, loadConfig } from "../src/config.ts";
import { linkSigningKey } from "../src/files/service.ts";
import { type DownloadGrant, signToken, verifyToken } from "../src/files/token.ts";
import {
  createInboxViaApi,
  createKey,
  createOrganization,
  createPodViaApi,
  deliver,
} from "./helpers/factories.ts";
import { gql, ok, okCounted } from "./helpers/server.ts";
import { compose, sendRaw } from "./helpers/smtp.ts";
import { wsSubscribe } from "./helpers/subscriptions.ts";
import { serverOn, serverSuite, tenantFixture } from "./helpers/suite.ts";

const TTL_SECONDS = 600;
/** MAX_INLINE_ATTACHMENT_BYTES here: its least, so a small attachment is already too large inline. */
const INLINE_LIMIT = 1024;

const READ = { inboxRead: true, threadRead: true, messageRead: true };

const { database, server } = serverSuite(
  { fileUrlTtlSeconds: TTL_SECONDS, rateLimitPerMinute: 0, maxInlineAttachmentBytes: INLINE_LIMIT },
  { smtpPort: 0 },
);
const {
  org,
  inboxes: { downloads: inbox },
} = tenantFixture(
  { database, server },
  { name: "Downloads", inboxes: { downloads: { username: "downloads" } } },
);
let counter = 0;

const unique = (label: string) => `${label}-${++counter}-${randomBytes(3).toString("hex")}`;

const MESSAGE = `query($id: ID!) { message(id: $id) { id rawUrl size
  attachments { id filename contentType size downloadUrl } } }`;

/** Sends `raw` over SMTP to `to` and returns the stored message as `key` reads it. */
async function receive(raw: Buffer, to = inbox, key = org.apiKey) {
  const messageId = /^Message-ID: (.+)$/im.exec(raw.toString())?.[1]?.trim();
  await sendRaw(server.smtpPort as number, { from: "sender@sender.test", to: [to.email] }, raw);
  const data = await ok(
    server,
    `query($inbox: ID!) { messages(inboxId: $inbox, first: 200) { edges { node { id messageId } } } }`,
    { inbox: to.id },
    { key },
  );
  const found = data.messages.edges.find((edge: any) => edge.node.messageId === messageId);
  if (!found) throw new Error(`message ${messageId} not stored`);
  return readMessage(found.node.id, key);
}

async function readMessage(id: string, key = org.apiKey, options: { cookie?: string } = {}) {
  return (await ok(server, MESSAGE, { id }, options.cookie ? { cookie: options.cookie } : { key })).message;
}

/** A message with one attachment per entry, composed by nodemailer as a sending MTA would. */
async function mailWith(attachments: { filename: string; content: Buffer; contentType?: string }[]) {
  return compose({
    from: "Sender <sender@sender.test>",
    to: inbox.email,
    subject: unique("files"),
    messageId: `<${unique("m")}@sender.test>`,
    text: "See attached.",
    attachments,
  });
}

async function download(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  return { response, status: response.status, bytes: Buffer.from(await response.arrayBuffer()) };
}

async function statusOf(url: string): Promise<number> {
  return (await download(url)).status;
}

/** The token of a link, and the link rebuilt with another token. */
const tokenOf = (url: string) => url.slice(url.lastIndexOf("/") + 1);
const withToken = (url: string, token: string) => `${url.slice(0, url.lastIndexOf("/") + 1)}${token}`;

const THREAD_DELETE = `mutation($id: ID!, $permanent: Boolean) {
  deleteThread(input: { id: $id, permanent: $permanent }) { deletedId } }`;
const UPDATE_LABELS = `mutation($id: ID!, $add: [String!], $remove: [String!]) {
  updateMessage(input: { id: $id, addLabels: $add, removeLabels: $remove }) { message { labels } } }`;

describe("what a link serves", () => {
  it("streams an attachment's exact bytes with its type, length and disposition, and no cache may keep it", async () => {
    // Larger than a slice (256 KiB), so it is read and written in several.
    const content = randomBytes(700 * 1024 + 13);
    const message = await receive(
      await mailWith([{ filename: "report.pdf", content, contentType: "application/pdf" }]),
    );
    const [attachment] = message.attachments;
    expect(attachment.downloadUrl).toMatch(new RegExp(`^${server.url}/files/[A-Za-z0-9_-]+$`));
    const { response, status, bytes } = await download(attachment.downloadUrl);
    expect(status).toBe(200);
    expect(bytes.equals(content)).toBe(true);
    expect(Object.fromEntries(response.headers)).toMatchObject({
      "content-type": "application/pdf",
      "content-length": String(content.length),
      "content-disposition": `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`,
      "cache-control": "private, no-store",
      "x-content-type-options": "nosniff",
      "content-security-policy": "default-src 'none'; sandbox",
      "referrer-policy": "no-referrer",
    });
    // Twice: a link is not used up.
    expect((await download(attachment.downloadUrl)).bytes.equals(content)).toBe(true);
    // HEAD: the same headers, no body.
    const head = await fetch(attachment.downloadUrl, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(content.length));
    expect(Buffer.from(await head.arrayBuffer())).toHaveLength(0);
  });

  it("serves an empty attachment as zero bytes", async () => {
    const message = await receive(await mailWith([{ filename: "empty.txt", content: Buffer.alloc(0) }]));
    const { response, status, bytes } = await download(message.attachments[0].downloadUrl);
    expect(status).toBe(200);
    expect(bytes).toHaveLength(0);
    expect(response.headers.get("content-length")).toBe("0");
  });

  it("names tricky files safely: quotes, backslashes, path separators, non-ASCII, bidirectional overrides", async () => {
    const names = [
      'my "quoted" file.txt',
      "back\\slash.txt",
      "../../etc/passwd",
      "Grüße – 日本語 😀.txt",
      "invoice\u202Etxt.exe",
      "100% (final)*.txt",
    ];
    const message = await receive(
      await mailWith(names.map((filename) => ({ filename, content: Buffer.from(filename) }))),
    );
    const dispositions: Record<string, string> = {};
    for (const attachment of message.attachments) {
      const { response, status, bytes } = await download(attachment.downloadUrl);
      expect(status).toBe(200);
      expect(bytes.toString()).toBe(attachment.filename);
      dispositions[attachment.filename] = response.headers.get("content-disposition") as string;
    }
    expect(dispositions).toEqual({
      'my "quoted" file.txt': `attachment; filename="my _quoted_ file.txt"; filename*=UTF-8''my%20%22quoted%22%20file.txt`,
      "back\\slash.txt": `attachment; filename="back_slash.txt"; filename*=UTF-8''back_slash.txt`,
      "../../etc/passwd": `attachment; filename=".._.._etc_passwd"; filename*=UTF-8''.._.._etc_passwd`,
      "Grüße – 日本語 😀.txt": `attachment; filename="Gr__e _ ___ _.txt"; filename*=UTF-8''${encodeURIComponent("Grüße – 日本語 😀.txt")}`,
      "invoice\u202Etxt.exe": `attachment; filename="invoicetxt.exe"; filename*=UTF-8''invoicetxt.exe`,
      "100% (final)*.txt": `attachment; filename="100_ (final)*.txt"; filename*=UTF-8''100%25%20%28final%29%2A.txt`,
    });
    // What a browser reads back from filename*: the name, minus what was made harmless.
    const decoded = (disposition: string) =>
      decodeURIComponent(disposition.split("filename*=UTF-8''")[1] ?? "");
    expect(decoded(dispositions["Grüße – 日本語 😀.txt"] as string)).toBe("Grüße – 日本語 😀.txt");
    expect(decoded(dispositions['my "quoted" file.txt'] as string)).toBe('my "quoted" file.txt');
  });

  it("never lets a filename start a header of its own (a CRLF smuggled in through RFC 2231 encoding)", async () => {
    const messageId = `<${unique("crlf")}@sender.test>`;
    const raw = Buffer.from(
      [
        "From: sender@sender.test",
        `To: ${inbox.email}`,
        "Subject: crlf",
        `Message-ID: ${messageId}`,
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1"',
        "",
        "--b1",
        "Content-Type: text/plain",
        "",
        "hello",
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Disposition: attachment; filename*=UTF-8''evil%0D%0AX-Injected%3A%20yes%0D%0A%0D%0A.txt",
        "Content-Transfer-Encoding: base64",
        "",
        Buffer.from("payload").toString("base64"),
        "--b1--",
        "",
      ].join("\r\n"),
    );
    const message = await receive(raw);
    const [attachment] = message.attachments;
    expect(attachment.filename).toBe("evil\r\nX-Injected: yes\r\n\r\n.txt");
    const headers = await rawHeaders(attachment.downloadUrl);
    expect(headers.status).toBe(200);
    expect(headers.lines.some((line) => /^x-injected/i.test(line))).toBe(false);
    expect(headers.lines).toContain(
      `Content-Disposition: attachment; filename="evilX-Injected: yes.txt"; filename*=UTF-8''evilX-Injected%3A%20yes.txt`,
    );
    expect(headers.body).toBe("payload");
  });

  it("serves a stored type only when it is a well-formed media type, else application/octet-stream", async () => {
    const message = await receive(
      await mailWith([
        { filename: "a.txt", content: Buffer.from("a"), contentType: "text/plain; charset=utf-8" },
        { filename: "b.html", content: Buffer.from("<script>alert(1)</script>"), contentType: "text/html" },
      ]),
    );
    const types = [];
    for (const attachment of message.attachments) {
      types.push((await download(attachment.downloadUrl)).response.headers.get("content-type"));
    }
    // mailparser keeps the type and moves the charset aside; HTML is served, but as an attachment, sandboxed.
    expect(types).toEqual(["text/plain", "text/html"]);
  });

  it("serves the raw message exactly as it was received, as message/rfc822", async () => {
    const raw = await mailWith([{ filename: "r.bin", content: randomBytes(300 * 1024) }]);
    const message = await receive(raw);
    const { response, status, bytes } = await download(message.rawUrl);
    expect(status).toBe(200);
    const stored = await database.db
      .selectFrom("messages")
      .select("raw_mime")
      .where("id", "=", decodeGlobalID(message.id).id)
      .executeTakeFirstOrThrow();
    expect(bytes.equals(stored.raw_mime as Buffer)).toBe(true);
    expect(bytes.includes(raw.subarray(raw.indexOf("\r\n\r\n")))).toBe(true);
    expect(Object.fromEntries(response.headers)).toMatchObject({
      "content-type": "message/rfc822",
      "content-length": String(bytes.length),
      "content-disposition": `attachment; filename="message.eml"; filename*=UTF-8''message.eml`,
      "cache-control": "private, no-store",
    });
  });

  it("serves the raw form of mail sent through the API, and of a message stored without one", async () => {
    const sent = await ok(
      server,
      `mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id subject rawUrl } } }`,
      { input: { inboxId: inbox.id, to: [inbox.email], subject: "sent here", text: "hello" } },
      { key: org.apiKey },
    );
    const { status, bytes } = await download(sent.sendMessage.message.rawUrl);
    expect(status).toBe(200);
    expect(bytes.toString()).toMatch(/^Subject: sent here\r$/m);

    // A fixture stores no raw form: it is composed again, as forwarding does.
    const bare = await deliver(database.db, inbox.id, { subject: "no raw form", text: "parts only" });
    const recomposed = await download((await readMessage(bare.id)).rawUrl);
    expect(recomposed.status).toBe(200);
    expect(recomposed.bytes.toString()).toMatch(/^Subject: no raw form\r$/m);
    expect(recomposed.response.headers.get("content-length")).toBe(String(recomposed.bytes.length));
  });

  it("is minted only for a caller who may read the message", async () => {
    const message = await receive(await mailWith([{ filename: "m.txt", content: Buffer.from("mint") }]));
    const noRead = await createKey(server, org.apiKey, {
      permissions: { inboxRead: true, threadRead: true },
    });
    const denied = await gql(server, MESSAGE, { id: message.id }, { key: noRead.secret });
    expect(denied.body.data?.message).toBeNull();
    expect(denied.body.errors?.[0]?.extensions).toMatchObject({
      code: "FORBIDDEN",
      requiredPermission: "MESSAGE_READ",
      fix: permissionFix("MESSAGE_READ"),
    });
    const otherOrg = await createOrganization(database.db, "Outsider");
    const foreign = await gql(server, MESSAGE, { id: message.id }, { key: otherOrg.apiKey });
    expect(foreign.body.data?.message).toBeNull();
    expect(foreign.body.errors?.[0]?.extensions).toEqual({ code: "NOT_FOUND" });
  });

  it("is where contentBase64's refusal sends a client, and serves what it refused", async () => {
    const content = randomBytes(INLINE_LIMIT + 1);
    const message = await receive(await mailWith([{ filename: "big.bin", content }]));
    const response = await gql<any>(
      server,
      "query($id: ID!) { message(id: $id) { attachments { contentBase64 downloadUrl } } }",
      { id: message.id },
      { key: org.apiKey },
    );
    const [attachment] = response.body.data.message.attachments;
    expect(attachment.contentBase64).toBeNull();
    expect(response.body.errors?.[0]).toMatchObject({
      message:
        "contentBase64: this response would carry more attachment content than one response may; download it from the attachment's downloadUrl, or fetch fewer attachments per request.",
      extensions: { code: "BAD_USER_INPUT", field: "contentBase64" },
    });
    expect((await download(attachment.downloadUrl)).bytes.equals(content)).toBe(true);
  });

  it("mints a page of links without a statement per link", async () => {
    const box = await createInboxViaApi(server, org.apiKey, { username: unique("page") });
    for (let i = 0; i < 5; i++) {
      await deliver(database.db, box.id, {
        attachments: [{ filename: `${i}.txt`, contentType: "text/plain", content: Buffer.from(`${i}`) }],
      });
    }
    const query = `query($inbox: ID!, $n: Int) { messages(inboxId: $inbox, first: $n) { edges { node { rawUrl
      attachments { downloadUrl } } } } }`;
    const statements = async (n: number) => {
      const { data, statements } = await okCounted(server, query, { inbox: box.id, n }, { key: org.apiKey });
      expect(data.messages.edges).toHaveLength(n);
      return statements;
    };
    expect(await statements(5)).toBe(await statements(1));
  });
});

describe("how long a link works", () => {
  it("works for FILE_URL_TTL_SECONDS after it was minted, then answers 404", async () => {
    const message = await receive(await mailWith([{ filename: "t.txt", content: Buffer.from("time") }]));
    const links = [message.rawUrl, message.attachments[0].downloadUrl];
    const clock = server.app.services.clock;
    clock.advance((TTL_SECONDS - 2) * 1000);
    for (const link of links) expect(await statusOf(link)).toBe(200);
    clock.advance(2000);
    for (const link of links) expect(await statusOf(link)).toBe(404);
    // A fresh link for the same file works again.
    expect(await statusOf((await readMessage(message.id)).rawUrl)).toBe(200);
  });

  it("FILE_URL_TTL_SECONDS defaults to an hour and must be a whole number of seconds from 1", () => {
    expect(loadConfig({}).fileUrlTtlSeconds).toBe(3600);
    expect(loadConfig({ FILE_URL_TTL_SECONDS: "1" }).fileUrlTtlSeconds).toBe(1);
    for (const value of ["0", "-1", "1.5", "soon"]) {
      expect(() => loadConfig({ FILE_URL_TTL_SECONDS: value })).toThrow(ConfigError);
    }
  });
});

describe("the credential that minted a link", () => {
  it("a link stops working when the key that minted it is deleted; other keys' links do not", async () => {
    const message = await receive(await mailWith([{ filename: "k.txt", content: Buffer.from("key") }]));
    const minter = await createKey(server, org.apiKey, { permissions: READ });
    const other = await createKey(server, org.apiKey, { permissions: READ });
    const mine = await readMessage(message.id, minter.secret);
    const theirs = await readMessage(message.id, other.secret);
    for (const link of [mine.rawUrl, mine.attachments[0].downloadUrl]) expect(await statusOf(link)).toBe(200);
    await ok(
      server,
      "mutation($id: ID!) { deleteApiKey(input: { id: $id }) { deletedId } }",
      { id: minter.id },
      {
        key: org.apiKey,
      },
    );
    for (const link of [mine.rawUrl, mine.attachments[0].downloadUrl]) {
      const { response, status, bytes } = await download(link);
      expect(status).toBe(404);
      expect(response.headers.get("cache-control")).toBe("private, no-store");
      expect(bytes.toString()).toBe("Not found.\n");
    }
    for (const link of [theirs.rawUrl, theirs.attachments[0].downloadUrl])
      expect(await statusOf(link)).toBe(200);
  });

  it("a link stops working when the key that minted it expires", async () => {
    const message = await receive(await mailWith([{ filename: "e.txt", content: Buffer.from("expiry") }]));
    // Long enough for the first download to come before it on a busy machine.
    const expiresAt = new Date(Date.now() + 3000);
    const minter = await createKey(server, org.apiKey, {
      permissions: READ,
      expiresAt: expiresAt.toISOString(),
    });
    const mine = await readMessage(message.id, minter.secret);
    expect(await statusOf(mine.attachments[0].downloadUrl)).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, expiresAt.getTime() - Date.now() + 50));
    expect(await statusOf(mine.attachments[0].downloadUrl)).toBe(404);
    expect(await statusOf(mine.rawUrl)).toBe(404);
  });

  it("a person's link stops working when they sign out", async () => {
    const message = await receive(await mailWith([{ filename: "s.txt", content: Buffer.from("session") }]));
    const login = await gql(
      server,
      "mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { user { email } } }",
      { email: org.adminEmail, password: org.adminPassword },
    );
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const theirs = await readMessage(message.id, undefined, { cookie });
    expect(await statusOf(theirs.attachments[0].downloadUrl)).toBe(200);
    await ok(server, "mutation { logout }", {}, { cookie, headers: { "x-graphql-yoga-csrf": "1" } });
    expect(await statusOf(theirs.attachments[0].downloadUrl)).toBe(404);
    expect(await statusOf(theirs.rawUrl)).toBe(404);
  });

  it("a subscriber's links are minted for its own key, not shared with a subscriber of equal visibility", async () => {
    const box = await createInboxViaApi(server, org.apiKey, { username: unique("live") });
    const first = await createKey(server, org.apiKey, { permissions: READ });
    const second = await createKey(server, org.apiKey, { permissions: READ });
    const query = `subscription($inbox: ID) { messageReceived(inboxId: $inbox) { rawUrl attachments { downloadUrl } } }`;
    const subscribers = [
      await wsSubscribe(server.wsUrl, first.secret, query, { inbox: box.id }),
      await wsSubscribe(server.wsUrl, second.secret, query, { inbox: box.id }),
    ];
    try {
      await deliver(database.db, box.id, {
        attachments: [{ filename: "live.txt", contentType: "text/plain", content: Buffer.from("live") }],
      });
      const [a, b] = (await Promise.all(subscribers.map((subscriber) => subscriber.waitFor(1)))).map(
        (received) => received[0],
      );
      const linkA = a.messageReceived.attachments[0].downloadUrl;
      const linkB = b.messageReceived.attachments[0].downloadUrl;
      expect(linkA).not.toBe(linkB);
      expect((await download(linkA)).bytes.toString()).toBe("live");
      await ok(
        server,
        "mutation($id: ID!) { deleteApiKey(input: { id: $id }) { deletedId } }",
        { id: first.id },
        {
          key: org.apiKey,
        },
      );
      expect(await statusOf(linkA)).toBe(404);
      expect(await statusOf(linkB)).toBe(200);
    } finally {
      for (const subscriber of subscribers) await subscriber.dispose();
    }
  });
});

describe("the message behind a link, as it is at download time", () => {
  it("answers 404 once the message is deleted", async () => {
    const message = await receive(await mailWith([{ filename: "d.txt", content: Buffer.from("deleted") }]));
    const thread = (
      await ok(
        server,
        "query($id: ID!) { message(id: $id) { thread { id } } }",
        { id: message.id },
        {
          key: org.apiKey,
        },
      )
    ).message.thread.id;
    await ok(server, THREAD_DELETE, { id: thread, permanent: true }, { key: org.apiKey });
    expect(await statusOf(message.rawUrl)).toBe(404);
    expect(await statusOf(message.attachments[0].downloadUrl)).toBe(404);
  });

  it("answers 404 while a label hides the message from the minting key, and works for a key that may see it", async () => {
    const message = await receive(await mailWith([{ filename: "tr.txt", content: Buffer.from("trash") }]));
    const blind = await createKey(server, org.apiKey, { permissions: READ });
    const seeing = await createKey(server, org.apiKey, { permissions: { ...READ, labelTrashRead: true } });
    const blindLinks = await readMessage(message.id, blind.secret);
    const seeingLinks = await readMessage(message.id, seeing.secret);
    const links = (read: any) => [read.rawUrl, read.attachments[0].downloadUrl];
    for (const link of [...links(blindLinks), ...links(seeingLinks)]) expect(await statusOf(link)).toBe(200);

    await ok(server, UPDATE_LABELS, { id: message.id, add: ["trash"] }, { key: org.apiKey });
    for (const link of links(blindLinks)) expect(await statusOf(link)).toBe(404);
    for (const link of links(seeingLinks)) expect((await download(link)).status).toBe(200);

    // Judged at each download: out of the trash, the blind key's links work again.
    await ok(server, UPDATE_LABELS, { id: message.id, remove: ["trash"] }, { key: org.apiKey });
    for (const link of links(blindLinks)) expect(await statusOf(link)).toBe(200);
  });

  it("a pod key's links work for mail of its own pod", async () => {
    const podId = await createPodViaApi(server, org.apiKey, unique("pod"));
    const podInbox = await createInboxViaApi(server, org.apiKey, { podId, username: unique("pod-box") });
    const podKey = await createKey(server, org.apiKey, { podId });
    const message = await receive(
      await compose({
        from: "sender@sender.test",
        to: podInbox.email,
        subject: "pod",
        messageId: `<${unique("pod")}@sender.test>`,
        attachments: [{ filename: "pod.txt", content: "in the pod" }],
      }),
      podInbox,
      podKey.secret,
    );
    expect((await download(message.attachments[0].downloadUrl)).bytes.toString()).toBe("in the pod");
    expect(await statusOf(message.rawUrl)).toBe(200);
  });
});

describe("tokens nobody minted", () => {
  let link: string;
  let grant: DownloadGrant;

  beforeAll(async () => {
    const message = await receive(await mailWith([{ filename: "f.txt", content: Buffer.from("forge") }]));
    link = message.attachments[0].downloadUrl;
    grant = verifyToken(linkSigningKey(server.app.services.config), tokenOf(link)) as DownloadGrant;
  });

  it("answers 404 for garbled, truncated, extended and made-up tokens, and for any other method", async () => {
    expect(await statusOf(link)).toBe(200);
    const token = tokenOf(link);
    const flipped = (index: number) =>
      token.slice(0, index) + (token[index] === "A" ? "B" : "A") + token.slice(index + 1);
    const variants = [
      token.slice(0, -1),
      token.slice(0, 10),
      `${token}A`,
      `${token}/`,
      flipped(0),
      flipped(5),
      flipped(Math.floor(token.length / 2)),
      flipped(token.length - 1),
      "",
      "..%2F..%2Fetc%2Fpasswd",
      "%00",
      randomBytes(40).toString("base64url"),
      "A".repeat(10_000),
      `${token}?download=1`.replace("?", "%3F"),
    ];
    for (const variant of variants) {
      expect({ variant, status: await statusOf(withToken(link, variant)) }).toEqual({ variant, status: 404 });
    }
    expect(await statusOf(`${server.url}/files`)).toBe(404);
    expect((await download(link, { method: "POST", body: "x" })).status).toBe(404);
    expect((await download(link, { method: "DELETE" })).status).toBe(404);
    expect(await statusOf(link)).toBe(200);
  });

  it("answers 404 for a token signed with another key, even for the caller's own file", async () => {
    expect(await statusOf(withToken(link, signToken(randomBytes(32), grant)))).toBe(404);
    // The same grant signed with the server's key is the link itself.
    const signed = signToken(linkSigningKey(server.app.services.config), grant);
    expect(signed).toBe(tokenOf(link));
  });

  it("means one file: an attachment named with a message it does not belong to is not found", async () => {
    const other = await receive(await mailWith([{ filename: "o.txt", content: Buffer.from("other") }]));
    const key = linkSigningKey(server.app.services.config);
    const attachmentId = decodeGlobalID(other.attachments[0].id).id;
    const mismatched = signToken(key, {
      ...grant,
      target: { ...grant.target, attachmentId } as DownloadGrant["target"],
    });
    expect(await statusOf(withToken(link, mismatched))).toBe(404);
    // With its own message it is a link like any other: the same caller may read it.
    const matched = signToken(key, {
      ...grant,
      target: { kind: "attachment", messageId: decodeGlobalID(other.id).id, attachmentId },
    });
    expect((await download(withToken(link, matched))).bytes.toString()).toBe("other");
  });

  it("cannot be aimed at another organization's attachment: not by editing it, not even when signed", async () => {
    const otherOrg = await createOrganization(database.db, "Other downloads");
    const otherInbox = await createInboxViaApi(server, otherOrg.apiKey, { username: unique("other") });
    const theirs = await receive(
      await compose({
        from: "sender@sender.test",
        to: otherInbox.email,
        subject: "theirs",
        messageId: `<${unique("theirs")}@sender.test>`,
        attachments: [{ filename: "secret.txt", content: "their secret" }],
      }),
      otherInbox,
      otherOrg.apiKey,
    );
    const target = decodeGlobalID(theirs.attachments[0].id).id;
    const messageTarget = decodeGlobalID(theirs.id).id;
    // Their own link works.
    expect((await download(theirs.attachments[0].downloadUrl)).bytes.toString()).toBe("their secret");
    // Our token, re-signed by the server's own key with their attachment as its target: the
    // organization in the token is still ours, and every statement is cut to it.
    const key = linkSigningKey(server.app.services.config);
    const aimed = [
      signToken(key, {
        ...grant,
        target: { kind: "attachment", messageId: messageTarget, attachmentId: target },
      }),
      // Their attachment named with our message: it is not that message's.
      signToken(key, {
        ...grant,
        target: { ...grant.target, attachmentId: target } as DownloadGrant["target"],
      }),
      signToken(key, { ...grant, target: { kind: "raw", messageId: messageTarget } }),
    ];
    for (const token of aimed) expect(await statusOf(withToken(link, token))).toBe(404);
    // And without the server's key, no byte of a token can be changed at all (see the test above).
  });

  it("cannot be aimed outside the minting pod key's pod, even when signed", async () => {
    const podA = await createPodViaApi(server, org.apiKey, unique("pod-a"));
    const podB = await createPodViaApi(server, org.apiKey, unique("pod-b"));
    const inboxA = await createInboxViaApi(server, org.apiKey, { podId: podA, username: unique("a") });
    const inboxB = await createInboxViaApi(server, org.apiKey, { podId: podB, username: unique("b") });
    const keyA = await createKey(server, org.apiKey, { podId: podA });
    const file = {
      attachments: [{ filename: "p.txt", contentType: "text/plain", content: Buffer.from("p") }],
    };
    const inA = await readMessage((await deliver(database.db, inboxA.id, file)).id, keyA.secret);
    const inB = await readMessage((await deliver(database.db, inboxB.id, file)).id);
    const linkA = inA.attachments[0].downloadUrl;
    expect(await statusOf(linkA)).toBe(200);
    const key = linkSigningKey(server.app.services.config);
    const grantA = verifyToken(key, tokenOf(linkA)) as DownloadGrant;
    expect(grantA.scope.podId).toBe(decodeGlobalID(podA).id);
    const aimed = signToken(key, {
      ...grantA,
      target: {
        kind: "attachment",
        messageId: decodeGlobalID(inB.id).id,
        attachmentId: decodeGlobalID(inB.attachments[0].id).id,
      },
    });
    expect(await statusOf(withToken(linkA, aimed))).toBe(404);
    // Nor widened to the organization: the key's own scope now decides, and it is the pod.
    const widened = signToken(key, { ...grantA, scope: { ...grantA.scope, podId: null } });
    expect(await statusOf(withToken(linkA, widened))).toBe(404);
  });
});

describe("the link's address", () => {
  /** Another node, on the same database, that builds its links on PUBLIC_URL. */
  const other = serverOn(database, { publicUrl: "https://mail.example.com" });

  it("is built on the origin the request reached: its Host header, and https behind a proxy that says so", async () => {
    const message = await receive(await mailWith([{ filename: "h.txt", content: Buffer.from("host") }]));
    const viaProxy = await rawRequest("POST", "/graphql", {
      host: "mail.example.test:8443",
      "x-forwarded-proto": "https",
      authorization: `Bearer ${org.apiKey}`,
      "content-type": "application/json",
      body: JSON.stringify({ query: MESSAGE, variables: { id: message.id } }),
    });
    const url: string = JSON.parse(viaProxy.body).data.message.attachments[0].downloadUrl;
    expect(url).toMatch(/^https:\/\/mail\.example\.test:8443\/files\/[A-Za-z0-9_-]+$/);
    // The same token on this server's own address works: it is bound to no host.
    expect((await download(withToken(message.rawUrl, tokenOf(url)))).bytes.toString()).toBe("host");
  });

  it("refuses a Host header that is not a host name (no link is made of it)", async () => {
    const message = await receive(await mailWith([{ filename: "bad.txt", content: Buffer.from("bad") }]));
    const response = await rawRequest("POST", "/graphql", {
      host: "evil.example@mail.example.test",
      authorization: `Bearer ${org.apiKey}`,
      "content-type": "application/json",
      body: JSON.stringify({
        query: `query($id: ID!) { message(id: $id) { id rawUrl } }`,
        variables: { id: message.id },
      }),
    });
    const body = JSON.parse(response.body);
    expect(body.data.message).toBeNull();
    expect(body.errors[0].extensions.code).toBe("BAD_REQUEST");
  });

  it("is built on PUBLIC_URL when set, and a link minted by one node is served by another", async () => {
    expect(loadConfig({ PUBLIC_URL: "https://mail.example.com/api/" }).publicUrl).toBe(
      "https://mail.example.com/api",
    );
    for (const bad of ["ftp://x", "https://u:p@x", "https://x/?q", "https://x/#f", "x"]) {
      expect(() => loadConfig({ PUBLIC_URL: bad })).toThrow(ConfigError);
    }
    const message = await receive(await mailWith([{ filename: "n.txt", content: Buffer.from("node") }]));
    const data = await ok(other, MESSAGE, { id: message.id }, { key: org.apiKey });
    const url: string = data.message.attachments[0].downloadUrl;
    expect(url).toMatch(/^https:\/\/mail\.example\.com\/files\/[A-Za-z0-9_-]+$/);
    // Both nodes share the server key (DATA_DIR here; WEBHOOK_SECRET_KEY across machines).
    expect((await download(withToken(message.rawUrl, tokenOf(url)))).bytes.toString()).toBe("node");
    expect((await download(`${other.url}/files/${tokenOf(message.attachments[0].downloadUrl)}`)).status).toBe(
      200,
    );
  });
});

/** One request with exactly these headers (fetch will not send a Host of our choosing). */
function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; lines: string[]; body: string }> {
  const { body, ...rest } = headers;
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port, method, path, headers: rest }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const lines: string[] = [];
        for (let i = 0; i < response.rawHeaders.length; i += 2) {
          lines.push(`${response.rawHeaders[i]}: ${response.rawHeaders[i + 1]}`);
        }
        resolve({ status: response.statusCode ?? 0, lines, body: Buffer.concat(chunks).toString() });
      });
    });
    request.on("error", reject);
    request.end(body);
  });
}

/** The response's header lines exactly as sent. */
function rawHeaders(url: string) {
  const { pathname } = new URL(url);
  return rawRequest("GET", pathname, {});
}
