// MessageFilter at scale: seeds one organization (1,000,000 messages by default), then runs each
// filter on messages and threads through the repositories the server uses, as an organization key
// and as a key hiding spam and trash, and prints the latency (p50/p99 of sequential runs) and the
// plan PostgreSQL chose (EXPLAIN ANALYZE, BUFFERS) for each. The goal is that every filter stays an
// index walk or a bitmap of the matches: no plan reads the whole organization.
//
//   npm run bench:filters -- [--messages 1000000] [--runs 30] [--record]
import { appendFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import type { TenantScope } from "../src/auth/principal.ts";
import { migrateToLatest } from "../src/db/migrate.ts";
import type { MessageFilter } from "../src/mail/message-filter.ts";
import { listMessages } from "../src/mail/repository.ts";
import { listThreads } from "../src/mail/thread-repository.ts";
import { capturingDatabase, openDatabase } from "./lib/database.ts";
import { seed } from "./seed.ts";

const ROOT = path.resolve(import.meta.dirname, "..");

const { values: flags } = parseArgs({
  options: {
    messages: { type: "string", default: "1000000" },
    runs: { type: "string", default: "30" },
    record: { type: "boolean", default: false },
  },
});

const log = (message: string) => process.stderr.write(`${message}\n`);

async function main() {
  const started = performance.now();
  const database = await openDatabase();
  try {
    await migrateToLatest(database.handle.db);
    log(`seeding ${Number(flags.messages).toLocaleString("en")} messages`);
    const [org] = await seed(database.handle.db, {
      organizations: 1,
      messagesPerOrganization: Number(flags.messages),
      onProgress: log,
    });
    if (!org) throw new Error("nothing seeded");
    await database.handle.pool.query("ANALYZE");
    const inboxId = org.inboxes[0]?.id as string;
    const full: TenantScope = { orgId: org.id, podId: null, inboxId: null, hiddenLabels: [] };
    const hiding: TenantScope = { ...full, hiddenLabels: ["spam", "trash"] };
    // A person of the seed's pool who writes often, one address fragment, words of the subjects.
    const { rows: sample } = await database.handle.pool.query<{ from_name: string; from_address: string }>(
      "SELECT from_name, from_address FROM messages WHERE org_id = $1 AND from_name IS NOT NULL LIMIT 1",
      [org.id],
    );
    const person = sample[0]?.from_name ?? "ann";
    const address = sample[0]?.from_address.split("@")[0] ?? "ann";
    const recent = new Date(Date.now() - 24 * 3_600_000);
    const old = new Date(Date.now() - 300 * 24 * 3_600_000);
    const filters: [string, MessageFilter][] = [
      ["from: a person's name", { from: person }],
      ["from: an address that never wrote", { from: "nobody-at-all@nowhere.example" }],
      ["to: a recipient fragment", { to: address.slice(0, 6) }],
      ["subject: a common word", { subject: "invoice" }],
      ["subject: a word no subject has", { subject: "zzyzx" }],
      ["since: the last day", { since: recent }],
      ["until: older than 300 days", { until: old }],
      ["hasAttachments", { hasAttachments: true }],
      ["labels: unread", { labels: ["unread"] }],
      ["from + subject + since", { from: person, subject: "re", since: old }],
    ];
    const { handle: capture, captured } = capturingDatabase(database.url);
    const page = { after: undefined, before: undefined, limit: 51, inverted: false };
    const rows: string[][] = [];
    const plans: string[] = [];
    const runs = Number(flags.runs);
    try {
      for (const [title, filter] of filters) {
        for (const [list, scope, where] of [
          ["messages, organization", full, {}],
          ["messages, one inbox, hiding spam+trash", hiding, { inboxId }],
          ["threads, one inbox", full, { inboxId }],
          ["threads, one inbox, hiding spam+trash", hiding, { inboxId }],
        ] as const) {
          const run = () =>
            list.startsWith("messages")
              ? listMessages(capture.db, scope, { ...where, message: filter }, page, [
                  "from_address",
                  "subject",
                ])
              : listThreads(
                  capture.db,
                  scope,
                  { ...where, message: filter },
                  page,
                  new Set(["subject"] as const),
                );
          await run(); // warm
          const times: number[] = [];
          let found = 0;
          for (let i = 0; i < runs; i++) {
            const t = performance.now();
            found = (await run()).length;
            times.push(performance.now() - t);
          }
          times.sort((a, b) => a - b);
          const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] as number;
          rows.push([title, list, String(found), p(0.5).toFixed(1), p(0.99).toFixed(1)]);
          captured.length = 0;
          await run();
          // Every statement the list ran (a thread filter may read its matches first), with its plan.
          const explained: string[] = [];
          for (const statement of captured.splice(0)) {
            const plan = await database.handle.pool.query(
              `EXPLAIN (ANALYZE, BUFFERS) ${statement.text}`,
              statement.values,
            );
            explained.push(plan.rows.map((r) => r["QUERY PLAN"]).join("\n"));
          }
          plans.push(`-- ${title} — ${list}\n${explained.join("\n-- then\n")}`);
          log(`${title} — ${list}: p50 ${p(0.5).toFixed(1)} ms`);
        }
      }
    } finally {
      await capture.destroy();
    }
    const seconds = (performance.now() - started) / 1000;
    const report = [
      `## ${new Date().toISOString()} — \`npm run bench:filters -- --messages ${flags.messages}\``,
      `MessageFilter at ${org.messages.toLocaleString("en")} messages in one organization, a page of 50, ${runs} sequential runs each. Took ${seconds.toFixed(0)} s.`,
      [
        "| filter | list | rows | p50 ms | p99 ms |",
        "| --- | --- | --- | --- | --- |",
        ...rows.map((r) => `| ${r.join(" | ")} |`),
      ].join("\n"),
      `<details><summary>Plans</summary>\n\n\`\`\`\n${plans.join("\n\n")}\n\`\`\`\n</details>`,
    ].join("\n\n");
    process.stdout.write(`${report}\n`);
    if (flags.record) await appendFile(path.join(ROOT, "bench/RESULTS.md"), `\n\n${report}\n`);
  } finally {
    await database.close();
  }
}

await main();
