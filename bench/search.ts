// searchMessages at scale, through HTTP: seeds two organizations in one database (10,000 and
// 1,000,000 messages by default), starts the server as a child process, and asks each
// organization the same searches (a rare word, a common word, an address, a phrase) one after
// another, a page of 20 with highlights, reporting p50/p99 per query and size and the 1M/10k ratio.
// Then EXPLAIN (ANALYZE, BUFFERS) of the slowest query's search statement at the large size.
//
//   npm run bench:search -- [--small 10000] [--large 1000000] [--runs 40] [--record]
// Against DATABASE_URL's server (a scratch database, dropped afterwards) or a fresh embedded PostgreSQL.
import { execFileSync } from "node:child_process";
import { appendFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import type { TenantScope } from "../src/auth/principal.ts";
import { migrateToLatest } from "../src/db/migrate.ts";
import { prepareSearch } from "../src/mail/search.ts";
import { searchMessages } from "../src/mail/search-repository.ts";
import { capturingDatabase, openDatabase } from "./lib/database.ts";
import { graphql } from "./lib/load.ts";
import { freePort, ROOT, startServer } from "./lib/processes.ts";
import { type SeededOrganization, seedGroups, withIndexesDeferred } from "./seed.ts";

const { values: flags } = parseArgs({
  options: {
    small: { type: "string", default: "10000" },
    large: { type: "string", default: "1000000" },
    runs: { type: "string", default: "40" },
    record: { type: "boolean", default: false },
  },
});

const begun = performance.now();
const log = (message: string) =>
  process.stderr.write(`${((performance.now() - begun) / 1000).toFixed(0).padStart(5)} s  ${message}\n`);

const SEARCH = `query($query: String!) {
  searchMessages(query: $query, first: 20) {
    edges { cursor rank node { id subject from createdAt } highlights { field fragments } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const percentile = (sorted: readonly number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;

async function main() {
  const started = performance.now();
  const database = await openDatabase();
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    await migrateToLatest(database.handle.db);
    const sizes = [Number(flags.small), Number(flags.large)];
    log(`seeding ${sizes.map((n) => n.toLocaleString("en")).join(" and ")} messages`);
    const seedStarted = performance.now();
    // Secondary indexes (the search and pair indexes among them) are built after the bulk load, as a
    // restore would; the thread index stays, the seed's own statements read it.
    const orgs = (await withIndexesDeferred(
      database.handle.db,
      "messages",
      ["messages_org_id_thread_id_created_at_id_idx"],
      () =>
        seedGroups(
          database.handle.db,
          sizes.map((messages, index) => ({
            organizations: 1,
            messagesPerOrganization: messages,
            name: `search-${index}`,
            onProgress: log,
          })),
        ),
      // The trigram indexes serve MessageFilter's text conditions, which no search here uses; the
      // planner cannot use them for @@, and building three of them at a million rows takes longest.
      { onProgress: log, leaveOut: /_trgm_idx$/ },
    )) as SeededOrganization[];
    await database.handle.pool.query("VACUUM ANALYZE messages");
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    const port = await freePort();
    server = await startServer({
      name: "Mailroom",
      args: ["--import", "tsx", path.join(ROOT, "src/main.ts")],
      env: {
        DATABASE_URL: database.url,
        PORT: String(port),
        SMTP_PORT: "0",
        RATE_LIMIT_PER_MINUTE: "0",
        LOG_LEVEL: "warn",
        NODE_ENV: "production",
      },
      port,
      readyPath: "/readyz",
      timeoutMs: 120_000,
    });
    // An address that writes to the large organization: one of the seed's 256 correspondents.
    const { rows: people } = await database.handle.pool.query<{ from_address: string }>(
      "SELECT from_address FROM messages WHERE org_id = $1 AND direction = 'INBOUND' ORDER BY id LIMIT 1",
      [orgs[1]?.id],
    );
    const queries: [string, string][] = [
      ["a rare word (an order number)", "tk4242"],
      ["a common word", "invoice"],
      ["an address", people[0]?.from_address ?? "nobody@example.test"],
      ["a phrase", '"invoice payment"'],
      ["two words, one excluded", "budget -invoice"],
    ];
    const runs = Number(flags.runs);
    const results: { title: string; query: string; size: number; found: number; p50: number; p99: number }[] =
      [];
    for (const [title, query] of queries) {
      for (const [index, org] of orgs.entries()) {
        const headers = { authorization: `Bearer ${org.keys.full}` };
        const ask = () =>
          graphql<{ searchMessages: { edges: unknown[] } }>(server?.url as string, headers, {
            query: SEARCH,
            variables: { query },
          });
        for (let i = 0; i < 3; i++) await ask(); // warm
        const times: number[] = [];
        let found = 0;
        for (let i = 0; i < runs; i++) {
          const t = performance.now();
          found = (await ask()).searchMessages.edges.length;
          times.push(performance.now() - t);
        }
        times.sort((a, b) => a - b);
        const result = {
          title,
          query,
          size: sizes[index] as number,
          found,
          p50: percentile(times, 0.5),
          p99: percentile(times, 0.99),
        };
        results.push(result);
        log(`${title} at ${result.size}: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms`);
      }
    }
    // How many messages each query matches at the large size (the work a ranking does).
    const matches = new Map<string, string>();
    for (const [, query] of queries) {
      const { rows } = await database.handle.pool.query<{ n: string }>(
        "SELECT count(*) AS n FROM messages WHERE org_id = $1 AND search_vector @@ websearch_to_tsquery('simple', mail_fold($2))",
        [orgs[1]?.id, query],
      );
      matches.set(query, rows[0]?.n ?? "?");
    }
    // The slowest query at the large size, explained: the search statement as the repository sends it.
    const large = results.filter((r) => r.size === sizes[1]);
    const worst = large.reduce((a, b) => (b.p99 > a.p99 ? b : a));
    const { handle: capture, captured } = capturingDatabase(database.url);
    let plan = "";
    try {
      const scope: TenantScope = {
        orgId: orgs[1]?.id as string,
        podId: null,
        inboxId: null,
        hiddenLabels: [],
      };
      const search = await prepareSearch(capture.db, scope, worst.query);
      captured.length = 0;
      await searchMessages(capture.db, scope, search, {}, { after: undefined, limit: 21 });
      const statement = captured.at(-1) as { text: string; values: unknown[] };
      const explained = await database.handle.pool.query(
        `EXPLAIN (ANALYZE, BUFFERS) ${statement.text}`,
        statement.values,
      );
      plan = explained.rows.map((row) => row["QUERY PLAN"]).join("\n");
    } finally {
      await capture.destroy();
    }
    const uptime = execFileSync("uptime", { encoding: "utf8" }).trim();
    const seconds = (performance.now() - started) / 1000;
    const rows = queries.map(([title, query]) => {
      const [small, big] = [sizes[0], sizes[1]].map((size) =>
        results.find((r) => r.query === query && r.size === size),
      ) as [(typeof results)[number], (typeof results)[number]];
      return `| ${title} | \`${query}\` | ${matches.get(query)} | ${small.p50.toFixed(1)} / ${small.p99.toFixed(1)} | ${big.p50.toFixed(1)} / ${big.p99.toFixed(1)} | ${(big.p99 / small.p99).toFixed(2)} |`;
    });
    const report = [
      `## ${new Date().toISOString()} — \`npm run bench:search -- --small ${flags.small} --large ${flags.large} --runs ${runs}\``,
      `searchMessages over HTTP (server as a child process, NODE_ENV=production), first: 20 with highlights, ` +
        `an organization key; ${runs} sequential requests per query after 3 warm-ups. Two organizations in one ` +
        `database (${sizes.map((n) => n.toLocaleString("en")).join(" and ")} messages, bench/seed.ts, seeded in ` +
        `${seedSeconds.toFixed(0)} s). ${database.url.includes("127.0.0.1:5432") ? "PostgreSQL at 127.0.0.1:5432" : "Embedded PostgreSQL"}. ` +
        `Shared machine; \`uptime\` at the end: ${uptime}. Took ${seconds.toFixed(0)} s.`,
      [
        `| query | text | matches at ${sizes[1]?.toLocaleString("en")} | ${sizes[0]?.toLocaleString("en")}: p50 / p99 ms | ${sizes[1]?.toLocaleString("en")}: p50 / p99 ms | p99 ratio |`,
        "| --- | --- | --- | --- | --- | --- |",
        ...rows,
      ].join("\n"),
      `Slowest at ${sizes[1]?.toLocaleString("en")}: ${worst.title} (\`${worst.query}\`). Its search statement:`,
      `\`\`\`\n${plan}\n\`\`\``,
    ].join("\n\n");
    process.stdout.write(`${report}\n`);
    if (flags.record) await appendFile(path.join(ROOT, "bench/RESULTS.md"), `\n\n${report}\n`);
  } finally {
    await server?.stop();
    await database.close();
  }
}

await main();
