// bench/seed.ts writes rows straight into the tables, around the mail path, so the benchmarks can
// have a million messages in a minute. Its data must still be what the mail path would have written:
// threads that agree with their messages, thread_visibility for spam and trash, working keys.
import { encodeGlobalID } from "@pothos/plugin-relay";
import { sql } from "kysely";
import { beforeAll, describe, expect, it } from "vitest";
import { type SeededOrganization, seed } from "../bench/seed.ts";
import { refreshThreadVisibility } from "../src/mail/thread-repository.ts";
import { ok } from "./helpers/server.ts";
import { databaseSuite, serverOn } from "./helpers/suite.ts";

const database = databaseSuite();
let org: SeededOrganization;

beforeAll(async () => {
  [org] = (await seed(database.db, {
    messagesPerOrganization: 600,
    spamShare: 0.1,
    trashShare: 0.1,
    attachmentShare: 0.2,
    name: "seeded",
  })) as [SeededOrganization];
});
// Started once the data is there, as bench/run.ts does.
const server = serverOn(database);

describe("bench/seed", () => {
  it("writes the messages asked for, in threads that agree with them", async () => {
    const { rows } = await sql<{
      messages: string;
      threads: string;
      disagreeing: string;
      attachments: string;
    }>`
      SELECT (SELECT count(*) FROM messages WHERE org_id = ${org.id}) AS messages,
             (SELECT count(*) FROM threads WHERE org_id = ${org.id}) AS threads,
             (SELECT count(*) FROM threads t WHERE t.org_id = ${org.id} AND (
                t.last_message_at <> (SELECT max(created_at) FROM messages m WHERE m.org_id = t.org_id AND m.thread_id = t.id)
                OR t.subject IS DISTINCT FROM (SELECT subject FROM messages m WHERE m.org_id = t.org_id AND m.thread_id = t.id
                  ORDER BY created_at, id LIMIT 1))) AS disagreeing,
             (SELECT count(*) FROM attachments WHERE org_id = ${org.id}) AS attachments`.execute(database.db);
    expect(rows[0]).toMatchObject({ messages: "600", threads: String(org.threads), disagreeing: "0" });
    expect(Number(rows[0]?.attachments)).toBeGreaterThan(50);
    // Labels are stored sorted, as the mail path stores them.
    const unsorted = await sql<{ n: string }>`
      SELECT count(*) AS n FROM messages WHERE org_id = ${org.id}
        AND labels <> ARRAY(SELECT l FROM unnest(labels) l ORDER BY l)`.execute(database.db);
    expect(unsorted.rows[0]?.n).toBe("0");
  });

  it("gives every message the search vector the mail path would", async () => {
    const { rows } = await sql<{ differing: string; empty: string }>`
      SELECT count(*) FILTER (WHERE m.search_vector IS DISTINCT FROM mail_search_vector(m.subject, m.from_address,
          m.from_name, m.to_addresses, m.to_names, m.cc_addresses, m.cc_names,
          (SELECT array_agg(a.filename ORDER BY a.id) FROM attachments a WHERE a.org_id = m.org_id AND a.message_id = m.id),
          m.text_body, m.html_body)) AS differing,
        count(*) FILTER (WHERE m.search_vector = ''::tsvector) AS empty
      FROM messages m WHERE m.org_id = ${org.id}`.execute(database.db);
    expect(rows[0]).toEqual({ differing: "0", empty: "0" });
  });

  it("keeps thread_visibility as the mail path would", async () => {
    const before = await sql<{ thread_id: string; hidden_mask: number; last_message_at: Date }>`
      SELECT thread_id, hidden_mask, last_message_at FROM thread_visibility WHERE org_id = ${org.id}
      ORDER BY thread_id, hidden_mask`.execute(database.db);
    expect(before.rows.length).toBeGreaterThan(0);
    const threads = await sql<{ id: string }>`SELECT id FROM threads WHERE org_id = ${org.id}`.execute(
      database.db,
    );
    await refreshThreadVisibility(
      database.db,
      org.id,
      threads.rows.map((t) => t.id),
    );
    const after = await sql<{ thread_id: string; hidden_mask: number; last_message_at: Date }>`
      SELECT thread_id, hidden_mask, last_message_at FROM thread_visibility WHERE org_id = ${org.id}
      ORDER BY thread_id, hidden_mask`.execute(database.db);
    expect(after.rows).toEqual(before.rows);
  });

  it("hands out keys that work, each with its own view", async () => {
    const hot = org.inboxes[0] as SeededOrganization["inboxes"][number];
    const query = `query($id: ID!) { inbox(id: $id) { threads(first: 200) { edges { node { id messageCount } } } } }`;
    const full = await ok(server, query, { id: hot.globalId }, { key: org.keys.full });
    const hiding = await ok(server, query, { id: hot.globalId }, { key: org.keys.hidesSpamAndTrash });
    expect(full.inbox.threads.edges.length).toBe(Math.min(200, hot.threads));
    expect(hiding.inbox.threads.edges.length).toBeLessThan(full.inbox.threads.edges.length);
    const viewer = await ok(server, "{ viewer { scope inbox { id } } }", {}, { key: org.keys.hotInbox });
    expect(viewer.viewer).toEqual({ scope: "INBOX", inbox: { id: encodeGlobalID("Inbox", hot.id) } });
    const other = org.inboxes[1] as SeededOrganization["inboxes"][number];
    const denied = await ok(
      server,
      "query($id: ID!) { threads(inboxId: $id) { edges { node { id } } } }",
      {
        id: other.globalId,
      },
      { key: org.keys.hotInbox },
    );
    expect(denied.threads.edges).toEqual([]);
  });
});
