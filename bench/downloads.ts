// The server's memory while many clients download one large attachment at once through its download
// link (GET /files/<token>, streamed from the database in slices): the goal of issue 15 is that ten
// clients downloading a 20 MB attachment grow the server's resident set by less than 50 MB. The server
// runs as its own process (as `npm start` does) on an embedded PostgreSQL; its peak resident set
// (VmHWM, reset first) is compared with its resident set before the downloads. With --inline, a
// second, fresh server is measured serving the same attachment the only way there was before links:
// as `contentBase64` in a GraphQL response (its allowance raised to let it through).
//   npm run bench:downloads -- [--mib 20] [--clients 10[,1,20…]] [--inline] [--record]
// Each count of clients is measured on a server process of its own: memory a process once grew into
// stays resident (V8 and the allocator keep it for reuse), so a second measurement would see none.
// --inline is measured with the first count.
// The last line printed is one JSON object.
import { randomBytes } from "node:crypto";
import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { loadConfig } from "../src/config.ts";
import { createDatabase } from "../src/db/database.ts";
import { startEmbeddedPostgres } from "../src/db/embedded.ts";
import { createInbox } from "../src/inboxes/service.ts";
import { storeMessage } from "../src/mail/store.ts";
import { bootstrapOrganization } from "../src/organizations/service.ts";
import { ROOT, type ServerProcess, startMailroom } from "./lib/processes.ts";

const { values: flags } = parseArgs({
  options: {
    mib: { type: "string", default: "20" },
    clients: { type: "string", default: "10" },
    inline: { type: "boolean", default: false },
    record: { type: "boolean", default: false },
  },
});
const MIB = 1024 * 1024;
const SIZE = Math.round(Number(flags.mib) * MIB);
const COUNTS = flags.clients.split(",").map(Number);
const CLIENTS = COUNTS[0] as number;

async function statusMiB(pid: number, field: "VmHWM" | "VmRSS"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) / 1024;
}

/** Runs `work` and reports how far it raised the server's resident set. */
async function measure(server: ServerProcess, work: () => Promise<unknown>) {
  // The stack is loaded and its pools warm before the baseline is taken (see the warm-up below).
  await writeFile(`/proc/${server.pid}/clear_refs`, "5");
  const beforeMiB = await statusMiB(server.pid, "VmRSS");
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  const peakMiB = await statusMiB(server.pid, "VmHWM");
  return { beforeMiB, peakMiB, growthMiB: peakMiB - beforeMiB, seconds };
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-downloads-"));
const embedded = await startEmbeddedPostgres({ dataDir });
const handle = createDatabase(embedded.url, { max: 2 });
const servers: ServerProcess[] = [];

async function server(env: Record<string, string> = {}): Promise<ServerProcess> {
  const started = await startMailroom({ databaseUrl: embedded.url, dataDir, env });
  servers.push(started);
  return started;
}

try {
  // Migrated by the first server; the data below goes in through the store, as SMTP would put it.
  let links = await server();
  const config = loadConfig({});
  const org = await bootstrapOrganization(
    { db: handle.db, config },
    { name: "Bench", adminEmail: "bench@bench.test", adminPassword: "bench password 1234" },
  );
  const scope = { orgId: org.organizationId, podId: null, inboxId: null, hiddenLabels: [] };
  const inbox = await createInbox({ db: handle.db, config }, scope, { username: "downloads" });
  // Random, like a PDF or an image: PostgreSQL cannot compress it.
  const content = randomBytes(SIZE);
  const { message } = await handle.db.transaction().execute((trx) =>
    storeMessage(
      trx,
      { orgId: inbox.org_id, podId: inbox.pod_id, inboxId: inbox.id },
      {
        messageIdHeader: "<download@bench.test>",
        from: "sender@bench.test",
        to: [inbox.email],
        subject: "Large file",
        text: "Attached.",
        html: null,
        inReplyTo: null,
        references: [],
        labels: ["received"],
        direction: "INBOUND",
        sizeBytes: SIZE,
        attachments: [{ filename: "large.pdf", contentType: "application/pdf", content }],
      },
      "MESSAGE_RECEIVED",
    ),
  );
  const messageId = encodeGlobalID("Message", message.id);
  const graphql = async (target: ServerProcess, query: string) => {
    const response = await fetch(`${target.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${org.apiKey}` },
      body: JSON.stringify({ query, variables: { id: messageId } }),
    });
    return (await response.json()) as { data?: any; errors?: { message: string }[] };
  };

  /** One client: the whole body, counted as it arrives and dropped, as a client saving it would. */
  const fetchLink = async (url: string) => {
    const response = await fetch(url);
    let bytes = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    if (response.status !== 200 || bytes !== SIZE) throw new Error(`got ${response.status}, ${bytes} bytes`);
    return bytes;
  };
  const LINK = `query($id: ID!) { message(id: $id) { attachments { downloadUrl } } }`;
  const linkFor = async () => (await graphql(links, LINK)).data.message.attachments[0].downloadUrl as string;
  const rows: ({ how: string; clients: number } & Awaited<ReturnType<typeof measure>>)[] = [];
  for (const [index, clients] of COUNTS.entries()) {
    if (index > 0) {
      await links.stop();
      links = await server();
    }
    // Warm-up: one download, so the baseline includes a loaded stack and a pool connection.
    await fetchLink(await linkFor());
    const urls = await Promise.all(Array.from({ length: clients }, linkFor));
    const streamed = await measure(links, () => Promise.all(urls.map(fetchLink)));
    rows.push({ how: "download link (GET /files/<token>)", clients, ...streamed });
    process.stdout.write(
      `links: ${clients} × ${SIZE / MIB} MiB, RSS ${streamed.beforeMiB.toFixed(0)} → ${streamed.peakMiB.toFixed(0)} MiB ` +
        `(+${streamed.growthMiB.toFixed(1)}), ${streamed.seconds.toFixed(2)} s\n`,
    );
  }

  if (flags.inline) {
    const inline = await server({ MAX_INLINE_ATTACHMENT_BYTES: String(SIZE + MIB) });
    const INLINE = `query($id: ID!) { message(id: $id) { attachments { contentBase64 } } }`;
    const fetchInline = async () => {
      const body = await graphql(inline, INLINE);
      const base64 = body.data?.message?.attachments?.[0]?.contentBase64 as string | undefined;
      if (base64?.length !== Math.ceil(SIZE / 3) * 4)
        throw new Error(`inline: ${JSON.stringify(body.errors)}`);
    };
    await fetchInline();
    const inlined = await measure(inline, () => Promise.all(Array.from({ length: CLIENTS }, fetchInline)));
    rows.push({
      how: "contentBase64 in a GraphQL response (allowance raised)",
      clients: CLIENTS,
      ...inlined,
    });
    process.stdout.write(
      `inline: RSS ${inlined.beforeMiB.toFixed(0)} → ${inlined.peakMiB.toFixed(0)} MiB (+${inlined.growthMiB.toFixed(1)}), ` +
        `${inlined.seconds.toFixed(2)} s\n`,
    );
  }

  const table = [
    `| how clients get a ${SIZE / MIB} MiB attachment at once | clients | RSS before MiB | peak MiB | growth MiB | seconds |`,
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map(
      (row) =>
        `| ${row.how} | ${row.clients} | ${row.beforeMiB.toFixed(0)} | ${row.peakMiB.toFixed(0)} | ${row.growthMiB.toFixed(1)} | ${row.seconds.toFixed(2)} |`,
    ),
  ].join("\n");
  process.stdout.write(`${table}\n`);
  if (flags.record) {
    const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB, Node ${process.version}, Linux ${os.release()}; load average ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(" ")} at the end`;
    await appendFile(
      path.join(ROOT, "bench/RESULTS.md"),
      `\n## ${new Date().toISOString()} — server memory while clients download a ${SIZE / MIB} MiB attachment at once (issue 15)\n\n` +
        `Command: \`npm run bench:downloads -- ${process.argv.slice(2).join(" ")}\`. The server is its own process ` +
        "(`src/main.ts`, NODE_ENV=production, embedded PostgreSQL, the load generator on the same machine); growth is its " +
        "peak resident set (VmHWM, reset first) minus its resident set before the downloads, after one warm-up download; " +
        `each row a fresh server process. Goal: less than 50 MB with 10 clients.\nMachine: ${machine}.\n\n${table}\n`,
    );
  }
  process.stdout.write(`${JSON.stringify({ mib: SIZE / MIB, rows })}\n`);
} finally {
  await handle.destroy();
  for (const started of servers) await started.stop();
  await embedded.stop();
  await rm(dataDir, { recursive: true, force: true });
}
