// metrics: event counts per type and time bucket, scoped to the caller's organization, pod
// or inbox; filters, bucket sizes, range checks, hidden labels, and the index that serves the query.
import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import { sql } from "kysely";
import { beforeAll, describe, expect, it } from "vitest";
import { permissionFix } from "../src/auth/permissions.ts";
import type { EventType } from "../src/db/types.ts";
import type { EventVisibility } from "../src/events/visibility.ts";
import { metricsQuery } from "../src/metrics/repository.ts";
import { EVENT_TYPES } from "../src/schema/event-type.ts";
import { createInboxViaApi, createKey, createOrganization, createPodViaApi } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { organizationFixture, serverSuite, tenantFixture } from "./helpers/suite.ts";
import { podsAandB } from "./helpers/world.ts";

const { database, server } = serverSuite();
const {
  org,
  pods,
  inboxes: { a: inboxA1, a2: inboxA2, b: inboxB1 },
  keys,
} = tenantFixture({ database, server }, podsAandB("m"));
const otherOrg = organizationFixture(database, "Other");

const rowId = (globalId: string) => decodeGlobalID(globalId).id;

interface EventRow {
  type: EventType;
  at: string;
  pod?: string | null;
  inbox?: string | null;
  message?: string | null;
  /** The message's labels when it happened; message events carry them (["received"] unless given). */
  labels?: string[];
  orgId?: string;
}

/**
 * Test setup: events are produced by mail delivery; here they are written straight into the table,
 * as that writer writes them (src/events/outbox.ts).
 */
async function insertEvents(rows: EventRow[]) {
  await database.db
    .insertInto("events")
    .values(
      rows.map((row) => ({
        org_id: row.orgId ?? org.organizationId,
        type: row.type,
        pod_id: row.pod ? rowId(row.pod) : null,
        inbox_id: row.inbox ? rowId(row.inbox) : null,
        message_id: row.message ?? null,
        message_labels: row.type === "DOMAIN_VERIFIED" ? null : (row.labels ?? ["received"]),
        created_at: new Date(row.at),
      })),
    )
    .execute();
}

beforeAll(async () => {
  const a1 = { pod: pods.A, inbox: inboxA1.id };
  await insertEvents([
    { type: "MESSAGE_RECEIVED", at: "2026-01-05T09:59:59.999Z", ...a1 },
    { type: "MESSAGE_RECEIVED", at: "2026-01-05T10:00:00.000Z", ...a1 },
    { type: "MESSAGE_SENT", at: "2026-01-05T10:00:20Z", ...a1 },
    { type: "MESSAGE_RECEIVED", at: "2026-01-05T10:00:30Z", pod: pods.A, inbox: inboxA2.id },
    { type: "MESSAGE_RECEIVED", at: "2026-01-05T10:00:40Z", pod: pods.B, inbox: inboxB1.id },
    { type: "MESSAGE_RECEIVED", at: "2026-01-05T10:00:59.999Z", ...a1 },
    { type: "MESSAGE_RECEIVED", at: "2026-01-05T10:01:30Z", ...a1 },
    { type: "MESSAGE_BOUNCED", at: "2026-01-05T10:02:00Z", pod: pods.B, inbox: inboxB1.id },
    { type: "DOMAIN_VERIFIED", at: "2026-01-05T10:05:00Z" },
    { type: "DOMAIN_VERIFIED", at: "2026-01-05T10:06:00Z", pod: pods.A },
    { type: "MESSAGE_RECEIVED", at: "2026-01-05T11:00:00Z", ...a1 },
    { type: "MESSAGE_RECEIVED", at: "2026-01-05T12:30:00Z", ...a1 },
    { type: "MESSAGE_RECEIVED", at: "2026-01-07T08:00:00Z", ...a1 },
    // Another organization, same instant: never counted.
    { type: "MESSAGE_RECEIVED", at: "2026-01-05T10:00:15Z", orgId: otherOrg.organizationId },
  ]);
});

const METRICS = `query($from: DateTime!, $to: DateTime!, $types: [EventType!], $podId: ID, $inboxId: ID, $bucket: MetricBucket) {
  metrics(from: $from, to: $to, types: $types, podId: $podId, inboxId: $inboxId, bucket: $bucket) { type bucket count }
}`;

async function metrics(key: string, variables: Record<string, unknown>) {
  return (await ok(server, METRICS, variables, { key })).metrics as {
    type: string;
    bucket: string;
    count: number;
  }[];
}

async function errorOf(key: string, variables: Record<string, unknown>) {
  const response = await gql(server, METRICS, variables, { key });
  expect(response.status).toBe(200);
  expect(response.body.data).toEqual({ metrics: null });
  expect(response.body.errors).toHaveLength(1);
  return response.body.errors?.[0]?.extensions;
}

const HOUR = { from: "2026-01-05T10:00:00Z", to: "2026-01-05T11:00:00Z" };
const m = (type: string, bucket: string, count: number) => ({ type, bucket, count });

describe("counts and buckets", () => {
  it("counts the organization's events per type per minute over a range up to 2 hours, [from, to)", async () => {
    expect(await metrics(org.apiKey, HOUR)).toEqual([
      m("MESSAGE_RECEIVED", "2026-01-05T10:00:00.000Z", 4),
      m("MESSAGE_SENT", "2026-01-05T10:00:00.000Z", 1),
      m("MESSAGE_RECEIVED", "2026-01-05T10:01:00.000Z", 1),
      m("MESSAGE_BOUNCED", "2026-01-05T10:02:00.000Z", 1),
      m("DOMAIN_VERIFIED", "2026-01-05T10:05:00.000Z", 1),
      m("DOMAIN_VERIFIED", "2026-01-05T10:06:00.000Z", 1),
    ]);
    // Exactly 2 hours is still by the minute.
    const twoHours = await metrics(org.apiKey, { from: "2026-01-05T10:00:00Z", to: "2026-01-05T12:00:00Z" });
    expect(twoHours.map((row) => row.bucket)).toContain("2026-01-05T10:01:00.000Z");
    expect(twoHours.at(-1)).toEqual(m("MESSAGE_RECEIVED", "2026-01-05T11:00:00.000Z", 1));
  });

  it("counts by the hour over a range up to 7 days, and by the day beyond", async () => {
    expect(await metrics(org.apiKey, { from: "2026-01-05T09:00:00Z", to: "2026-01-05T13:00:00Z" })).toEqual([
      m("MESSAGE_RECEIVED", "2026-01-05T09:00:00.000Z", 1),
      m("DOMAIN_VERIFIED", "2026-01-05T10:00:00.000Z", 2),
      m("MESSAGE_BOUNCED", "2026-01-05T10:00:00.000Z", 1),
      m("MESSAGE_RECEIVED", "2026-01-05T10:00:00.000Z", 5),
      m("MESSAGE_SENT", "2026-01-05T10:00:00.000Z", 1),
      m("MESSAGE_RECEIVED", "2026-01-05T11:00:00.000Z", 1),
      m("MESSAGE_RECEIVED", "2026-01-05T12:00:00.000Z", 1),
    ]);
    const week = await metrics(org.apiKey, { from: "2026-01-01T00:00:00Z", to: "2026-01-08T00:00:00Z" });
    expect(week.filter((row) => row.type === "MESSAGE_RECEIVED").map((row) => row.bucket)).toEqual([
      "2026-01-05T09:00:00.000Z",
      "2026-01-05T10:00:00.000Z",
      "2026-01-05T11:00:00.000Z",
      "2026-01-05T12:00:00.000Z",
      "2026-01-07T08:00:00.000Z",
    ]);
    expect(await metrics(org.apiKey, { from: "2026-01-01T00:00:00Z", to: "2026-01-10T00:00:00Z" })).toEqual([
      m("DOMAIN_VERIFIED", "2026-01-05T00:00:00.000Z", 2),
      m("MESSAGE_BOUNCED", "2026-01-05T00:00:00.000Z", 1),
      m("MESSAGE_RECEIVED", "2026-01-05T00:00:00.000Z", 8),
      m("MESSAGE_SENT", "2026-01-05T00:00:00.000Z", 1),
      m("MESSAGE_RECEIVED", "2026-01-07T00:00:00.000Z", 1),
    ]);
  });

  it("takes an explicit bucket over the default", async () => {
    expect(await metrics(org.apiKey, { ...HOUR, bucket: "HOUR" })).toEqual([
      m("DOMAIN_VERIFIED", "2026-01-05T10:00:00.000Z", 2),
      m("MESSAGE_BOUNCED", "2026-01-05T10:00:00.000Z", 1),
      m("MESSAGE_RECEIVED", "2026-01-05T10:00:00.000Z", 5),
      m("MESSAGE_SENT", "2026-01-05T10:00:00.000Z", 1),
    ]);
    expect(
      await metrics(org.apiKey, {
        from: "2026-01-05T00:00:00Z",
        to: "2026-01-06T00:00:00Z",
        bucket: "DAY",
        types: ["MESSAGE_RECEIVED"],
      }),
    ).toEqual([m("MESSAGE_RECEIVED", "2026-01-05T00:00:00.000Z", 8)]);
    // A range that does not start on a bucket boundary still gets whole UTC buckets.
    expect(
      await metrics(org.apiKey, {
        from: "2026-01-05T10:00:30Z",
        to: "2026-01-05T10:01:00Z",
        types: ["MESSAGE_RECEIVED"],
      }),
    ).toEqual([m("MESSAGE_RECEIVED", "2026-01-05T10:00:00.000Z", 3)]);
  });

  it("counts only the types asked for", async () => {
    expect(await metrics(org.apiKey, { ...HOUR, types: ["MESSAGE_SENT", "MESSAGE_BOUNCED"] })).toEqual([
      m("MESSAGE_SENT", "2026-01-05T10:00:00.000Z", 1),
      m("MESSAGE_BOUNCED", "2026-01-05T10:02:00.000Z", 1),
    ]);
    expect(await metrics(org.apiKey, { ...HOUR, types: [] })).toEqual([]);
    expect(await metrics(org.apiKey, { ...HOUR, types: ["MESSAGE_REJECTED"] })).toEqual([]);
  });
});

describe("scope and filters", () => {
  it("gives a pod key its pod's events and an inbox key its inbox's", async () => {
    expect(await metrics(keys.podA, HOUR)).toEqual([
      m("MESSAGE_RECEIVED", "2026-01-05T10:00:00.000Z", 3),
      m("MESSAGE_SENT", "2026-01-05T10:00:00.000Z", 1),
      m("MESSAGE_RECEIVED", "2026-01-05T10:01:00.000Z", 1),
      m("DOMAIN_VERIFIED", "2026-01-05T10:06:00.000Z", 1),
    ]);
    expect(await metrics(keys.inboxA, HOUR)).toEqual([
      m("MESSAGE_RECEIVED", "2026-01-05T10:00:00.000Z", 2),
      m("MESSAGE_SENT", "2026-01-05T10:00:00.000Z", 1),
      m("MESSAGE_RECEIVED", "2026-01-05T10:01:00.000Z", 1),
    ]);
  });

  it("filters by pod and inbox inside the scope", async () => {
    expect(await metrics(org.apiKey, { ...HOUR, podId: pods.B })).toEqual([
      m("MESSAGE_RECEIVED", "2026-01-05T10:00:00.000Z", 1),
      m("MESSAGE_BOUNCED", "2026-01-05T10:02:00.000Z", 1),
    ]);
    expect(await metrics(org.apiKey, { ...HOUR, inboxId: inboxA2.id })).toEqual([
      m("MESSAGE_RECEIVED", "2026-01-05T10:00:00.000Z", 1),
    ]);
    expect(await metrics(keys.podA, { ...HOUR, podId: pods.A, inboxId: inboxA2.id })).toEqual([
      m("MESSAGE_RECEIVED", "2026-01-05T10:00:00.000Z", 1),
    ]);
    expect(await metrics(keys.inboxA, { ...HOUR, inboxId: inboxA1.id, types: ["MESSAGE_SENT"] })).toEqual([
      m("MESSAGE_SENT", "2026-01-05T10:00:00.000Z", 1),
    ]);
  });

  it("answers NOT_FOUND for a pod or inbox outside the scope, or an id that is not one", async () => {
    const cases: [string, Record<string, unknown>][] = [
      [keys.podA, { podId: pods.B }],
      [keys.podA, { inboxId: inboxB1.id }],
      [keys.inboxA, { inboxId: inboxA2.id }],
      [keys.inboxA, { podId: pods.A }],
      [org.apiKey, { podId: inboxA1.id }],
      [org.apiKey, { inboxId: "garbage" }],
      [org.apiKey, { inboxId: encodeGlobalID("Inbox", "999999999") }],
      [otherOrg.apiKey, { podId: pods.A }],
    ];
    for (const [key, filter] of cases) {
      expect(await errorOf(key, { ...HOUR, ...filter }), JSON.stringify(filter)).toEqual({
        code: "NOT_FOUND",
      });
    }
  });

  it("never counts another organization's events", async () => {
    expect(await metrics(otherOrg.apiKey, HOUR)).toEqual([
      m("MESSAGE_RECEIVED", "2026-01-05T10:00:00.000Z", 1),
    ]);
  });

  it("does not count events about messages that carried a label hidden from the caller", async () => {
    const range = { from: "2026-02-01T10:00:00Z", to: "2026-02-01T10:01:00Z" };
    await insertEvents([
      {
        type: "MESSAGE_RECEIVED",
        at: "2026-02-01T10:00:00Z",
        pod: pods.A,
        inbox: inboxA1.id,
        labels: ["spam"],
      },
      { type: "MESSAGE_RECEIVED", at: "2026-02-01T10:00:01Z", pod: pods.A, inbox: inboxA1.id },
      // The message is gone since; the event stays countable by the labels it carried.
      {
        type: "MESSAGE_RECEIVED",
        at: "2026-02-01T10:00:02Z",
        pod: pods.A,
        inbox: inboxA1.id,
        message: "999999999",
      },
      {
        type: "MESSAGE_RECEIVED",
        at: "2026-02-01T10:00:03Z",
        pod: pods.A,
        inbox: inboxA1.id,
        labels: ["trash"],
      },
    ]);
    const noSpam = (
      await createKey(server, org.apiKey, {
        inboxId: inboxA1.id,
        permissions: { metricsRead: true, messageRead: true, labelTrashRead: true },
      })
    ).secret;
    expect(await metrics(noSpam, range)).toEqual([m("MESSAGE_RECEIVED", "2026-02-01T10:00:00.000Z", 3)]);
    expect(await metrics(keys.inboxA, range)).toEqual([m("MESSAGE_RECEIVED", "2026-02-01T10:00:00.000Z", 4)]);
  });

  it("counts only the events the caller may read: message events need MESSAGE_READ, domain events DOMAIN_READ", async () => {
    const counts = async (permissions: Record<string, boolean>) =>
      metrics((await createKey(server, org.apiKey, { podId: pods.A, permissions })).secret, HOUR);
    expect(await counts({ metricsRead: true })).toEqual([]);
    expect(await counts({ metricsRead: true, domainRead: true })).toEqual([
      m("DOMAIN_VERIFIED", "2026-01-05T10:06:00.000Z", 1),
    ]);
    expect(await counts({ metricsRead: true, messageRead: true })).toEqual([
      m("MESSAGE_RECEIVED", "2026-01-05T10:00:00.000Z", 3),
      m("MESSAGE_SENT", "2026-01-05T10:00:00.000Z", 1),
      m("MESSAGE_RECEIVED", "2026-01-05T10:01:00.000Z", 1),
    ]);
  });

  it("needs METRICS_READ", async () => {
    const key = (await createKey(server, org.apiKey, { permissions: { inboxRead: true } })).secret;
    expect(await errorOf(key, HOUR)).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "METRICS_READ",
      fix: permissionFix("METRICS_READ"),
    });
  });
});

describe("ranges", () => {
  it("refuses a range that is empty, backwards or longer than 400 days (field to)", async () => {
    for (const range of [
      { from: "2026-01-05T10:00:00Z", to: "2026-01-05T10:00:00Z" },
      { from: "2026-01-05T10:00:00Z", to: "2026-01-05T09:00:00Z" },
      { from: "2025-01-01T00:00:00Z", to: "2026-02-05T00:00:01Z" },
    ]) {
      expect(await errorOf(org.apiKey, range)).toMatchObject({ code: "BAD_USER_INPUT", field: "to" });
    }
    const longest = await metrics(org.apiKey, { from: "2025-01-01T00:00:00Z", to: "2026-02-05T00:00:00Z" });
    expect(longest.find((row) => row.type === "MESSAGE_RECEIVED")).toEqual(
      m("MESSAGE_RECEIVED", "2026-01-05T00:00:00.000Z", 8),
    );
  });

  it("refuses a bucket too small for the range (field bucket) and a malformed DateTime", async () => {
    expect(
      await errorOf(org.apiKey, {
        from: "2026-01-01T00:00:00Z",
        to: "2026-01-08T00:00:01Z",
        bucket: "MINUTE",
      }),
    ).toMatchObject({ code: "BAD_USER_INPUT", field: "bucket" });
    expect(
      await metrics(org.apiKey, {
        from: "2026-01-01T00:00:00Z",
        to: "2026-01-08T00:00:00Z",
        bucket: "MINUTE",
      }),
    ).toHaveLength(10);
    const malformed = await gql(server, METRICS, { from: "yesterday", to: HOUR.to }, { key: org.apiKey });
    expect(malformed.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });
});

describe("the query plan", () => {
  it("is served by the (org_id, type, created_at) index for every scope", async () => {
    // A year of events in a fresh organization, so the planner has a real choice.
    const bulk = await createOrganization(database.db, "Bulk");
    const pod = await createPodViaApi(server, bulk.apiKey, "Bulk pod");
    const inbox = (await createInboxViaApi(server, bulk.apiKey, { podId: pod, username: "bulk" })).id;
    await sql`
      INSERT INTO events (org_id, type, pod_id, inbox_id, created_at)
      SELECT ${bulk.organizationId}, (ARRAY['MESSAGE_RECEIVED','MESSAGE_SENT','MESSAGE_DELIVERED'])[1 + i % 3],
             ${rowId(pod)}, ${rowId(inbox)}, timestamptz '2025-01-01 00:00:00+00' + i * interval '10 minutes'
      FROM generate_series(1, 50000) AS i
    `.execute(database.db);
    await sql`ANALYZE events`.execute(database.db);
    const read = { messageRead: true, domainRead: true, draftRead: true };
    const scopes: EventVisibility[] = [
      { orgId: bulk.organizationId, podId: null, inboxId: null, hiddenLabels: [], ...read },
      { orgId: bulk.organizationId, podId: rowId(pod), inboxId: null, hiddenLabels: ["spam"], ...read },
      {
        orgId: bulk.organizationId,
        podId: rowId(pod),
        inboxId: rowId(inbox),
        hiddenLabels: ["spam", "trash"],
        messageRead: true,
        domainRead: false,
        draftRead: false,
      },
    ];
    for (const scope of scopes) {
      const query = metricsQuery(database.db, scope, {
        from: new Date("2025-03-01T00:00:00Z"),
        to: new Date("2025-03-02T00:00:00Z"),
        types: [...EVENT_TYPES],
        bucket: "HOUR",
      }).compile();
      const { rows } = await database.pool.query(`EXPLAIN ${query.sql}`, [...query.parameters]);
      const plan = rows.map((row: Record<string, string>) => row["QUERY PLAN"]).join("\n");
      expect(plan, plan).toMatch(
        /Index (Only )?Scan using events_org_id_type_created_at_idx|Bitmap Index Scan on events_org_id_type_created_at_idx/,
      );
      expect(plan, plan).not.toMatch(/Seq Scan on events/);
    }
  });
});
