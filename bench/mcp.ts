// The cost of MCP over GraphQL (issue 18's goal: a tool call at most 1.5 × the same GraphQL request).
// One server process (as `npm start` runs it) on an embedded PostgreSQL with one inbox of messages in
// threads; the same operation sent both ways, in alternating rounds so that both see the same load:
//   GraphQL: POST /graphql with the tool's own document and variables;
//   MCP:     POST /mcp, one stateless JSON-RPC tools/call (what an MCP client sends per call).
// Measured sequentially (one request at a time: latency) and with --concurrency requests in flight
// (throughput). The tool is search_messages when the schema has searchMessages, else list_threads.
//   npm run bench:mcp -- [--messages 2000] [--requests 300] [--rounds 4] [--concurrency 8] [--record]
// The last line printed is one JSON object.
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { loadConfig } from "../src/config.ts";
import { createDatabase } from "../src/db/database.ts";
import { startEmbeddedPostgres } from "../src/db/embedded.ts";
import { createInbox } from "../src/inboxes/service.ts";
import { storeMessage } from "../src/mail/store.ts";
import { TOOL_SPECS } from "../src/mcp/tools.ts";
import { bootstrapOrganization } from "../src/organizations/service.ts";
import { ROOT, type ServerProcess, startMailroom } from "./lib/processes.ts";

const { values: flags } = parseArgs({
  options: {
    messages: { type: "string", default: "2000" },
    requests: { type: "string", default: "300" },
    rounds: { type: "string", default: "4" },
    concurrency: { type: "string", default: "8" },
    record: { type: "boolean", default: false },
  },
});
const MESSAGES = Number(flags.messages);
const REQUESTS = Number(flags.requests);
const ROUNDS = Number(flags.rounds);
const CONCURRENCY = Number(flags.concurrency);

const TOOL = TOOL_SPECS.some((t) => t.name === "search_messages") ? "search_messages" : "list_threads";
const spec = TOOL_SPECS.find((t) => t.name === TOOL);
if (!spec) throw new Error(`no tool ${TOOL}`);
const operationName = /(?:query|mutation)\s+(\w+)/.exec(spec.document)?.[1] as string;

const dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-mcp-"));
const embedded = await startEmbeddedPostgres({ dataDir });
const handle = createDatabase(embedded.url, { max: 2 });
let server: ServerProcess | undefined;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

try {
  server = await startMailroom({ databaseUrl: embedded.url, dataDir });
  const target = server;
  const config = loadConfig({});
  const org = await bootstrapOrganization(
    { db: handle.db, config },
    { name: "Bench", adminEmail: "bench@bench.test", adminPassword: "bench password 1234" },
  );
  const scope = { orgId: org.organizationId, podId: null, inboxId: null, hiddenLabels: [] };
  const inbox = await createInbox({ db: handle.db, config }, scope, { username: "mcp" });
  const words = ["invoice", "shipment", "meeting", "contract", "refund", "report", "quote", "order"];
  for (let start = 0; start < MESSAGES; start += 200) {
    await handle.db.transaction().execute(async (trx) => {
      for (let i = start; i < Math.min(MESSAGES, start + 200); i++) {
        const word = words[i % words.length];
        await storeMessage(
          trx,
          { orgId: inbox.org_id, podId: inbox.pod_id, inboxId: inbox.id },
          {
            messageIdHeader: `<m${i}@bench.test>`,
            from: `sender${i % 50}@bench.test`,
            to: [inbox.email],
            subject: `${word} ${Math.floor(i / 4)}`,
            text: `About the ${word} number ${i}. Regards.`,
            html: null,
            inReplyTo: i % 4 === 0 ? null : `<m${i - (i % 4)}@bench.test>`,
            references: i % 4 === 0 ? [] : [`<m${i - (i % 4)}@bench.test>`],
            labels: ["received"],
            direction: "INBOUND",
            sizeBytes: 500,
            createdAt: new Date(Date.now() - (MESSAGES - i) * 1000),
          },
          "MESSAGE_RECEIVED",
        );
      }
    });
  }
  const inboxId = encodeGlobalID("Inbox", inbox.id);
  const args: Record<string, unknown> =
    TOOL === "search_messages" ? { inboxId, query: "invoice", first: 20 } : { inboxId, first: 20 };

  const graphqlBody = JSON.stringify({ query: spec.document, operationName, variables: args });
  let id = 0;
  const graphql = async () => {
    const response = await fetch(`${target.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${org.apiKey}` },
      body: graphqlBody,
    });
    const body = (await response.json()) as { errors?: unknown[] };
    if (response.status !== 200 || body.errors) throw new Error(`GraphQL: ${JSON.stringify(body)}`);
  };
  const mcp = async () => {
    const response = await fetch(`${target.url}/mcp`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        authorization: `Bearer ${org.apiKey}`,
        "mcp-protocol-version": "2025-06-18",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: ++id,
        method: "tools/call",
        params: { name: TOOL, arguments: args },
      }),
    });
    const body = (await response.json()) as { result?: { isError?: boolean; structuredContent?: unknown } };
    if (response.status !== 200 || !body.result || body.result.isError || !body.result.structuredContent)
      throw new Error(`MCP: ${JSON.stringify(body)}`);
  };

  /** `count` requests, `inFlight` at a time: each one's latency, and the wall time. */
  const run = async (send: () => Promise<void>, count: number, inFlight: number) => {
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < count) {
          next++;
          const t = performance.now();
          await send();
          latencies.push(performance.now() - t);
        }
      }),
    );
    return { latencies, seconds: (performance.now() - started) / 1000 };
  };

  // Warm-up: both paths, so that neither pays for loading or the first pool connections.
  await run(graphql, 50, 2);
  await run(mcp, 50, 2);

  const results: Record<string, { latencies: number[]; seconds: number; count: number }> = {};
  const add = (key: string, r: { latencies: number[]; seconds: number }) => {
    const entry = results[key] ?? { latencies: [], seconds: 0, count: 0 };
    entry.latencies.push(...r.latencies);
    entry.seconds += r.seconds;
    entry.count += r.latencies.length;
    results[key] = entry;
  };
  const perRound = Math.ceil(REQUESTS / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ["graphql", "mcp"] : ["mcp", "graphql"];
    for (const way of order) {
      const send = way === "graphql" ? graphql : mcp;
      add(`${way} sequential`, await run(send, perRound, 1));
      add(`${way} concurrent`, await run(send, perRound * 2, CONCURRENCY));
    }
  }

  const summary = Object.fromEntries(
    Object.entries(results).map(([key, r]) => {
      const sorted = [...r.latencies].sort((a, b) => a - b);
      return [
        key,
        {
          requests: r.count,
          p50ms: percentile(sorted, 50),
          p95ms: percentile(sorted, 95),
          meanms: sorted.reduce((a, b) => a + b, 0) / sorted.length,
          perSecond: r.count / r.seconds,
        },
      ];
    }),
  ) as Record<string, { requests: number; p50ms: number; p95ms: number; meanms: number; perSecond: number }>;
  const ratio = (kind: "sequential" | "concurrent") => {
    const g = summary[`graphql ${kind}`];
    const m = summary[`mcp ${kind}`];
    if (!g || !m) throw new Error("missing results");
    return { p50: m.p50ms / g.p50ms, p95: m.p95ms / g.p95ms, throughput: g.perSecond / m.perSecond };
  };
  const ratios = { sequential: ratio("sequential"), concurrent: ratio("concurrent") };
  const load = os.loadavg().map((l) => l.toFixed(2));

  const lines = [
    `\n## ${new Date().toISOString()} — \`npm run bench:mcp -- --messages ${MESSAGES} --requests ${REQUESTS} --rounds ${ROUNDS} --concurrency ${CONCURRENCY}\` (issue 18)`,
    "",
    `The \`${TOOL}\` tool (\`${JSON.stringify(args).replace(/"inboxId":"[^"]+"/, '"inboxId":…')}\`) over \`POST /mcp\` (one stateless`,
    "JSON-RPC `tools/call` per request) against the same operation and variables sent to `POST /graphql`, on one",
    `server process with an inbox of ${MESSAGES} messages; ${ROUNDS} alternating rounds. The machine was shared with other`,
    `work (load average ${load.join(", ")} at the end), so absolute numbers move; the ratios are taken in the same run.`,
    "",
    "| Path | Requests | p50 ms | p95 ms | mean ms | requests/s |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...Object.entries(summary).map(
      ([key, s]) =>
        `| ${key}${key.endsWith("concurrent") ? ` (${CONCURRENCY} in flight)` : ""} | ${s.requests} | ${s.p50ms.toFixed(2)} | ${s.p95ms.toFixed(2)} | ${s.meanms.toFixed(2)} | ${s.perSecond.toFixed(0)} |`,
    ),
    "",
    `MCP / GraphQL: sequential p50 ${ratios.sequential.p50.toFixed(2)} ×, p95 ${ratios.sequential.p95.toFixed(2)} ×; ` +
      `concurrent p50 ${ratios.concurrent.p50.toFixed(2)} ×, throughput cost ${ratios.concurrent.throughput.toFixed(2)} × ` +
      "(goal: ≤ 1.5 ×).",
    "",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  if (flags.record) await appendFile(path.join(ROOT, "bench/RESULTS.md"), lines.join("\n"));
  process.stdout.write(`${JSON.stringify({ tool: TOOL, summary, ratios, load })}\n`);
} finally {
  await server?.stop();
  await handle.destroy();
  await embedded.stop();
  await rm(dataDir, { recursive: true, force: true });
}
