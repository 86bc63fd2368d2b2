// Download links stream, measured from outside: the server runs as a child process (as `npm start`
// does) and /proc tells how far its resident set grows while clients download one large attachment at
// once, and how much it reads from the database while a client takes nothing. bench/downloads.ts runs
// the first at full scale (10 clients, 20 MiB).
import { randomBytes } from "node:crypto";
import http from "node:http";
import { beforeAll, describe, expect, it } from "vitest";
import { createInboxViaApi, deliver } from "./helpers/factories.ts";
import { bytesReadMiB, MIB, rssGrowthMiB } from "./helpers/memory.ts";
import { startServerProcess } from "./helpers/process.ts";
import { ok } from "./helpers/server.ts";
import { databaseSuite, organizationFixture, runningFrom } from "./helpers/suite.ts";

const FILE_BYTES = 16 * MIB;
const CLIENTS = 8;
/**
 * A server that read each file whole would hold, per client, at least its hex text from PostgreSQL
 * (twice its size) and its bytes: 8 × 48 MiB = 384 MiB. Streamed, each client holds a slice or two;
 * what the process grows by is mostly V8 making room for the garbage of the slices (its young
 * generation grows under allocation pressure): about 25–45 MiB whatever the number of clients.
 */
const GROWTH_BOUND_MIB = 96;

const database = databaseSuite();
const server = runningFrom(async () => {
  const started = await startServerProcess({ DATABASE_URL: database.url, RATE_LIMIT_PER_MINUTE: "0" });
  return {
    ...started,
    async stop() {
      if (started.child.exitCode !== null) return;
      started.child.kill("SIGTERM");
      await started.exited;
    },
  };
});
const org = organizationFixture(database);
let content: Buffer;
let messageId: string;

beforeAll(async () => {
  const inbox = await createInboxViaApi(server, org.apiKey, { username: "large-files" });
  // Random, like a PDF: PostgreSQL cannot compress it.
  content = randomBytes(FILE_BYTES);
  messageId = (
    await deliver(database.db, inbox.id, {
      attachments: [{ filename: "large.pdf", contentType: "application/pdf", content }],
    })
  ).id;
});

async function link(): Promise<string> {
  const data = await ok(
    server,
    "query($id: ID!) { message(id: $id) { attachments { downloadUrl } } }",
    { id: messageId },
    { key: org.apiKey },
  );
  return data.message.attachments[0].downloadUrl;
}

/** Downloads `url`, checking every byte as it arrives and keeping none. */
async function downloadAndCheck(url: string): Promise<void> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  let offset = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    expect(Buffer.from(chunk).equals(content.subarray(offset, offset + chunk.length))).toBe(true);
    offset += chunk.length;
  }
  expect(offset).toBe(FILE_BYTES);
}

describe("downloads stream", () => {
  it(`${CLIENTS} clients downloading a ${FILE_BYTES / MIB} MiB attachment at once grow the server by less than ${GROWTH_BOUND_MIB} MiB`, async () => {
    // Warm-up: code paths compiled and a pool connection open before anything is measured.
    await downloadAndCheck(await link());
    const urls = await Promise.all(Array.from({ length: CLIENTS }, link));
    const measured = await rssGrowthMiB(server.child.pid as number, () =>
      Promise.all(urls.map(downloadAndCheck)),
    );
    console.log(`downloads: ${JSON.stringify(measured)}`);
    expect(measured.growthMiB).toBeLessThan(GROWTH_BOUND_MIB);
    // 128 MiB through one server on a loaded 2-core machine can take minutes; this test bounds memory,
    // and the next one must not start while these downloads still run (it counts the bytes read).
  }, 180_000);

  it("reads from the database only as fast as the client takes the bytes", async () => {
    const url = new URL(await link());
    let response: http.IncomingMessage | undefined;
    const readWhilePaused = await bytesReadMiB(server.child.pid as number, async () => {
      response = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get(url, resolve).on("error", reject);
      });
      // Nothing is read from the response: the socket's buffers fill, then the server must wait.
      await new Promise((resolve) => setTimeout(resolve, 1500));
    });
    console.log(`read from the database while the client took nothing: ${readWhilePaused.toFixed(1)} MiB`);
    // The file arrives from PostgreSQL as hex text, twice its size: reading it all would be 32 MiB.
    // Paused, the server reads only what the sockets' buffers hold (a few MiB on loopback).
    expect(readWhilePaused).toBeLessThan((2 * FILE_BYTES) / MIB / 2);
    // And the rest follows once the client reads.
    const chunks: Buffer[] = [];
    for await (const chunk of response as http.IncomingMessage) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
  });
});
