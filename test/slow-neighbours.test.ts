// Slow neighbours of mail between hosted inboxes: a relay that accepts TCP and never greets (or
// answers a byte at a time, or slowly), and a webhook endpoint that answers 200 and then drips its
// body. Real servers and real sockets: hosted mail must keep arriving promptly while they hold
// their own job slots, and each relay attempt must end at its deadline.
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import net from "node:net";
import { decodeGlobalID } from "@pothos/plugin-relay";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createInboxViaApi, createOrganization, type TestOrganization } from "./helpers/factories.ts";
import { ok, startTestServer, type TestServer } from "./helpers/server.ts";
import { databaseSuite } from "./helpers/suite.ts";

type Mode = "silent" | "drip-rcpt" | "drip-data" | "slow";

interface RelayConnection {
  mode: Mode;
  openedAt: number;
  closedAt?: number;
  /** Bytes the relay wrote while the client waited for the reply that never completes. */
  dripped: number;
}

/**
 * An SMTP relay that misbehaves as told: `silent` never greets; `drip-rcpt` answers RCPT one byte
 * every 100 ms and never ends the line; `drip-data` does the same after the message data; `slow`
 * answers every command fully but 450 ms late.
 */
class BadRelay {
  mode: Mode = "silent";
  readonly connections: RelayConnection[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private server = net.createServer((socket) => this.serve(socket));
  port = 0;

  async start() {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async stop() {
    for (const timer of this.timers) clearInterval(timer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  open(): RelayConnection[] {
    return this.connections.filter((connection) => connection.closedAt === undefined);
  }

  private serve(socket: net.Socket) {
    const connection: RelayConnection = { mode: this.mode, openedAt: Date.now(), dripped: 0 };
    this.connections.push(connection);
    this.sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => {
      connection.closedAt = Date.now();
      this.sockets.delete(socket);
    });
    if (connection.mode === "silent") return;
    const reply = (text: string) => {
      const send = () => {
        if (!socket.destroyed) socket.write(`${text}\r\n`);
      };
      if (connection.mode === "slow") setTimeout(send, 450);
      else send();
    };
    const drip = () => {
      const timer = setInterval(() => {
        if (socket.destroyed) return clearInterval(timer);
        socket.write(connection.dripped === 0 ? "2" : "5");
        connection.dripped++;
      }, 100);
      this.timers.add(timer);
      socket.once("close", () => clearInterval(timer));
    };
    reply("220 relay.test ESMTP");
    let buffer = "";
    let inData = false;
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("latin1");
      for (;;) {
        if (inData) {
          const end = buffer.indexOf("\r\n.\r\n");
          if (end === -1) return;
          buffer = buffer.slice(end + 5);
          inData = false;
          if (connection.mode === "drip-data") drip();
          else reply("250 2.0.0 queued");
          continue;
        }
        const eol = buffer.indexOf("\r\n");
        if (eol === -1) return;
        const line = buffer.slice(0, eol).toUpperCase();
        buffer = buffer.slice(eol + 2);
        if (line.startsWith("EHLO") || line.startsWith("HELO")) reply("250 relay.test");
        else if (line.startsWith("RCPT") && connection.mode === "drip-rcpt") drip();
        else if (line.startsWith("DATA")) {
          inData = true;
          reply("354 go ahead");
        } else if (line.startsWith("QUIT")) reply("221 bye");
        else reply("250 ok");
      }
    });
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const unique = (label: string) => `${label}-${randomBytes(4).toString("hex")}`;
const rowId = (globalId: string) => decodeGlobalID(globalId).id;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id messageId } } }`;

const database = databaseSuite();

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function sentRow(messageGlobalId: string) {
  return database.db
    .selectFrom("messages")
    .select(["delivery_status", "delivery_error", "message_id_header"])
    .where("id", "=", rowId(messageGlobalId))
    .executeTakeFirstOrThrow();
}

/** The copy of `messageIdHeader` in the inbox with this row id, once it is stored. */
async function copyIn(inboxRowId: string, messageIdHeader: string) {
  return database.db
    .selectFrom("messages")
    .select("id")
    .where("inbox_id", "=", inboxRowId)
    .where("message_id_header", "=", messageIdHeader)
    .where("direction", "=", "INBOUND")
    .executeTakeFirst();
}

describe("hosted mail beside a relay that never greets and a webhook endpoint that drips", () => {
  const relay = new BadRelay();
  let server: TestServer;
  let org: TestOrganization;
  let drip: Server;
  let dripUrl: string;
  /** Webhook requests the endpoint holds open. */
  let held = 0;

  beforeAll(async () => {
    await relay.start();
    drip = createServer((request, response) => {
      request.resume();
      held++;
      response.writeHead(200, { "content-type": "text/plain" });
      const timer = setInterval(() => response.write("."), 1000);
      response.on("close", () => {
        held--;
        clearInterval(timer);
      });
    });
    await new Promise<void>((resolve) => drip.listen(0, "127.0.0.1", resolve));
    dripUrl = `http://127.0.0.1:${(drip.address() as net.AddressInfo).port}/hook`;
    server = await startTestServer(database.url, {
      smtpRelayUrl: `smtp://127.0.0.1:${relay.port}`,
      allowPrivateWebhookUrls: true,
      workerPollIntervalMs: 100,
      // Two slots each: the stuck relay and the dripping endpoint fill theirs at once.
      hostedDeliveryConcurrency: 2,
      relayConcurrency: 2,
      webhookConcurrency: 2,
      workerConcurrency: 2,
      // Long enough that every stuck attempt outlasts the measurement.
      relayStepTimeoutMs: 15_000,
      relayAttemptTimeoutMs: 20_000,
      webhookTimeoutMs: 20_000,
      outboundRetryBaseMs: 60_000,
    });
    org = await createOrganization(database.db, "Neighbours");
  });

  afterAll(async () => {
    drip?.closeAllConnections();
    await server?.stop();
    drip?.close();
    await relay.stop();
  });

  /** Sends hosted mail one message at a time; each latency is from the send's answer to arrival. */
  async function hostedLatencies(from: { id: string }, to: { id: string; email: string }, count: number) {
    const latencies: number[] = [];
    for (let i = 0; i < count; i++) {
      const sent = (
        await ok(
          server,
          SEND,
          { input: { inboxId: from.id, to: [to.email], subject: `Hosted ${i}`, text: "hello" } },
          { key: org.apiKey },
        )
      ).sendMessage.message;
      const started = Date.now();
      await until("the hosted copy", () => copyIn(rowId(to.id), sent.messageId));
      latencies.push(Date.now() - started);
    }
    return latencies;
  }

  const summary = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { median: sorted[Math.floor(sorted.length / 2)] as number, max: sorted.at(-1) as number };
  };

  it("delivers between hosted inboxes as promptly as without them", async () => {
    const sender = await createInboxViaApi(server, org.apiKey, { username: unique("sender") });
    const receiver = await createInboxViaApi(server, org.apiKey, { username: unique("receiver") });
    const alone = await hostedLatencies(sender, receiver, 10);

    // The neighbours: mail for outside that the relay never greets, and two webhooks on every
    // message received whose endpoint never finishes its answer (a webhook's deliveries go one at
    // a time, so it takes two to fill two slots).
    for (let i = 0; i < 2; i++) {
      await ok(
        server,
        "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }",
        { input: { url: `${dripUrl}/${i}`, eventTypes: ["MESSAGE_RECEIVED"] } },
        { key: org.apiKey },
      );
    }
    for (let i = 0; i < 6; i++) {
      await ok(
        server,
        SEND,
        { input: { inboxId: sender.id, to: [`someone${i}@outside.test`], subject: `Out ${i}` } },
        { key: org.apiKey },
      );
    }
    // Mail received now makes the webhook's deliveries.
    await hostedLatencies(sender, receiver, 3);
    await until("the relay slots to fill", async () => (relay.open().length >= 2 ? true : undefined));
    await until("the webhook slots to fill", async () => (held >= 2 ? true : undefined));

    const beside = await hostedLatencies(sender, receiver, 10);
    // Still stuck, both of them, all along.
    expect(relay.open().length).toBe(2);
    expect(held).toBe(2);
    const report = { alone: summary(alone), besideStuckRelayAndDrippingWebhook: summary(beside) };
    console.info(`hosted delivery latency (ms): ${JSON.stringify(report)}`);
    // A shared pool of slots would make them wait for a stuck attempt's 15 s deadline.
    expect(report.besideStuckRelayAndDrippingWebhook.max).toBeLessThan(2_000);
  });
});

describe("relay deadlines", () => {
  const relay = new BadRelay();
  let server: TestServer;
  let org: TestOrganization;
  let sender: { id: string; email: string };
  const STEP = 1_000;
  const DATA = 1_500;
  const ATTEMPT = 2_500;
  /** Time allowed past a deadline for the job to notice and close (a loaded CI machine). */
  const SLACK = 1_200;

  beforeAll(async () => {
    await relay.start();
    server = await startTestServer(database.url, {
      smtpRelayUrl: `smtp://127.0.0.1:${relay.port}`,
      workerPollIntervalMs: 100,
      relayStepTimeoutMs: STEP,
      relayDataTimeoutMs: DATA,
      relayAttemptTimeoutMs: ATTEMPT,
      // One attempt: its failure settles the message, which the tests read.
      outboundMaxAttempts: 1,
    });
    org = await createOrganization(database.db, "Deadlines");
    sender = await createInboxViaApi(server, org.apiKey, { username: unique("sender") });
  });

  afterAll(async () => {
    await server?.stop();
    await relay.stop();
  });

  async function attempt(mode: Mode) {
    relay.mode = mode;
    const before = relay.connections.length;
    const sent = (
      await ok(
        server,
        SEND,
        { input: { inboxId: sender.id, to: [`${mode}@outside.test`], subject: mode } },
        { key: org.apiKey },
      )
    ).sendMessage.message;
    const settled = await until("the message to settle", async () => {
      const row = await sentRow(sent.id);
      return row.delivery_status === "QUEUED" ? undefined : row;
    });
    const connection = relay.connections[before] as RelayConnection;
    await until("the relay connection to close", async () => connection.closedAt);
    return { settled, connection, lifetime: (connection.closedAt as number) - connection.openedAt };
  }

  it.each([
    ["a relay that never greets", "silent", STEP, /greeting never received/i],
    ["a reply to RCPT dripped a byte at a time", "drip-rcpt", STEP, /reply to RCPT took longer than 1000 ms/],
    [
      "a final reply to the data dripped a byte at a time",
      "drip-data",
      DATA,
      /message data took longer than 1500 ms/,
    ],
    [
      "a relay that answers every step in time, but slowly",
      "slow",
      ATTEMPT,
      /attempt took longer than 2500 ms/,
    ],
  ] as const)("ends an attempt on %s at its deadline", async (_name, mode, deadline, reason) => {
    const { settled, connection, lifetime } = await attempt(mode);
    expect(settled.delivery_status).toBe("BOUNCED");
    expect(settled.delivery_error).toMatch(reason);
    expect(lifetime).toBeGreaterThanOrEqual(deadline - 50);
    expect(lifetime).toBeLessThan(deadline + SLACK);
    // A drip keeps the socket busy: an idle timeout alone would never have ended it.
    if (mode.startsWith("drip")) expect(connection.dripped).toBeGreaterThan(5);
    console.info(`relay attempt (${mode}): connection closed after ${lifetime} ms (deadline ${deadline} ms)`);
  });

  it("delivers the hosted copies of a message at once, and settles it when its relay part has", async () => {
    relay.mode = "silent";
    const hosted = await createInboxViaApi(server, org.apiKey, { username: unique("hosted") });
    const sent = (
      await ok(
        server,
        SEND,
        { input: { inboxId: sender.id, to: [hosted.email, "far@outside.test"], subject: "Both" } },
        { key: org.apiKey },
      )
    ).sendMessage.message;
    await until("the hosted copy", () => copyIn(rowId(hosted.id), sent.messageId));
    // The relay part is still trying.
    expect((await sentRow(sent.id)).delivery_status).toBe("QUEUED");
    const settled = await until("the message to settle", async () => {
      const row = await sentRow(sent.id);
      return row.delivery_status === "QUEUED" ? undefined : row;
    });
    expect(settled).toMatchObject({ delivery_status: "BOUNCED" });
    expect(settled.delivery_error).toMatch(/greeting never received/i);
    const events = await database.db
      .selectFrom("events")
      .select("type")
      .where("message_id", "=", rowId(sent.id))
      .orderBy("id")
      .execute();
    expect(events.map((event) => event.type)).toEqual(["MESSAGE_SENT", "MESSAGE_BOUNCED"]);
  });

  it("hands a message to the relay once when its hosted part runs again after a crash", async () => {
    // Slow: the relay part is still under way (about 2.5 s) when the hosted part runs again. On a
    // loaded machine the second run can come after the attempt has ended, which witnesses nothing:
    // then the scenario is played again, a few times at most.
    relay.mode = "slow";
    let witnessed = 0;
    for (let round = 0; round < 5 && witnessed === 0; round++) {
      const before = relay.connections.length;
      const hosted = await createInboxViaApi(server, org.apiKey, { username: unique("again") });
      const sent = (
        await ok(
          server,
          SEND,
          { input: { inboxId: sender.id, to: [hosted.email, "again@outside.test"], subject: "Again" } },
          { key: org.apiKey },
        )
      ).sendMessage.message;
      await until("the hosted copy", () => copyIn(rowId(hosted.id), sent.messageId));
      const jobKey = `relay-message:${org.organizationId}:${rowId(sent.id)}`;
      await until("the relay part to start", async () => (relay.open().length > 0 ? true : undefined));
      // As graphile-worker would after the process died before the hosted job was marked done.
      const { rows: added } = await sql<{ id: string }>`
        SELECT (graphile_worker.add_job('deliver-message', ${JSON.stringify({
          orgId: org.organizationId,
          messageId: rowId(sent.id),
        })}::json)).id::text AS id`.execute(database.db);
      await until("the hosted part to run again", async () => {
        const { rows } =
          await sql`SELECT 1 FROM graphile_worker.jobs WHERE id = ${added[0]?.id}::bigint`.execute(
            database.db,
          );
        return rows.length === 0 ? true : undefined;
      });
      // Adding it again would have replaced its key onto a second job (the running one keeps none).
      const { rows } = await sql<{ keyed: number; unkeyed: number }>`
        SELECT count(*) FILTER (WHERE key = ${jobKey})::int AS keyed, count(*) FILTER (WHERE key IS NULL)::int AS unkeyed
        FROM graphile_worker.jobs WHERE task_identifier = 'relay-message'`.execute(database.db);
      const inFlight = relay.open().length > 0;
      if (inFlight) {
        witnessed++;
        expect(rows).toEqual([{ keyed: 1, unkeyed: 0 }]);
      } else {
        expect(rows[0]?.unkeyed).toBe(0);
      }
      const copies = await database.db
        .selectFrom("messages")
        .select("id")
        .where("inbox_id", "=", rowId(hosted.id))
        .where("message_id_header", "=", sent.messageId)
        .execute();
      expect(copies).toHaveLength(1);
      await until("the message to settle", async () => {
        const row = await sentRow(sent.id);
        return row.delivery_status === "QUEUED" ? undefined : row;
      });
      // One attempt: a second relay job would have made a second connection.
      expect(relay.connections.length - before).toBe(1);
    }
    expect(witnessed).toBe(1);
  }, 120_000);
});
