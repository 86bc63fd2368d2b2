// Event cursors: what a subscription, a webhook payload (and a page of events) give a client to resume
// right after an event. Opaque to clients; an event id inside.
import { isRowId } from "../db/ids.ts";
import { badUserInput } from "../errors.ts";

/** The cursor of an event: resume right after it. */
export const encodeEventCursor = (id: string) => Buffer.from(`event:${id}`).toString("base64url");
/** The event id inside a cursor; BAD_USER_INPUT naming `field` for anything this API did not issue. */
export function decodeEventCursor(cursor: string, field = "after"): string {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const id = text.startsWith("event:") ? text.slice("event:".length) : "";
  // Canonical digits of a bigint, so ids compare as text (compareIds) and fit the column.
  if (!isRowId(id)) throw badUserInput(`${field} is not an event cursor.`, field);
  return id;
}
