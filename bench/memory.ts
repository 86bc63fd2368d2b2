// The server's memory under concurrent pages of large messages, at full scale (test/memory.test.ts
// runs the same at a size fit for every test run): N messages, each with an attachment and a text
// body of the given size, and C concurrent requests for one page of all of them asking for every
// attachment's contentBase64 and every text. The server runs as its own process with its default
// allowances (MAX_INLINE_ATTACHMENT_BYTES, MAX_INLINE_BODY_BYTES) unless given; its peak resident set
// (VmHWM, reset first) is compared with its resident set before the requests.
//   npm run bench:memory -- [--messages 200] [--part-mib 1] [--concurrency 3] [--server DIR --label TEXT]
//                           [--record]
// --server DIR: run the server from another checkout (e.g. a commit before the allowances, with this
// repository's node_modules linked into it), to measure what they change. The schema must match.
// --record: append the result to bench/RESULTS.md. The last line printed is one JSON object.
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
import { ROOT, startMailroom } from "./lib/processes.ts";

const { values: flags } = parseArgs({
  options: {
    messages: { type: "string", default: "200" },
    "part-mib": { type: "string", default: "1" },
    concurrency: { type: "string", default: "3" },
    server: { type: "string" },
    label: { type: "string" },
    record: { type: "boolean", default: false },
  },
});
const MESSAGES = Number(flags.messages);
const PART_BYTES = Math.round(Number(flags["part-mib"]) * 1024 * 1024);
const CONCURRENCY = Number(flags.concurrency);
const SERVER_ROOT = path.resolve(flags.server ?? ROOT);
const MIB = 1024 * 1024;

const PAGE = `query($inbox: ID!, $n: Int) {
  messages(inboxId: $inbox, first: $n) { edges { node { id text attachments { size contentBase64 } } } }
}`;

async function statusMiB(pid: number, field: "VmHWM" | "VmRSS"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) / 1024;
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-memory-"));
const embedded = await startEmbeddedPostgres({ dataDir });
const server = await startMailroom({ root: SERVER_ROOT, databaseUrl: embedded.url, dataDir });
const handle = createDatabase(embedded.url, { max: 2 });
try {
  const config = loadConfig({});
  const org = await bootstrapOrganization(
    { db: handle.db, config },
    {
      name: "Bench",
      adminEmail: "bench@bench.test",
      adminPassword: "bench password 1234",
    },
  );
  const scope = { orgId: org.organizationId, podId: null, inboxId: null, hiddenLabels: [] };
  const inbox = await createInbox({ db: handle.db, config }, scope, { username: "memory" });
  const seedStarted = performance.now();
  for (let i = 0; i < MESSAGES; i++) {
    await handle.db.transaction().execute((trx) =>
      storeMessage(
        trx,
        { orgId: inbox.org_id, podId: inbox.pod_id, inboxId: inbox.id },
        {
          messageIdHeader: `<memory-${i}@bench.test>`,
          from: "sender@bench.test",
          to: [inbox.email],
          subject: `Large ${i}`,
          // Random, so PostgreSQL cannot compress them below their size.
          text: randomBytes((PART_BYTES * 3) / 4).toString("base64"),
          html: null,
          inReplyTo: null,
          references: [],
          labels: ["received"],
          direction: "INBOUND",
          sizeBytes: 2 * PART_BYTES,
          attachments: [
            {
              filename: `${i}.bin`,
              contentType: "application/octet-stream",
              content: randomBytes(PART_BYTES),
            },
          ],
        },
        "MESSAGE_RECEIVED",
      ),
    );
  }
  process.stdout.write(
    `seeded ${MESSAGES} messages of 2 × ${PART_BYTES / MIB} MiB in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s\n`,
  );

  const request = (n: number) =>
    fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${org.apiKey}` },
      body: JSON.stringify({ query: PAGE, variables: { inbox: encodeGlobalID("Inbox", inbox.id), n } }),
    }).then(async (response) => {
      const body = (await response.json()) as { data?: any; errors?: unknown[] };
      const nodes: any[] = body.data?.messages?.edges?.map((edge: any) => edge.node) ?? [];
      return {
        status: response.status,
        texts: nodes.filter((node) => node.text != null).length,
        attachments: nodes.filter((node) => node.attachments?.[0]?.contentBase64 != null).length,
        errors: body.errors?.length ?? 0,
      };
    });
  await request(2); // warm-up
  await writeFile(`/proc/${server.pid}/clear_refs`, "5");
  const beforeMiB = await statusMiB(server.pid, "VmRSS");
  const started = performance.now();
  const responses = await Promise.all(Array.from({ length: CONCURRENCY }, () => request(MESSAGES)));
  const seconds = (performance.now() - started) / 1000;
  const peakMiB = await statusMiB(server.pid, "VmHWM");
  const result = {
    server: flags.label ?? (SERVER_ROOT === ROOT ? "this tree" : SERVER_ROOT),
    messages: MESSAGES,
    partMiB: PART_BYTES / MIB,
    concurrency: CONCURRENCY,
    beforeMiB: Math.round(beforeMiB),
    peakMiB: Math.round(peakMiB),
    growthMiB: Math.round(peakMiB - beforeMiB),
    seconds: Number(seconds.toFixed(2)),
    responses,
  };
  const line =
    `| ${result.server} | ${MESSAGES} × (${result.partMiB} MiB attachment + ${result.partMiB} MiB text) | ${CONCURRENCY} | ` +
    `${result.beforeMiB} | ${result.peakMiB} | ${result.growthMiB} | ${result.seconds} | ` +
    `${responses.map((r) => `${r.status}: ${r.attachments} att., ${r.texts} texts`).join("; ")} |`;
  process.stdout.write(`${line}\n`);
  if (flags.record) {
    await appendFile(
      path.join(ROOT, "bench/RESULTS.md"),
      `\n## ${new Date().toISOString()} — \`npm run bench:memory -- ${process.argv.slice(2).join(" ")}\`\n\n` +
        `Server RSS growth (peak VmHWM − VmRSS before) while ${CONCURRENCY} concurrent requests ask for a page of every message's \`contentBase64\` and \`text\`; default allowances (10 MiB each). Machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB.\n\n` +
        "| server | messages | concurrent | RSS before MiB | peak MiB | growth MiB | seconds | served per response |\n" +
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n" +
        `${line}\n`,
    );
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await handle.destroy();
  await server.stop();
  await embedded.stop();
  await rm(dataDir, { recursive: true, force: true });
}
