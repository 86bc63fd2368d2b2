// Where the database's share of a request goes: pg_stat_statements over one measurement, per unit of
// work (a send, an ingested message). Needs the module preloaded: openDatabase({ statementStats })
// restarts the embedded cluster with it; a server on DATABASE_URL must preload it already.
//
// Exec and plan times are wall time inside the backend (CPU plus waits such as WAL flushes at
// COMMIT), so their sum is compared with the cluster's CPU per unit, not added to it.
import { sql } from "kysely";
import type { Db } from "../../src/db/database.ts";

export async function enableStatementStats(db: Db): Promise<void> {
  await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`.execute(db);
}

/** Forgets what was counted so far (in every database of the cluster). */
export async function resetStatementStats(db: Db): Promise<void> {
  await sql`SELECT pg_stat_statements_reset()`.execute(db);
}

interface Row {
  query: string;
  calls: string;
  exec_ms: number;
  plan_ms: number;
  rows: string;
  wal_bytes: string;
}

/**
 * The statements of `database` since the last reset, costliest first, as a Markdown table whose
 * numbers are per `units` (e.g. sends acknowledged during the measurement).
 */
export async function statementProfile(db: Db, database: string, units: number, top = 14): Promise<string> {
  const { rows } = await sql<Row>`
    SELECT s.query, s.calls::text AS calls, s.total_exec_time AS exec_ms, s.total_plan_time AS plan_ms,
      s.rows::text AS rows, s.wal_bytes::text AS wal_bytes
    FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
    WHERE d.datname = ${database}
    ORDER BY s.total_exec_time + s.total_plan_time DESC`.execute(db);
  const total = time(rows);
  const per = (value: number, digits: number) => (value / units).toFixed(digits);
  // One line for a statement, for the statements past `top` together, and for all of them.
  const line = (label: string, group: readonly Row[], withPlan = true) => [
    label,
    per(
      sum(group, (row) => Number(row.calls)),
      2,
    ),
    per(time(group) * 1000, 0),
    withPlan ? per(sum(group, (row) => row.plan_ms) * 1000, 0) : "",
    `${((100 * time(group)) / (total || 1)).toFixed(1)} %`,
    per(
      sum(group, (row) => Number(row.wal_bytes)),
      0,
    ),
  ];
  const body = rows.slice(0, top).map((row) => line(`\`${oneLine(row.query)}\``, [row]));
  const rest = rows.slice(top);
  if (rest.length > 0) body.push(line(`${rest.length} other statements`, rest));
  body.push(line("**all**", rows, false));
  const header = ["statement", "calls", "µs (exec + plan)", "of which plan", "share", "WAL bytes"];
  return [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...body.map((cells) => `| ${cells.join(" | ")} |`),
  ].join("\n");
}

const sum = (rows: readonly Row[], pick: (row: Row) => number) =>
  rows.reduce((total, row) => total + pick(row), 0);
/** Execution and planning time, in ms. */
const time = (rows: readonly Row[]) => sum(rows, (row) => row.exec_ms + row.plan_ms);

/** A statement on one line, cut at 140 characters, with pipes that would break the table escaped. */
function oneLine(query: string): string {
  const flat = query.replace(/\s+/g, " ").trim();
  return (flat.length > 140 ? `${flat.slice(0, 137)}…` : flat).replaceAll("|", "\\|").replaceAll("`", "'");
}
