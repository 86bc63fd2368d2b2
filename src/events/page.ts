// A page of the events a reader may see after a cursor, with the messages they refer to: what
// Query.events answers and what a subscription replays are this one read, so that polling and
// subscribing deliver the same events for the same cursor range (docs/events.md, "One cursor").
import type { Db } from "../db/database.ts";
import type { EventPosition } from "./cursor.ts";
import { type Event, type EventFilter, eventsAfter } from "./repository.ts";
import type { EventVisibility } from "./visibility.ts";

/** The messages events refer to, by id, as they are now (events do not know how messages are read). */
export type LoadMessages<M> = (orgId: string, messageIds: readonly string[]) => Promise<Map<string, M>>;

/** An event as delivered: the row and, for a message event, its message as it is now (null: gone). */
export interface DeliveredEvent<M> {
  event: Event;
  message: M | null;
}

/** Events and their messages, the messages read in one batch for the organization. */
export async function withMessages<M>(
  loadMessages: LoadMessages<M>,
  orgId: string,
  events: Event[],
): Promise<DeliveredEvent<M>[]> {
  const ids = events.map((e) => e.message_id).filter((id): id is string => id !== null);
  const messages = await loadMessages(orgId, ids);
  return events.map((event) => ({
    event,
    message: event.message_id ? (messages.get(event.message_id) ?? null) : null,
  }));
}

/**
 * Up to `limit` settled events after `after` (START: from the first), in order, that `visibility` may see
 * by the labels each event recorded: two statements, whatever the page size.
 */
export async function eventPage<M>(
  db: Db,
  visibility: EventVisibility,
  loadMessages: LoadMessages<M>,
  after: EventPosition,
  filter: EventFilter,
  limit: number,
): Promise<DeliveredEvent<M>[]> {
  return withMessages(
    loadMessages,
    visibility.orgId,
    await eventsAfter(db, visibility, after, filter, limit),
  );
}
