// The rule "may this reader see this event" (src/events/visibility.ts) exists as SQL, for a caller's
// visibility and for a webhook's recorded one, and in memory for subscriptions: all three must give
// the same answer for every reader and every event.
import fc from "fast-check";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import type { EventType } from "../src/db/types.ts";
import { type EventVisibility, eventReadable, eventReadableBy } from "../src/events/visibility.ts";
import { webhookVisibility } from "../src/events/webhook-fan-out.ts";
import { EVENT_TYPES } from "../src/schema/event-type.ts";
import { databaseSuite } from "./helpers/suite.ts";

const database = databaseSuite();

const TYPES: EventType[] = [...EVENT_TYPES];
const id = (...ids: string[]) => fc.option(fc.constantFrom(...ids), { nil: null });
const labels = (...names: string[]) => fc.subarray(names);

const visibility = fc.record<EventVisibility>({
  orgId: fc.constantFrom("1", "2"),
  podId: id("10", "11"),
  inboxId: id("100", "101"),
  messageRead: fc.boolean(),
  domainRead: fc.boolean(),
  draftRead: fc.boolean(),
  hiddenLabels: labels("spam", "blocked", "trash"),
});
const event = fc.record({
  org_id: fc.constantFrom("1", "2"),
  type: fc.constantFrom(...TYPES),
  pod_id: id("10", "11"),
  inbox_id: id("100", "101"),
  // null: labels unknown (an event recorded before events carried them, about a message since gone).
  message_labels: fc.option(labels("received", "spam", "blocked", "trash", "project-x"), { nil: null }),
});

describe("the event visibility rule", () => {
  it("answers alike in SQL (caller and webhook forms) and in memory", async () => {
    await fc.assert(
      fc.asyncProperty(visibility, event, async (v, e) => {
        const { rows } = await sql<{ caller: boolean; webhook: boolean }>`
          SELECT ${eventReadable("e", v)} AS caller, ${eventReadable("e", webhookVisibility("w"))} AS webhook
          FROM (VALUES (${e.org_id}::bigint, ${e.type}::text, ${e.pod_id}::bigint, ${e.inbox_id}::bigint,
              ${e.message_labels}::text[])) AS e(org_id, type, pod_id, inbox_id, message_labels),
            (VALUES (${v.orgId}::bigint, ${v.podId}::bigint, ${v.inboxId}::bigint, ${v.messageRead}::boolean,
              ${v.domainRead}::boolean, ${v.draftRead}::boolean, ${[...v.hiddenLabels]}::text[]))
              AS w(org_id, pod_id, inbox_id, message_read, domain_read, draft_read, hidden_labels)`.execute(
          database.db,
        );
        const expected = eventReadableBy(v, e, e.message_labels);
        // NULL (an event without the pod or inbox compared) is "no", as WHERE takes it.
        expect({ caller: rows[0]?.caller === true, webhook: rows[0]?.webhook === true }).toEqual({
          caller: expected,
          webhook: expected,
        });
      }),
      { numRuns: 400 },
    );
  });

  it("hides an event whose labels are unknown from a reader who may not see every hiding label", () => {
    const reader = (hiddenLabels: string[]): EventVisibility => ({
      orgId: "1",
      podId: null,
      inboxId: null,
      messageRead: true,
      domainRead: true,
      draftRead: true,
      hiddenLabels,
    });
    const unknown = { org_id: "1", type: "MESSAGE_RECEIVED" as const, pod_id: "10", inbox_id: "100" };
    expect(eventReadableBy(reader([]), unknown, null)).toBe(true);
    expect(eventReadableBy(reader(["trash"]), unknown, null)).toBe(false);
    expect(eventReadableBy(reader(["trash"]), unknown, ["received"])).toBe(true);
  });
});
