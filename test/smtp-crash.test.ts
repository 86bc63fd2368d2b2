// Crash safety of inbound SMTP: the server runs as a child process (`npm start`'s command), 40
// senders deliver at once, the server is killed with SIGKILL partway, and after a restart every
// message that got its `250` is stored exactly once; senders that got none retry, and then all
// 40 are stored exactly once.
import { randomBytes } from "node:crypto";
import net from "node:net";
import { afterAll, expect, it } from "vitest";
import { createInboxViaApi, createOrganization } from "./helpers/factories.ts";
import { type ServerProcess, startServerProcess } from "./helpers/process.ts";
import { smtpTransport } from "./helpers/smtp.ts";
import { databaseSuite } from "./helpers/suite.ts";

const SENDERS = 40;
/** The kill comes once this many messages were acknowledged: partway through the burst. */
const KILL_AFTER = 12;

const database = databaseSuite();
const children: ServerProcess[] = [];

afterAll(async () => {
  for (const child of children) {
    if (child.child.exitCode === null && child.child.signalCode === null) {
      child.child.kill("SIGKILL");
      await child.exited;
    }
  }
});

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function start(smtpPort: number) {
  const child = await startServerProcess({ DATABASE_URL: database.url, SMTP_PORT: String(smtpPort) });
  children.push(child);
  return child;
}

async function storedCounts(messageIds: string[]): Promise<Map<string, number>> {
  const rows = await database.db
    .selectFrom("messages")
    .select(["message_id_header"])
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .where("message_id_header", "in", messageIds)
    .groupBy("message_id_header")
    .execute();
  return new Map(rows.map((row) => [row.message_id_header, Number(row.count)]));
}

it("stores every acknowledged message exactly once across a kill -9 and a restart", async () => {
  const smtpPort = await freePort();
  let server = await start(smtpPort);
  const org = await createOrganization(database.db, "Crash");
  const inbox = await createInboxViaApi(server, org.apiKey, { username: "crash" });

  const run = randomBytes(4).toString("hex");
  const messages = Array.from({ length: SENDERS }, (_, i) => ({
    messageId: `<crash-${run}-${i}@sender.test>`,
    date: new Date(Date.UTC(2026, 11, 1, 9, 0, i)),
    // Large enough that storing takes a while, so the kill lands on messages in every stage.
    attachment: randomBytes(150_000 + i * 1_000),
  }));
  const sendOne = async (i: number) => {
    const message = messages[i] as (typeof messages)[number];
    const transport = smtpTransport(smtpPort);
    try {
      const info = await transport.sendMail({
        from: `sender${i}@sender.test`,
        to: inbox.email,
        subject: `Crash test ${i}`,
        text: `Message ${i}`,
        messageId: message.messageId,
        // A retry is the same message: nodemailer composes it anew, so its Date is given.
        date: message.date,
        attachments: [{ filename: `data-${i}.bin`, content: message.attachment }],
      });
      return /^250 /.test(info.response);
    } catch {
      return false;
    } finally {
      transport.close();
    }
  };

  let acknowledged = 0;
  const killed = server.exited;
  const results = await Promise.all(
    messages.map(async (_, i) => {
      // Senders start within a second of each other, as a burst of real traffic would.
      await new Promise((resolve) => setTimeout(resolve, i * 20));
      const ok = await sendOne(i);
      if (ok && ++acknowledged === KILL_AFTER) server.child.kill("SIGKILL");
      return ok;
    }),
  );
  await killed;
  expect(server.child.signalCode).toBe("SIGKILL");

  const accepted = messages.filter((_, i) => results[i]).map((m) => m.messageId);
  const refused = messages.filter((_, i) => !results[i]).map((m) => m.messageId);
  expect(accepted.length).toBeGreaterThanOrEqual(KILL_AFTER);
  expect(refused.length).toBeGreaterThan(0); // the kill did land partway

  server = await start(smtpPort);
  // Every acknowledged message survived the kill, once; an unacknowledged one may have committed
  // just before it (its 250 lost on the way), but never twice.
  const afterCrash = await storedCounts(messages.map((m) => m.messageId));
  for (const id of accepted) expect(afterCrash.get(id), id).toBe(1);
  for (const id of refused) expect(afterCrash.get(id) ?? 0, id).toBeLessThanOrEqual(1);

  // Senders retry what was not acknowledged (and two re-send what was, as if their 250 was lost).
  const retried = [...refused, ...accepted.slice(0, 2)];
  const retries = await Promise.all(
    retried.map((id) => sendOne(messages.findIndex((m) => m.messageId === id))),
  );
  expect(retries.every(Boolean)).toBe(true);
  const afterRetries = await storedCounts(messages.map((m) => m.messageId));
  for (const message of messages) expect(afterRetries.get(message.messageId), message.messageId).toBe(1);

  // And the attachments are whole.
  const stored = await database.db
    .selectFrom("attachments")
    .innerJoin("messages", (join) =>
      join
        .onRef("messages.org_id", "=", "attachments.org_id")
        .onRef("messages.id", "=", "attachments.message_id"),
    )
    .select(["messages.message_id_header", "attachments.content"])
    .where(
      "messages.message_id_header",
      "in",
      messages.map((m) => m.messageId),
    )
    .execute();
  expect(stored).toHaveLength(SENDERS);
  for (const row of stored) {
    const sent = messages.find((m) => m.messageId === row.message_id_header);
    expect(row.content.equals(sent?.attachment as Buffer), row.message_id_header).toBe(true);
  }

  server.child.kill("SIGTERM");
  expect(await server.exited).toBe(0);
}, 180_000);
