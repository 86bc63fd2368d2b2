// Inbound mail while the database is away: the server reaches its database through a TCP proxy the
// test owns (test/helpers/tcp-proxy.ts), which closes every connection and refuses new ones (the
// database is down) or holds every byte (it hangs), then brings it back. SMTP must answer 4xx,
// never 250 for mail that is not stored and never 550 because a lookup failed, and answer within
// MAIL_STORE_TIMEOUT_MS; once the database is back, the sender's retry is stored exactly once.
import { randomBytes } from "node:crypto";
import net from "node:net";
import { decodeGlobalID } from "@pothos/plugin-relay";
import { sql } from "kysely";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DatabaseTimeout } from "../src/inbound/deadline.ts";
import { ingestMessage } from "../src/inbound/ingest.ts";
import { createTestDatabase, holdOrganization, type TestDatabase } from "./helpers/database.ts";
import { createInboxViaApi, createOrganization } from "./helpers/factories.ts";
import { storedCount } from "./helpers/reads.ts";
import { ok, startTestServer, type TestServer } from "./helpers/server.ts";
import { compose, SmtpDialogue } from "./helpers/smtp.ts";
import { databaseSuite, serverOn, tenantFixture } from "./helpers/suite.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";

/** The server's MAIL_STORE_TIMEOUT_MS: short, so that waiting for it stays quick. */
const BOUND = 1_500;
/** Time allowed past the bound for the reply to go out (a loaded CI machine). */
const SLACK = 1_500;

const unique = (label: string) => `${label}-${randomBytes(4).toString("hex")}`;

const database = databaseSuite();
let proxy: TcpProxy;
beforeAll(async () => {
  proxy = await TcpProxy.start(database.url);
});
afterAll(() => proxy?.close());
// The server reaches its database through the proxy; the tests read and write it beside the proxy.
const server = serverOn(
  database,
  () => ({ databaseUrl: proxy.url(database.url), mailStoreTimeoutMs: BOUND, workerPollIntervalMs: 200 }),
  { smtpPort: 0 },
);
const {
  org,
  inboxes: { box: inbox },
} = tenantFixture({ database, server }, { name: "Away", inboxes: { box: { username: unique("box") } } });
let port: number;

/** Whether the proxy is down (refusing connections) rather than paused or passing. */
let down = false;

async function takeDown(): Promise<void> {
  await proxy.down();
  down = true;
}

/** The database back, whether it was down or paused. */
async function bringBack(): Promise<void> {
  if (down) await proxy.up();
  down = false;
  proxy.resume();
}

beforeAll(() => {
  port = server.smtpPort as number;
});

afterEach(async () => {
  // A failed test must not leave the next one without its database.
  await bringBack();
});

afterAll(async () => {
  if (proxy) await bringBack();
});

async function message(label: string) {
  const messageId = `<${unique(label)}@sender.test>`;
  const raw = await compose({
    from: "alice@sender.test",
    to: inbox.email,
    subject: label,
    text: "Please keep this.",
    messageId,
    date: new Date("2026-12-01T10:00:00Z"),
  });
  return { messageId, raw };
}

/** A session that has said EHLO and MAIL FROM. */
async function session(): Promise<SmtpDialogue> {
  const { session, greeting } = await SmtpDialogue.open(port);
  expect(greeting.code).toBe(220);
  expect((await session.command("EHLO client.test")).code).toBe(250);
  expect((await session.command("MAIL FROM:<alice@sender.test>")).code).toBe(250);
  return session;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work();
  return { value, ms: Date.now() - started };
}

/**
 * Tries `work` again while it fails, as a sender retries: a pooled connection that broke while the
 * database was away fails its first statement once it is back (the pool replaces it then).
 */
async function retrying<T>(work: () => Promise<T>, done: (value: T) => boolean = () => true): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      const value = await work();
      if (done(value) || attempt === 5) return value;
    } catch (error) {
      if (attempt === 5) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The whole transaction, retried after a 451 as a sender would: the reply to the final dot. */
async function deliver(raw: Buffer): Promise<number> {
  return retrying(
    async () => {
      const smtp = await session();
      try {
        const rcpt = await smtp.command(`RCPT TO:<${inbox.email}>`);
        if (rcpt.code !== 250) return rcpt.code;
        return (await smtp.data(raw)).code;
      } finally {
        smtp.close();
      }
    },
    (code) => code !== 451,
  );
}

describe.each([
  ["down", takeDown],
  ["hanging", async () => proxy.pause()],
])("with the database %s", (state, away) => {
  it("answers 451 at RCPT for a hosted address and an unknown one alike, within the bound", async () => {
    const smtp = await session();
    try {
      await away();
      for (const address of [inbox.email, `nobody-${unique("x")}@mailroom.localhost`]) {
        const { value: reply, ms } = await timed(() => smtp.command(`RCPT TO:<${address}>`));
        expect(reply.code, reply.text).toBe(451);
        expect(reply.text).toMatch(/^451 4\.3\.0 /);
        expect(ms).toBeLessThan(BOUND + SLACK);
        console.info(`RCPT with the database ${state}: 451 after ${ms} ms`);
      }
      await bringBack();
      // Back: the lookup that was given up on does not hold up the next.
      expect((await smtp.command(`RCPT TO:<${inbox.email}>`)).code).toBe(250);
    } finally {
      smtp.close();
    }
  });

  it("answers 451 to DATA within the bound, and stores the sender's retry exactly once", async () => {
    const { messageId, raw } = await message(`data-${state}`);
    const smtp = await session();
    try {
      expect((await smtp.command(`RCPT TO:<${inbox.email}>`)).code).toBe(250);
      await away();
      const { value: reply, ms } = await timed(() => smtp.data(raw));
      expect(reply.code, reply.text).toBe(451);
      expect(ms).toBeLessThan(BOUND + SLACK);
      console.info(`DATA with the database ${state}: 451 after ${ms} ms`);
    } finally {
      smtp.close();
    }
    await bringBack();
    // A store that was under way when the database froze may commit now, late: the 451 made no
    // promise either way, and the retry finds it.
    expect(await deliver(raw)).toBe(250);
    expect(await deliver(raw)).toBe(250);
    expect(await storedCount(database, messageId)).toBe(1);
    // And nothing is left stuck: new mail is stored at once.
    const fresh = await message(`after-${state}`);
    const { value: code, ms } = await timed(() => deliver(fresh.raw));
    expect(code).toBe(250);
    expect(ms).toBeLessThan(BOUND);
    expect(await storedCount(database, fresh.messageId)).toBe(1);
  });

  it("fails a delivery between hosted inboxes within the bound, and stores its retry exactly once", async () => {
    const { messageId, raw } = await message(`internal-${state}`);
    const envelope = { mailFrom: "sender@mailroom.localhost", recipients: [inbox.email] };
    await away();
    const { value: outcome, ms } = await timed(() =>
      ingestMessage(server.app.services, envelope, raw).then(
        () => "stored",
        (error: unknown) => error,
      ),
    );
    expect(outcome).not.toBe("stored");
    if (state === "hanging") expect(outcome).toBeInstanceOf(DatabaseTimeout);
    expect(ms).toBeLessThan(BOUND + SLACK);
    await bringBack();
    const retried = await retrying(() => ingestMessage(server.app.services, envelope, raw));
    expect(retried.delivered).toHaveLength(1);
    await ingestMessage(server.app.services, envelope, raw);
    expect(await storedCount(database, messageId)).toBe(1);
  });
});

describe("with a transaction that never returns", () => {
  it("holds up no other organization's mail past the bound, and its own sender's retry is stored once", async () => {
    const other = await createOrganization(database.db, "Neighbour");
    const neighbour = await createInboxViaApi(server, other.apiKey, { username: unique("neighbour") });
    // The first organization's next transaction waits on its row, as one stalled on a connection
    // that stopped answering would, for as long as the test holds it.
    const stalled = await database.db.startTransaction().execute();
    await holdOrganization(stalled, org.organizationId);
    try {
      const stuck = await message("stuck");
      const stuckReply = deliverOnce(inbox.email, stuck.raw);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const theirs = await message("neighbour");
      const replies: number[] = [];
      const started = Date.now();
      for (let attempt = 0; attempt < 4 && replies.at(-1) !== 250; attempt++) {
        replies.push(await deliverOnce(neighbour.email, theirs.raw));
      }
      const ms = Date.now() - started;
      console.info(`beside a stalled transaction: the neighbour got ${replies.join(", ")} within ${ms} ms`);
      expect(replies.at(-1)).toBe(250);
      expect(ms).toBeLessThan(2 * BOUND + SLACK);
      expect(await storedCount(database, theirs.messageId)).toBe(1);
      expect(await stuckReply).toBe(451);
      await stalled.rollback().execute();
      // The stalled one commits now, late; the sender that got 451 tries again.
      expect(await deliver(stuck.raw)).toBe(250);
      expect(await storedCount(database, stuck.messageId)).toBe(1);
    } finally {
      await stalled
        .rollback()
        .execute()
        .catch(() => {});
    }
  });
});

/** One SMTP transaction to `to`: the code of the first refusal, or the reply to the final dot. */
async function deliverOnce(to: string, raw: Buffer): Promise<number> {
  const smtp = await session();
  try {
    const rcpt = await smtp.command(`RCPT TO:<${to}>`);
    return rcpt.code === 250 ? (await smtp.data(raw)).code : rcpt.code;
  } finally {
    smtp.close();
  }
}

describe("delivery jobs when the database goes away just as one ends", () => {
  let jobsDatabase: TestDatabase;
  let jobsProxy: TcpProxy;
  let jobsServer: TestServer;
  /** A relay that accepts and never greets: each attempt ends at its 1 s deadline. */
  const attempts: number[] = [];
  const relay = net.createServer((socket) => {
    attempts.push(Date.now());
    socket.on("error", () => {});
  });

  beforeAll(async () => {
    jobsDatabase = await createTestDatabase();
    jobsProxy = await TcpProxy.start(jobsDatabase.url);
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    jobsServer = await startTestServer(jobsProxy.url(jobsDatabase.url), {
      smtpRelayUrl: `smtp://127.0.0.1:${(relay.address() as net.AddressInfo).port}`,
      // One slot: losing it would stop every relay delivery.
      relayConcurrency: 1,
      relayStepTimeoutMs: 1_000,
      outboundRetryBaseMs: 100,
      workerPollIntervalMs: 100,
    });
  });

  afterAll(async () => {
    await jobsServer?.stop();
    relay.close();
    await jobsProxy?.close();
    await jobsDatabase?.destroy();
  });

  async function relayJob(orgId: string, messageGlobalId: string) {
    const key = `relay-message:${orgId}:${decodeGlobalID(messageGlobalId).id}`;
    const { rows } = await sql<{ attempts: number }>`
      SELECT attempts FROM graphile_worker.jobs WHERE key = ${key}`.execute(jobsDatabase.db);
    return rows[0];
  }

  async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("gets the runner's slot back, and runs the job it held again, once the database is back", async () => {
    const org = await createOrganization(jobsDatabase.db, "Jobs");
    const sender = await createInboxViaApi(jobsServer, org.apiKey, { username: unique("sender") });
    const SEND = "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } } }";
    const send = async (to: string) =>
      (await ok(jobsServer, SEND, { input: { inboxId: sender.id, to: [to] } }, { key: org.apiKey }))
        .sendMessage.message.id as string;

    const first = await send("first@outside.test");
    await until("the first relay attempt", async () => attempts.length === 1);
    // The attempt ends (1 s) while the database is down: graphile-worker cannot record it, and
    // ends that worker for good, its job left locked.
    await jobsProxy.down();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await jobsProxy.up();

    await until("the first message's relay job to run again", async () => {
      const job = await relayJob(org.organizationId, first);
      return (job?.attempts ?? 0) >= 2;
    });
    const second = await send("second@outside.test");
    await until("the second message's relay job to run", async () => {
      const job = await relayJob(org.organizationId, second);
      return (job?.attempts ?? 0) >= 1;
    });
  });
});
