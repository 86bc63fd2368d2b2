// Full-text search over messages: SQL only (docs/search.md). The stored vector (messages.search_vector,
// built by mail_search_vector() in db/migrations/…_message_search.ts) is matched with the `simple`
// configuration; scope, hidden labels and MessageFilter are cut in the same statement, so a message
// the caller may not see is never ranked, counted or highlighted.
import { type RawBuilder, type SqlBool, sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import { CUSTOM_PLAN, type Db } from "../db/database.ts";
import { isRowId } from "../db/ids.ts";
import type { KeysetPage } from "../db/keyset.ts";
import { messageConditions } from "./message-filter.ts";
import type { PreparedSearch } from "./search.ts";
import { filterAsksForHiddenLabel, filtered, type ListFilter, textArray, visible } from "./visibility.ts";

/**
 * The instant of a candidate window's edge as PostgreSQL writes it here (microseconds, UTC), so it
 * reads back exactly.
 */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

function isInstant(value: unknown): value is string {
  if (typeof value !== "string" || !INSTANT.test(value)) return false;
  const millis = `${value.slice(0, 23)}Z`;
  const date = new Date(millis);
  return !Number.isNaN(date.getTime()) && date.toISOString() === millis;
}

/**
 * The messages a search ranks: the newest SEARCH_CANDIDATES matches, from (created_at, id) `from`
 * to `to`, fixed by the first page and carried by every cursor, so later pages rank the same set.
 */
export type SearchWindow = [fromAt: string, fromId: string, toAt: string, toId: string];

/** The key of a search result: its rank as PostgreSQL writes a real (exact round trip), its id, its window. */
export type SearchKey = [rank: string, id: string, ...window: SearchWindow];

export const isSearchKey = (value: unknown): value is SearchKey =>
  Array.isArray(value) &&
  value.length === 6 &&
  typeof value[0] === "string" &&
  /^(0|[1-9]\d*)(\.\d+)?(e[+-]?\d+)?$/.test(value[0]) &&
  Number.isFinite(Number(value[0])) &&
  typeof value[1] === "string" &&
  isRowId(value[1]) &&
  isInstant(value[2]) &&
  typeof value[3] === "string" &&
  isRowId(value[3]) &&
  isInstant(value[4]) &&
  typeof value[5] === "string" &&
  isRowId(value[5]);

/**
 * How many matches a search ranks: the newest this many (docs/search.md, "Ranking"). Ranking reads
 * each candidate's vector; a common word matches a large share of a big mailbox, and ranking all of
 * it costs seconds. Searches with fewer matches (most: a name, an address, a number, a phrase) rank
 * every match.
 */
export const SEARCH_CANDIDATES = 1000;

export interface ParsedQuery {
  /** The tsquery as text (websearch_to_tsquery('simple', …)::text): what the search runs. */
  tsquery: string;
  /** It has no lexemes at all (only punctuation or symbols). */
  empty: boolean;
  /** It can only exclude (`-word` alone): it would match nearly everything and no index can serve it. */
  onlyExcludes: boolean;
}

/** The search text as the search runs it, parsed by the same parser that built the stored vectors. */
export async function parseSearchQuery(db: Db, _scope: TenantScope, text: string): Promise<ParsedQuery> {
  const { rows } = await sql<{ tsquery: string; nodes: number; tree: string }>`
    SELECT q::text AS tsquery, numnode(q) AS nodes, querytree(q) AS tree
    FROM websearch_to_tsquery('simple', mail_fold(${text})) AS q`.execute(db);
  const row = rows[0] as { tsquery: string; nodes: number; tree: string };
  return { tsquery: row.tsquery, empty: row.nodes === 0, onlyExcludes: row.nodes > 0 && row.tree === "T" };
}

/**
 * Rank: ts_rank_cd with weights D 0.1, C 0.2, B 0.4, A 1.0 (body, filenames, people, subject) and
 * normalisation 1 (divided by 1 + log of the vector's length), so a word in the subject outranks it
 * in a long body.
 */
const rank = (vector: RawBuilder<unknown>, query: RawBuilder<unknown>) =>
  sql`ts_rank_cd('{0.1, 0.2, 0.4, 1.0}'::real[], ${vector}, ${query}, 1)`;

export interface SearchHit {
  id: string;
  /** The rank as text (a real), for the cursor. */
  rank: string;
  window: SearchWindow;
}

const instantText = (column: RawBuilder<unknown>) =>
  sql<string>`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * The most matches (as the planner estimates them) read from the GIN index whole and sorted, among
 * `searched` messages; more are found by walking the newest messages (docs/search.md, "Plans"). The
 * bitmap reads every match; the walk reads about candidates × searched / matches rows, each with its
 * vector (about twice a bitmap row's cost): they cost the same at matches² = 2 × candidates × searched.
 */
export const sparseMatches = (searched: number, candidates: number) => Math.sqrt(2 * candidates * searched);

/**
 * How many rows the planner expects among the messages searched and among those matching, and
 * whether it would read the matches through an index bitmap (EXPLAIN, one statement; nothing is read).
 */
async function estimatedRows(
  db: Db,
  searched: RawBuilder<unknown>,
  matching: RawBuilder<unknown>,
): Promise<{ searched: number; matches: number; bitmap: boolean }> {
  const { rows } = await sql<{ "QUERY PLAN": unknown }>`
    EXPLAIN (FORMAT JSON)
    SELECT 1 FROM messages m WHERE ${searched} UNION ALL SELECT 1 FROM messages m WHERE ${matching} ${CUSTOM_PLAN}`.execute(
    db,
  );
  const raw = rows[0]?.["QUERY PLAN"];
  type Node = { "Node Type": string; "Plan Rows": number; Plans?: Node[] };
  const plan = (typeof raw === "string" ? JSON.parse(raw) : raw) as [{ Plan: Node }];
  const [all, matches] = plan[0].Plan.Plans ?? [];
  const usesIndex = (node: Node | undefined): boolean =>
    node?.["Node Type"] === "Bitmap Heap Scan" || (node?.Plans ?? []).some(usesIndex);
  return {
    searched: all?.["Plan Rows"] ?? 0,
    matches: matches?.["Plan Rows"] ?? Number.POSITIVE_INFINITY,
    bitmap: usesIndex(matches),
  };
}

/**
 * One page of visible messages matching `tsquery`, best first: (rank, id) descending, after the
 * page's cursor, among the newest `candidates` matches (the window the first page fixed). Planned for
 * its own parameters (CUSTOM_PLAN): for a rare word a bitmap of its few matches, for a common one a
 * walk of the newest messages that stops at the window's size.
 */
export async function searchMessages(
  db: Db,
  scope: TenantScope,
  search: Pick<PreparedSearch, "tsquery" | "pairs">,
  filter: ListFilter,
  page: Pick<KeysetPage<SearchKey>, "after" | "limit">,
  candidates = SEARCH_CANDIDATES,
  plan?: "bitmap" | "walk",
): Promise<SearchHit[]> {
  if (filterAsksForHiddenLabel(scope, filter)) return [];
  const q = sql`${search.tsquery}::tsquery`;
  // The messages searched (scope, hidden labels, filters, the window), then the match.
  const searched: RawBuilder<unknown>[] = [
    sql`${visible(scope)}`,
    ...filtered(filter, "m"),
    ...messageConditions(filter.message),
  ];
  if (filter.labels?.length) searched.push(sql`m.labels @> ${textArray(filter.labels)}`);
  const after = page.after;
  if (after) {
    const [, , fromAt, fromId, toAt, toId] = after;
    searched.push(sql`(m.created_at, m.id) >= (${fromAt}::timestamptz, ${fromId}::bigint)`);
    searched.push(sql`(m.created_at, m.id) <= (${toAt}::timestamptz, ${toId}::bigint)`);
  }
  const where = [...searched, sql`m.search_vector @@ ${q}`];
  // A phrase: the rows holding all its word pairs, from their own index (docs/search.md, "Phrases").
  if (search.pairs) where.push(sql`mail_search_pairs(m.search_vector) @@ ${search.pairs}::tsquery`);
  const beyond = after
    ? sql<SqlBool>`WHERE (r.rank, r.id) < (${after[0]}::real, ${after[1]}::bigint)`
    : sql``;
  const conditions = sql.join(where, sql` AND `);
  // Few matches: all of them from the GIN bitmap, then the newest. Many: a walk of the newest
  // messages that stops at the window's size. Chosen here, not by the planner, which prices the
  // walk's per-row vector check as nearly free and so, at a million messages, walks 100,000 rows
  // for a word in 1% of them where the bitmap reads 10,000.
  const estimate = plan ? undefined : await estimatedRows(db, sql.join(searched, sql` AND `), conditions);
  // The bitmap only pays when the planner reads the matches through an index: for a query the GIN
  // index narrows poorly (`budget -invoice`) it reads every row instead, and the walk reads fewer.
  const sparse = estimate
    ? estimate.matches <= candidates ||
      (estimate.bitmap && estimate.matches <= sparseMatches(estimate.searched, candidates))
    : plan === "bitmap";
  // A phrase's exact check (`<->`) reads each row's whole vector, which its GIN bitmap cannot spare
  // (the index keeps no positions): the rows holding its word pairs are taken newest first and
  // checked one by one until the window is full, instead of checking every one of them. LATERAL
  // keeps the nested loop, so the rows are checked in the order of `n` and the check stops early.
  let candidateRows: RawBuilder<unknown>;
  if (!sparse) {
    candidateRows = sql`
      candidates AS MATERIALIZED (
        SELECT m.id, m.created_at, m.search_vector FROM messages m
        WHERE ${conditions}
        ORDER BY m.created_at DESC, m.id DESC
        LIMIT ${candidates}
      )`;
  } else if (search.pairs) {
    candidateRows = sql`
      matched AS MATERIALIZED (
        SELECT m.id, m.created_at FROM messages m
        WHERE ${sql.join([...searched, sql`mail_search_pairs(m.search_vector) @@ ${search.pairs}::tsquery`], sql` AND `)}
      ),
      candidates AS MATERIALIZED (
        SELECT p.id, p.created_at, p.search_vector
        FROM (SELECT id FROM matched ORDER BY created_at DESC, id DESC) n
        CROSS JOIN LATERAL (
          SELECT m.id, m.created_at, m.search_vector FROM messages m
          WHERE m.org_id = ${scope.orgId} AND m.id = n.id AND m.search_vector @@ ${q}
        ) p
        LIMIT ${candidates}
      )`;
  } else {
    candidateRows = sql`
      matched AS MATERIALIZED (SELECT m.id, m.created_at FROM messages m WHERE ${conditions}),
      candidates AS MATERIALIZED (
        SELECT m.id, m.created_at, m.search_vector
        FROM (SELECT id FROM matched ORDER BY created_at DESC, id DESC LIMIT ${candidates}) n
        JOIN messages m ON m.org_id = ${scope.orgId} AND m.id = n.id
      )`;
  }
  const { rows } = await sql<{ id: string; rank: string; window: SearchWindow }>`
    WITH ${candidateRows}
    SELECT r.id::text AS id, r.rank::text AS rank,
      ARRAY[${instantText(sql`w.from_at`)}, w.from_id::text, ${instantText(sql`w.to_at`)}, w.to_id::text] AS window
    FROM (SELECT c.id, ${rank(sql`c.search_vector`, q)} AS rank FROM candidates c) r
    CROSS JOIN (
      SELECT f.created_at AS from_at, f.id AS from_id, t.created_at AS to_at, t.id AS to_id
      FROM (SELECT created_at, id FROM candidates ORDER BY created_at, id LIMIT 1) f,
        (SELECT created_at, id FROM candidates ORDER BY created_at DESC, id DESC LIMIT 1) t
    ) w
    ${beyond}
    ORDER BY r.rank DESC, r.id DESC
    LIMIT ${page.limit} ${CUSTOM_PLAN}`.execute(db);
  // Later pages keep the first page's window, even if a message at its edge has gone since.
  return after ? rows.map((row) => ({ ...row, window: after.slice(2) as SearchWindow })) : rows;
}

/** HTML-escaped text, without the control characters that separate fragments below. */
const escaped = (text: RawBuilder<unknown>) =>
  sql`replace(replace(replace(replace(regexp_replace(${text}, '[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f]', '', 'g'),
    '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;')`;

/** Separates ts_headline's fragments (a control character escaped() removed from the source). */
const FRAGMENT_DELIMITER = "\u001f";

const MARK = "StartSel=<mark>, StopSel=</mark>";
const WHOLE = `${MARK}, HighlightAll=true`;
const FRAGMENTS = `${MARK}, MaxFragments=3, MaxWords=24, MinWords=8, FragmentDelimiter=${FRAGMENT_DELIMITER}`;

/**
 * A mailbox ("Name <address>") highlighted: where a query word is a piece of the address the parser
 * does not split out of the text (`ann.lee` in ann.lee@example.com), the whole address is marked.
 */
function mailbox(address: RawBuilder<unknown>, name: RawBuilder<unknown>, q: RawBuilder<unknown>) {
  const text = sql`concat_ws(' ', ${name}, '<' || ${address} || '>')`;
  const headline = sql`ts_headline('simple', ${escaped(text)}, ${q}, ${WHOLE})`;
  return sql`CASE WHEN strpos(${headline}, '<mark>') > 0 THEN ${headline}
    ELSE concat_ws(' ', ${escaped(name)}, '&lt;<mark>' || ${escaped(address)} || '</mark>&gt;') END`;
}

const mailboxMatches = (address: RawBuilder<unknown>, name: RawBuilder<unknown>, q: RawBuilder<unknown>) =>
  sql`to_tsvector('simple', concat_ws(' ', ${name}, mail_address_words(ARRAY[${address}]))) @@ ${q}`;

export interface MessageHighlights {
  subject: string | null;
  text: string[];
  from: string | null;
  to: string[];
  attachments: string[];
}

/**
 * Highlights of visible messages (the page's rows) for `anyWord`, a tsquery that matches any word
 * the search looks for: each field as HTML-escaped text with the words found wrapped in
 * <mark>…</mark>; null or empty where the field holds none of them.
 */
export async function searchHighlights(
  db: Db,
  scope: TenantScope,
  ids: readonly string[],
  anyWord: string,
): Promise<Map<string, MessageHighlights>> {
  if (ids.length === 0) return new Map();
  const q = sql`${anyWord}::tsquery`;
  const body = sql`left(coalesce(m.text_body, regexp_replace(left(m.html_body, 400000), '<[^>]*>', ' ', 'g'), ''), 100000)`;
  const recipients = (addresses: string, names: string) =>
    sql`SELECT r.address, r.name, r.ord FROM unnest(${sql.ref(`m.${addresses}`)}, ${sql.ref(`m.${names}`)})
      WITH ORDINALITY AS r(address, name, ord)`;
  const { rows } = await sql<{
    id: string;
    subject: string | null;
    text: string | null;
    from: string | null;
    to: string[] | null;
    attachments: string[] | null;
  }>`
    SELECT m.id::text AS id,
      ts_headline('simple', ${escaped(sql`coalesce(m.subject, '')`)}, ${q}, ${WHOLE}) AS subject,
      CASE WHEN to_tsvector('simple', ${body}) @@ ${q}
        THEN ts_headline('simple', ${escaped(body)}, ${q}, ${FRAGMENTS}) END AS text,
      CASE WHEN ${mailboxMatches(sql`m.from_address`, sql`m.from_name`, q)}
        THEN ${mailbox(sql`m.from_address`, sql`m.from_name`, q)} END AS "from",
      (SELECT array_agg(${mailbox(sql`r.address`, sql`r.name`, q)} ORDER BY r.part, r.ord)
        FROM (SELECT 1 AS part, * FROM (${recipients("to_addresses", "to_names")}) t
          UNION ALL SELECT 2, * FROM (${recipients("cc_addresses", "cc_names")}) c) r
        WHERE ${mailboxMatches(sql`r.address`, sql`r.name`, q)}) AS "to",
      (SELECT array_agg(CASE WHEN strpos(h.headline, '<mark>') > 0 THEN h.headline
          ELSE '<mark>' || ${escaped(sql`a.filename`)} || '</mark>' END ORDER BY a.id)
        FROM attachments a
        CROSS JOIN LATERAL (SELECT ts_headline('simple', ${escaped(sql`a.filename`)}, ${q}, ${WHOLE}) AS headline) h
        WHERE a.org_id = m.org_id AND a.message_id = m.id
          AND to_tsvector('simple', mail_filename_words(ARRAY[a.filename])) @@ ${q}) AS attachments
    FROM messages m
    WHERE ${visible(scope)} AND m.id = ANY(${[...ids]}::bigint[]) ${CUSTOM_PLAN}`.execute(db);
  const marked = (text: string | null) => (text?.includes("<mark>") ? text : null);
  return new Map(
    rows.map((row) => [
      row.id,
      {
        subject: marked(row.subject),
        text: (row.text ?? "")
          .split(FRAGMENT_DELIMITER)
          .map((fragment) => fragment.trim())
          .filter((fragment) => fragment.includes("<mark>")),
        from: row.from,
        to: row.to ?? [],
        attachments: row.attachments ?? [],
      },
    ]),
  );
}
