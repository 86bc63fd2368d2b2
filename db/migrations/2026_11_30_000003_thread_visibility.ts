// Thread order for callers that cannot see some labels. A thread's place in a list is its last
// message *the caller can see* (docs/permissions.md, "Label visibility"), which for a caller hiding spam,
// blocked or trash is not the stored threads.last_message_at. Without this table such a list had to
// aggregate every thread of its scope before paging: fine at ten thousand messages, seconds at a
// million.
//
// A thread holding at least one spam, blocked or trash message has one row per combination of hidden
// labels (hidden_mask: 1 spam, 2 blocked, 4 trash) under which it still has a visible message, with
// that message's time; the row for mask 0 (nothing hidden) is always there and marks the thread.
// Every other thread's visible time is threads.last_message_at for every caller, so a list walks the
// threads index for those (skipping marked threads) and this table's index for the marked ones, and
// merges the two. The application keeps the rows in the transactions that change a thread's messages.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE thread_visibility (
      org_id bigint NOT NULL,
      thread_id bigint NOT NULL,
      -- The thread's, copied so lists scoped to a pod or an inbox walk an index of their own.
      pod_id bigint NOT NULL,
      inbox_id bigint NOT NULL,
      hidden_mask smallint NOT NULL CONSTRAINT thread_visibility_hidden_mask_check CHECK (hidden_mask BETWEEN 0 AND 7),
      last_message_at timestamptz NOT NULL,
      PRIMARY KEY (org_id, thread_id, hidden_mask),
      FOREIGN KEY (org_id, inbox_id, thread_id) REFERENCES threads (org_id, inbox_id, id) ON DELETE CASCADE
    )
  `.execute(db);
  await sql`
    CREATE INDEX thread_visibility_org_id_inbox_id_mask_last_message_at_idx
      ON thread_visibility (org_id, inbox_id, hidden_mask, last_message_at DESC, thread_id DESC)
  `.execute(db);
  await sql`
    CREATE INDEX thread_visibility_org_id_pod_id_mask_last_message_at_idx
      ON thread_visibility (org_id, pod_id, hidden_mask, last_message_at DESC, thread_id DESC)
  `.execute(db);
  await sql`
    CREATE INDEX thread_visibility_org_id_mask_last_message_at_idx
      ON thread_visibility (org_id, hidden_mask, last_message_at DESC, thread_id DESC)
  `.execute(db);
  // Threads that already hold such messages.
  await sql`
    INSERT INTO thread_visibility (org_id, thread_id, pod_id, inbox_id, hidden_mask, last_message_at)
    SELECT t.org_id, t.id, t.pod_id, t.inbox_id, k.mask, max(m.created_at)
    FROM threads t
    JOIN messages m ON m.org_id = t.org_id AND m.thread_id = t.id
    CROSS JOIN LATERAL (
      SELECT mask, ARRAY(SELECT (ARRAY['spam', 'blocked', 'trash'])[i + 1] FROM generate_series(0, 2) i
        WHERE mask & (1 << i) <> 0) AS hidden
      FROM generate_series(0, 7) mask
    ) k
    WHERE NOT (m.labels && k.hidden)
      AND EXISTS (SELECT 1 FROM messages x WHERE x.org_id = t.org_id AND x.thread_id = t.id
        AND x.labels && ARRAY['spam', 'blocked', 'trash'])
    GROUP BY t.org_id, t.id, t.pod_id, t.inbox_id, k.mask
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS thread_visibility`.execute(db);
}
