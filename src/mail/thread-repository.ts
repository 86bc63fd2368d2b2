// Threads: SQL only. A thread's aggregates (count, subject, preview, labels, senders, recipients, last
// message time) are computed over the caller's visible messages only, so a hidden message leaks
// through no field; a thread with no visible message is itself hidden. Lists walk indexes, including
// thread_visibility for callers that hide labels (db/migrations/…_thread_visibility.ts).
import { sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import { CUSTOM_PLAN, type Db } from "../db/database.ts";
import { compareIds } from "../db/ids.ts";
import { type KeysetPage, keysetDirection, type TimeKey, timeKey, timeKeyConditions } from "../db/keyset.ts";
import { type Placeholders, shapedStatement } from "../db/shaped.ts";
import { messageConditions } from "./message-filter.ts";
import {
  filterAsksForHiddenLabel,
  filtered,
  HIDING_LABELS,
  hiddenMask,
  inScope,
  type ListFilter,
  ofThread,
  type ScopeShape,
  scopeShape,
  scopeValues,
  shapedScope,
  textArray,
  visible,
} from "./visibility.ts";

export interface Thread {
  org_id: string;
  id: string;
  pod_id: string;
  inbox_id: string;
  subject: string | null;
  preview: string | null;
  labels: string[];
  senders: string[];
  recipients: string[];
  message_count: number;
  last_message_at: Date;
}

/** Threads are listed newest activity first: (last visible message time, id). */
export type ThreadKey = TimeKey;

export const threadKey = (thread: Thread): ThreadKey => timeKey(thread.last_message_at, thread.id);

/** The per-thread aggregates a list computes when its selection reads them. */
export type ThreadAggregate = "subject" | "preview" | "messageCount" | "labels" | "senders" | "recipients";

export const THREAD_AGGREGATES: readonly ThreadAggregate[] = [
  "subject",
  "preview",
  "messageCount",
  "labels",
  "senders",
  "recipients",
];

const ALL_AGGREGATES: ReadonlySet<ThreadAggregate> = new Set(THREAD_AGGREGATES);

/**
 * Aggregates over the visible messages of thread alias `t`, one scalar subquery each, every one an
 * index walk over (org_id, thread_id, created_at, id); those not in `wanted` are constants.
 */
function threadAggregates(scope: TenantScope, wanted: ReadonlySet<ThreadAggregate>) {
  const pick = (name: ThreadAggregate, query: ReturnType<typeof sql>, otherwise: ReturnType<typeof sql>) =>
    wanted.has(name) ? query : otherwise;
  return sql.join(
    [
      pick(
        "subject",
        sql`(SELECT m.subject FROM messages m WHERE ${ofThread(scope)} ORDER BY m.created_at, m.id LIMIT 1)`,
        sql`NULL::text`,
      ),
      pick(
        "preview",
        sql`(SELECT m.preview FROM messages m WHERE ${ofThread(scope)} ORDER BY m.created_at DESC, m.id DESC LIMIT 1)`,
        sql`NULL::text`,
      ),
      pick("messageCount", sql`(SELECT count(*)::int FROM messages m WHERE ${ofThread(scope)})`, sql`0`),
      pick(
        "labels",
        sql`coalesce((SELECT array_agg(DISTINCT l ORDER BY l) FROM messages m, unnest(m.labels) AS l
          WHERE ${ofThread(scope)}), '{}')`,
        sql`'{}'::text[]`,
      ),
      pick(
        "senders",
        sql`coalesce((SELECT array_agg(f ORDER BY first_at) FROM (
          SELECT m.from_address AS f, min(m.created_at) AS first_at FROM messages m
          WHERE ${ofThread(scope)} GROUP BY m.from_address) s), '{}')`,
        sql`'{}'::text[]`,
      ),
      pick(
        "recipients",
        sql`coalesce((SELECT array_agg(DISTINCT r ORDER BY r) FROM messages m, unnest(m.to_addresses || m.cc_addresses) AS r
          WHERE ${ofThread(scope)}), '{}')`,
        sql`'{}'::text[]`,
      ),
    ],
    sql`, `,
  );
}

const AGGREGATE_NAMES = sql`subject, preview, message_count, labels, senders, recipients`;

/**
 * A thread matches a MessageFilter when one of its visible messages meets every condition. Two ways
 * to find them, and the planner cannot tell which is cheap (it guesses how many messages a substring
 * matches, and how they spread over threads), so the list decides:
 * - few matching messages (at most `matchesFirstLimit`): read them all through the filter's own
 *   indexes, and page over their threads (`ids`);
 * - more: walk the threads in list order and ask each, on the (org_id, thread_id, …) index, whether
 *   it holds a match. With that many matches the walk meets one soon.
 * The first costs about one row read per match, the second one index probe per thread walked (about
 * the page size × threads per matching thread); at 1M messages and 160,000 threads in an inbox they
 * cross near 10,000 matches (bench/filters.ts).
 * A `since` also bounds the walk itself: a thread with a visible message since then was last active
 * since then, in any caller's view (its last visible message is one of its messages).
 */
type Matching = { kind: "none" } | { kind: "ids"; ids: string[] } | { kind: "walk" };

/** How many matching messages the list reads first before it walks the threads instead. */
export const MATCHES_FIRST_LIMIT = 10_000;

async function findMatching(
  db: Db,
  scope: TenantScope,
  filter: ListFilter,
  matchesFirstLimit: number,
): Promise<Matching> {
  const conditions = messageConditions(filter.message, "fm");
  if (conditions.length === 0) return { kind: "none" };
  const where = [visible(scope, "fm"), ...filtered(filter, "fm"), ...conditions];
  const { rows } = await sql<{ thread_id: string }>`
    SELECT fm.thread_id FROM messages fm WHERE ${sql.join(where, sql` AND `)}
    LIMIT ${matchesFirstLimit + 1} ${CUSTOM_PLAN}`.execute(db);
  if (rows.length > matchesFirstLimit) return { kind: "walk" };
  return { kind: "ids", ids: [...new Set(rows.map((row) => row.thread_id))] };
}

/** The conditions on thread alias `threadId` (and its visible last time `key`) that `matching` sets. */
function matchingConditions(
  scope: TenantScope,
  filter: ListFilter,
  matching: Matching,
  threadId: string,
  key: string,
) {
  if (matching.kind === "none") return [];
  if (matching.kind === "ids") return [sql`${sql.ref(threadId)} = ANY(${matching.ids}::bigint[])`];
  const parts = [
    sql`EXISTS (SELECT 1 FROM messages fm WHERE fm.org_id = ${scope.orgId} AND fm.thread_id = ${sql.ref(threadId)}
      AND ${visible(scope, "fm")} AND ${sql.join(messageConditions(filter.message, "fm"), sql` AND `)})`,
  ];
  if (filter.message?.since) parts.push(sql`${sql.ref(key)} >= ${filter.message.since}`);
  return parts;
}

/**
 * One page of (thread id, visible last time) keys. Nothing hidden: a walk of the threads index.
 * Some labels hidden: threads holding no spam, blocked or trash message have the same visible time
 * for everyone, so the threads index serves them (skipping the others); the others come from
 * thread_visibility's index for this combination of hidden labels; the two sorted walks merge.
 * Either way the page costs reading about `limit` index entries, whatever the size of the scope.
 */
function pageKeys(scope: TenantScope, filter: ListFilter, matching: Matching, page: KeysetPage<ThreadKey>) {
  const { order } = keysetDirection(page);
  const threadWhere = [
    inScope(scope, "t"),
    ...filtered(filter, "t"),
    ...matchingConditions(scope, filter, matching, "t.id", "t.last_message_at"),
    ...timeKeyConditions(page, "t.last_message_at", "t.id"),
  ];
  const mask = hiddenMask(scope);
  if (mask === 0) {
    return sql`
      SELECT t.id, t.last_message_at AS key FROM threads t WHERE ${sql.join(threadWhere, sql` AND `)}
      ORDER BY t.last_message_at ${order}, t.id ${order} LIMIT ${page.limit}`;
  }
  const markedWhere = [
    inScope(scope, "v"),
    ...filtered(filter, "v"),
    ...matchingConditions(scope, filter, matching, "v.thread_id", "v.last_message_at"),
    sql`v.hidden_mask = ${mask}`,
    ...timeKeyConditions(page, "v.last_message_at", "v.thread_id"),
  ];
  return sql`
    SELECT id, key FROM (
      (SELECT t.id, t.last_message_at AS key FROM threads t
        WHERE ${sql.join(threadWhere, sql` AND `)} AND NOT EXISTS (
          SELECT 1 FROM thread_visibility x WHERE x.org_id = t.org_id AND x.thread_id = t.id AND x.hidden_mask = 0)
        ORDER BY t.last_message_at ${order}, t.id ${order} LIMIT ${page.limit})
      UNION ALL
      (SELECT v.thread_id, v.last_message_at FROM thread_visibility v WHERE ${sql.join(markedWhere, sql` AND `)}
        ORDER BY v.last_message_at ${order}, v.thread_id ${order} LIMIT ${page.limit})
    ) merged ORDER BY key ${order}, id ${order} LIMIT ${page.limit}`;
}

/**
 * Keys of threads whose visible labels include every filter label: each must be on some visible
 * message. No index orders these, so the scope's threads are all examined.
 */
function filteredPageKeys(
  scope: TenantScope,
  filter: ListFilter,
  matching: Matching,
  page: KeysetPage<ThreadKey>,
) {
  const { order } = keysetDirection(page);
  const where = [
    inScope(scope, "t"),
    ...filtered(filter, "t"),
    ...matchingConditions(scope, filter, matching, "t.id", "t.last_message_at"),
  ];
  for (const label of filter.labels ?? []) {
    where.push(
      sql`EXISTS (SELECT 1 FROM messages m WHERE ${ofThread(scope)} AND m.labels @> ARRAY[${label}]::text[])`,
    );
  }
  return sql`
    SELECT id, key FROM (
      SELECT t.id, (SELECT max(m.created_at) FROM messages m WHERE ${ofThread(scope)}) AS key
      FROM threads t WHERE ${sql.join(where, sql` AND `)}
    ) candidates
    WHERE ${sql.join([sql`key IS NOT NULL`, ...timeKeyConditions(page, "key", "id")], sql` AND `)}
    ORDER BY key ${order}, id ${order} LIMIT ${page.limit}`;
}

export async function listThreads(
  db: Db,
  scope: TenantScope,
  filter: ListFilter,
  page: KeysetPage<ThreadKey>,
  wanted: ReadonlySet<ThreadAggregate> = ALL_AGGREGATES,
  { matchesFirstLimit = MATCHES_FIRST_LIMIT }: { matchesFirstLimit?: number } = {},
): Promise<Thread[]> {
  if (filterAsksForHiddenLabel(scope, filter)) return [];
  if (!filter.labels?.length && !filter.message)
    return (await plainPage(db, scope, filter, page, wanted)).rows;
  const { order } = keysetDirection(page);
  const matching = await findMatching(db, scope, filter, matchesFirstLimit);
  if (matching.kind === "ids" && matching.ids.length === 0) return [];
  const keys = filter.labels?.length
    ? filteredPageKeys(scope, filter, matching, page)
    : pageKeys(scope, filter, matching, page);
  const result = await sql<Thread>`
    SELECT t.org_id, t.id, t.pod_id, t.inbox_id, p.key AS last_message_at, a.*
    FROM (${keys}) p
    JOIN threads t ON t.org_id = ${scope.orgId} AND t.id = p.id
    CROSS JOIN LATERAL (SELECT ${threadAggregates(scope, wanted)}) AS a(${AGGREGATE_NAMES})
    ORDER BY p.key ${order}, p.id ${order} ${matching.kind === "none" ? sql`` : CUSTOM_PLAN}`.execute(db);
  return result.rows;
}

/** What the text of a plain page's statement depends on (the cache key of plainPageStatement). */
interface PlainShape extends ScopeShape {
  inboxFilter: boolean;
  podFilter: boolean;
  after: boolean;
  before: boolean;
  ascending: boolean;
  inverted: boolean;
  wanted: ThreadAggregate[];
}

interface PlainValues extends Record<string, unknown> {
  orgId: string;
  podId: string | null;
  inboxId: string | null;
  filterInboxId: string | undefined;
  filterPodId: string | undefined;
  afterTime: string | undefined;
  afterId: string | undefined;
  beforeTime: string | undefined;
  beforeId: string | undefined;
  limit: number;
}

/** The statement of listThreads without label or message conditions, from its shape alone. */
function buildPlainPage(shape: PlainShape, v: Placeholders<PlainValues>) {
  const value = <T>(placeholder: unknown) => placeholder as T;
  const scope = shapedScope(shape, v);
  const filter: ListFilter = {
    inboxId: shape.inboxFilter ? value(v.filterInboxId) : undefined,
    podId: shape.podFilter ? value(v.filterPodId) : undefined,
  };
  const page: KeysetPage<ThreadKey> = {
    after: shape.after ? [value(v.afterTime), value(v.afterId)] : undefined,
    before: shape.before ? [value(v.beforeTime), value(v.beforeId)] : undefined,
    limit: value(v.limit),
    inverted: shape.inverted,
    ascending: shape.ascending,
  };
  const { order } = keysetDirection(page);
  return sql<Thread>`
    SELECT t.org_id, t.id, t.pod_id, t.inbox_id, p.key AS last_message_at, a.*
    FROM (${pageKeys(scope, filter, { kind: "none" }, page)}) p
    JOIN threads t ON t.org_id = ${scope.orgId} AND t.id = p.id
    CROSS JOIN LATERAL (SELECT ${threadAggregates(scope, new Set(shape.wanted))}) AS a(${AGGREGATE_NAMES})
    ORDER BY p.key ${order}, p.id ${order}`;
}

const plainPageStatement = shapedStatement(buildPlainPage, [
  "orgId",
  "podId",
  "inboxId",
  "filterInboxId",
  "filterPodId",
  "afterTime",
  "afterId",
  "beforeTime",
  "beforeId",
  "limit",
]);

function plainPage(
  db: Db,
  scope: TenantScope,
  filter: ListFilter,
  page: KeysetPage<ThreadKey>,
  wanted: ReadonlySet<ThreadAggregate>,
) {
  return plainPageStatement(
    db,
    {
      ...scopeShape(scope),
      inboxFilter: filter.inboxId !== undefined,
      podFilter: filter.podId !== undefined,
      after: page.after !== undefined,
      before: page.before !== undefined,
      ascending: page.ascending ?? false,
      inverted: page.inverted,
      wanted: THREAD_AGGREGATES.filter((aggregate) => wanted.has(aggregate)),
    },
    {
      ...scopeValues(scope),
      filterInboxId: filter.inboxId,
      filterPodId: filter.podId,
      afterTime: page.after?.[0],
      afterId: page.after?.[1],
      beforeTime: page.before?.[0],
      beforeId: page.before?.[1],
      limit: page.limit,
    },
  );
}

/** Threads by id, with every aggregate; a thread without a visible message is not found. */
export async function threadsByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<Thread[]> {
  if (ids.length === 0) return [];
  const result = await sql<Thread>`
    SELECT t.org_id, t.id, t.pod_id, t.inbox_id, last.at AS last_message_at, a.*
    FROM threads t
    CROSS JOIN LATERAL (SELECT max(m.created_at) AS at FROM messages m WHERE ${ofThread(scope)}) last
    CROSS JOIN LATERAL (SELECT ${threadAggregates(scope, ALL_AGGREGATES)}) AS a(${AGGREGATE_NAMES})
    WHERE ${inScope(scope, "t")} AND t.id = ANY(${[...ids]}::bigint[]) AND last.at IS NOT NULL`.execute(db);
  return result.rows;
}

/**
 * Rebuilds the thread_visibility rows of threads whose messages changed in a way that can move a
 * hidden-label caller's view of them: a message carrying spam, blocked or trash came, went, or
 * gained or lost one of those labels. Locks the threads first, so two transactions changing one
 * thread rebuild its rows one after the other, each from everything the other committed.
 */
export async function refreshThreadVisibility(
  db: Db,
  orgId: string,
  threadIds: readonly string[],
): Promise<void> {
  if (threadIds.length === 0) return;
  const ids = [...new Set(threadIds)].sort(compareIds);
  await sql`SELECT 1 FROM threads WHERE org_id = ${orgId} AND id = ANY(${ids}::bigint[]) ORDER BY id FOR NO KEY UPDATE`.execute(
    db,
  );
  await sql`DELETE FROM thread_visibility WHERE org_id = ${orgId} AND thread_id = ANY(${ids}::bigint[])`.execute(
    db,
  );
  // Per thread and mask, one walk of the thread's messages by index, however many threads.
  await sql`
    INSERT INTO thread_visibility (org_id, thread_id, pod_id, inbox_id, hidden_mask, last_message_at)
    SELECT t.org_id, t.id, t.pod_id, t.inbox_id, k.mask, last.at
    FROM threads t
    CROSS JOIN LATERAL (
      SELECT mask, ARRAY(SELECT (${textArray(HIDING_LABELS)})[i + 1] FROM generate_series(0, ${HIDING_LABELS.length - 1}) i
        WHERE mask & (1 << i) <> 0) AS hidden
      FROM generate_series(0, ${(1 << HIDING_LABELS.length) - 1}) mask
    ) k
    CROSS JOIN LATERAL (
      SELECT max(m.created_at) AS at FROM messages m
      WHERE m.org_id = t.org_id AND m.thread_id = t.id AND NOT (m.labels && k.hidden)
    ) last
    WHERE t.org_id = ${orgId} AND t.id = ANY(${ids}::bigint[]) AND last.at IS NOT NULL
      AND EXISTS (SELECT 1 FROM messages x WHERE x.org_id = t.org_id AND x.thread_id = t.id
        AND x.labels && ${textArray(HIDING_LABELS)})`.execute(db);
}

/** Labels every visible message of a thread; returns how many it touched (0: no visible thread). */
export async function labelThread(
  db: Db,
  scope: TenantScope,
  threadId: string,
  label: string,
): Promise<number> {
  const result = await sql`
    UPDATE messages m SET labels = array_append(m.labels, ${label}), updated_at = now()
    WHERE m.thread_id = ${threadId} AND ${visible(scope)} AND NOT (${label} = ANY(m.labels))`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** Deletes the caller's visible messages of a thread, and the thread once it has none left. */
export async function deleteThreadMessages(db: Db, scope: TenantScope, threadId: string): Promise<number> {
  const result =
    await sql`DELETE FROM messages m WHERE m.thread_id = ${threadId} AND ${visible(scope)}`.execute(db);
  await sql`
    DELETE FROM threads t WHERE ${inScope(scope, "t")} AND t.id = ${threadId}
      AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.org_id = t.org_id AND m.thread_id = t.id)`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** Refreshes a thread's stored activity time after its messages changed. */
export async function refreshThread(db: Db, orgId: string, threadId: string): Promise<void> {
  await sql`
    UPDATE threads t SET last_message_at = coalesce(
      (SELECT max(m.created_at) FROM messages m WHERE m.org_id = t.org_id AND m.thread_id = t.id), t.last_message_at)
    WHERE t.org_id = ${orgId} AND t.id = ${threadId}`.execute(db);
}
