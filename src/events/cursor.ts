// Event cursors: what a subscription, a webhook payload (and a page of events) give a client to resume
// right after an event. Opaque to clients; the event's place in its organization's order inside: the
// id of the transaction that wrote it and its own id (docs/events.md, "Order without a lock").
import { compareIds, isRowId } from "../db/ids.ts";
import { badUserInput } from "../errors.ts";

/** An event's place in its organization's order: by `xid` (its transaction), then by `id`. */
export interface EventPosition {
  /** xid8 as canonical decimal text; "0" for events written before events recorded it. */
  xid: string;
  id: string;
}

/** Before every event. */
export const START: EventPosition = { xid: "0", id: "0" };

/** The cursor of an event: resume right after it. */
export const encodeEventCursor = (event: EventPosition) =>
  Buffer.from(`event:${event.xid}:${event.id}`).toString("base64url");

/**
 * The position inside a cursor; BAD_USER_INPUT naming `field` for anything this API did not issue.
 * A cursor of the form `event:<id>` was issued before events recorded their transaction: such an
 * event has xid 0 (db/migrations/…_event_transaction_order.ts), so it still resumes where it did.
 */
export function decodeEventCursor(cursor: string, field = "after"): EventPosition {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const parts = text.startsWith("event:") ? text.slice("event:".length).split(":") : [];
  const [xid, id] = parts.length === 1 ? ["0", parts[0]] : parts;
  // Canonical digits of a bigint, so positions compare as text (comparePositions) and fit the columns.
  if (
    parts.length > 2 ||
    xid === undefined ||
    id === undefined ||
    !(xid === "0" || isRowId(xid)) ||
    !isRowId(id)
  ) {
    throw badUserInput(`${field} is not an event cursor.`, field);
  }
  return { xid, id };
}

/** Orders positions (canonical decimal texts) without parsing them. */
export function comparePositions(a: EventPosition, b: EventPosition): number {
  return compareIds(a.xid, b.xid) || compareIds(a.id, b.id);
}

export const positionOf = (event: { xid: string; id: string }): EventPosition => ({
  xid: event.xid,
  id: event.id,
});

export const isEventPosition = (value: unknown): value is EventPosition =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as EventPosition).xid === "string" &&
  typeof (value as EventPosition).id === "string";
