// Realistic benchmark data, fast: organizations × pods × inboxes × threads × messages, with labels
// (received/unread/sent, some spam and trash), attachments and API keys.
//   npm run bench:seed -- --messages 1000000 [--organizations 1] [--pods 2] [--inboxes 8] …
// Against DATABASE_URL, or a fresh embedded PostgreSQL in --data-dir. Prints one JSON line: the
// organizations with their inboxes and keys (the keys are the only copy of the secrets).
//
// Rows are generated inside PostgreSQL (INSERT … SELECT over unnest + generate_series), a chunk of
// threads per statement, so a million messages take a minute rather than an hour of round trips.
// Node decides the shape (thread sizes, kinds, times) with a seeded PRNG, so a seed is repeatable.
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { sql } from "kysely";
import { insertApiKey } from "../src/api-keys/repository.ts";
import { generateApiKey, hashToken, keyDisplayPrefix } from "../src/auth/keys.ts";
import { PERMISSIONS, type Permission, permissionFlag } from "../src/auth/permissions.ts";
import type { Db } from "../src/db/database.ts";
import type { PermissionFlag } from "../src/db/types.ts";
import { refreshThreadVisibility } from "../src/mail/thread-repository.ts";

export interface SeedOptions {
  organizations: number;
  podsPerOrganization: number;
  inboxesPerPod: number;
  /** Messages per organization. */
  messagesPerOrganization: number;
  /** Mean messages per thread (sizes are geometric, at least 1). */
  meanThreadSize: number;
  /** Share of an organization's threads that land in its first ("hot") inbox. */
  hotInboxShare: number;
  /** Share of messages that carry one attachment. */
  attachmentShare: number;
  /** Bytes of each attachment. */
  attachmentBytes: number;
  spamShare: number;
  trashShare: number;
  /** Messages are spread over this many days before now. */
  days: number;
  /** PRNG seed: the same options and seed give the same data. */
  seed: number;
  /** Organization names get this prefix (several seeds can share one database). */
  name: string;
  mailDomain: string;
  tokenPepper?: string | undefined;
  onProgress?: (message: string) => void;
}

export const DEFAULT_SEED: SeedOptions = {
  organizations: 1,
  podsPerOrganization: 2,
  inboxesPerPod: 4,
  messagesPerOrganization: 10_000,
  meanThreadSize: 4,
  hotInboxShare: 0.5,
  attachmentShare: 0.1,
  attachmentBytes: 4096,
  spamShare: 0.03,
  trashShare: 0.02,
  days: 365,
  seed: 1,
  name: "bench",
  mailDomain: "mailroom.localhost",
};

export interface SeededInbox {
  id: string;
  globalId: string;
  email: string;
  podId: string;
  threads: number;
}

export interface SeededOrganization {
  id: string;
  name: string;
  messages: number;
  threads: number;
  inboxes: SeededInbox[];
  keys: {
    /** Organization scope, every permission. */
    full: string;
    /** Organization scope, every permission but LABEL_SPAM_READ and LABEL_TRASH_READ. */
    hidesSpamAndTrash: string;
    /** Inbox scope (the hot inbox), every permission of that scope. */
    hotInbox: string;
  };
}

/** Threads per INSERT statement; messages follow their threads in the same round. */
const THREAD_CHUNK = 20_000;

/** mulberry32: a small, fast, seedable PRNG; quality is ample for shaping test data. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "account action address agent agenda answer approval april archive article attach audit august " +
  "backup balance batch billing board booking branch budget build bundle calendar call campaign cancel " +
  "change check client cloud code comment confirm contract copy cost customer daily data deadline " +
  "delivery demo deploy design detail draft due email error estimate event export feature feedback " +
  "file final finance follow form forward friday funding goal group guide help holiday hotel idea " +
  "import incident invoice issue item january july june launch lead legal license list login march " +
  "meeting memo message migration milestone minutes monday monthly note notice offer office onboarding " +
  "order outage owner package partner password payment plan policy price project proposal quarter " +
  "question quote receipt refund release renewal report request review roadmap schedule security " +
  "server service session shipment signature sprint status summary support survey task team ticket " +
  "timeline today tomorrow training travel trial update upgrade urgent usage vendor version webinar " +
  "week welcome workshop"
).split(" ");

function sentence(random: () => number, words: number): string {
  const picked = Array.from({ length: words }, () => WORDS[Math.floor(random() * WORDS.length)]);
  const text = picked.join(" ");
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

/** Pools the SQL draws from by hash: varied text without generating it row by row. */
function textPools(random: () => number) {
  const subjects = Array.from({ length: 512 }, () =>
    sentence(random, 3 + Math.floor(random() * 6)).slice(0, -1),
  );
  const paragraphs = Array.from({ length: 1024 }, () =>
    Array.from({ length: 2 + Math.floor(random() * 6) }, () =>
      sentence(random, 6 + Math.floor(random() * 14)),
    ).join(" "),
  );
  const people = Array.from(
    { length: 256 },
    (_, i) => `${WORDS[i % WORDS.length]}.${WORDS[(i * 7 + 3) % WORDS.length]}@example${i % 17}.test`,
  );
  return { subjects, paragraphs, people };
}

type ThreadKind = "normal" | "spam" | "trash";

interface SeededThread {
  inbox: SeededInbox;
  size: number;
  kind: ThreadKind;
  /** First message, epoch ms. */
  start: number;
  /** Seconds between its messages. */
  gap: number;
}

/** Geometric thread sizes with the given mean; a spam thread is a single message. */
function threadSize(random: () => number, mean: number): number {
  const p = 1 / mean;
  return Math.min(50, 1 + Math.floor(Math.log(1 - random()) / Math.log(1 - p)));
}

export async function seed(db: Db, options: Partial<SeedOptions> = {}): Promise<SeededOrganization[]> {
  return seedGroups(db, [options]);
}

/**
 * Several groups of organizations, each with its own options (sizes, names, PRNG seed), then one
 * VACUUM ANALYZE and one thread_visibility rebuild for them all.
 */
export async function seedGroups(
  db: Db,
  groups: readonly Partial<SeedOptions>[],
): Promise<SeededOrganization[]> {
  const organizations: SeededOrganization[] = [];
  const marked = new Map<string, string[]>();
  let onProgress: SeedOptions["onProgress"];
  const now = Date.now();
  for (const group of groups) {
    const o: SeedOptions = { ...DEFAULT_SEED, ...group };
    onProgress ??= o.onProgress;
    const random = prng(o.seed);
    const pools = textPools(random);
    for (let index = 0; index < o.organizations; index++) {
      const seeded = await seedOrganization(db, o, `${o.name}-${index + 1}`, random, pools, now);
      organizations.push(seeded.organization);
      marked.set(seeded.organization.id, seeded.marked);
    }
  }
  onProgress?.("vacuum analyze");
  // Fresh statistics and a visibility map, as autovacuum would leave a real database. Before the
  // rebuild below: planned on empty statistics, it reads every message of the organization.
  for (const table of ["threads", "messages", "attachments", "inboxes", "api_keys"]) {
    await sql`VACUUM (ANALYZE) ${sql.table(table)}`.execute(db);
  }
  // Where callers hiding spam or trash see the threads holding such mail, as the mail path keeps it.
  for (const [orgId, ids] of marked) {
    for (let from = 0; from < ids.length; from += 1_000) {
      await refreshThreadVisibility(db, orgId, ids.slice(from, from + 1_000));
    }
  }
  await sql`VACUUM (ANALYZE) thread_visibility`.execute(db);
  return organizations;
}

/**
 * Runs `load` without `table`'s secondary indexes, then builds them again as they were, as a restore
 * does: maintaining GIN indexes (search, trigrams, labels) row by row made a million messages take
 * an hour on a loaded machine, building each once takes minutes. Indexes behind constraints, and
 * those named in `keep` (which the load itself reads), stay; those matching `leaveOut` are not built
 * again (a benchmark whose statements cannot use them).
 */
export async function withIndexesDeferred<T>(
  db: Db,
  table: string,
  keep: readonly string[],
  load: () => Promise<T>,
  options: { onProgress?: (message: string) => void; leaveOut?: RegExp } = {},
): Promise<T> {
  const { onProgress, leaveOut } = options;
  const { rows } = await sql<{ name: string; definition: string }>`
    SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = ${table}::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
      AND c.relname <> ALL(${[...keep]}::text[])
    ORDER BY c.relname`.execute(db);
  for (const index of rows) await sql`DROP INDEX ${sql.id(index.name)}`.execute(db);
  const result = await load();
  await db.connection().execute(async (connection) => {
    await sql`SET maintenance_work_mem = '256MB'`.execute(connection);
    for (const index of rows) {
      if (leaveOut?.test(index.name)) continue;
      onProgress?.(`building ${index.name}`);
      await sql.raw(index.definition).execute(connection);
    }
  });
  return result;
}

async function seedOrganization(
  db: Db,
  o: SeedOptions,
  name: string,
  random: () => number,
  pools: ReturnType<typeof textPools>,
  now: number,
): Promise<{ organization: SeededOrganization; marked: string[] }> {
  const org = await db
    .insertInto("organizations")
    .values({ name, status: "ACTIVE" })
    .returning("id")
    .executeTakeFirstOrThrow();
  const orgId = org.id;
  const inboxes: SeededInbox[] = [];
  for (let p = 0; p < o.podsPerOrganization; p++) {
    const pod = await db
      .insertInto("pods")
      .values({ org_id: orgId, name: `${name} pod ${p + 1}` })
      .returning("id")
      .executeTakeFirstOrThrow();
    for (let i = 0; i < o.inboxesPerPod; i++) {
      const username = `${name}-p${p + 1}-i${i + 1}-${orgId}`.toLowerCase();
      const email = `${username}@${o.mailDomain}`;
      const inbox = await db
        .insertInto("inboxes")
        .values({
          org_id: orgId,
          pod_id: pod.id,
          username,
          domain: o.mailDomain,
          email,
          display_name: username,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      await db.insertInto("inbox_addresses").values({ email, org_id: orgId, inbox_id: inbox.id }).execute();
      inboxes.push({
        id: inbox.id,
        globalId: encodeGlobalID("Inbox", inbox.id),
        email,
        podId: pod.id,
        threads: 0,
      });
    }
  }

  // The shape of every thread, decided here so the data is repeatable.
  const threads: SeededThread[] = [];
  let messages = 0;
  const span = o.days * 86_400_000;
  while (messages < o.messagesPerOrganization) {
    const roll = random();
    const kind: ThreadKind =
      roll < o.spamShare ? "spam" : roll < o.spamShare + o.trashShare ? "trash" : "normal";
    const size = Math.min(
      kind === "spam" ? 1 : threadSize(random, o.meanThreadSize),
      o.messagesPerOrganization - messages,
    );
    const inbox =
      inboxes.length === 1 || random() < o.hotInboxShare
        ? (inboxes[0] as SeededInbox)
        : (inboxes[1 + Math.floor(random() * (inboxes.length - 1))] as SeededInbox);
    inbox.threads++;
    // The last message's time is uniform over the span, whatever the thread's length (a list's most
    // recent threads are not the longest), and replies come minutes to hours apart.
    const end = now - Math.floor(random() * span);
    const gap = 60 + Math.floor(random() * 6 * 3600);
    threads.push({ inbox, size, kind, start: end - (size - 1) * gap * 1000, gap });
    messages += size;
  }
  // Oldest first, so ids grow with time as they do in a live system.
  threads.sort((a, b) => a.start - b.start);

  let done = 0;
  const marked: string[] = [];
  for (let from = 0; from < threads.length; from += THREAD_CHUNK) {
    const chunk = threads.slice(from, from + THREAD_CHUNK);
    marked.push(...(await insertChunk(db, o, orgId, chunk, pools)));
    done += chunk.reduce((sum, t) => sum + t.size, 0);
    o.onProgress?.(`${name}: ${done.toLocaleString("en")} / ${messages.toLocaleString("en")} messages`);
  }

  const keys = {
    full: await insertKey(db, o, orgId, "bench: full", {}),
    hidesSpamAndTrash: await insertKey(db, o, orgId, "bench: hides spam and trash", {
      permissions: PERMISSIONS.filter((p) => p !== "LABEL_SPAM_READ" && p !== "LABEL_TRASH_READ"),
    }),
    hotInbox: await insertKey(db, o, orgId, "bench: hot inbox", { inbox: inboxes[0] as SeededInbox }),
  };
  return { organization: { id: orgId, name, messages, threads: threads.length, inboxes, keys }, marked };
}

async function insertChunk(
  db: Db,
  o: SeedOptions,
  orgId: string,
  chunk: SeededThread[],
  pools: ReturnType<typeof textPools>,
): Promise<string[]> {
  const count = chunk.length;
  // Identity values reserved up front, so messages can name their thread in the same round.
  const ids = (
    await sql<{ id: string }>`
      SELECT nextval(pg_get_serial_sequence('threads', 'id'))::text AS id FROM generate_series(1, ${count})`.execute(
      db,
    )
  ).rows.map((row) => row.id);
  const column = <T>(pick: (t: (typeof chunk)[number]) => T) => chunk.map(pick);
  const starts = column((t) => new Date(t.start).toISOString());
  const gaps = column((t) => t.gap);
  await sql`
    WITH spec AS (
      SELECT * FROM unnest(${ids}::bigint[], ${column((t) => t.inbox.id)}::bigint[],
        ${column((t) => t.inbox.podId)}::bigint[], ${column((t) => t.size)}::int[],
        ${column((t) => t.kind)}::text[], ${starts}::timestamptz[], ${gaps}::int[])
        AS s(id, inbox_id, pod_id, size, kind, started_at, gap)
    ), threads_inserted AS (
      INSERT INTO threads (org_id, id, pod_id, inbox_id, subject, created_at, last_message_at)
      OVERRIDING SYSTEM VALUE
      SELECT ${orgId}, s.id, s.pod_id, s.inbox_id,
        (${pools.subjects}::text[])[1 + (hashint8(s.id) & 511)],
        s.started_at, s.started_at + make_interval(secs => (s.size - 1) * s.gap)
      FROM spec s
      RETURNING id
    )
    INSERT INTO messages (org_id, pod_id, inbox_id, thread_id, message_id_header, from_address, from_name,
      to_addresses, cc_addresses, recipient_text, subject, text_body, html_body, preview, labels, in_reply_to,
      reference_ids, direction, delivery_status, delivered_at, size_bytes, created_at, updated_at, search_vector)
    -- search_vector: what searchMessages finds each message by, as the mail path stores it
    -- (mail_search_vector, from the migration); attachments' filenames are added with them below.
    SELECT x.*, mail_search_vector(x.subject, x.from_address, x.from_name, x.to_addresses, NULL, x.cc_addresses,
      NULL, NULL, x.text_body, x.html_body)
    FROM (
    SELECT ${orgId}::bigint AS org_id, s.pod_id, s.inbox_id, s.id AS thread_id, m.header,
      CASE WHEN m.outbound THEN i.email ELSE m.person END AS from_address,
      -- A person's name from the address they write from ("ann.lee@…" signs as "Ann Lee").
      CASE WHEN NOT m.outbound THEN initcap(replace(split_part(m.person, '@', 1), '.', ' ')) END AS from_name,
      CASE WHEN m.outbound THEN ARRAY[m.person] ELSE ARRAY[i.email] END AS to_addresses,
      m.cc AS cc_addresses,
      lower(array_to_string(CASE WHEN m.outbound THEN ARRAY[m.person] ELSE ARRAY[i.email] END || m.cc, ' ')),
      CASE WHEN m.k = 1 THEN subj.subject ELSE 'Re: ' || subj.subject END AS subject,
      body.text AS text_body,
      CASE WHEN (m.h & 3) = 0 THEN '<p>' || replace(body.text, '. ', '.</p><p>') || '</p>' END AS html_body,
      left(body.flat, 199) || CASE WHEN length(body.flat) > 199 THEN '…' ELSE '' END,
      CASE
        WHEN s.kind = 'spam' THEN ARRAY['received', 'spam', 'unread']
        WHEN m.outbound AND s.kind = 'trash' THEN ARRAY['sent', 'trash']
        WHEN m.outbound THEN ARRAY['sent']
        WHEN s.kind = 'trash' THEN ARRAY['received', 'trash']
        WHEN m.created_at > now() - interval '7 days' OR (m.h & 15) = 0 THEN ARRAY['received', 'unread']
        ELSE ARRAY['received']
      END,
      CASE WHEN m.k > 1 THEN '<t' || s.id || '.' || (m.k - 1) || '@seed.invalid>' END,
      CASE WHEN m.k > 1 THEN ARRAY(SELECT '<t' || s.id || '.' || r || '@seed.invalid>' FROM generate_series(1, m.k - 1) r)
        ELSE '{}'::text[] END,
      CASE WHEN m.outbound THEN 'OUTBOUND' ELSE 'INBOUND' END,
      CASE WHEN m.outbound THEN 'DELIVERED' END,
      CASE WHEN m.outbound THEN m.created_at END,
      600 + octet_length(body.text) * 2,
      m.created_at, m.created_at
    FROM spec s
    JOIN inboxes i ON i.org_id = ${orgId} AND i.id = s.inbox_id
    CROSS JOIN LATERAL (SELECT (${pools.subjects}::text[])[1 + (hashint8(s.id) & 511)] AS subject) subj
    CROSS JOIN LATERAL (
      SELECT k, hashint8(s.id * 64 + k) AS h,
        '<t' || s.id || '.' || k || '@seed.invalid>' AS header,
        s.started_at + make_interval(secs => (k - 1) * s.gap) AS created_at,
        -- Agents answer: in a conversation every other message is ours.
        s.kind <> 'spam' AND k % 2 = 0 AS outbound,
        (${pools.people}::text[])[1 + (hashint8(s.id) & 255)] AS person,
        CASE WHEN (hashint8(s.id * 64 + k) & 7) = 0
          THEN ARRAY[(${pools.people}::text[])[1 + ((hashint8(s.id * 64 + k) >> 8) & 255)]] ELSE '{}'::text[] END AS cc
      FROM generate_series(1, s.size) k
    ) m
    CROSS JOIN LATERAL (
      SELECT (${pools.paragraphs}::text[])[1 + (m.h & 1023)] AS first, (${pools.paragraphs}::text[])[1 + ((m.h >> 10) & 1023)] AS second
    ) part
    -- A rare word in every message, as real mail has (an order or ticket number): Ref TK<n> with
    -- n < 50,000, so each is in about one message in 50,000.
    CROSS JOIN LATERAL (SELECT 'Ref TK' || (abs(m.h) % 50000) AS ref) rare
    CROSS JOIN LATERAL (SELECT part.first || E'\n\n' || part.second || E'\n\n' || rare.ref || '.' AS text,
      part.first || ' ' || part.second || ' ' || rare.ref || '.' AS flat) body
    ) x`.execute(db);
  if (o.attachmentShare > 0) {
    const threshold = Math.round(o.attachmentShare * 1000);
    await sql`
      INSERT INTO attachments (org_id, message_id, filename, content_type, size_bytes, disposition, content, created_at)
      SELECT m.org_id, m.id, 'document-' || m.id || '.pdf', 'application/pdf', ${o.attachmentBytes},
        'attachment', substring(convert_to(repeat(md5(m.id::text), ${Math.ceil(o.attachmentBytes / 32)}), 'UTF8')
          FROM 1 FOR ${o.attachmentBytes}), m.created_at
      FROM messages m
      WHERE m.org_id = ${orgId} AND m.thread_id = ANY(${ids}::bigint[]) AND abs(hashint8(m.id) % 1000) < ${threshold}`.execute(
      db,
    );
    await sql`
      UPDATE messages m SET has_attachments = true,
        search_vector = mail_search_vector(m.subject, m.from_address, m.from_name, m.to_addresses, m.to_names,
          m.cc_addresses, m.cc_names, ARRAY['document-' || m.id || '.pdf'], m.text_body, m.html_body)
      WHERE m.org_id = ${orgId} AND m.thread_id = ANY(${ids}::bigint[]) AND abs(hashint8(m.id) % 1000) < ${threshold}`.execute(
      db,
    );
  }
  // Threads holding spam or trash: their thread_visibility rows are built once statistics are fresh.
  return chunk.flatMap((thread, index) => (thread.kind === "normal" ? [] : [ids[index] as string]));
}

async function insertKey(
  db: Db,
  o: SeedOptions,
  orgId: string,
  name: string,
  options: { permissions?: readonly Permission[]; inbox?: SeededInbox },
): Promise<string> {
  const secret = generateApiKey();
  await insertApiKey(
    db,
    {
      org_id: orgId,
      name,
      prefix: keyDisplayPrefix(secret),
      scope: options.inbox ? "INBOX" : "ORGANIZATION",
      pod_id: options.inbox?.podId ?? null,
      inbox_id: options.inbox?.id ?? null,
      permissions: options.permissions
        ? options.permissions.map((p) => permissionFlag(p) as PermissionFlag)
        : null,
    },
    hashToken(secret, o.tokenPepper),
  );
  return secret;
}

async function main() {
  const { values } = parseArgs({
    options: {
      messages: { type: "string", default: String(DEFAULT_SEED.messagesPerOrganization) },
      organizations: { type: "string", default: String(DEFAULT_SEED.organizations) },
      pods: { type: "string", default: String(DEFAULT_SEED.podsPerOrganization) },
      inboxes: { type: "string", default: String(DEFAULT_SEED.inboxesPerPod) },
      "thread-size": { type: "string", default: String(DEFAULT_SEED.meanThreadSize) },
      "hot-share": { type: "string", default: String(DEFAULT_SEED.hotInboxShare) },
      attachments: { type: "string", default: String(DEFAULT_SEED.attachmentShare) },
      spam: { type: "string", default: String(DEFAULT_SEED.spamShare) },
      trash: { type: "string", default: String(DEFAULT_SEED.trashShare) },
      seed: { type: "string", default: String(DEFAULT_SEED.seed) },
      name: { type: "string", default: DEFAULT_SEED.name },
      "data-dir": { type: "string", default: ".data-bench" },
    },
    strict: true,
  });
  const number = (flag: keyof typeof values) => {
    const value = Number(values[flag]);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${flag} must be a non-negative number`);
    return value;
  };
  const { loadConfig } = await import("../src/config.ts");
  const { createDatabase } = await import("../src/db/database.ts");
  const { startEmbeddedPostgres } = await import("../src/db/embedded.ts");
  const { migrateToLatest } = await import("../src/db/migrate.ts");
  const config = loadConfig();
  const embedded = config.databaseUrl
    ? undefined
    : await startEmbeddedPostgres({ dataDir: values["data-dir"] as string });
  const database = createDatabase(config.databaseUrl ?? (embedded?.url as string), { max: 2 });
  const started = performance.now();
  try {
    await migrateToLatest(database.db);
    const organizations = await seed(database.db, {
      organizations: number("organizations"),
      podsPerOrganization: number("pods"),
      inboxesPerPod: number("inboxes"),
      messagesPerOrganization: number("messages"),
      meanThreadSize: number("thread-size"),
      hotInboxShare: number("hot-share"),
      attachmentShare: number("attachments"),
      spamShare: number("spam"),
      trashShare: number("trash"),
      seed: number("seed"),
      name: values.name as string,
      mailDomain: config.mailDomain,
      tokenPepper: config.tokenPepper,
      onProgress: (message) => process.stderr.write(`${message}\n`),
    });
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(`seeded in ${seconds.toFixed(1)} s\n`);
    process.stdout.write(
      `${JSON.stringify({ seconds, databaseUrl: embedded ? embedded.url : "DATABASE_URL", organizations })}\n`,
    );
  } finally {
    await database.destroy();
    await embedded?.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
