// Every inbound message looks up its own Message-ID (a retried delivery is not stored twice) and the
// Message-IDs it cites (which thread it joins) in its inbox. Those lookups must stay lookups however
// little the planner knew when it planned them. A plan kept for any parameters and made while the
// inbox was empty cannot tell the Message-ID key from an index that only the organization leads: it
// once read the (org_id, inbox_id, id) index and filtered the whole inbox for every message, so SMTP
// ingest fell to a third as a busy inbox grew over half a minute. The statement is therefore planned
// for its values each time (CUSTOM_PLAN), on the table as it is then.
import { sql } from "kysely";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { CUSTOM_PLAN } from "../src/db/database.ts";
import { createInbox } from "../src/inboxes/service.ts";
import type { MessageData, NewMessage } from "../src/mail/message.ts";
import { messageLookups, storeMessages } from "../src/mail/store.ts";
import { bootstrapOrganization } from "../src/organizations/service.ts";
import { databaseSuite } from "./helpers/suite.ts";

const LOOKUP_KEY = "messages_org_id_message_id_header_direction_inbox_id_digest_key";
const BUSY = 3000;

const database = databaseSuite();
let inbox: NewMessage["inbox"];
let email: string;
/** A connection that ran the lookups while the inbox was empty, as a server's connections do. */
let client: pg.PoolClient;

function message(messageIdHeader: string, inReplyTo: string | null): MessageData {
  return {
    messageIdHeader,
    from: "someone@example.com",
    to: [email],
    subject: "Hello",
    text: "Hi",
    html: null,
    inReplyTo,
    references: [],
    labels: ["received"],
    direction: "INBOUND",
    sizeBytes: 100,
  };
}

/** A retry of a message the inbox holds, and a new message replying to another one it holds. */
function lookups() {
  return messageLookups([
    { inbox, data: message("<m10@example.com>", null) },
    { inbox, data: message("<new@example.com>", "<m20@example.com>") },
  ]);
}

beforeAll(async () => {
  // This file's own database stays young until the second test analyzes it.
  await sql`ALTER TABLE messages SET (autovacuum_enabled = false)`.execute(database.db);
  const config = loadConfig({});
  const org = await bootstrapOrganization(
    { db: database.db, config },
    {
      name: "Lookup",
      adminEmail: "admin@lookup.test",
      adminPassword: "lookup password 1234",
    },
  );
  const scope = { orgId: org.organizationId, podId: null, inboxId: null, hiddenLabels: [] };
  const created = await createInbox({ db: database.db, config }, scope, { username: "busy" });
  inbox = { orgId: org.organizationId, podId: created.pod_id, inboxId: created.id };
  email = created.email;
  // A connection that ran the lookups again and again while the inbox was empty.
  client = await database.pool.connect();
  const { sql: text, parameters } = lookups().compile(database.db);
  for (let i = 0; i < 8; i++) await client.query(text, [...parameters]);
  // Then the inbox gets busy (the database still has no statistics), through the mail path.
  await database.db.transaction().execute(async (trx) => {
    await storeMessages(
      trx,
      Array.from({ length: BUSY }, (_, i) => ({ inbox, data: message(`<m${i}@example.com>`, null) })),
      "MESSAGE_RECEIVED",
    );
  });
});
afterAll(() => {
  client?.release(true);
});

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Rows"?: number;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/** The lookups find what they should, on the connection's plan, reading one Message-ID's copies each. */
async function checkLookups(): Promise<void> {
  const { rows: found } = await lookups().execute(database.db);
  const { rows: expected } = await sql<{ id: string; thread_id: string; message_id_header: string }>`
    SELECT id, thread_id, message_id_header FROM messages
    WHERE org_id = ${inbox.orgId} AND message_id_header IN ('<m10@example.com>', '<m20@example.com>')
    ORDER BY message_id_header`.execute(database.db);
  expect(found).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ kind: "duplicate", index: 0, id: expected[0]?.id }),
      expect.objectContaining({ kind: "thread", index: 1, threadId: expected[1]?.thread_id }),
    ]),
  );

  const { sql: text, parameters } = lookups().compile(database.db);
  const { rows: explained } = await client.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(
    `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
    [...parameters],
  );
  const [
    {
      "QUERY PLAN": [{ Plan: root }],
    },
  ] = explained as [{ "QUERY PLAN": [{ Plan: PlanNode }] }];
  const plan = nodes(root);
  const reads = plan.filter((node) => node["Relation Name"] === "messages");
  expect(reads.length).toBe(2);
  for (const read of reads) {
    expect({ type: read["Node Type"], index: read["Index Name"] }).toEqual({
      type: expect.stringMatching(/^Index( Only)? Scan$/),
      index: LOOKUP_KEY,
    });
    // Each lookup reads the copies of one Message-ID, never the inbox.
    expect(read["Actual Rows"]).toBeLessThanOrEqual(1);
  }
}

describe("inbound mail's Message-ID lookups", () => {
  it("are planned for their values each time, never kept as one plan for any values", () => {
    expect(lookups().compile(database.db).sql).toContain(CUSTOM_PLAN.compile(database.db).sql);
  });

  it("keep to the Message-ID key on a plan made while the inbox was empty", async () => {
    const { rows } = await sql<{ analyzed: boolean }>`
      SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL AS analyzed
      FROM pg_stat_user_tables WHERE relname = 'messages'`.execute(database.db);
    expect(rows[0]?.analyzed).toBe(false);
    await checkLookups();
  });

  it("and on the plan made once the statistics are in", async () => {
    await sql`ANALYZE messages`.execute(database.db);
    await checkLookups();
  });
});
