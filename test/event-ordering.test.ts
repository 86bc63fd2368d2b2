// Event order without a lock (docs/events.md, "Order without a lock"), as a property: many writers of
// one organization commit (or roll back) at once, while readers replay from random cursors, through
// the cursor's text as a client holds it. Every reader must see every committed event exactly once,
// nothing of a rolled-back transaction, and all readers one order: the one a final full read gives.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  decodeEventCursor,
  type EventPosition,
  encodeEventCursor,
  positionOf,
  START,
} from "../src/events/cursor.ts";
import { appendEvents } from "../src/events/outbox.ts";
import { eventsAfter, settledEventsAfter } from "../src/events/repository.ts";
import type { EventVisibility } from "../src/events/visibility.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/database.ts";
import { createOrganization } from "./helpers/factories.ts";

const WRITERS = 8;
const TRANSACTIONS_PER_WRITER = 30;
const READERS = 6;
const ABORT_RATE = 0.3;

let database: TestDatabase;
let orgId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  orgId = (await createOrganization(database.db, "Ordering")).organizationId;
}, 60_000);

afterAll(async () => {
  await database?.destroy();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(Math.random() * items.length)];

/** A transaction of 1–3 statements of 1–3 events each, pausing in between; committed or rolled back. */
async function writer(committed: Set<string>, rolledBack: Set<string>): Promise<void> {
  for (let n = 0; n < TRANSACTIONS_PER_WRITER; n++) {
    const trx = await database.db.startTransaction().execute();
    const ids: string[] = [];
    try {
      const statements = 1 + Math.floor(Math.random() * 3);
      for (let s = 0; s < statements; s++) {
        const count = 1 + Math.floor(Math.random() * 3);
        ids.push(
          ...(await appendEvents(
            trx,
            Array.from({ length: count }, () => ({ orgId, type: "DOMAIN_VERIFIED" as const })),
          )),
        );
        await sleep(Math.random() * 4);
      }
    } catch (error) {
      await trx.rollback().execute();
      throw error;
    }
    if (Math.random() < ABORT_RATE) {
      await trx.rollback().execute();
      for (const id of ids) rolledBack.add(id);
    } else {
      await trx.commit().execute();
      for (const id of ids) committed.add(id);
    }
  }
}

const everything: EventVisibility = {
  orgId: "",
  podId: null,
  inboxId: null,
  hiddenLabels: [],
  messageRead: true,
  domainRead: true,
  draftRead: true,
};

/** One page after `cursor`: as a live subscriber reads (org-wide) or as Query.events does (by visibility). */
async function page(kind: "live" | "query", cursor: EventPosition, limit: number) {
  return kind === "live"
    ? settledEventsAfter(database.db, orgId, cursor, limit)
    : eventsAfter(database.db, { ...everything, orgId }, cursor, {}, limit);
}

/**
 * Starts at a random cursor (the start, or an event some reader already saw) and reads pages of
 * random sizes, holding its cursor as the opaque text a client keeps, until `settled` (every committed
 * event can be read) and a page comes back empty.
 */
async function reader(
  kind: "live" | "query",
  seen: EventPosition[],
  settled: () => boolean,
): Promise<{ from: EventPosition; read: string[] }> {
  await sleep(Math.random() * 300);
  const from = Math.random() < 0.25 ? START : (pick(seen) ?? START);
  // Without a cursor a client starts from the first event, as without `after`.
  let cursor = from === START ? undefined : encodeEventCursor(from);
  const read: string[] = [];
  for (;;) {
    const last = settled();
    const events = await page(
      kind,
      cursor === undefined ? START : decodeEventCursor(cursor),
      1 + Math.floor(Math.random() * 20),
    );
    for (const event of events) {
      read.push(event.id);
      seen.push(positionOf(event));
      cursor = encodeEventCursor(positionOf(event));
    }
    if (events.length === 0) {
      if (last) return { from, read };
      await sleep(2 + Math.random() * 5);
    }
  }
}

describe("event order without a lock", () => {
  it("gives every reader every committed event exactly once, in one order, while writers commit and abort at once", {
    timeout: 60_000,
  }, async () => {
    const committed = new Set<string>();
    const rolledBack = new Set<string>();
    const seen: EventPosition[] = [];
    let settled = false;
    const readers = Promise.all(
      Array.from({ length: READERS }, (_, i) => reader(i % 2 === 0 ? "live" : "query", seen, () => settled)),
    );
    await Promise.all(Array.from({ length: WRITERS }, () => writer(committed, rolledBack)));

    // The order, read once everything has settled: exactly the committed events.
    let all: { id: string; position: EventPosition }[] = [];
    for (let attempt = 0; attempt < 500; attempt++) {
      all = [];
      let cursor = START;
      for (;;) {
        const events = await settledEventsAfter(database.db, orgId, cursor, 1000);
        all.push(...events.map((e) => ({ id: e.id, position: positionOf(e) })));
        if (events.length < 1000) break;
        cursor = positionOf(events.at(-1) as (typeof events)[number]);
      }
      if (all.length >= committed.size) break;
      await sleep(20);
    }
    settled = true;
    const results = await readers;
    const order = all.map((e) => e.id);
    expect(new Set(order).size).toBe(order.length);
    expect(new Set(order)).toEqual(committed);
    expect(order.filter((id) => rolledBack.has(id))).toEqual([]);
    expect(committed.size).toBeGreaterThan(WRITERS * TRANSACTIONS_PER_WRITER);

    // Each reader: exactly the part of that order after where it started, however it paged.
    for (const { from, read } of results) {
      const start = all.findIndex((e) => e.position.xid === from.xid && e.position.id === from.id) + 1;
      expect(read).toEqual(order.slice(start));
    }
  });
});
